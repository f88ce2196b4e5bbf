package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A bounded AMF0 decoder for RTMP command messages (AMF0 File Format
// Specification, Adobe, 2007). Commands come from untrusted peers, so nesting
// is limited, every length and count is checked against the bytes left, and
// memory use is a small multiple of the message size (THREATS.md row 6).

const maxAMF0Depth = 16

var errAMF0 = errors.New("amf0")

// AMF0 type markers (AMF0 spec §2.1).
const (
	amf0Number      = 0x00
	amf0Boolean     = 0x01
	amf0String      = 0x02
	amf0Object      = 0x03
	amf0Null        = 0x05
	amf0Undefined   = 0x06
	amf0ECMAArray   = 0x08
	amf0ObjectEnd   = 0x09
	amf0StrictArray = 0x0a
	amf0Date        = 0x0b
	amf0LongString  = 0x0c
	amf0Unsupported = 0x0d
	amf0XMLDocument = 0x0f
	amf0TypedObject = 0x10
)

// amf0Object is an AMF0 object or ECMA array.
type amf0Obj map[string]any

func (o amf0Obj) str(key string) string {
	s, _ := o[key].(string)
	return s
}

type amf0Decoder struct {
	b   []byte
	off int
}

func (d *amf0Decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errAMF0, d.off, fmt.Sprintf(format, args...))
}

func (d *amf0Decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.off {
		return nil, d.errorf("%d bytes needed, %d left", n, len(d.b)-d.off)
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s, nil
}

func (d *amf0Decoder) utf8(long bool) (string, error) {
	var n int
	if long {
		s, err := d.take(4)
		if err != nil {
			return "", err
		}
		n = int(binary.BigEndian.Uint32(s))
	} else {
		s, err := d.take(2)
		if err != nil {
			return "", err
		}
		n = int(binary.BigEndian.Uint16(s))
	}
	s, err := d.take(n)
	return string(s), err
}

// decodeAMF0 decodes every value of a command message body.
func decodeAMF0(b []byte) ([]any, error) {
	d := amf0Decoder{b: b}
	var out []any
	for d.off < len(d.b) {
		v, err := d.value(1)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *amf0Decoder) value(depth int) (any, error) {
	if depth > maxAMF0Depth {
		return nil, d.errorf("nested deeper than %d", maxAMF0Depth)
	}
	m, err := d.take(1)
	if err != nil {
		return nil, err
	}
	switch m[0] {
	case amf0Number:
		s, err := d.take(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(s)), nil
	case amf0Boolean:
		s, err := d.take(1)
		if err != nil {
			return nil, err
		}
		return s[0] != 0, nil
	case amf0String:
		return d.utf8(false)
	case amf0LongString, amf0XMLDocument:
		return d.utf8(true)
	case amf0Null, amf0Undefined, amf0Unsupported:
		return nil, nil
	case amf0Object:
		return d.props(depth, false)
	case amf0TypedObject:
		if _, err := d.utf8(false); err != nil {
			return nil, err
		}
		return d.props(depth, false)
	case amf0ECMAArray:
		if _, err := d.take(4); err != nil { // advisory count
			return nil, err
		}
		return d.props(depth, true)
	case amf0StrictArray:
		s, err := d.take(4)
		if err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(s)
		if int64(n) > int64(len(d.b)-d.off) { // each value takes at least one byte
			return nil, d.errorf("strict array of %d values, %d bytes left", n, len(d.b)-d.off)
		}
		arr := make([]any, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case amf0Date:
		s, err := d.take(10)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(s)), nil
	}
	return nil, d.errorf("unsupported type marker 0x%02x", m[0])
}

func (d *amf0Decoder) props(depth int, ecma bool) (amf0Obj, error) {
	o := amf0Obj{}
	for {
		if ecma && d.off == len(d.b) {
			return o, nil
		}
		key, err := d.utf8(false)
		if err != nil {
			return nil, err
		}
		if key == "" && d.off < len(d.b) && d.b[d.off] == amf0ObjectEnd {
			d.off++
			return o, nil
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		o[key] = v
	}
}

// amf0Pair is one property of an object written by appendAMF0Object, in order.
type amf0Pair struct {
	Key   string
	Value any
}

func appendAMF0Number(dst []byte, f float64) []byte {
	dst = append(dst, amf0Number)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendAMF0String(dst []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		dst = append(dst, amf0LongString)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	}
	dst = append(dst, amf0String)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendAMF0Null(dst []byte) []byte { return append(dst, amf0Null) }

// appendAMF0 appends one value: nil, bool, string, int, float64 or an
// ordered object ([]amf0Pair).
func appendAMF0(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, amf0Null)
	case bool:
		if v {
			return append(dst, amf0Boolean, 1)
		}
		return append(dst, amf0Boolean, 0)
	case string:
		return appendAMF0String(dst, v)
	case int:
		return appendAMF0Number(dst, float64(v))
	case float64:
		return appendAMF0Number(dst, v)
	case []amf0Pair:
		dst = append(dst, amf0Object)
		for _, p := range v {
			k := p.Key
			if len(k) > math.MaxUint16 {
				k = k[:math.MaxUint16]
			}
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
			dst = append(dst, k...)
			dst = appendAMF0(dst, p.Value)
		}
		return append(dst, 0, 0, amf0ObjectEnd)
	}
	return append(dst, amf0Undefined)
}
