package flv

import "errors"

var errBitsOverrun = errors.New("read past the end")

// bitReader reads big-endian bit fields from a byte slice. A read past the
// end returns 0 and makes err sticky, so a parser may read a run of fields
// and check err once; it never panics (docs/THREATS.md row 10). Loops whose
// count comes from the bitstream must still bound the count themselves.
type bitReader struct {
	b   []byte
	pos int // bit offset
	err error
}

// u reads n <= 32 bits as an unsigned integer.
func (r *bitReader) u(n int) uint32 {
	if r.err != nil {
		return 0
	}
	if n > len(r.b)*8-r.pos {
		r.err = errBitsOverrun
		return 0
	}
	var v uint32
	for i := 0; i < n; i++ {
		bit := r.b[r.pos>>3] >> (7 - r.pos&7) & 1
		v = v<<1 | uint32(bit)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.u(1) == 1 }

func (r *bitReader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b)*8-r.pos {
		r.err = errBitsOverrun
		return
	}
	r.pos += n
}

// ue reads an unsigned Exp-Golomb code (H.264 §9.1); codes longer than 32
// bits are an error.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.err == nil && r.u(1) == 0 {
		zeros++
		if zeros > 31 {
			r.err = errors.New("exp-golomb code longer than 32 bits")
			return 0
		}
	}
	if r.err != nil {
		return 0
	}
	return uint32(1<<zeros - 1 + uint64(r.u(zeros)))
}

// se reads a signed Exp-Golomb code (H.264 §9.1.1).
func (r *bitReader) se() int32 {
	k := int64(r.ue())
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return int32(-(k / 2))
}
