package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// flvReader reads an FLV byte stream (Adobe FLV spec v10.1 annex E): the
// 9-byte header, then PreviousTagSize + tag, with every size bounded. It
// is what an FLV over HTTP POST body is.
type flvReader struct {
	r   *bufio.Reader
	max int // the largest tag body accepted
	buf []byte
	// Bytes counts what was read.
	Bytes uint64
}

// errTruncated: the body ended inside the header or a tag.
var errTruncated = errors.New("truncated flv body")

func newFLVReader(r io.Reader, maxTag int) *flvReader {
	return &flvReader{r: bufio.NewReaderSize(r, 32<<10), max: maxTag}
}

func (f *flvReader) full(b []byte) error {
	n, err := io.ReadFull(f.r, b)
	f.Bytes += uint64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.Is(err, io.EOF) && len(b) > 0) {
		return errTruncated
	}
	return err
}

// ReadHeader reads the FLV header (E.2): "FLV", version 1, flags, the
// header size (9, or more with bytes to skip, at most 1 KiB).
func (f *flvReader) ReadHeader() error {
	var h [9]byte
	if err := f.full(h[:]); err != nil {
		return err
	}
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return fmt.Errorf("%w: no FLV signature (% x)", errMalformed, h[:3])
	}
	if h[3] != 1 {
		return fmt.Errorf("%w: FLV version %d", errMalformed, h[3])
	}
	size := binary.BigEndian.Uint32(h[5:])
	if size < 9 || size > 1024 {
		return fmt.Errorf("%w: FLV header size %d", errMalformed, size)
	}
	if skip := int(size) - 9; skip > 0 {
		if err := f.full(make([]byte, skip)); err != nil {
			return err
		}
	}
	return nil
}

// Next returns the next tag (E.4.1): its type, its 32-bit millisecond
// timestamp and its body, valid until the next call. io.EOF means the
// body ended cleanly between tags.
func (f *flvReader) Next() (typ uint8, ts uint32, body []byte, err error) {
	var h [15]byte // PreviousTagSize (4) + tag header (11)
	n, err := io.ReadFull(f.r, h[:])
	f.Bytes += uint64(n)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return 0, 0, nil, io.EOF
	case n == 4 && errors.Is(err, io.ErrUnexpectedEOF):
		return 0, 0, nil, io.EOF // the last PreviousTagSize, then the end
	case errors.Is(err, io.ErrUnexpectedEOF):
		return 0, 0, nil, errTruncated
	case err != nil:
		return 0, 0, nil, err
	}
	t := h[4]
	if t&0x20 != 0 {
		return 0, 0, nil, fmt.Errorf("%w: encrypted FLV tag (filter bit set)", errMalformed)
	}
	typ = t & 0x1f
	size := int(h[5])<<16 | int(h[6])<<8 | int(h[7])
	ts = uint32(h[8])<<16 | uint32(h[9])<<8 | uint32(h[10]) | uint32(h[11])<<24
	if size > f.max {
		return 0, 0, nil, fmt.Errorf("%w: FLV tag of %d bytes exceeds max_tag_size %d", errMalformed, size, f.max)
	}
	if cap(f.buf) < size {
		f.buf = make([]byte, size)
	}
	body = f.buf[:size]
	if err := f.full(body); err != nil {
		return 0, 0, nil, err
	}
	return typ, ts, body, nil
}
