package fmp4

import (
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

// FuzzNewTrack feeds arbitrary configuration records (they come from the
// network through the publisher) to NewTrack: it never panics, and a track
// it accepts always makes an init segment that parses.
func FuzzNewTrack(f *testing.F) {
	f.Add(uint8(media.CodecH264), []byte{1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 1, 0x68})
	f.Add(uint8(media.CodecAAC), []byte{0x12, 0x10})
	f.Add(uint8(media.CodecOpus), []byte("OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"))
	f.Add(uint8(media.CodecOpus), []byte("OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x01\x02\x01\x00\x01"))
	f.Add(uint8(media.CodecH265), []byte{1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0})
	f.Fuzz(func(t *testing.T, codec uint8, payload []byte) {
		c := media.Codec(codec)
		tr, err := NewTrack(1, media.Packet{Kind: c.Kind(), Codec: c, Flags: media.FlagConfig, Payload: payload})
		if err != nil {
			return
		}
		b, err := AppendInit(nil, []Track{tr})
		if err != nil {
			t.Fatalf("accepted track %+v makes no init segment: %v", tr, err)
		}
		parseBoxes(t, b)
	})
}
