package flv

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/rill-media/rill/sdk/media"
)

// checkPayload validates a packet payload for codec, as FromTag produces and
// AppendTag accepts them. It does not allocate on success.
func checkPayload(codec media.Codec, config bool, payload []byte) error {
	if len(payload) == 0 {
		if config {
			return malformed("%v configuration record is empty", codec)
		}
		return malformed("%v packet has no payload", codec)
	}
	switch codec {
	case media.CodecH264:
		if config {
			return checkAVCConfig(payload)
		}
		if err := media.SplitAVCC(payload, nil); err != nil {
			return fmt.Errorf("%w: h264 frame: %w", ErrMalformed, err)
		}
	case media.CodecH265:
		if config {
			return checkHEVCConfig(payload)
		}
		if err := media.SplitAVCC(payload, nil); err != nil {
			return fmt.Errorf("%w: h265 frame: %w", ErrMalformed, err)
		}
	case media.CodecAV1:
		if config {
			return checkAV1Config(payload)
		}
		if err := checkOBUs(payload); err != nil {
			return fmt.Errorf("%w: av1 frame: %w", ErrMalformed, err)
		}
	case media.CodecAAC:
		if config {
			_, err := parseASC(payload)
			return err
		}
	case media.CodecOpus:
		if config {
			_, err := parseOpusHead(payload)
			return err
		}
	case media.CodecMP3, media.CodecG711A, media.CodecG711U:
		if config {
			return fmt.Errorf("%w: %v has no configuration packets", ErrMalformed, codec)
		}
	case media.CodecAMF0:
	default:
		return fmt.Errorf("%w %v", ErrUnsupportedCodec, codec)
	}
	return nil
}

// checkAVCConfig validates an AVCDecoderConfigurationRecord
// (ISO/IEC 14496-15 §5.3.3.1): version 1, 4-byte NAL unit lengths, at least
// one SPS and one PPS, every parameter set inside the record. Bytes after
// the PPS (the High-profile chroma and bit-depth fields) are not checked.
func checkAVCConfig(rec []byte) error {
	_, err := avcConfigSPS(rec)
	return err
}

// avcConfigSPS validates rec like checkAVCConfig and returns its first SPS.
func avcConfigSPS(rec []byte) ([]byte, error) {
	if len(rec) < 7 {
		return nil, malformed("avc config: %d bytes, want at least 7", len(rec))
	}
	if rec[0] != 1 {
		return nil, malformed("avc config: configurationVersion %d, want 1", rec[0])
	}
	if n := rec[4]&0x03 + 1; n != 4 {
		return nil, fmt.Errorf("%w avc nalu length size %d (only 4 is carried)", ErrUnsupported, n)
	}
	off := 5
	var first []byte
	for _, ps := range []struct {
		name    string
		naluTyp byte
		mask    byte
	}{{"sps", 7, 0x1f}, {"pps", 8, 0xff}} {
		if off >= len(rec) {
			return nil, malformed("avc config: %s count missing at offset %d", ps.name, off)
		}
		count := int(rec[off] & ps.mask)
		off++
		if count == 0 {
			return nil, malformed("avc config: no %s", ps.name)
		}
		for i := 0; i < count; i++ {
			nalu, next, err := lengthPrefixed16(rec, off)
			if err != nil {
				return nil, malformed("avc config: %s %d: %v", ps.name, i, err)
			}
			if t := nalu[0] & 0x1f; t != ps.naluTyp {
				return nil, malformed("avc config: %s %d has nal unit type %d, want %d", ps.name, i, t, ps.naluTyp)
			}
			if first == nil {
				first = nalu
			}
			off = next
		}
	}
	return first, nil
}

// HEVC NAL unit types (ITU-T H.265 Table 7-1).
const (
	hevcNALUVPS = 32
	hevcNALUSPS = 33
	hevcNALUPPS = 34
)

// checkHEVCConfig validates an HEVCDecoderConfigurationRecord
// (ISO/IEC 14496-15 §8.3.3.1): version 1, 4-byte NAL unit lengths, every
// array and NAL unit inside the record, at least one VPS, SPS and PPS.
func checkHEVCConfig(rec []byte) error {
	_, err := hevcConfigNALU(rec, hevcNALUSPS)
	return err
}

// hevcConfigNALU validates rec like checkHEVCConfig and returns its first NAL
// unit of type naluType, or nil if there is none.
func hevcConfigNALU(rec []byte, naluType byte) ([]byte, error) {
	const fixed = 23 // bytes before the first array
	if len(rec) < fixed {
		return nil, malformed("hevc config: %d bytes, want at least %d", len(rec), fixed)
	}
	if rec[0] != 1 {
		return nil, malformed("hevc config: configurationVersion %d, want 1", rec[0])
	}
	if n := rec[21]&0x03 + 1; n != 4 {
		return nil, fmt.Errorf("%w hevc nalu length size %d (only 4 is carried)", ErrUnsupported, n)
	}
	numArrays := int(rec[22])
	off := fixed
	var found []byte
	var haveVPS, haveSPS, havePPS bool
	for a := 0; a < numArrays; a++ {
		if len(rec)-off < 3 {
			return nil, malformed("hevc config: array %d header cut short at offset %d", a, off)
		}
		typ := rec[off] & 0x3f
		count := int(binary.BigEndian.Uint16(rec[off+1:]))
		off += 3
		for i := 0; i < count; i++ {
			nalu, next, err := lengthPrefixed16(rec, off)
			if err != nil {
				return nil, malformed("hevc config: array %d (nal type %d) nalu %d: %v", a, typ, i, err)
			}
			if len(nalu) < 2 {
				return nil, malformed("hevc config: array %d nalu %d is %d bytes, shorter than a nal unit header", a, i, len(nalu))
			}
			if t := nalu[0] >> 1 & 0x3f; t != typ {
				return nil, malformed("hevc config: array %d of nal type %d holds a nal unit of type %d", a, typ, t)
			}
			if typ == naluType && found == nil {
				found = nalu
			}
			off = next
		}
		switch typ {
		case hevcNALUVPS:
			haveVPS = haveVPS || count > 0
		case hevcNALUSPS:
			haveSPS = haveSPS || count > 0
		case hevcNALUPPS:
			havePPS = havePPS || count > 0
		}
	}
	if !haveVPS || !haveSPS || !havePPS {
		return nil, malformed("hevc config: missing parameter sets (vps %v, sps %v, pps %v)", haveVPS, haveSPS, havePPS)
	}
	return found, nil
}

// lengthPrefixed16 returns the non-empty item with a 16-bit big-endian length
// at b[off:] and the offset after it.
func lengthPrefixed16(b []byte, off int) (item []byte, next int, err error) {
	if len(b)-off < 2 {
		return nil, 0, fmt.Errorf("length cut short at offset %d", off)
	}
	n := int(binary.BigEndian.Uint16(b[off:]))
	off += 2
	if n == 0 {
		return nil, 0, fmt.Errorf("zero length at offset %d", off-2)
	}
	if n > len(b)-off {
		return nil, 0, fmt.Errorf("length %d at offset %d exceeds the %d bytes left", n, off-2, len(b)-off)
	}
	return b[off : off+n], off + n, nil
}

// checkAV1Config validates an AV1CodecConfigurationRecord (AV1 Codec ISO
// Media File Format Binding §2.3.3): marker 1, version 1, and well-formed
// configOBUs if present.
func checkAV1Config(rec []byte) error {
	if len(rec) < 4 {
		return malformed("av1 config: %d bytes, want at least 4", len(rec))
	}
	if rec[0] != 0x81 {
		return malformed("av1 config: marker and version byte 0x%02x, want 0x81", rec[0])
	}
	if len(rec) > 4 {
		if err := checkOBUs(rec[4:]); err != nil {
			return fmt.Errorf("%w: av1 config: configOBUs: %w", ErrMalformed, err)
		}
	}
	return nil
}

// checkOBUs validates a sequence of AV1 OBUs in the low-overhead bitstream
// format (AV1 spec §5.3): the forbidden bit is clear and every obu_size fits;
// an OBU without a size field runs to the end of b.
func checkOBUs(b []byte) error {
	for i, off := 0, 0; off < len(b); i++ {
		h := b[off]
		if h&0x80 != 0 {
			return fmt.Errorf("obu %d at offset %d: forbidden bit set", i, off)
		}
		hdr := 1
		if h&0x04 != 0 { // obu_extension_flag
			hdr = 2
		}
		if len(b)-off < hdr {
			return fmt.Errorf("obu %d at offset %d: header cut short", i, off)
		}
		if h&0x02 == 0 { // no obu_has_size_field: the OBU fills the rest
			return nil
		}
		size, n, err := leb128(b[off+hdr:])
		if err != nil {
			return fmt.Errorf("obu %d at offset %d: obu_size: %w", i, off, err)
		}
		off += hdr + n
		if size > uint64(len(b)-off) {
			return fmt.Errorf("obu %d: size %d exceeds the %d bytes left", i, size, len(b)-off)
		}
		off += int(size)
	}
	return nil
}

// leb128 reads an AV1 leb128 value (AV1 spec §4.10.5): at most 8 bytes, and
// the value fits in 32 bits.
func leb128(b []byte) (v uint64, n int, err error) {
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0, fmt.Errorf("cut short after %d bytes", i)
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0, fmt.Errorf("value %d exceeds 32 bits", v)
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("longer than 8 bytes")
}

// opusHead holds the fields of an Opus ID header this package uses.
type opusHead struct {
	channels int
}

var opusHeadMagic = []byte("OpusHead")

// parseOpusHead validates an Opus identification header (RFC 7845 §5.1),
// the Enhanced RTMP Opus sequence start.
func parseOpusHead(b []byte) (opusHead, error) {
	const fixed = 19
	if len(b) < fixed {
		return opusHead{}, malformed("opus header: %d bytes, want at least %d", len(b), fixed)
	}
	if !bytes.Equal(b[:8], opusHeadMagic) {
		return opusHead{}, malformed("opus header: magic %q, want %q", b[:8], opusHeadMagic)
	}
	if b[8]>>4 != 0 {
		return opusHead{}, fmt.Errorf("%w opus header version %d", ErrUnsupported, b[8])
	}
	channels := int(b[9])
	if channels == 0 {
		return opusHead{}, malformed("opus header: zero channels")
	}
	if family := b[18]; family != 0 {
		if want := fixed + 2 + channels; len(b) < want {
			return opusHead{}, malformed("opus header: mapping family %d needs %d bytes, have %d", family, want, len(b))
		}
	} else if channels > 2 {
		return opusHead{}, malformed("opus header: mapping family 0 with %d channels", channels)
	}
	return opusHead{channels: channels}, nil
}
