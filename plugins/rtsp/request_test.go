package main

import (
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	r, err := parseRequest([]byte("GET_PARAMETER rtsp://h/live/a RTSP/1.0\r\nCSeq: 7\r\nsession: 191201771\r\nCSeq: 8\r\n\r\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	if r.method != "GET_PARAMETER" || r.uri != "rtsp://h/live/a" || r.cseq() != "7" || r.headers["session"] != "191201771" || string(r.body) != "body" {
		t.Fatalf("%+v", r)
	}
	resp := string(response(r, "200 OK", sessionHeader(r)...))
	if !strings.HasPrefix(resp, "RTSP/1.0 200 OK\r\nCSeq: 7\r\n") || !strings.Contains(resp, "\r\nSession: 191201771\r\n") || !strings.HasSuffix(resp, "\r\n\r\n") {
		t.Fatalf("response %q", resp)
	}
	for _, bad := range []string{"", "OPTIONS\r\n\r\n", "FOO * RTSP/1.0\r\n\r\n", "OPTIONS * RTSP/1.0\r\nnocolon\r\n\r\n", "OPTIONS * RTSP/1.0\r\n"} {
		if _, err := parseRequest([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseRequest: the framer's units parse without a panic, and a
// response to any of them is one header block whose CSeq line cannot be
// split by the request.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
	f.Add([]byte("PAUSE rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\nSession: 1\r\n\r\n"))
	f.Add([]byte("DESCRIBE rtsp://h/a RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"a\"\r\n\r\n"))
	f.Add([]byte("SET_PARAMETER rtsp://h/a RTSP/1.0\r\nCSeq: 4\r\nContent-Length: 3\r\n\r\nx=1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr framer
		for i := 0; i < 64 && len(b) > 0; i++ {
			n, err := fr.next(b)
			if err != nil || n == 0 {
				return
			}
			unit := b[:n]
			b = b[n:]
			if unit[0] == '$' {
				continue
			}
			r, err := parseRequest(unit)
			if err != nil {
				continue
			}
			resp := string(response(r, "200 OK", sessionHeader(r)...))
			if strings.Count(resp, "\r\n\r\n") != 1 || !strings.HasSuffix(resp, "\r\n\r\n") {
				t.Fatalf("response %q to %q", resp, unit)
			}
		}
	})
}
