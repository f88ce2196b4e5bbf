// Package flvmux writes FLV files and HTTP-FLV streams (Adobe FLV v10.1
// Annex E) from media.Packet values. Tag bodies come from internal/flv,
// which validates every packet; this package adds the file header, the
// 11-byte tag headers and the PreviousTagSize fields.
package flvmux

import (
	"encoding/binary"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// HeaderSize is the size of the FLV file header plus PreviousTagSize0.
const HeaderSize = 13

// TagHeaderSize is the size of an FLV tag header; every tag is followed by
// a 4-byte PreviousTagSize.
const TagHeaderSize = 11

// AppendHeader appends the FLV file header (§E.2) and PreviousTagSize0.
func AppendHeader(dst []byte, hasAudio, hasVideo bool) []byte {
	var flags byte
	if hasAudio {
		flags |= 0x04
	}
	if hasVideo {
		flags |= 0x01
	}
	return append(dst, 'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0)
}

// Options tune AppendTag.
type Options struct {
	// LegacyHEVC writes H.265 with the non-standard codec id 12 (for
	// players that predate Enhanced RTMP) instead of Enhanced RTMP tags.
	LegacyHEVC bool
}

// AppendTag appends the complete FLV tag for p (header, body,
// PreviousTagSize) to dst. Script data loses a leading "@setDataFrame", as
// players expect "onMetaData" first. On error dst is returned unchanged:
// the errors are internal/flv's (ErrMalformed, ErrUnsupportedCodec).
func AppendTag(dst []byte, p media.Packet, o Options) ([]byte, error) {
	if p.Kind == media.KindData {
		p.Payload = flv.StripSetDataFrame(p.Payload)
	}
	start := len(dst)
	out := append(dst, make([]byte, TagHeaderSize)...)
	var (
		tagType uint8
		ts      uint32
		err     error
	)
	if o.LegacyHEVC {
		out, tagType, ts, err = flv.AppendTagLegacyHEVC(out, p)
	} else {
		out, tagType, ts, err = flv.AppendTag(out, p)
	}
	if err != nil {
		return dst[:start], err
	}
	size := len(out) - start - TagHeaderSize
	h := out[start : start+TagHeaderSize]
	h[0] = tagType
	h[1], h[2], h[3] = byte(size>>16), byte(size>>8), byte(size)
	h[4], h[5], h[6], h[7] = byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24)
	h[8], h[9], h[10] = 0, 0, 0 // stream id
	return binary.BigEndian.AppendUint32(out, uint32(size+TagHeaderSize)), nil
}
