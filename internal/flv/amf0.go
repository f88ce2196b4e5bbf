package flv

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"time"
)

// A small bounded AMF0 codec (AMF0 File Format Specification, Adobe, 2007)
// for script data. lal's rtmp AMF0 reader is not used: it recurses without a
// depth limit (an object nested thousands deep), and it logs unknown types
// with a hex dump through a global logger that writes to standard output
// (docs/THREATS.md row 6).

// maxAMF0Depth bounds the nesting of objects and arrays.
const maxAMF0Depth = 16

// AMF0 type markers (AMF0 spec §2.1).
const (
	amf0Number      = 0x00
	amf0Boolean     = 0x01
	amf0String      = 0x02
	amf0Object      = 0x03
	amf0MovieClip   = 0x04
	amf0Null        = 0x05
	amf0Undefined   = 0x06
	amf0Reference   = 0x07
	amf0ECMAArray   = 0x08
	amf0ObjectEnd   = 0x09
	amf0StrictArray = 0x0a
	amf0Date        = 0x0b
	amf0LongString  = 0x0c
	amf0Unsupported = 0x0d
	amf0RecordSet   = 0x0e
	amf0XMLDocument = 0x0f
	amf0TypedObject = 0x10
	amf0AVMPlus     = 0x11 // switch to AMF3
)

// amf0Reader decodes AMF0 values from b. Every length and count is checked
// against the bytes left before it is used, so memory use is bounded by a
// small multiple of len(b).
type amf0Reader struct {
	b   []byte
	off int
}

func (r *amf0Reader) errorf(format string, args ...any) error {
	return malformed("amf0 at offset %d: %s", r.off, fmt.Sprintf(format, args...))
}

func (r *amf0Reader) left() int { return len(r.b) - r.off }

func (r *amf0Reader) take(n int) ([]byte, error) {
	if n > r.left() {
		return nil, r.errorf("%d bytes needed, %d left", n, r.left())
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *amf0Reader) u16() (int, error) {
	s, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(s)), nil
}

func (r *amf0Reader) u32() (uint32, error) {
	s, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(s), nil
}

// shortString reads a UTF-8 string with a 16-bit length (no marker).
func (r *amf0Reader) shortString() (string, error) {
	n, err := r.u16()
	if err != nil {
		return "", err
	}
	s, err := r.take(n)
	return string(s), err
}

func (r *amf0Reader) longString() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if int64(n) > int64(r.left()) {
		return "", r.errorf("long string of %d bytes, %d left", n, r.left())
	}
	s, _ := r.take(int(n))
	return string(s), nil
}

// value decodes one value at nesting depth depth (1 for a top-level value).
// Numbers are float64, strings string, objects and ECMA arrays
// map[string]any, strict arrays []any, dates time.Time (UTC; the time zone
// field is ignored, as the spec says it should be), null and undefined nil.
func (r *amf0Reader) value(depth int) (any, error) {
	if depth > maxAMF0Depth {
		return nil, r.errorf("nested deeper than %d", maxAMF0Depth)
	}
	m, err := r.take(1)
	if err != nil {
		return nil, err
	}
	switch m[0] {
	case amf0Number:
		s, err := r.take(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(s)), nil
	case amf0Boolean:
		s, err := r.take(1)
		if err != nil {
			return nil, err
		}
		return s[0] != 0, nil
	case amf0String:
		return r.shortString()
	case amf0LongString, amf0XMLDocument:
		return r.longString()
	case amf0Null, amf0Undefined, amf0Unsupported:
		return nil, nil
	case amf0Object:
		return r.properties(depth, false)
	case amf0TypedObject:
		if _, err := r.shortString(); err != nil { // class name
			return nil, err
		}
		return r.properties(depth, false)
	case amf0ECMAArray:
		if _, err := r.u32(); err != nil { // associative count: advisory, often 0
			return nil, err
		}
		return r.properties(depth, true)
	case amf0StrictArray:
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int64(n) > int64(r.left()) { // every value takes at least one byte
			return nil, r.errorf("strict array of %d values, %d bytes left", n, r.left())
		}
		arr := make([]any, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := r.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case amf0Date:
		s, err := r.take(10)
		if err != nil {
			return nil, err
		}
		ms := math.Float64frombits(binary.BigEndian.Uint64(s))
		if math.IsNaN(ms) || math.Abs(ms) > maxAMF0DateMs {
			return nil, r.errorf("date %v out of range", ms)
		}
		return time.UnixMilli(int64(ms)).UTC(), nil
	case amf0AVMPlus:
		return nil, r.errorf("AMF3 values are not supported")
	}
	return nil, r.errorf("unsupported type marker 0x%02x", m[0])
}

// maxAMF0DateMs bounds AMF0 dates to ±100,000,000 days around 1970, the
// ECMAScript Date range, so conversions stay exact.
const maxAMF0DateMs = 8.64e15

// properties reads key/value pairs up to the object end marker (00 00 09).
// ECMA arrays may also end at the end of the data: some encoders omit the
// marker after the last onMetaData property.
func (r *amf0Reader) properties(depth int, ecma bool) (map[string]any, error) {
	m := make(map[string]any)
	for {
		if ecma && r.left() == 0 {
			return m, nil
		}
		key, err := r.shortString()
		if err != nil {
			return nil, err
		}
		if key == "" && r.left() > 0 && r.b[r.off] == amf0ObjectEnd {
			r.off++
			return m, nil
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

// appendAMF0Value encodes v at nesting depth depth. Maps are written as
// objects (ECMA arrays at the top of onMetaData, see AppendMetadata) with
// their keys sorted, so the output is deterministic.
func appendAMF0Value(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxAMF0Depth {
		return dst, fmt.Errorf("amf0: nested deeper than %d", maxAMF0Depth)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, amf0Null), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, amf0Boolean, b), nil
	case string:
		return AppendAMF0String(dst, v), nil
	case float64:
		return AppendAMF0Number(dst, v), nil
	case float32:
		return AppendAMF0Number(dst, float64(v)), nil
	case int:
		return AppendAMF0Number(dst, float64(v)), nil
	case int8:
		return AppendAMF0Number(dst, float64(v)), nil
	case int16:
		return AppendAMF0Number(dst, float64(v)), nil
	case int32:
		return AppendAMF0Number(dst, float64(v)), nil
	case int64:
		return AppendAMF0Number(dst, float64(v)), nil
	case uint:
		return AppendAMF0Number(dst, float64(v)), nil
	case uint8:
		return AppendAMF0Number(dst, float64(v)), nil
	case uint16:
		return AppendAMF0Number(dst, float64(v)), nil
	case uint32:
		return AppendAMF0Number(dst, float64(v)), nil
	case uint64:
		return AppendAMF0Number(dst, float64(v)), nil
	case time.Time:
		dst = append(dst, amf0Date)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(float64(v.UnixMilli())))
		return append(dst, 0, 0), nil
	case map[string]any:
		return appendAMF0Properties(append(dst, amf0Object), v, depth)
	case []any:
		if int64(len(v)) > math.MaxUint32 {
			return dst, fmt.Errorf("amf0: strict array of %d values", len(v))
		}
		dst = append(dst, amf0StrictArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		for _, e := range v {
			var err error
			if dst, err = appendAMF0Value(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	return dst, fmt.Errorf("amf0: cannot encode a value of type %T", v)
}

// AppendAMF0Number appends an AMF0 number.
func AppendAMF0Number(dst []byte, f float64) []byte {
	dst = append(dst, amf0Number)
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(f))
}

// AppendAMF0String appends an AMF0 string (a long string past 65535 bytes).
func AppendAMF0String(dst []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		dst = append(dst, amf0LongString)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	}
	dst = append(dst, amf0String)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// appendAMF0Properties writes m's properties in key order and the object end
// marker.
func appendAMF0Properties(dst []byte, m map[string]any, depth int) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if len(k) > math.MaxUint16 {
			return dst, fmt.Errorf("amf0: property name of %d bytes", len(k))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
		dst = append(dst, k...)
		var err error
		if dst, err = appendAMF0Value(dst, m[k], depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, 0, 0, amf0ObjectEnd), nil
}

// DecodeAMF0 decodes every AMF0 value of b, in order (an RTMP command
// message body, for example). Objects and ECMA arrays come back as
// map[string]any, strict arrays as []any, dates as time.Time, null and
// undefined as nil. Nesting is limited to 16 levels and every length and
// count is checked against the bytes left (docs/THREATS.md row 6); on malformed
// input it returns the values decoded so far and an error wrapping
// ErrMalformed.
func DecodeAMF0(b []byte) ([]any, error) {
	r := amf0Reader{b: b}
	var out []any
	for r.left() > 0 {
		v, err := r.value(1)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
