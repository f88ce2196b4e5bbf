package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrNotMetadata is returned by MetadataFromAMF0 for script data that is not
// an onMetaData message (onTextData, onCuePoint, ...).
var ErrNotMetadata = errors.New("flv: script data is not onMetaData")

// setDataFrame is the AMF0 string "@setDataFrame" as it starts the metadata
// message a publisher sends: @setDataFrame, onMetaData, {properties}.
var setDataFrame = []byte("\x02\x00\x0d@setDataFrame")

// IsSetDataFrame reports whether the AMF0 script data b starts with the
// "@setDataFrame" wrapper that publishers put before onMetaData.
func IsSetDataFrame(b []byte) bool {
	return bytes.HasPrefix(b, setDataFrame)
}

// StripSetDataFrame returns b without a leading "@setDataFrame" string, so
// that a publisher's "@setDataFrame onMetaData {...}" becomes the
// "onMetaData {...}" players expect; other data is returned unchanged. The
// result aliases b.
func StripSetDataFrame(b []byte) []byte {
	if IsSetDataFrame(b) {
		return b[len(setDataFrame):]
	}
	return b
}

// AppendSetDataFrame appends body to dst with an "@setDataFrame" string in
// front unless it already has one, the form to publish metadata to another
// server.
func AppendSetDataFrame(dst, body []byte) []byte {
	if !IsSetDataFrame(body) {
		dst = append(dst, setDataFrame...)
	}
	return append(dst, body...)
}

// MetadataFromAMF0 decodes an onMetaData message, with or without the
// "@setDataFrame" wrapper, into its properties: numbers are float64, strings
// string, booleans bool, objects and ECMA arrays map[string]any, strict
// arrays []any, dates time.Time, null and undefined nil. Script data with
// another name returns an error wrapping ErrNotMetadata. Bytes after the
// properties are ignored.
//
// The decoder is bounded for hostile input: nesting deeper than 16 levels,
// AMF3 values, references and any length or count larger than the bytes
// left are errors wrapping ErrMalformed, and it never panics.
func MetadataFromAMF0(b []byte) (map[string]any, error) {
	r := amf0Reader{b: StripSetDataFrame(b)}
	name, err := r.value(1)
	if err != nil {
		return nil, err
	}
	if name != "onMetaData" {
		return nil, fmt.Errorf("%w: name %v", ErrNotMetadata, name)
	}
	v, err := r.value(1)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("onMetaData holds a %T, want an object or ECMA array", v)
	}
	return m, nil
}

// AppendMetadata appends an onMetaData message (without "@setDataFrame") with
// the properties of md to dst, as an ECMA array with its keys sorted. Values
// may be nil, bool, string, any integer or float type, time.Time,
// map[string]any and []any, nested at most 16 levels; anything else is an
// error and leaves dst unchanged.
func AppendMetadata(dst []byte, md map[string]any) ([]byte, error) {
	out := AppendAMF0String(dst, "onMetaData")
	out = append(out, amf0ECMAArray)
	n := uint64(len(md)) // the count is advisory; readers rely on the end marker
	if n > math.MaxUint32 {
		n = math.MaxUint32
	}
	out = binary.BigEndian.AppendUint32(out, uint32(n))
	out, err := appendAMF0Properties(out, md, 1)
	if err != nil {
		return dst, err
	}
	return out, nil
}
