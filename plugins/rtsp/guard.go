package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of what a client may send before lal's parser sees it.
const (
	maxHeaderBytes = 8 << 10  // one request's line and headers
	maxBodyBytes   = 64 << 10 // one request's body (an SDP)
)

// errMalformed marks a connection cut because its bytes break RTSP.
var errMalformed = errors.New("malformed rtsp")

// rtspMethods are the requests (RFC 2326 §6.1, §10) a client may send.
var rtspMethods = map[string]bool{
	"OPTIONS": true, "DESCRIBE": true, "ANNOUNCE": true, "SETUP": true, "PLAY": true,
	"RECORD": true, "PAUSE": true, "TEARDOWN": true, "GET_PARAMETER": true, "SET_PARAMETER": true,
}

// framer checks the client's byte stream unit by unit, as RFC 2326 frames
// it: a request (line, headers, Content-Length body, §4.3) or an
// interleaved binary frame ('$', channel, 16-bit length, §10.12). It
// bounds every size, accepts interleaved frames only on channels a SETUP
// asked for and refuses RTP/RTCP too short to parse, so lal's session code
// (which allocates a body of any Content-Length and indexes RTCP without
// checking its length) never sees such input.
type framer struct {
	channels [256]int8 // 0 not set up, 1 RTP, 2 RTCP
}

// next returns the length of the first complete unit of b, 0 when b holds
// only part of one, or an error wrapping errMalformed.
func (f *framer) next(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if b[0] == '$' {
		if len(b) < 4 {
			return 0, nil
		}
		ch := b[1]
		n := int(b[2])<<8 | int(b[3])
		if f.channels[ch] == 0 {
			return 0, fmt.Errorf("%w: interleaved frame on channel %d, which no SETUP asked for", errMalformed, ch)
		}
		if len(b) < 4+n {
			return 0, nil
		}
		p := b[4 : 4+n]
		switch {
		case f.channels[ch] == 1 && n < 12:
			return 0, fmt.Errorf("%w: rtp packet of %d bytes on channel %d", errMalformed, n, ch)
		case f.channels[ch] == 2 && (n < 8 || (p[1] == 200 && n < 28)):
			return 0, fmt.Errorf("%w: rtcp packet of %d bytes on channel %d", errMalformed, n, ch)
		}
		return 4 + n, nil
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHeaderBytes {
			return 0, fmt.Errorf("%w: request header longer than %d bytes", errMalformed, maxHeaderBytes)
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			if err := checkRequestLine(b[:i]); err != nil {
				return 0, err
			}
		} else if len(b) >= 16 && bytes.IndexByte(b[:16], ' ') < 0 {
			return 0, fmt.Errorf("%w: %q is not a request", errMalformed, b[:16])
		}
		return 0, nil
	}
	if end+4 > maxHeaderBytes {
		return 0, fmt.Errorf("%w: request header longer than %d bytes", errMalformed, maxHeaderBytes)
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	if err := checkRequestLine([]byte(lines[0])); err != nil {
		return 0, err
	}
	body := 0
	var transport string
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return 0, fmt.Errorf("%w: header line %q without a colon", errMalformed, truncate(l))
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(v))
			}
			if n > maxBodyBytes {
				return 0, fmt.Errorf("%w: Content-Length %d exceeds %d", errMalformed, n, maxBodyBytes)
			}
			body = n
		case "transport":
			transport = v
		}
	}
	if len(b) < end+4+body {
		return 0, nil
	}
	if strings.HasPrefix(lines[0], "SETUP ") && strings.Contains(transport, "interleaved=") {
		rtp, rtcp, err := parseInterleaved(transport)
		if err != nil {
			return 0, err
		}
		f.channels[rtp], f.channels[rtcp] = 1, 2
	}
	return end + 4 + body, nil
}

func checkRequestLine(l []byte) error {
	parts := strings.Fields(string(l))
	if len(parts) != 3 || !rtspMethods[parts[0]] || !strings.HasPrefix(parts[2], "RTSP/") {
		return fmt.Errorf("%w: bad request line %q", errMalformed, truncate(string(l)))
	}
	return nil
}

// parseInterleaved reads "interleaved=a-b" of a Transport header.
func parseInterleaved(t string) (rtp, rtcp uint8, err error) {
	_, v, _ := strings.Cut(t, "interleaved=")
	v, _, _ = strings.Cut(v, ";")
	a, b, ok := strings.Cut(v, "-")
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 8)
	y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 8)
	if !ok || err1 != nil || err2 != nil || x == y {
		return 0, 0, fmt.Errorf("%w: Transport interleaved=%q", errMalformed, truncate(v))
	}
	return uint8(x), uint8(y), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// guard is the client's connection as lal reads it: only whole units that
// the framer accepted come out of Read. Until the connection publishes or
// plays, every read has the idle deadline (a client that opens and says
// nothing is cut).
type guard struct {
	net.Conn
	f    framer
	in   []byte // read, not yet checked
	out  []byte // checked, not yet returned
	buf  []byte
	idle time.Duration

	// onWrite sees every write (lal's responses, RTP), after it is done.
	onWrite func(b []byte)
	// beforeWrite sees every write before it is sent; an error ends the
	// connection instead of sending it.
	beforeWrite func(b []byte) error
	// onRequest sees every request before lal does; handled means the
	// plugin answered it and lal never sees it; an error ends the
	// connection.
	onRequest func(unit []byte) (handled bool, err error)

	wmu sync.Mutex // one write on the socket at a time

	mu       sync.Mutex
	err      error // the framing error that ended the connection
	streamOn bool  // publishing or playing: no request deadline
}

func newGuard(c net.Conn, idle time.Duration) *guard {
	return &guard{Conn: c, buf: make([]byte, 32<<10), idle: idle}
}

// Err returns the framing error that ended the connection, if any.
func (g *guard) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guard) streaming() {
	g.mu.Lock()
	g.streamOn = true
	g.mu.Unlock()
	_ = g.Conn.SetReadDeadline(time.Time{})
}

// Read returns the checked bytes of at most one unit per call, and takes
// the next unit only once lal consumed the last: lal has handled every
// earlier request when onRequest sees the next, so the requests the plugin
// answers itself keep their order with lal's.
func (g *guard) Read(p []byte) (int, error) {
	for len(g.out) == 0 {
		n, err := g.f.next(g.in)
		if err != nil {
			g.fail(err)
			return 0, err
		}
		if n > 0 {
			unit := g.in[:n:n]
			g.in = g.in[n:]
			if unit[0] != '$' && g.onRequest != nil {
				handled, err := g.onRequest(unit)
				if err != nil {
					g.fail(err)
					return 0, err
				}
				if handled {
					continue
				}
			}
			g.out = unit
			break
		}
		g.mu.Lock()
		on := g.streamOn
		g.mu.Unlock()
		if !on {
			_ = g.Conn.SetReadDeadline(time.Now().Add(g.idle))
		}
		n, err = g.Conn.Read(g.buf)
		if n > 0 {
			if len(g.in) == 0 {
				g.in = g.in[:0:0] // let the consumed prefix go
			}
			g.in = append(g.in, g.buf[:n]...)
			continue
		}
		if err != nil {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

func (g *guard) fail(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

// writeDirect writes a response of the plugin's own, after any write of
// lal's under way (not through lal's write queue, nor the write hooks).
func (g *guard) writeDirect(b []byte) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	_, err := g.Conn.Write(b)
	return err
}

func (g *guard) Write(b []byte) (int, error) {
	if g.beforeWrite != nil {
		if err := g.beforeWrite(b); err != nil {
			g.mu.Lock()
			g.err = err
			g.mu.Unlock()
			_ = g.Conn.Close()
			return 0, err
		}
	}
	g.wmu.Lock()
	n, err := g.Conn.Write(b)
	g.wmu.Unlock()
	if g.onWrite != nil && n > 0 {
		g.onWrite(b[:n])
	}
	return n, err
}
