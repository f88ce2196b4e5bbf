package main

import (
	"bytes"
	"encoding/binary"
	"errors"
)

// H.264 NAL unit types (ITU-T H.264 Table 7-1).
const (
	naluSlice = 1
	naluIDR   = 5
	naluSEI   = 6
	naluSPS   = 7
	naluPPS   = 8
	naluAUD   = 9
)

// splitAnnexB returns the NAL units of an Annex-B byte stream (start codes
// of 3 or 4 bytes), without the start codes. The slices alias b.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	i := 0
	for i+2 < len(b) {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				if end > start {
					out = append(out, b[start:end])
				}
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	} else if start < 0 && len(b) > 0 {
		out = append(out, b) // no start code: one bare NAL unit
	}
	return out
}

// avcConfig builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// §5.3.3.1) with 4-byte NAL lengths from one SPS and one PPS.
func avcConfig(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 || len(sps) > 0xffff || len(pps) > 0xffff {
		return nil, errors.New("avc config: bad SPS or PPS size")
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	b = append(b, pps...)
	return b, nil
}

// appendAVCC appends nalu with its 4-byte length prefix.
func appendAVCC(dst, nalu []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(nalu)))
	return append(dst, nalu...)
}

var startCode = []byte{0, 0, 0, 1}

// isBSlice reports whether a coded slice NAL unit is a B slice: the
// slice_type of its header (§7.3.3) is 1 or 6. Only the first bytes are
// read, with emulation prevention bytes removed; a header cut short is
// not a B slice.
func isBSlice(nalu []byte) bool {
	if len(nalu) < 2 || nalu[0]&0x1f != naluSlice {
		return false
	}
	hdr := make([]byte, 0, 16)
	zeros := 0
	for _, c := range nalu[1:min(len(nalu), 24)] {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		hdr = append(hdr, c)
	}
	r := bitReader{b: hdr}
	if _, ok := r.ue(); !ok { // first_mb_in_slice
		return false
	}
	st, ok := r.ue()
	return ok && st%5 == 1
}

type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) bit() (uint32, bool) {
	if r.pos >= len(r.b)*8 {
		return 0, false
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, true
}

// ue reads an unsigned Exp-Golomb code (§9.1).
func (r *bitReader) ue() (uint32, bool) {
	n := 0
	for {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		if b == 1 {
			break
		}
		n++
		if n > 31 {
			return 0, false
		}
	}
	v := uint32(0)
	for range n {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		v = v<<1 | b
	}
	return (1 << n) - 1 + v, true
}

// sameBytes is bytes.Equal, named for the parameter set comparisons.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }
