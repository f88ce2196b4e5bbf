package main

import (
	"bytes"
	"errors"
	"testing"
)

func TestAMF0RoundTrip(t *testing.T) {
	var b []byte
	b = appendAMF0(b, "connect")
	b = appendAMF0(b, 1.0)
	b = appendAMF0(b, []amf0Pair{{"app", "live"}, {"tcUrl", "rtmp://h/live"}, {"fpad", false}, {"n", 3}})
	b = appendAMF0(b, nil)
	vals, err := decodeAMF0(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != 4 || vals[0] != "connect" || vals[1] != 1.0 || vals[3] != nil {
		t.Fatalf("%#v", vals)
	}
	o := vals[2].(amf0Obj)
	if o.str("app") != "live" || o.str("tcUrl") != "rtmp://h/live" || o["fpad"] != false || o["n"] != 3.0 {
		t.Fatalf("%#v", o)
	}
}

func TestAMF0Hostile(t *testing.T) {
	deep := bytes.Repeat([]byte{amf0Object, 0, 1, 'a'}, 1000)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"deep nesting", deep},
		{"string past end", []byte{amf0String, 0xff, 0xff, 'a'}},
		{"long string past end", []byte{amf0LongString, 0xff, 0xff, 0xff, 0xff}},
		{"strict array huge count", []byte{amf0StrictArray, 0xff, 0xff, 0xff, 0xff, 0}},
		{"object without end", []byte{amf0Object, 0, 1, 'a', amf0Null}},
		{"amf3 switch", []byte{0x11, 1}},
		{"truncated number", []byte{amf0Number, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeAMF0(tc.in); !errors.Is(err, errAMF0) {
				t.Fatalf("want an amf0 error, got %v", err)
			}
		})
	}
}

func FuzzAMF0Command(f *testing.F) {
	var b []byte
	b = appendAMF0(b, "publish")
	b = appendAMF0(b, 5.0)
	b = appendAMF0(b, nil)
	b = appendAMF0(b, "livestream?vhost=a")
	f.Add(b)
	f.Add(appendAMF0(nil, []amf0Pair{{"app", "live"}, {"o", []amf0Pair{{"x", true}}}}))
	f.Add([]byte{amf0ECMAArray, 0, 0, 0, 1, 0, 1, 'k', amf0Number, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9})
	f.Add([]byte{amf0StrictArray, 0, 0, 0, 2, amf0Null, amf0Undefined})
	f.Fuzz(func(t *testing.T, in []byte) {
		vals, err := decodeAMF0(in)
		if err != nil {
			return
		}
		// Whatever decodes must survive the command handler's type checks.
		if len(vals) > 0 {
			if o, ok := vals[0].(amf0Obj); ok {
				_ = o.str("app")
			}
		}
	})
}
