package tsmux

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is returned, wrapped with details, for a decoder
// configuration record or frame the muxer cannot use.
var ErrMalformed = errors.New("tsmux: malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// ParamSets returns the parameter sets (VPS, SPS, PPS NAL units, without
// start codes or length prefixes) of an AVCDecoderConfigurationRecord
// (ISO/IEC 14496-15 §5.3.3.1) or, with hevc, an HEVCDecoderConfigurationRecord
// (§8.3.3.1), in record order. The slices alias rec. Every length is checked
// against the bytes left; it never panics.
func ParamSets(rec []byte, hevc bool) ([][]byte, error) {
	if hevc {
		return hevcParamSets(rec)
	}
	return avcParamSets(rec)
}

func avcParamSets(rec []byte) ([][]byte, error) {
	if len(rec) < 7 {
		return nil, malformed("avc config: %d bytes, want at least 7", len(rec))
	}
	if rec[0] != 1 {
		return nil, malformed("avc config: version %d", rec[0])
	}
	if rec[4]&0x03 != 3 {
		return nil, malformed("avc config: NAL length size %d, want 4", rec[4]&0x03+1)
	}
	var sets [][]byte
	off := 5
	for _, countMask := range []byte{0x1f, 0xff} {
		if off >= len(rec) {
			return nil, malformed("avc config: cut short at offset %d", off)
		}
		n := int(rec[off] & countMask)
		off++
		for range n {
			if off+2 > len(rec) {
				return nil, malformed("avc config: parameter set length cut short at offset %d", off)
			}
			l := int(binary.BigEndian.Uint16(rec[off:]))
			off += 2
			if l == 0 || off+l > len(rec) {
				return nil, malformed("avc config: parameter set of %d bytes at offset %d exceeds the record", l, off)
			}
			sets = append(sets, rec[off:off+l])
			off += l
		}
	}
	if len(sets) < 2 {
		return nil, malformed("avc config: no SPS or PPS")
	}
	return sets, nil
}

func hevcParamSets(rec []byte) ([][]byte, error) {
	if len(rec) < 23 {
		return nil, malformed("hevc config: %d bytes, want at least 23", len(rec))
	}
	if rec[0] != 1 {
		return nil, malformed("hevc config: version %d", rec[0])
	}
	if rec[21]&0x03 != 3 {
		return nil, malformed("hevc config: NAL length size %d, want 4", rec[21]&0x03+1)
	}
	n := int(rec[22])
	off := 23
	var sets [][]byte
	for range n {
		if off+3 > len(rec) {
			return nil, malformed("hevc config: array header cut short at offset %d", off)
		}
		count := int(binary.BigEndian.Uint16(rec[off+1:]))
		off += 3
		for range count {
			if off+2 > len(rec) {
				return nil, malformed("hevc config: NAL length cut short at offset %d", off)
			}
			l := int(binary.BigEndian.Uint16(rec[off:]))
			off += 2
			if l == 0 || off+l > len(rec) {
				return nil, malformed("hevc config: NAL unit of %d bytes at offset %d exceeds the record", l, off)
			}
			sets = append(sets, rec[off:off+l])
			off += l
		}
	}
	if len(sets) == 0 {
		return nil, malformed("hevc config: no parameter sets")
	}
	return sets, nil
}

// AAC is the part of an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) an
// ADTS header needs.
type AAC struct {
	ObjectType int // AAC object type of the core (1 Main, 2 LC, 3 SSR, 4 LTP)
	RateIndex  int // sampling_frequency_index of the core, 0..12
	Channels   int // channel_configuration, 0..7
	SampleRate int // samples per second of the core
}

var aacRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// ParseASC reads an AudioSpecificConfig. Explicitly signalled SBR/PS
// (object types 5 and 29) is reduced to its core, as ADTS carries it.
// Explicit sampling rates (index 15) are mapped to the nearest index.
func ParseASC(b []byte) (AAC, error) {
	if len(b) < 2 {
		return AAC{}, malformed("aac config: %d bytes, want at least 2", len(b))
	}
	r := bits{b: b}
	ot := r.objectType()
	idx, rate := r.rate()
	ch := int(r.u(4))
	if ot == 5 || ot == 29 {
		r.rate() // extension rate
		ot = r.objectType()
	}
	if r.err {
		return AAC{}, malformed("aac config: cut short")
	}
	if idx < 0 || rate <= 0 {
		return AAC{}, malformed("aac config: bad sampling frequency")
	}
	if ot == 0 {
		return AAC{}, malformed("aac config: object type 0")
	}
	if ch > 7 {
		return AAC{}, malformed("aac config: channel configuration %d", ch)
	}
	return AAC{ObjectType: ot, RateIndex: idx, Channels: ch, SampleRate: rate}, nil
}

type bits struct {
	b   []byte
	pos int
	err bool
}

func (r *bits) u(n int) uint32 {
	var v uint32
	for range n {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bits) objectType() int {
	t := int(r.u(5))
	if t == 31 {
		t = 32 + int(r.u(6))
	}
	return t
}

func (r *bits) rate() (int, int) {
	i := int(r.u(4))
	if i == 15 {
		rate := int(r.u(24))
		best := -1
		for j, v := range aacRates {
			if best < 0 || abs(v-rate) < abs(aacRates[best]-rate) {
				best = j
			}
		}
		return best, rate
	}
	if i >= len(aacRates) {
		return -1, 0
	}
	return i, aacRates[i]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// MaxADTSPayload is the largest raw AAC frame an ADTS header can carry.
const MaxADTSPayload = 1<<13 - 1 - 7

// AppendADTS appends a 7-byte ADTS header (ISO/IEC 13818-7 §6.2, no CRC)
// for a raw frame of n bytes and then the frame.
func (a AAC) AppendADTS(dst, frame []byte) ([]byte, error) {
	if len(frame) > MaxADTSPayload {
		return dst, malformed("aac frame of %d bytes does not fit ADTS", len(frame))
	}
	profile := a.ObjectType - 1
	if profile < 0 || profile > 3 {
		profile = 1 // LC
	}
	n := len(frame) + 7
	dst = append(dst,
		0xff, 0xf1,
		byte(profile<<6|a.RateIndex<<2|a.Channels>>2&1),
		byte(a.Channels&3<<6|n>>11&3),
		byte(n>>3),
		byte(n&7<<5|0x1f),
		0xfc,
	)
	return append(dst, frame...), nil
}
