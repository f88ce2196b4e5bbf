package main

import (
	"errors"
	"strings"
	"testing"
)

func units(t *testing.T, f *framer, in string) ([]int, error) {
	t.Helper()
	var ns []int
	b := []byte(in)
	for i := 0; i < 100; i++ {
		n, err := f.next(b)
		if err != nil || n == 0 {
			return ns, err
		}
		ns = append(ns, n)
		b = b[n:]
	}
	return ns, nil
}

func TestFramer(t *testing.T) {
	setup := "SETUP rtsp://h/live/x/streamid=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
	rtp := "$\x00\x00\x0c" + strings.Repeat("\x80", 12)
	cases := []struct {
		name  string
		in    string
		units int
		bad   bool
	}{
		{"options", "OPTIONS rtsp://h/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n", 1, false},
		{"announce with body", "ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 3\r\n\r\nv=0", 1, false},
		{"partial body", "ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nContent-Length: 30\r\n\r\nv=0", 0, false},
		{"setup then rtp", setup + rtp, 2, false},
		{"rtp before setup", rtp, 0, true},
		{"rtp on another channel", setup + "$\x05\x00\x0c" + strings.Repeat("\x80", 12), 1, true},
		{"short rtp", setup + "$\x00\x00\x02ab", 1, true},
		{"short rtcp sr", setup + "$\x01\x00\x08\x80\xc8\x00\x06abcd", 1, true},
		{"huge content-length", "ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nContent-Length: 999999999999\r\n\r\n", 0, true},
		{"negative content-length", "ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nContent-Length: -5\r\n\r\n", 0, true},
		{"not rtsp", "GET / HTTP/1.1\r\n\r\n", 0, true},
		{"binary junk", "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11", 0, true},
		{"long header", "OPTIONS rtsp://h/x RTSP/1.0\r\nX: " + strings.Repeat("a", maxHeaderBytes), 0, true},
		{"bad interleaved", "SETUP rtsp://h/x RTSP/1.0\r\nTransport: RTP/AVP/TCP;interleaved=0-0\r\n\r\n", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var f framer
			ns, err := units(t, &f, tc.in)
			if len(ns) != tc.units {
				t.Errorf("units %v, want %d", ns, tc.units)
			}
			if tc.bad != (err != nil) || (err != nil && !errors.Is(err, errMalformed)) {
				t.Errorf("error %v, want bad=%v", err, tc.bad)
			}
		})
	}
}

// FuzzFramer: any byte stream is cut into units that are each within the
// bounds, or refused; never a panic.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("OPTIONS rtsp://h/live/x RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	f.Add([]byte("SETUP rtsp://h/live/x/streamid=0 RTSP/1.0\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n$\x00\x00\x0c123456789012$\x01\x00\x08\x80\xc9\x00\x01abcd"))
	f.Add([]byte("ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nContent-Length: 3\r\n\r\nv=0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr framer
		for i := 0; i <= len(b); i++ {
			n, err := fr.next(b)
			if err != nil || n == 0 {
				return
			}
			if n > len(b) || n > maxHeaderBytes+maxBodyBytes+4 && b[0] != '$' || n > 65535+4 {
				t.Fatalf("unit of %d bytes from %d", n, len(b))
			}
			b = b[n:]
		}
	})
}
