package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

type events struct {
	mu  sync.Mutex
	evs []wire.StreamEvent
}

func (e *events) add(ev wire.StreamEvent) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }
func (e *events) types() []wire.StreamEventType {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []wire.StreamEventType
	for _, ev := range e.evs {
		out = append(out, ev.Type)
	}
	return out
}

func newTestHub(t *testing.T) (*Hub, *events, *Instance) {
	t.Helper()
	inst, _, err := NewInstance(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Close() })
	ev := &events{}
	pol := &Policy{Vhosts: map[string]*VhostPolicy{
		DefaultVhost:       {GopCache: true, Ring: shm.Options{DataSize: 256 << 10, Slots: 256}, Plugins: map[string]bool{"rtmp": true, "hls": true}},
		"live.example.com": {GopCache: false, Ring: shm.Options{DataSize: 256 << 10, Slots: 256}, Plugins: map[string]bool{"rtmp": true, "hls": false}},
	}}
	h := New(inst, pol, hclog.NewNullLogger(), ev.add)
	t.Cleanup(h.Close)
	return h, ev, inst
}

func ref(vhost, app, stream string) wire.StreamRef {
	return wire.StreamRef{Vhost: vhost, App: app, Stream: stream}
}

func TestPublishSubscribe(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	pub, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Client: wire.ClientInfo{ID: "c1"}, Stream: ref("unknown.host", "live", "s")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pub.Ring); err != nil {
		t.Fatalf("ring file: %v", err)
	}
	sub, err := h.Subscribe(ctx, "hls", wire.SubscribeRequest{Client: wire.ClientInfo{ID: "c2"}, Stream: ref("other.host", "live", "s")})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Ring != pub.Ring || sub.StreamID != pub.StreamID || !sub.GopCache {
		t.Fatalf("subscription %+v does not match publication %+v", sub, pub)
	}
	ss := h.Streams()
	if len(ss) != 1 || !ss[0].Active || ss[0].Clients != 1 || ss[0].Ref.Vhost != DefaultVhost || ss[0].Publisher.ID != "c1" {
		t.Fatalf("streams: %+v", ss)
	}
	if err := h.Unpublish("hls", pub.PublicationID); !errors.Is(err, wire.ErrForbidden) {
		t.Fatalf("unpublish by another plugin: %v", err)
	}
	if err := h.Unpublish("rtmp", pub.PublicationID); err != nil {
		t.Fatal(err)
	}
	seg, err := shm.Open(pub.Ring, false)
	if err == nil {
		if !seg.Ring.Ended() {
			t.Fatal("ring not ended after unpublish")
		}
		seg.Close()
	}
	if got := ev.types(); len(got) != 2 || got[0] != wire.StreamPublished || got[1] != wire.StreamUnpublished {
		t.Fatalf("events: %v", got)
	}
	if ss := h.Streams(); len(ss) != 1 || ss[0].Active {
		t.Fatalf("an unpublished stream stays listed inactive, as in SRS: %+v", ss)
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	h, _, _ := newTestHub(t)
	ctx := context.Background()
	first, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Client: wire.ClientInfo{ID: "a"}, Stream: ref(DefaultVhost, "live", "s")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Publish(ctx, "rtmp", wire.PublishRequest{Client: wire.ClientInfo{ID: "b"}, Stream: ref(DefaultVhost, "live", "s")})
	if !errors.Is(err, wire.ErrStreamBusy) {
		t.Fatalf("second publisher: %v", err)
	}
	ss := h.Streams()
	if len(ss) != 1 || ss[0].Publisher.ID != "a" {
		t.Fatalf("first publisher disturbed: %+v", ss)
	}
	if err := h.Unpublish("rtmp", first.PublicationID); err != nil {
		t.Fatal(err)
	}
	again, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Client: wire.ClientInfo{ID: "b"}, Stream: ref(DefaultVhost, "live", "s")})
	if err != nil {
		t.Fatalf("republish after unpublish: %v", err)
	}
	if again.Ring == first.Ring {
		t.Fatal("a republish gets a fresh ring")
	}
}

func TestSubscriberWaitsForPublisher(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	got := make(chan error, 1)
	go func() {
		_, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "late"), Wait: 5 * time.Second})
		got <- err
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(ev.types()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if tt := ev.types(); len(tt) == 0 || tt[0] != wire.StreamWanted {
		t.Fatalf("a waiting player makes the stream wanted: %v", tt)
	}
	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "late")}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiting subscriber: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting subscriber not released by the publisher")
	}
}

// TestWantedAgainAfterUnwanted: a player that joins an on-demand stream
// after its last player left makes it wanted again (its source must not
// stop it), and leaving makes it unwanted again; a stream nobody waited
// for sends neither.
func TestWantedAgainAfterUnwanted(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	got := make(chan wire.Subscription, 1)
	go func() {
		sb, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "od"), Wait: 5 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- sb
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(ev.types()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "od")}); err != nil {
		t.Fatal(err)
	}
	first := <-got
	if err := h.Unsubscribe("rtmp", first.SubscriptionID); err != nil {
		t.Fatal(err)
	}
	second, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "od")})
	if err != nil {
		t.Fatal(err)
	}
	internal, err := h.Subscribe(ctx, "hls", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "od"), Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Unsubscribe("rtmp", second.SubscriptionID); err != nil {
		t.Fatal(err)
	}
	_ = h.Unsubscribe("hls", internal.SubscriptionID)
	var tt []wire.StreamEventType
	for _, x := range ev.types() {
		if x == wire.StreamWanted || x == wire.StreamUnwanted {
			tt = append(tt, x)
		}
	}
	want := []wire.StreamEventType{wire.StreamWanted, wire.StreamUnwanted, wire.StreamWanted, wire.StreamUnwanted}
	if fmt.Sprint(tt) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", tt, want)
	}

	// A stream published before anyone waited: no wanted/unwanted events.
	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "plain")}); err != nil {
		t.Fatal(err)
	}
	n := len(ev.types())
	sb, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "plain")})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Unsubscribe("rtmp", sb.SubscriptionID)
	for _, x := range ev.types()[n:] {
		if x == wire.StreamWanted || x == wire.StreamUnwanted {
			t.Fatalf("a plain stream got %v", x)
		}
	}
}

// An on-demand source lingers after StreamUnwanted (an edge pulls on for
// edge_idle): a player that comes meanwhile finds the stream published and
// wants it again, so the source goes on; a stream published by a plain
// publisher, never wanted, gets no StreamWanted from its players.
func TestPlayerWantsALingeringStreamAgain(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	wait := make(chan wire.Subscription, 1)
	go func() {
		sub, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "e"), Wait: 5 * time.Second})
		if err != nil {
			t.Error(err)
		}
		wait <- sub
	}()
	deadline := time.Now().Add(2 * time.Second)
	for len(ev.types()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "e")}); err != nil {
		t.Fatal(err)
	}
	first := <-wait
	if err := h.Unsubscribe("rtmp", first.SubscriptionID); err != nil {
		t.Fatal(err)
	}
	second, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "e"), Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Unsubscribe("rtmp", second.SubscriptionID); err != nil {
		t.Fatal(err)
	}
	want := []wire.StreamEventType{wire.StreamWanted, wire.StreamPublished, wire.StreamUnwanted, wire.StreamWanted, wire.StreamUnwanted}
	if tt := ev.types(); fmt.Sprint(tt) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", tt, want)
	}

	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "plain")}); err != nil {
		t.Fatal(err)
	}
	n := len(ev.types())
	sub, err := h.Subscribe(ctx, "rtmp", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "plain"), Wait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Unsubscribe("rtmp", sub.SubscriptionID)
	for _, tt := range ev.types()[n:] {
		if tt == wire.StreamWanted || tt == wire.StreamUnwanted {
			t.Fatalf("players of a stream nobody wanted: events %v", ev.types()[n:])
		}
	}
}

func TestSubscribeTimeoutAndErrors(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	cases := []struct {
		name string
		plug string
		ref  wire.StreamRef
		wait time.Duration
		want error
	}{
		{"not published", "rtmp", ref(DefaultVhost, "live", "none"), 0, wire.ErrNotFound},
		{"timeout", "rtmp", ref(DefaultVhost, "live", "none"), 100 * time.Millisecond, wire.ErrTimeout},
		{"traversal stream", "rtmp", ref(DefaultVhost, "live", ".."), 0, wire.ErrInvalid},
		{"slash in stream", "rtmp", ref(DefaultVhost, "live", "a/b"), 0, wire.ErrInvalid},
		{"traversal app", "rtmp", ref(DefaultVhost, "../etc", "x"), 0, wire.ErrInvalid},
		{"empty app", "rtmp", ref(DefaultVhost, "", "x"), 0, wire.ErrInvalid},
		{"plugin disabled in vhost", "hls", ref("live.example.com", "live", "x"), 0, wire.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Subscribe(ctx, tc.plug, wire.SubscribeRequest{Stream: tc.ref, Wait: tc.wait})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if tt := ev.types(); len(tt) != 2 || tt[0] != wire.StreamWanted || tt[1] != wire.StreamUnwanted {
		t.Fatalf("a player that gave up makes the stream unwanted: %v", tt)
	}
	if ss := h.Streams(); len(ss) != 0 {
		t.Fatalf("streams nobody published are forgotten: %+v", ss)
	}
}

func TestPluginGoneEndsItsStreams(t *testing.T) {
	h, ev, _ := newTestHub(t)
	ctx := context.Background()
	pub, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "s")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(ctx, "hls", wire.SubscribeRequest{Stream: ref(DefaultVhost, "live", "s"), Internal: true}); err != nil {
		t.Fatal(err)
	}
	seg, err := shm.Open(pub.Ring, false)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	h.PluginGone("rtmp")
	if !seg.Ring.Ended() {
		t.Fatal("the ring of a dead publisher plugin must be ended")
	}
	if tt := ev.types(); tt[len(tt)-1] != wire.StreamUnpublished {
		t.Fatalf("events: %v", tt)
	}
	if _, err := h.Publish(ctx, "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "s")}); err != nil {
		t.Fatalf("publish after the plugin restarted: %v", err)
	}
	h.PluginGone("hls")
	if ss := h.Streams(); ss[0].Clients != 0 {
		t.Fatalf("subscriptions of a dead plugin are dropped: %+v", ss)
	}
}

func TestCloseRemovesRings(t *testing.T) {
	h, _, inst := newTestHub(t)
	if _, err := h.Publish(context.Background(), "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "s")}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	m, _ := filepath.Glob(filepath.Join(inst.Dir, "rill-"+inst.ID+"-s*"))
	if len(m) != 0 {
		t.Fatalf("rings left after Close: %v", m)
	}
	if _, err := h.Publish(context.Background(), "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "t")}); !errors.Is(err, wire.ErrUnavailable) {
		t.Fatalf("publish after close: %v", err)
	}
}

func TestInstanceSweepsOnlyDeadCores(t *testing.T) {
	dir := t.TempDir()
	live, _, err := NewInstance(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveRing := live.Path("s1-1")
	deadRing := filepath.Join(dir, "rill-deadbeef-s1-1")
	deadBell := filepath.Join(dir, "rill-deadbeef-bell-123")
	orphan := filepath.Join(dir, "rill-0badf00d-s9-1") // no lock file at all
	other := filepath.Join(dir, "unrelated")
	for _, p := range []string{liveRing, deadRing, deadBell, orphan, other, filepath.Join(dir, "rill-deadbeef.lock")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second, removed, err := NewInstance(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if len(removed) != 4 {
		t.Fatalf("removed %v", removed)
	}
	for _, p := range []string{liveRing, other} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s of a live core or not ours must stay: %v", p, err)
		}
	}
	for _, p := range []string{deadRing, deadBell, orphan} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s must be swept", p)
		}
	}
}

func TestUnpublishedStreamForgotten(t *testing.T) {
	old := forgetAfter
	forgetAfter = 50 * time.Millisecond
	defer func() { forgetAfter = old }()
	h, _, _ := newTestHub(t)
	pub, err := h.Publish(context.Background(), "rtmp", wire.PublishRequest{Stream: ref(DefaultVhost, "live", "once")})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Unpublish("rtmp", pub.PublicationID); err != nil {
		t.Fatal(err)
	}
	if len(h.Streams()) != 1 {
		t.Fatal("an unpublished stream stays listed for a while")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.Streams()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(h.Streams()); n != 0 {
		t.Fatalf("%d streams still listed", n)
	}
}
