package main

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

var flvHeader = []byte("FLV\x01\x05\x00\x00\x00\x09")

func tag(typ uint8, ts uint32, body []byte) []byte {
	n := len(body)
	h := []byte{0, 0, 0, 0, typ, byte(n >> 16), byte(n >> 8), byte(n), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	return append(h, body...)
}

func TestFLVReader(t *testing.T) {
	good := append(append(append([]byte{}, flvHeader...), tag(9, 0x01020304, []byte{0x17, 0, 0, 0, 0})...), tag(8, 5, []byte{0xaf, 1, 2})...)
	cases := []struct {
		name    string
		in      []byte
		tags    int
		wantErr error // nil: clean io.EOF after the tags
	}{
		{"two tags", good, 2, nil},
		{"two tags and the last PreviousTagSize", append(append([]byte{}, good...), 0, 0, 0, 8), 2, nil},
		{"empty", nil, 0, errTruncated},
		{"not flv", []byte("GIF89a\x00\x00\x00\x00\x00\x00"), 0, errMalformed},
		{"version 2", []byte("FLV\x02\x05\x00\x00\x00\x09"), 0, errMalformed},
		{"header size 4 GiB", []byte("FLV\x01\x05\xff\xff\xff\xff"), 0, errMalformed},
		{"truncated tag header", append(append([]byte{}, flvHeader...), 0, 0, 0, 0, 9, 0), 0, errTruncated},
		{"truncated body", good[:len(good)-1], 1, errTruncated},
		{"tag bigger than max", append(append([]byte{}, flvHeader...), 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0), 0, errMalformed},
		{"encrypted", append(append([]byte{}, flvHeader...), tag(0x29, 0, []byte{1})...), 0, errMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newFLVReader(bytes.NewReader(tc.in), 1<<20)
			err := r.ReadHeader()
			n := 0
			for err == nil && n < 100 {
				var typ uint8
				var ts uint32
				typ, ts, _, err = r.Next()
				if err == nil {
					if n == 0 && (typ != 9 || ts != 0x01020304) {
						t.Errorf("first tag type %d ts %#x", typ, ts)
					}
					n++
				}
			}
			if n != tc.tags {
				t.Errorf("%d tags, want %d", n, tc.tags)
			}
			want := tc.wantErr
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("error %v, want %v", err, want)
			}
		})
	}
}

func TestSplitFLVPath(t *testing.T) {
	for _, tc := range []struct{ in, app, stream string }{
		{"/live/x.flv", "live", "x"},
		{"/a/b/c.flv", "a/b", "c"},
		{"/x.flv", "", ""},
		{"/live/x.ts", "", ""},
		{"/live/.flv", "", ""},
	} {
		app, stream, err := splitFLVPath(tc.in)
		if (err == nil) != (tc.app != "") || app != tc.app || stream != tc.stream {
			t.Errorf("%q: %q %q %v", tc.in, app, stream, err)
		}
	}
}

func TestParseOutput(t *testing.T) {
	for _, tc := range []struct {
		in, vhost, app, stream string
		ok                     bool
	}{
		{"rtmp://127.0.0.1/live/livestream", "", "live", "livestream", true},
		{"rtmp://example.com:1935/live/s", "example.com", "live", "s", true},
		{"rtmp://127.0.0.1/live/s?vhost=v.com", "v.com", "live", "s", true},
		{"rtmp://127.0.0.1/[app]/[stream]", "", "[app]", "[stream]", true},
		{"http://127.0.0.1/live/s", "", "", "", false},
		{"rtmp://127.0.0.1/live", "", "", "", false},
	} {
		o, err := parseOutput(tc.in)
		if (err == nil) != tc.ok || o.vhost != tc.vhost || o.app != tc.app || o.stream != tc.stream {
			t.Errorf("%q: %+v %v", tc.in, o, err)
		}
	}
	o, _ := parseOutput("rtmp://127.0.0.1/[app]/[stream]")
	if r, err := o.resolve("live", "x"); err != nil || r.app != "live" || r.stream != "x" {
		t.Errorf("resolve: %+v %v", r, err)
	}
	if _, err := o.resolve("..", "x"); err == nil {
		t.Errorf("resolve accepted app ..")
	}
}

// FuzzFLVReader: any byte stream ends in a tag sequence and an error,
// never a panic, and no tag is larger than the bound.
func FuzzFLVReader(f *testing.F) {
	f.Add(append(append([]byte{}, flvHeader...), tag(9, 0, []byte{0x17, 0, 0, 0, 0})...))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x0d\x00\x00\x00\x00"))
	f.Add(append(append([]byte{}, flvHeader...), 0, 0, 0, 0, 9, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newFLVReader(bytes.NewReader(b), 64<<10)
		if err := r.ReadHeader(); err != nil {
			return
		}
		for i := 0; i < len(b)+1; i++ {
			_, _, body, err := r.Next()
			if err != nil {
				return
			}
			if len(body) > 64<<10 {
				t.Fatalf("tag of %d bytes", len(body))
			}
		}
		t.Fatal("reader did not end")
	})
}
