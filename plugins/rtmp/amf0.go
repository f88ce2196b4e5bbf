package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/rill-media/rill/internal/flv"
)

// A bounded AMF0 decoder for RTMP command messages (AMF0 File Format
// Specification, Adobe, 2007). Commands come from untrusted peers, so nesting
// is limited, every length and count is checked against the bytes left, and
// memory use is a small multiple of the message size (docs/THREATS.md row 6).

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

// decodeAMF0 decodes every value of a command message body with the SDK's
// bounded AMF0 reader; objects come back as amf0Obj.
func decodeAMF0(b []byte) ([]any, error) {
	vals, err := flv.DecodeAMF0(b)
	for i, v := range vals {
		if m, ok := v.(map[string]any); ok {
			vals[i] = amf0Obj(m)
		}
	}
	if err != nil {
		return vals, fmt.Errorf("%w: %v", errAMF0, err)
	}
	return vals, nil
}

// amf0Pair is one property of an object written by appendAMF0Object, in order.
type amf0Pair struct {
	Key   string
	Value any
}

// The scalar encoders are the SDK's.
var (
	appendAMF0Number = flv.AppendAMF0Number
	appendAMF0String = flv.AppendAMF0String
)

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
