package media

import (
	"encoding/binary"
	"fmt"
)

// SplitAVCC walks a payload of NAL units with 4-byte big-endian length
// prefixes (the AVCC/HVCC layout of H.264 and H.265 packets) and calls fn with
// each NAL unit, without its prefix. The slices alias payload. fn returns
// false to stop early; fn may be nil to only validate the layout.
//
// SplitAVCC returns an error wrapping [ErrMalformed] for a truncated length
// prefix, a length that runs past the end of payload, or a zero-length NAL
// unit. It walks the payload as it goes, so fn may already have been called
// for the NAL units before the malformed one. An empty payload holds no NAL
// units and is not an error. SplitAVCC does not allocate.
func SplitAVCC(payload []byte, fn func(nalu []byte) bool) error {
	for i, off := 0, 0; off < len(payload); i++ {
		rest := payload[off:]
		if len(rest) < 4 {
			return fmt.Errorf("nalu %d at offset %d: %d-byte length prefix is cut short, want 4: %w",
				i, off, len(rest), ErrMalformed)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if n == 0 {
			return fmt.Errorf("nalu %d at offset %d: zero length: %w", i, off, ErrMalformed)
		}
		if uint64(n) > uint64(len(rest)) {
			return fmt.Errorf("nalu %d at offset %d: length %d exceeds the %d bytes left: %w",
				i, off, n, len(rest), ErrMalformed)
		}
		if fn != nil && !fn(rest[:n]) {
			return nil
		}
		off += 4 + int(n)
	}
	return nil
}
