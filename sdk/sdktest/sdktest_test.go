package sdktest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/sdktest"
	"github.com/rill-media/rill/sdk/shm"
)

// echo is a tiny plugin: it reads every published stream and counts packets.
type echo struct {
	rt        *sdk.Runtime
	mu        sync.Mutex
	packets   int
	publisher string
	greet     string
}

func (e *echo) Info() sdk.Info {
	return sdk.Info{Name: "echo", Version: "0.0.1", HTTPRoutes: []string{"/echo/"}}
}

func (e *echo) Configure(_ context.Context, cfg sdk.Config) error {
	var s struct {
		Greeting string `json:"greeting"`
	}
	if err := cfg.DecodeSettings(&s); err != nil {
		return err
	}
	e.greet = s.Greeting
	return nil
}

func (e *echo) Start(_ context.Context, rt *sdk.Runtime) error { e.rt = rt; return nil }

func (e *echo) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type != sdk.StreamPublished {
		return
	}
	e.mu.Lock()
	e.publisher = ev.Publisher.ID
	e.mu.Unlock()
	go func() {
		sub, err := e.rt.Host.Subscribe(context.Background(), sdk.ClientInfo{ID: "echo"}, ev.Stream, sdk.SubscribeOptions{Internal: true, Wait: time.Second})
		if err != nil {
			return
		}
		defer sub.Close()
		for {
			if _, err := sub.Read(context.Background()); err != nil {
				return
			}
			e.mu.Lock()
			e.packets++
			e.mu.Unlock()
		}
	}()
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(e.greet)) }

func TestHarness(t *testing.T) {
	p := &echo{}
	h := sdktest.New(t, p)
	if problems := h.Configure(t, sdktest.Config{Settings: `{"greting":"x"}`}); len(problems) != 1 || problems[0].KeyPath[0] != "greting" {
		t.Fatalf("problems: %+v", problems)
	}
	if problems := h.Configure(t, sdktest.Config{Settings: `{"greeting":"hi"}`}); len(problems) != 0 {
		t.Fatalf("problems: %+v", problems)
	}
	h.Start(t)
	pub := h.Publish(t, sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "x"})
	for i := 0; i < 50; i++ {
		m := shm.Meta{Kind: uint8(media.KindVideo), Codec: uint8(media.CodecH264), DTS: int64(i) * int64(time.Millisecond)}
		if i == 0 {
			m.Flags = shm.FlagSync | uint32(media.FlagKey)<<8
		}
		if err := pub.Writer.Write(m, []byte{0, 0, 0, 1, 0x65}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		n := p.packets
		p.mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.packets < 50 {
		t.Fatalf("plugin read %d packets", p.packets)
	}
	if p.publisher != "sdktestpub" {
		t.Errorf("stream event names publisher %q, want sdktestpub (the event crossed gRPC without it)", p.publisher)
	}
	resp, err := h.Plugin.ServeHTTP(context.Background(), sdkHTTP("/echo/"))
	if err != nil || string(resp.Body) != "hi" {
		t.Fatalf("route: %v %q", err, resp.Body)
	}
}

// poller reads its stream with TryRead in batches, as merged-write fan-outs
// do.
type poller struct {
	rt   *sdk.Runtime
	mu   sync.Mutex
	dts  []time.Duration
	end  error
	done chan struct{}
}

func (p *poller) Info() sdk.Info { return sdk.Info{Name: "poller", Version: "0.0.1"} }

func (p *poller) Start(_ context.Context, rt *sdk.Runtime) error { p.rt = rt; return nil }

func (p *poller) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type != sdk.StreamPublished {
		return
	}
	go func() {
		defer close(p.done)
		sub, err := p.rt.Host.Subscribe(context.Background(), sdk.ClientInfo{ID: "poller"}, ev.Stream, sdk.SubscribeOptions{Internal: true, Wait: time.Second})
		if err != nil {
			p.end = err
			return
		}
		defer sub.Close()
		for range 1000 { // 1000 batches of 10 ms at most
			for {
				pkt, ok, err := sub.TryRead()
				if err != nil {
					p.mu.Lock()
					p.end = err
					p.mu.Unlock()
					return
				}
				if !ok {
					break
				}
				p.mu.Lock()
				p.dts = append(p.dts, pkt.DTS)
				p.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

func TestTryReadDrainsInBatchesThenEOF(t *testing.T) {
	p := &poller{done: make(chan struct{})}
	h := sdktest.New(t, p)
	h.Configure(t, sdktest.Config{})
	h.Start(t)
	pub := h.Publish(t, sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "y"})
	for i := 0; i < 200; i++ {
		m := shm.Meta{Kind: uint8(media.KindVideo), Codec: uint8(media.CodecH264), DTS: int64(i) * int64(time.Millisecond)}
		if i == 0 {
			m.Flags = shm.FlagSync | uint32(media.FlagKey)<<8
		}
		if err := pub.Writer.Write(m, []byte{0, 0, 0, 1, 0x65}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	pub.End()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("poller did not see the end")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !errors.Is(p.end, io.EOF) {
		t.Fatalf("ended with %v, want io.EOF", p.end)
	}
	if len(p.dts) != 200 {
		t.Fatalf("read %d packets, want 200", len(p.dts))
	}
	for i, d := range p.dts {
		if d != time.Duration(i)*time.Millisecond {
			t.Fatalf("packet %d has dts %v", i, d)
		}
	}
}
