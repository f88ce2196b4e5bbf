// Package testpattern makes and checks the deterministic packets the test
// plugins push through the rings: every byte of a payload is derived from
// its sequence number, and the last 8 bytes are a checksum of the rest.
package testpattern

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

var table = crc64.MakeTable(crc64.ECMA)

// KeyEvery is the GOP length of the pattern: every KeyEvery-th packet is a
// keyframe.
const KeyEvery = 30

// Packet returns packet seq of size bytes (at least 16).
func Packet(seq uint64, size int) media.Packet {
	if size < 16 {
		size = 16
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, seq)
	x := seq*0x9e3779b97f4a7c15 + 1
	for i := 8; i < size-8; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	binary.BigEndian.PutUint64(b[size-8:], crc64.Checksum(b[:size-8], table))
	p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: time.Duration(seq) * 33 * time.Millisecond, Payload: b}
	p.PTS = p.DTS
	if seq%KeyEvery == 0 {
		p.Flags |= media.FlagKey
	}
	return p
}

// Check verifies a pattern packet and returns its sequence number.
func Check(p media.Packet) (uint64, error) {
	b := p.Payload
	if len(b) < 16 {
		return 0, fmt.Errorf("payload of %d bytes is too short", len(b))
	}
	seq := binary.BigEndian.Uint64(b)
	if got, want := binary.BigEndian.Uint64(b[len(b)-8:]), crc64.Checksum(b[:len(b)-8], table); got != want {
		return seq, errors.New("checksum mismatch")
	}
	want := Packet(seq, len(b))
	if string(want.Payload) != string(b) {
		return seq, errors.New("payload differs from the pattern")
	}
	if p.DTS != want.DTS || p.IsKey() != want.IsKey() {
		return seq, fmt.Errorf("packet %d: metadata differs (dts %v key %v)", seq, p.DTS, p.IsKey())
	}
	return seq, nil
}
