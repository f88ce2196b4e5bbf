package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// flvPull is a minimal HTTP-FLV player: it reads tags into one reused
// buffer. lal's httpflv.PullSession allocates a new buffer for every tag;
// with thousands of players on the machine under test, that garbage made
// the load tool, not the server, the bottleneck. It sends the same request
// as lal's client (HTTP/1.0, so no chunked encoding is needed, but chunked
// is read if a server sends it anyway).
type flvPull struct {
	conn net.Conn
	done chan error
}

func dialFLV(ctx context.Context, rawURL string, onTag func(typ uint8, payload []byte)) (*flvPull, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return nil, fmt.Errorf("http-flv url %q: want http://host:port/path", rawURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.0\r\nHost: " + u.Host + "\r\nUser-Agent: rill-bench\r\nAccept: */*\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 64<<10)
	status, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("http-flv %s: %w", rawURL, err)
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		c.Close()
		return nil, fmt.Errorf("http-flv %s: %s", rawURL, strings.TrimSpace(status))
	}
	chunked := false
	for n := 0; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil || n > 100 {
			c.Close()
			return nil, fmt.Errorf("http-flv %s: bad response header", rawURL)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Transfer-Encoding") &&
			strings.Contains(strings.ToLower(v), "chunked") {
			chunked = true
		}
	}
	_ = c.SetDeadline(time.Time{})
	var r io.Reader = br
	if chunked {
		r = bufio.NewReaderSize(httputil.NewChunkedReader(br), 64<<10)
	}
	p := &flvPull{conn: c, done: make(chan error, 1)}
	go func() { p.done <- readFLV(r, onTag) }()
	return p, nil
}

// readFLV reads the FLV header and then tags until an error (Adobe FLV
// spec v10.1 §E.2-E.4).
func readFLV(r io.Reader, onTag func(typ uint8, payload []byte)) error {
	var h [13]byte
	if _, err := io.ReadFull(r, h[:9]); err != nil {
		return err
	}
	if string(h[:3]) != "FLV" {
		return fmt.Errorf("not FLV")
	}
	skip := int64(binary.BigEndian.Uint32(h[5:9])) - 9 + 4 // rest of the header, PreviousTagSize0
	if skip < 0 || skip > 1<<20 {
		return fmt.Errorf("bad FLV header")
	}
	if _, err := io.CopyN(io.Discard, r, skip); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(r, h[:11]); err != nil {
			return err
		}
		n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if n+4 > len(buf) {
			buf = make([]byte, n+4)
		}
		if _, err := io.ReadFull(r, buf[:n+4]); err != nil {
			return err
		}
		onTag(h[0]&0x1f, buf[:n])
	}
}

func (p *flvPull) close() { p.conn.Close() }
