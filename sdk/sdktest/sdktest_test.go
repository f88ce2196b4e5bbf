package sdktest_test

import (
	"context"
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
	rt      *sdk.Runtime
	mu      sync.Mutex
	packets int
	greet   string
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
	resp, err := h.Plugin.ServeHTTP(context.Background(), sdkHTTP("/echo/"))
	if err != nil || string(resp.Body) != "hi" {
		t.Fatalf("route: %v %q", err, resp.Body)
	}
}
