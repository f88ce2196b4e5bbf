package hub

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/rill-media/rill/sdk/wire"
)

// recordingGate refuses while refuse is set and records the stream ids it is given.
type recordingGate struct {
	mu     sync.Mutex
	refuse bool
	ids    []string
}

var errNo = errors.New("no")

func (g *recordingGate) AllowPublish(_ context.Context, _ wire.ClientInfo, _ wire.StreamRef, streamID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ids = append(g.ids, streamID)
	if g.refuse {
		return errNo
	}
	return nil
}

func (g *recordingGate) Unpublished(wire.ClientInfo, wire.StreamRef, string) {}

func TestGateGetsTheStreamID(t *testing.T) {
	h, _, _ := newTestHub(t)
	g := &recordingGate{refuse: true}
	h.SetGate(g)
	ctx := context.Background()
	req := wire.PublishRequest{Client: wire.ClientInfo{ID: "c1"}, Stream: ref(DefaultVhost, "live", "s")}
	if _, err := h.Publish(ctx, "rtmp", req); !errors.Is(err, errNo) {
		t.Fatalf("refused publish: %v", err)
	}
	if n := len(h.Streams()); n != 0 {
		t.Fatalf("a refused first publish left %d streams listed", n)
	}
	g.mu.Lock()
	g.refuse = false
	g.mu.Unlock()
	pub, err := h.Publish(ctx, "rtmp", req)
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	ids := append([]string(nil), g.ids...)
	g.mu.Unlock()
	if len(ids) != 2 || ids[0] == "" || ids[1] != pub.StreamID {
		t.Fatalf("gate saw stream ids %v, publication %s", ids, pub.StreamID)
	}
	if err := h.Unpublish("rtmp", pub.PublicationID); err != nil {
		t.Fatal(err)
	}
	for _, si := range h.Streams() {
		if si.ID == pub.StreamID && (si.LastPublisher == nil || si.LastPublisher.ID != "c1") {
			t.Fatalf("unpublished stream forgets its publisher: %+v", si)
		}
	}
}
