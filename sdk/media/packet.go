package media

import (
	"bytes"
	"errors"
	"strconv"
	"time"
)

// ErrMalformed is returned (wrapped, with the details) for structurally
// invalid input: truncated buffers, lengths that run past the end, trailing
// bytes, zero-length NAL units.
var ErrMalformed = errors.New("media: malformed data")

// Packet is one access unit of an elementary stream.
//
// A Packet is a small value: copying it copies the Payload slice header, not
// the bytes. Unless documented otherwise, a Packet does not own its Payload:
// the producer may reuse the bytes once the call that handed the packet over
// returns, so a consumer that keeps a packet (queues it, caches a
// configuration record) must call [Packet.Clone] first.
type Packet struct {
	Kind  Kind
	Codec Codec
	Flags Flags
	// DTS is the decoding timestamp and PTS the presentation timestamp, on
	// the stream's own timeline (not wall clock). For audio and data
	// PTS == DTS. They may be negative only transiently, while a producer
	// sorts out its timeline.
	DTS time.Duration
	PTS time.Duration
	// Payload is the coded data; its layout depends on Codec and Flags (see
	// the package documentation).
	Payload []byte
}

// IsKey reports whether FlagKey is set.
func (p Packet) IsKey() bool { return p.Flags&FlagKey != 0 }

// IsConfig reports whether FlagConfig is set.
func (p Packet) IsConfig() bool { return p.Flags&FlagConfig != 0 }

// Clone returns a copy of p that owns a fresh copy of the payload. A nil
// payload stays nil.
func (p Packet) Clone() Packet {
	p.Payload = bytes.Clone(p.Payload)
	return p
}

// String returns a one-line summary for logs, such as
// "video H264 key dts=1.5s pts=1.54s size=1234"; it does not print the
// payload.
func (p Packet) String() string {
	b := make([]byte, 0, 64)
	b = append(b, p.Kind.String()...)
	b = append(b, ' ')
	b = append(b, p.Codec.String()...)
	if p.Flags != 0 {
		b = append(b, ' ')
		b = append(b, p.Flags.String()...)
	}
	b = append(b, " dts="...)
	b = append(b, p.DTS.String()...)
	b = append(b, " pts="...)
	b = append(b, p.PTS.String()...)
	b = append(b, " size="...)
	b = strconv.AppendInt(b, int64(len(p.Payload)), 10)
	return string(b)
}
