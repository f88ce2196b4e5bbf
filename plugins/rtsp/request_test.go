package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/rill-media/rill/sdk"
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

// discardConn is a connection that takes every write and reads nothing.
type discardConn struct {
	net.Conn
	wrote bytes.Buffer
}

func (d *discardConn) Write(b []byte) (int, error) { return d.wrote.Write(b) }
func (d *discardConn) Close() error                { return nil }
func (d *discardConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}
}

// FuzzOnRequest: the requests the plugin answers itself (and the
// authentication of ANNOUNCE and DESCRIBE on a vhost with auth), on any
// framed input, never panic, and each answered request gets exactly one
// well-formed response.
func FuzzOnRequest(f *testing.F) {
	f.Add([]byte("DESCRIBE rtsp://h/live/a?vhost=v RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"a\", realm=\"rill\", nonce=\"1.2.3\", uri=\"rtsp://h/live/a\", response=\"0\"\r\n\r\n"))
	f.Add([]byte("ANNOUNCE rtsp://127.0.0.1/live/a RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic YTpi\r\nContent-Length: 3\r\n\r\nv=0"))
	f.Add([]byte("PAUSE * RTSP/1.0\r\nCSeq: 3\r\nSession: 1\r\n\r\nPLAY * RTSP/1.0\r\nCSeq: 4\r\n\r\n"))
	f.Add([]byte("GET_PARAMETER rtsp://[::1 RTSP/1.0\r\nCSeq: 5\r\n\r\nSETUP rtsp://h/live/a/streamid=0 RTSP/1.0\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n"))
	s := newServer()
	cfg, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{
		{Name: defaultVhost, Enabled: true, Settings: json.RawMessage(`{"auth":{"users":{"a":"b"},"basic":true}}`)},
	}}, s.nonces)
	if err != nil {
		f.Fatal(err)
	}
	s.cfg.Store(cfg)
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &discardConn{}
		c := newConn(s, d)
		var fr framer
		for i := 0; i < 16 && len(b) > 0; i++ {
			n, err := fr.next(b)
			if err != nil || n == 0 {
				return
			}
			unit := b[:n]
			b = b[n:]
			if unit[0] == '$' {
				continue
			}
			before := d.wrote.Len()
			handled, err := c.onRequest(unit)
			if err != nil {
				return
			}
			resp := d.wrote.String()[before:]
			if handled && (strings.Count(resp, "\r\n\r\n") != 1 || !strings.HasPrefix(resp, "RTSP/1.0 ")) {
				t.Fatalf("response %q to %q", resp, unit)
			}
			if !handled && resp != "" {
				t.Fatalf("passed on %q after writing %q", unit, resp)
			}
		}
	})
}
