// Command testwriter is a test plugin that publishes a stream of pattern
// packets (see testpattern) at a fixed rate, and reports what it wrote on
// the API route /test/writer/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/test/plugins/testpattern"
)

type settings struct {
	App    string       `json:"app"`
	Stream string       `json:"stream"`
	Rate   int          `json:"rate"`
	Size   int          `json:"size"`
	Delay  sdk.Duration `json:"delay"`
}

type writer struct {
	cfg     settings
	written atomic.Uint64
	errs    atomic.Uint64
	lastErr atomic.Value
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var (
	_ sdk.Configurer = (*writer)(nil)
	_ sdk.Starter    = (*writer)(nil)
	_ sdk.Stopper    = (*writer)(nil)
	_ http.Handler   = (*writer)(nil)
)

func (w *writer) Info() sdk.Info {
	return sdk.Info{Name: "testwriter", Version: "1.0.0", Description: "publishes test pattern packets", HTTPRoutes: []string{"/test/writer/"}}
}

func (w *writer) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{App: "live", Stream: "pattern", Rate: 200, Size: 1024}
	if err := cfg.DecodeSettings(&s); err != nil {
		return err
	}
	if s.Rate <= 0 || s.Rate > 100000 {
		return &sdk.ConfigError{Key: []string{"rate"}, Msg: "must be 1..100000 packets per second"}
	}
	if s.Size < 16 || s.Size > 4<<20 {
		return &sdk.ConfigError{Key: []string{"size"}, Msg: "must be 16 bytes .. 4 MiB"}
	}
	if !cfg.DryRun {
		w.cfg = s
	}
	return nil
}

func (w *writer) Start(_ context.Context, rt *sdk.Runtime) error {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run(ctx, rt)
	}()
	return nil
}

func (w *writer) run(ctx context.Context, rt *sdk.Runtime) {
	select {
	case <-time.After(w.cfg.Delay.Std()):
	case <-ctx.Done():
		return
	}
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "test-publish"}
	log := rt.Logger.With("client_id", client.ID)
	ref := sdk.StreamRef{Vhost: "__defaultVhost__", App: w.cfg.App, Stream: w.cfg.Stream}
	var pub *sdk.Publication
	for pub == nil {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p, err := rt.Host.Publish(pctx, client, ref)
		cancel()
		if err != nil {
			log.Warn("publish failed, retrying", "stream", ref.Key(), "error", err)
			w.lastErr.Store(err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
				continue
			}
		}
		pub = p
	}
	defer pub.Close()
	log.Info("publishing test pattern", "stream", ref.Key(), "rate", w.cfg.Rate, "size", w.cfg.Size)
	tick := time.NewTicker(time.Second / time.Duration(w.cfg.Rate))
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := pub.Write(testpattern.Packet(seq, w.cfg.Size)); err != nil {
			w.errs.Add(1)
			w.lastErr.Store(err.Error())
			if errors.Is(err, context.Canceled) {
				return
			}
			continue
		}
		w.written.Store(seq + 1)
	}
}

func (w *writer) Stop(ctx context.Context) error {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	return nil
}

func (w *writer) ServeHTTP(rw http.ResponseWriter, _ *http.Request) {
	last, _ := w.lastErr.Load().(string)
	_ = json.NewEncoder(rw).Encode(map[string]any{
		"pid": os.Getpid(), "written": w.written.Load(), "errors": w.errs.Load(), "last_error": last,
	})
}

func main() { sdk.Serve(&writer{}) }
