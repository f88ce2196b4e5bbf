// Package fmp4 writes fragmented MP4 (ISO/IEC 14496-12, ISO BMFF) from
// media.Packet values: an initialization segment (ftyp + moov with mvex)
// and media fragments (moof + mdat). A file made of the init segment
// followed by fragments plays up to its last complete fragment, which is
// what a recorder needs when its process dies; the same two calls make the
// init and media segments of fMP4 HLS (RFC 8216 §3.3).
//
// The low-level API is AppendInit and AppendFragment over Track and Sample;
// Muxer adds the bookkeeping a recorder needs (sample durations from the
// next DTS, fragments cut at video key frames).
//
// Supported codecs: H.264 (avc1/avcC), H.265 (hvc1/hvcC), AV1 (av01/av1C),
// AAC (mp4a/esds, ISO/IEC 14496-14 §5.6), MP3 (mp4a, object type 0x6B) and
// Opus (Opus/dOps, "Encapsulation of Opus in ISO Base Media File Format").
package fmp4

import (
	"encoding/binary"
)

// box appends an ISO BMFF box: it reserves the 32-bit size, appends the
// type, lets body append the payload, and patches the size.
func box(dst []byte, typ string, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, typ...)
	dst = body(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst
}

// fullBox appends a FullBox (§4.2): a box with a version and 24-bit flags.
func fullBox(dst []byte, typ string, version uint8, flags uint32, body func([]byte) []byte) []byte {
	return box(dst, typ, func(b []byte) []byte {
		b = append(b, version, byte(flags>>16), byte(flags>>8), byte(flags))
		return body(b)
	})
}

func u16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func u32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func u64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func zeros(b []byte, n int) []byte {
	for range n {
		b = append(b, 0)
	}
	return b
}

// unityMatrix is the identity transformation matrix of mvhd and tkhd (§8.2.2).
var unityMatrix = []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func matrix(b []byte) []byte {
	for _, v := range unityMatrix {
		b = u32(b, v)
	}
	return b
}
