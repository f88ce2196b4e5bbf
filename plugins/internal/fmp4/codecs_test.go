package fmp4

import (
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

func TestCodecString(t *testing.T) {
	for _, c := range []struct {
		name  string
		codec media.Codec
		cfg   []byte
		want  string
	}{
		{"h264 high 3.1", media.CodecH264, []byte{1, 0x64, 0x00, 0x1f, 0xff}, "avc1.64001f"},
		{"h264 baseline 3.0", media.CodecH264, []byte{1, 0x42, 0xc0, 0x1e}, "avc1.42c01e"},
		// Main profile, compat flags 0x60000000, level 93, constraint 0x90.
		{"h265 main", media.CodecH265, []byte{1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93}, "hvc1.1.6.L93.90"},
		{"h265 main10 high tier", media.CodecH265, []byte{1, 0x22, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 120}, "hvc1.2.4.H120"},
		{"aac lc", media.CodecAAC, []byte{0x12, 0x10}, "mp4a.40.2"},
		{"he-aac", media.CodecAAC, []byte{0x2b, 0x92}, "mp4a.40.5"},
		{"opus", media.CodecOpus, nil, "opus"},
		{"short avcC", media.CodecH264, []byte{1, 2}, ""},
		{"short hvcC", media.CodecH265, []byte{1, 2, 3}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := (Track{Codec: c.codec, Config: c.cfg}).CodecString(); got != c.want {
				t.Errorf("CodecString() = %q, want %q", got, c.want)
			}
		})
	}
}
