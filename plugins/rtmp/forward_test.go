package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
)

// forwardConfig is a configuration whose default vhost forwards to dests.
func forwardConfig(t *testing.T, dests ...string) sdk.Config {
	t.Helper()
	blocks := map[string]json.RawMessage{}
	if len(dests) > 0 {
		b, err := json.Marshal(map[string]any{"destination": dests})
		if err != nil {
			t.Fatal(err)
		}
		blocks["forward"] = b
	}
	return sdk.Config{Vhosts: []sdk.VhostConfig{{
		Name: defaultVhost, Enabled: true,
		Vhost: sdk.VhostSettings{GopCache: true, Blocks: blocks},
	}}}
}

type forwardRun struct {
	f   *forwarder
	ctx context.Context
}

// TestForwardFollowsReload checks that a reload starts the forward of a
// stream already live, changes its destinations in place, and stops it.
func TestForwardFollowsReload(t *testing.T) {
	s := newServer()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { s.cancel(); s.wg.Wait() })
	runs := make(chan forwardRun, 8)
	s.fwd.run = func(ctx context.Context, f *forwarder) {
		runs <- forwardRun{f, ctx}
		<-ctx.Done()
	}
	ctx := context.Background()
	configure := func(dests ...string) {
		t.Helper()
		if err := s.Configure(ctx, forwardConfig(t, dests...)); err != nil {
			t.Fatal(err)
		}
	}
	nextRun := func() forwardRun {
		t.Helper()
		select {
		case r := <-runs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no forward started")
			return forwardRun{}
		}
	}
	waitDone := func(r forwardRun) {
		t.Helper()
		select {
		case <-r.ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("forward not stopped")
		}
	}
	running := func() int {
		s.fwd.mu.Lock()
		defer s.fwd.mu.Unlock()
		return len(s.fwd.byKey)
	}
	ref := sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "cam"}

	configure()
	s.StreamEvent(ctx, sdk.StreamEvent{Type: sdk.StreamPublished, Stream: ref, StreamID: "s1"})
	if n := running(); n != 0 {
		t.Fatalf("%d forwards without a forward block", n)
	}

	configure("127.0.0.1:1")
	r := nextRun()
	if r.f.ref != ref || r.f.id != "s1" {
		t.Fatalf("forward of %+v %q, want %+v s1", r.f.ref, r.f.id, ref)
	}
	if got, want := r.f.wanted(), [][]string{{"127.0.0.1:1"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("destinations %v, want %v", got, want)
	}

	// Another destination: the same forwarder gets the new list.
	configure("127.0.0.1:1", "127.0.0.1:2")
	if got, want := r.f.wanted(), [][]string{{"127.0.0.1:1"}, {"127.0.0.1:2"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("destinations %v, want %v", got, want)
	}
	if r.ctx.Err() != nil || running() != 1 {
		t.Fatalf("forwarder replaced instead of changed (stopped: %v, running %d)", r.ctx.Err(), running())
	}
	select {
	case <-r.f.changed:
	default:
		t.Fatal("forwarder not told of the change")
	}

	// No forward block: the forward stops.
	configure()
	waitDone(r)
	if n := running(); n != 0 {
		t.Fatalf("%d forwards after the forward block was removed", n)
	}

	// Back again, then the stream ends: stopped and forgotten.
	configure("127.0.0.1:1")
	r = nextRun()
	s.StreamEvent(ctx, sdk.StreamEvent{Type: sdk.StreamUnpublished, Stream: ref, StreamID: "s1"})
	waitDone(r)
	configure("127.0.0.1:3")
	if n := running(); n != 0 {
		t.Fatalf("%d forwards for an unpublished stream", n)
	}

	// A republish has a new stream id: a new forward.
	s.StreamEvent(ctx, sdk.StreamEvent{Type: sdk.StreamPublished, Stream: ref, StreamID: "s2"})
	r = nextRun()
	if r.f.id != "s2" {
		t.Fatalf("forward of publication %q, want s2", r.f.id)
	}
}

// TestForwardEndedStreamIsForgotten: a forward that ends with its stream
// (before the core's unpublish event) is not started again by a reload.
func TestForwardEndedStreamIsForgotten(t *testing.T) {
	s := newServer()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(func() { s.cancel(); s.wg.Wait() })
	ended := make(chan struct{}, 4)
	s.fwd.run = func(context.Context, *forwarder) { ended <- struct{}{} } // end of stream at once
	ctx := context.Background()
	if err := s.Configure(ctx, forwardConfig(t, "127.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	s.StreamEvent(ctx, sdk.StreamEvent{Type: sdk.StreamPublished, Stream: sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "x"}, StreamID: "s1"})
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("forward did not run")
	}
	// The goroutine forgets the stream after run returns: poll, bounded.
	for i := 0; ; i++ {
		s.fwd.mu.Lock()
		n := len(s.fwd.live) + len(s.fwd.byKey)
		s.fwd.mu.Unlock()
		if n == 0 {
			break
		}
		if i == 1000 {
			t.Fatalf("ended stream still known: %d entries", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Configure(ctx, forwardConfig(t, "127.0.0.1:2")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
		t.Fatal("a reload started the forward of an ended stream")
	default:
	}
}

func TestPushersApply(t *testing.T) {
	ps := &pushers{ref: sdk.StreamRef{Vhost: "live.example.com", App: "live", Stream: "cam"}, log: hclog.NewNullLogger(), byID: map[string]*pusher{}}
	added, removed := ps.apply([][]string{{"10.0.0.1:1935"}, {"10.0.0.2:1935", "10.0.0.3:1935"}})
	if fmt.Sprint(added, removed) != "[10.0.0.1:1935 10.0.0.2:1935|10.0.0.3:1935] []" {
		t.Fatalf("added %v removed %v", added, removed)
	}
	first := ps.byID["10.0.0.1:1935"]
	if want := []string{"rtmp://10.0.0.1:1935/live/cam?vhost=live.example.com"}; !reflect.DeepEqual(first.urls, want) {
		t.Fatalf("urls %v, want %v", first.urls, want)
	}
	if first.hdr != &ps.hdr {
		t.Fatal("a destination does not share the stream's sequence headers")
	}
	added, removed = ps.apply([][]string{{"10.0.0.1:1935"}, {"10.0.0.4:1935"}})
	if fmt.Sprint(added, removed) != "[10.0.0.4:1935] [10.0.0.2:1935|10.0.0.3:1935]" {
		t.Fatalf("added %v removed %v", added, removed)
	}
	if ps.byID["10.0.0.1:1935"] != first {
		t.Fatal("an unchanged destination was replaced")
	}
	if len(ps.byID) != 2 {
		t.Fatalf("%d destinations, want 2", len(ps.byID))
	}
	added, removed = ps.apply(nil)
	if len(added) != 0 || len(removed) != 2 || len(ps.byID) != 0 {
		t.Fatalf("added %v removed %v left %d", added, removed, len(ps.byID))
	}
}
