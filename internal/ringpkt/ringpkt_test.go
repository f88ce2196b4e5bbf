package ringpkt

import (
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/shm"
)

func TestRoundTrip(t *testing.T) {
	p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond, Payload: []byte{1, 2}}
	m := Meta(p)
	if m.Flags&shm.FlagSync != 0 {
		t.Fatalf("media flags %#x overlap the ring's sync flag", m.Flags)
	}
	got := Packet(shm.Record{Meta: m, Payload: p.Payload})
	if got.Kind != p.Kind || got.Codec != p.Codec || got.Flags != p.Flags || got.DTS != p.DTS || got.PTS != p.PTS || string(got.Payload) != string(p.Payload) {
		t.Fatalf("round trip %+v -> %+v", p, got)
	}
}
