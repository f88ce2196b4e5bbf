package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The binary packet form, used to store and replay packets in files and
// tests. All integers are big-endian:
//
//	version u8 (= BinaryVersion)
//	kind    u8
//	codec   u8
//	flags   u32
//	dts     i64 nanoseconds
//	pts     i64 nanoseconds
//	length  u32 (<= MaxPayloadSize)
//	payload [length]byte
const (
	// BinaryVersion is the version byte this package writes and the only one
	// it reads.
	BinaryVersion = 1
	// BinaryHeaderSize is the size of the fixed header before the payload.
	BinaryHeaderSize = 1 + 1 + 1 + 4 + 8 + 8 + 4
	// MaxPayloadSize is the largest payload the binary form carries (64 MiB).
	MaxPayloadSize = 64 << 20
)

var (
	// ErrUnsupportedVersion is returned when a binary packet has a version
	// byte other than BinaryVersion.
	ErrUnsupportedVersion = errors.New("media: unsupported binary packet version")
	// ErrTooLarge is returned for a payload larger than MaxPayloadSize.
	ErrTooLarge = errors.New("media: payload too large")
)

// Compile-time checks that Packet implements the standard interfaces.
var (
	_ interface {
		AppendBinary([]byte) ([]byte, error)
		MarshalBinary() ([]byte, error)
	} = Packet{}
	_ interface{ UnmarshalBinary([]byte) error } = (*Packet)(nil)
)

// AppendBinary appends the binary form of p to dst and returns the extended
// slice; it implements encoding.BinaryAppender. It fails only with
// [ErrTooLarge], leaving dst unchanged, when the payload exceeds
// MaxPayloadSize. Kind, codec and flags are written as they are, without
// validation.
func (p Packet) AppendBinary(dst []byte) ([]byte, error) {
	if len(p.Payload) > MaxPayloadSize {
		return dst, fmt.Errorf("append binary packet: %d bytes: %w", len(p.Payload), ErrTooLarge)
	}
	var h [BinaryHeaderSize]byte
	h[0] = BinaryVersion
	h[1] = byte(p.Kind)
	h[2] = byte(p.Codec)
	binary.BigEndian.PutUint32(h[3:], uint32(p.Flags))
	binary.BigEndian.PutUint64(h[7:], uint64(p.DTS))
	binary.BigEndian.PutUint64(h[15:], uint64(p.PTS))
	binary.BigEndian.PutUint32(h[23:], uint32(len(p.Payload)))
	dst = append(dst, h[:]...)
	return append(dst, p.Payload...), nil
}

// MarshalBinary returns the binary form of p in a new slice; it implements
// encoding.BinaryMarshaler.
func (p Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, BinaryHeaderSize+len(p.Payload)))
}

// UnmarshalBinary decodes exactly one binary packet filling all of b; it
// implements encoding.BinaryUnmarshaler. The payload is copied, so b may be
// reused afterwards. It returns an error wrapping [ErrUnsupportedVersion],
// [ErrTooLarge] or [ErrMalformed] (short buffer, length past the end,
// trailing bytes) and never panics; on error p is left unchanged. Like
// AppendBinary it does not validate kind, codec or flags: the form stores
// packets, their meaning is for the consumer to check.
func (p *Packet) UnmarshalBinary(b []byte) error {
	q, n, err := decodeBinary(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("binary packet: %d trailing bytes: %w", len(b)-n, ErrMalformed)
	}
	q.Payload = append([]byte(nil), q.Payload...)
	*p = q
	return nil
}

// ConsumeBinary decodes the binary packet at the start of b and returns how
// many bytes it used, leaving what follows (the next packet of a file, say)
// to the caller. Unlike UnmarshalBinary, the payload aliases b: the caller
// must keep b unchanged while it uses p, or Clone p. Errors are those of
// UnmarshalBinary except that trailing bytes are not an error; on error p is
// left unchanged and n is 0.
func (p *Packet) ConsumeBinary(b []byte) (n int, err error) {
	q, n, err := decodeBinary(b)
	if err != nil {
		return 0, err
	}
	*p = q
	return n, nil
}

func decodeBinary(b []byte) (Packet, int, error) {
	if len(b) < 1 {
		return Packet{}, 0, fmt.Errorf("binary packet: empty: %w", ErrMalformed)
	}
	if b[0] != BinaryVersion {
		return Packet{}, 0, fmt.Errorf("binary packet: version %d: %w", b[0], ErrUnsupportedVersion)
	}
	if len(b) < BinaryHeaderSize {
		return Packet{}, 0, fmt.Errorf("binary packet: header is %d bytes, want %d: %w",
			len(b), BinaryHeaderSize, ErrMalformed)
	}
	n := binary.BigEndian.Uint32(b[23:])
	if n > MaxPayloadSize {
		return Packet{}, 0, fmt.Errorf("binary packet: payload length %d: %w", n, ErrTooLarge)
	}
	if left := len(b) - BinaryHeaderSize; uint64(n) > uint64(left) {
		return Packet{}, 0, fmt.Errorf("binary packet: payload length %d exceeds the %d bytes left: %w",
			n, left, ErrMalformed)
	}
	end := BinaryHeaderSize + int(n)
	return Packet{
		Kind:    Kind(b[1]),
		Codec:   Codec(b[2]),
		Flags:   Flags(binary.BigEndian.Uint32(b[3:])),
		DTS:     time.Duration(binary.BigEndian.Uint64(b[7:])),
		PTS:     time.Duration(binary.BigEndian.Uint64(b[15:])),
		Payload: b[BinaryHeaderSize:end:end],
	}, end, nil
}
