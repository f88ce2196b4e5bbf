package main

import (
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

func TestPLILimiter(t *testing.T) {
	var l pliLimiter
	t0 := time.Unix(1000, 0)
	for i, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {100 * time.Millisecond, false}, {499 * time.Millisecond, false}, {500 * time.Millisecond, true}, {600 * time.Millisecond, false}, {2 * time.Second, true}} {
		if got := l.allow(t0.Add(c.at), minPLIInterval); got != c.want {
			t.Fatalf("step %d at %v: allow = %v, want %v", i, c.at, got, c.want)
		}
	}
}

func TestVPxKey(t *testing.T) {
	for _, c := range []struct {
		name  string
		codec media.Codec
		frame []byte
		want  bool
	}{
		{"vp8 key", media.CodecVP8, []byte{0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a}, true},
		{"vp8 inter", media.CodecVP8, []byte{0x51, 0x2d}, false},
		{"vp9 profile 0 key", media.CodecVP9, []byte{0x82, 0x49, 0x83, 0x42}, true},
		{"vp9 profile 0 inter", media.CodecVP9, []byte{0x86}, false},
		{"vp9 show existing", media.CodecVP9, []byte{0x88}, false},
		{"vp9 profile 1 key", media.CodecVP9, []byte{0xa2}, true},
		{"vp9 bad marker", media.CodecVP9, []byte{0x02}, false},
		{"empty", media.CodecVP8, nil, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := vpxKey(c.codec, c.frame); got != c.want {
				t.Fatalf("vpxKey(%x) = %v", c.frame, got)
			}
		})
	}
}
