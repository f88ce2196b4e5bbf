// Command testreader is a test plugin that subscribes to a stream of
// pattern packets, checks every byte, and reports what it read on the API
// route /test/reader/. It also serves a "probe" TCP listener that answers
// each connection with its pid, to show the core keeps the port open while
// the plugin restarts.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/test/plugins/testpattern"
)

type settings struct {
	App    string `json:"app"`
	Stream string `json:"stream"`
}

type reader struct {
	cfg       settings
	rt        *sdk.Runtime
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	reading   atomic.Bool
	received  atomic.Uint64
	corrupt   atomic.Uint64
	gaps      atomic.Uint64
	dropped   atomic.Uint64
	eofs      atomic.Uint64
	published atomic.Uint64
	client    atomic.Value // sdk.ClientInfo of the current subscription
	kick      atomic.Value // context.CancelFunc of the current subscription
	kicks     atomic.Uint64
	since     time.Time
	lastSeq   atomic.Uint64
	lastErr   atomic.Value
}

var (
	_ sdk.Configurer    = (*reader)(nil)
	_ sdk.Starter       = (*reader)(nil)
	_ sdk.Stopper       = (*reader)(nil)
	_ sdk.StreamWatcher = (*reader)(nil)
	_ sdk.StatsReporter = (*reader)(nil)
	_ sdk.Kicker        = (*reader)(nil)
	_ http.Handler      = (*reader)(nil)
)

func (r *reader) Info() sdk.Info {
	return sdk.Info{
		Name: "testreader", Version: "1.0.0", Description: "reads and checks test pattern packets",
		Listeners:  []sdk.Listener{{Name: "probe", Network: "tcp", DefaultAddrs: []string{"127.0.0.1:0"}}},
		HTTPRoutes: []string{"/test/reader/"},
	}
}

func (r *reader) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{App: "live", Stream: "pattern"}
	if err := cfg.DecodeSettings(&s); err != nil {
		return err
	}
	if !cfg.DryRun {
		r.cfg = s
	}
	return nil
}

func (r *reader) Start(_ context.Context, rt *sdk.Runtime) error {
	r.rt = rt
	r.since = time.Now()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, ln := range rt.Listeners("probe") {
		r.wg.Add(1)
		go r.serveProbe(ln)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for r.ctx.Err() == nil {
			r.read(5 * time.Second)
			select {
			case <-r.ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return nil
}

func (r *reader) serveProbe(ln net.Listener) {
	defer r.wg.Done()
	go func() { <-r.ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "testreader %d\n", os.Getpid())
		c.Close()
	}
}

// StreamEvent counts the publish events of the core (the read loop
// subscribes again by itself after an end of stream).
func (r *reader) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type == sdk.StreamPublished && ev.Stream.App == r.cfg.App && ev.Stream.Stream == r.cfg.Stream {
		r.published.Add(1)
	}
}

func (r *reader) read(wait time.Duration) {
	if !r.reading.CompareAndSwap(false, true) {
		return
	}
	defer r.reading.Store(false)
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "test-play"}
	log := r.rt.Logger.With("client_id", client.ID)
	r.client.Store(client)
	ref := sdk.StreamRef{Vhost: "__defaultVhost__", App: r.cfg.App, Stream: r.cfg.Stream}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	r.kick.Store(cancel)
	sub, err := r.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: wait})
	if err != nil {
		log.Warn("subscribe failed", "stream", ref.Key(), "error", err)
		r.lastErr.Store(err.Error())
		return
	}
	defer sub.Close()
	log.Info("reading test pattern", "stream", ref.Key())
	var prev uint64
	first := true
	for {
		p, err := sub.Read(ctx)
		if err != nil {
			r.eofs.Add(1)
			r.lastErr.Store(err.Error())
			log.Info("stream read ended", "stream", ref.Key(), "error", err)
			return
		}
		seq, err := testpattern.Check(p)
		if err != nil {
			r.corrupt.Add(1)
			r.lastErr.Store(err.Error())
			log.Error("corrupt packet", "seq", seq, "error", err)
			continue
		}
		if !first && seq != prev+1 {
			r.gaps.Add(1)
		}
		first, prev = false, seq
		r.received.Add(1)
		r.lastSeq.Store(seq)
		r.dropped.Store(sub.Dropped())
	}
}

// Kick ends the current subscription of the client; the read loop then
// subscribes again under a new client id.
func (r *reader) Kick(_ context.Context, id string) bool {
	c, ok := r.client.Load().(sdk.ClientInfo)
	if !ok || c.ID != id || !r.reading.Load() {
		return false
	}
	if cancel, ok := r.kick.Load().(context.CancelFunc); ok {
		r.kicks.Add(1)
		cancel()
		return true
	}
	return false
}

// Stats reports the reader as one player of its stream.
func (r *reader) Stats(context.Context) sdk.Stats {
	c, ok := r.client.Load().(sdk.ClientInfo)
	if !ok || !r.reading.Load() {
		return sdk.Stats{}
	}
	return sdk.Stats{Counters: map[string]uint64{"ring_drops": r.dropped.Load()}, Clients: []sdk.ClientStat{{
		Client: c, Stream: sdk.StreamRef{Vhost: "__defaultVhost__", App: r.cfg.App, Stream: r.cfg.Stream},
		Alive: time.Since(r.since), SendBytes: r.received.Load(),
	}}}
}

func (r *reader) Stop(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

func (r *reader) ServeHTTP(rw http.ResponseWriter, _ *http.Request) {
	last, _ := r.lastErr.Load().(string)
	_ = json.NewEncoder(rw).Encode(map[string]any{
		"pid": os.Getpid(), "received": r.received.Load(), "corrupt": r.corrupt.Load(), "gaps": r.gaps.Load(),
		"dropped": r.dropped.Load(), "eofs": r.eofs.Load(), "last_seq": r.lastSeq.Load(), "reading": r.reading.Load(), "published_events": r.published.Load(), "kicks": r.kicks.Load(), "last_error": last,
	})
}

func main() { sdk.Serve(&reader{}) }
