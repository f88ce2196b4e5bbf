package main

import (
	"encoding/binary"
	"testing"

	"github.com/rill-media/rill/bench/replay"
)

// TestRTSPPlayerAssemblesAccessUnits: lal hands the player one NAL unit
// at a time; SEI before the slice and filler after it must not be counted
// as frames, and the frame must still be recognised.
func TestRTSPPlayerAssemblesAccessUnits(t *testing.T) {
	f := testFLV(t, 40)
	var frames, unknown, other int
	p := &rtspPlayer{auTS: -1, onMessage: func(typ uint8, payload []byte) {
		if typ != replay.TagVideo {
			return
		}
		if payload[1] != 1 {
			other++
			return
		}
		if _, ok := f.Identify(payload); ok {
			frames++
		} else {
			unknown++
		}
	}}
	avcc := func(nal []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(nal))), nal...) }
	n := 0
	for _, tag := range f.Tags {
		if !tag.Frame {
			continue
		}
		n++
		ts := int64(tag.TS)
		p.onNAL(ts, avcc([]byte{0x06, 0x05, 0x01, 0x80}))       // SEI
		p.onNAL(ts, tag.Payload[5:])                            // the slice (the file's one NAL unit)
		p.onNAL(ts, avcc([]byte{0x0c, 0xff, 0xff, 0xff, 0x80})) // filler
	}
	if frames != n || unknown != 0 || other != n {
		t.Fatalf("%d frames recognised, %d unknown, %d continuation packets; want %d, 0, %d", frames, unknown, other, n, n)
	}
}
