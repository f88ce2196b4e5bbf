// Command flvpub is a test plugin that publishes an FLV file in real time
// through Host.Publish, as an RTMP publisher would: settings file, vhost,
// app, stream, loop (repeat the file inside one publication, timestamps
// kept monotonic), sessions (how many publications, 0 = forever) and gap
// (the pause between publications, to test republishing).
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
)

type settings struct {
	File     string       `json:"file"`
	Vhost    string       `json:"vhost"`
	App      string       `json:"app"`
	Stream   string       `json:"stream"`
	Loop     bool         `json:"loop"`
	Sessions int          `json:"sessions"`
	Gap      sdk.Duration `json:"gap"`
	Delay    sdk.Duration `json:"delay"`
}

type pub struct {
	cfg    settings
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ sdk.Configurer = (*pub)(nil)
	_ sdk.Starter    = (*pub)(nil)
	_ sdk.Stopper    = (*pub)(nil)
)

func (p *pub) Info() sdk.Info {
	return sdk.Info{Name: "flvpub", Version: "1.0.0", Description: "publishes an FLV file in real time"}
}

func (p *pub) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{Vhost: "__defaultVhost__", App: "live", Stream: "livestream", Gap: sdk.Duration(time.Second)}
	if err := cfg.DecodeSettings(&s); err != nil {
		return err
	}
	if s.File == "" {
		return &sdk.ConfigError{Key: []string{"file"}, Msg: "required"}
	}
	if !cfg.DryRun {
		p.cfg = s
	}
	return nil
}

func (p *pub) Start(_ context.Context, rt *sdk.Runtime) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.run(ctx, rt)
	}()
	return nil
}

func (p *pub) Stop(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (p *pub) run(ctx context.Context, rt *sdk.Runtime) {
	if !sleep(ctx, p.cfg.Delay.Std()) {
		return
	}
	ref := sdk.StreamRef{Vhost: p.cfg.Vhost, App: p.cfg.App, Stream: p.cfg.Stream}
	for n := 0; p.cfg.Sessions == 0 || n < p.cfg.Sessions; n++ {
		if n > 0 && !sleep(ctx, p.cfg.Gap.Std()) {
			return
		}
		client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "flv-publish"}
		log := rt.Logger.With("client_id", client.ID)
		var pb *sdk.Publication
		for pb == nil {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			x, err := rt.Host.Publish(pctx, client, ref)
			cancel()
			if err != nil {
				log.Warn("publish failed, retrying", "stream", ref.Key(), "error", err)
				if !sleep(ctx, 500*time.Millisecond) {
					return
				}
				continue
			}
			pb = x
		}
		log.Info("publishing file", "stream", ref.Key(), "file", p.cfg.File, "session", n)
		err := p.session(ctx, pb)
		pb.Close()
		if err != nil && ctx.Err() == nil {
			log.Error("publish file", "error", err)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// session publishes the file once (or forever with loop) in real time.
func (p *pub) session(ctx context.Context, pb *sdk.Publication) error {
	start := time.Now()
	var offset, last time.Duration
	for pass := 0; pass == 0 || p.cfg.Loop; pass++ {
		first := time.Duration(-1)
		err := readFLV(p.cfg.File, func(tagType uint8, ts uint32, body []byte) error {
			t := time.Duration(ts) * time.Millisecond
			if first < 0 {
				first = t
			}
			dts := offset + t - first
			if !sleep(ctx, time.Until(start.Add(dts))) {
				return ctx.Err()
			}
			pkt, err := flv.FromTag(tagType, 0, body)
			if err != nil {
				if errors.Is(err, flv.ErrSkip) {
					return nil
				}
				return fmt.Errorf("tag at %v: %w", t, err)
			}
			cts := pkt.PTS - pkt.DTS
			pkt.DTS, pkt.PTS = dts, dts+cts
			if dts > last {
				last = dts
			}
			return pb.Write(pkt)
		})
		if err != nil {
			return err
		}
		offset = last + 40*time.Millisecond
	}
	return nil
}

// readFLV calls fn with every tag of an FLV file.
func readFLV(path string, fn func(tagType uint8, ts uint32, body []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var hdr [13]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("flv header: %w", err)
	}
	if string(hdr[:3]) != "FLV" {
		return fmt.Errorf("%s is not an FLV file", path)
	}
	if skip := int(binary.BigEndian.Uint32(hdr[5:9])) - 9; skip > 0 {
		if _, err := r.Discard(skip); err != nil {
			return err
		}
	}
	var th [11]byte
	for {
		if _, err := io.ReadFull(r, th[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		size := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		ts := uint32(th[7])<<24 | uint32(th[4])<<16 | uint32(th[5])<<8 | uint32(th[6])
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil // a cut last tag ends the file
		}
		if _, err := r.Discard(4); err != nil {
			return nil
		}
		if size == 0 {
			continue
		}
		if err := fn(th[0]&0x1f, ts, body); err != nil {
			return err
		}
	}
}

func main() { sdk.Serve(&pub{}) }
