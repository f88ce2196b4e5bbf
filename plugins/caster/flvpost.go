package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
)

type connKey struct{}

// newHTTPServer serves FLV over HTTP POST (SRS's flv caster): POST
// /app/stream.flv with an FLV body, usually chunked, that lasts as long as
// the publish.
func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.servePOST),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		BaseContext: func(net.Listener) context.Context { return s.ctx },
	}
}

// splitFLVPath splits /app/stream.flv; app may have several segments.
func splitFLVPath(p string) (app, stream string, err error) {
	p = strings.TrimPrefix(p, "/")
	if !strings.HasSuffix(p, ".flv") {
		return "", "", fmt.Errorf("path %q does not end in .flv", p)
	}
	p = strings.TrimSuffix(p, ".flv")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 || i == len(p)-1 {
		return "", "", fmt.Errorf("path %q is not /app/stream.flv", p)
	}
	return p[:i], p[i+1:], nil
}

func (s *Server) servePOST(w http.ResponseWriter, r *http.Request) {
	remote := r.RemoteAddr
	ip := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		ip = h
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the flv caster takes POST /app/stream.flv", http.StatusMethodNotAllowed)
		return
	}
	cfg := s.cfg.Load()
	app, stream, err := splitFLVPath(r.URL.Path)
	var o output
	if err == nil {
		o, _ = parseOutput(cfg.FLVOutput) // validated by Configure
		o, err = o.resolve(app, stream)
	}
	if err != nil {
		s.refused.Add(1)
		s.log.Warn("flv caster request refused", "remote_addr", remote, "path", r.URL.Path, "error", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref := cfg.ref(o, r.URL.RawQuery)
	nc, _ := r.Context().Value(connKey{}).(net.Conn)
	closer := func() {}
	if nc != nil {
		closer = func() { _ = nc.Close() }
	}
	c := newClient(s, typeFLV, ip, remote, ref, "http://"+r.Host+r.URL.RequestURI(), closer)
	if err := c.begin(); err != nil {
		c.finish(err)
		code := http.StatusForbidden
		switch {
		case errors.Is(err, sdk.ErrStreamBusy):
			code = http.StatusConflict
		case errors.Is(err, sdk.ErrInvalid):
			code = http.StatusBadRequest
		case errors.Is(err, sdk.ErrUnavailable):
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Connection", "close")
		http.Error(w, err.Error(), code)
		return
	}
	err = s.readFLV(c, w, r.Body, cfg)
	c.finish(err)
	w.Header().Set("Connection", "close")
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"code":0}`)
	case errors.Is(err, errMalformed), errors.Is(err, errTruncated):
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// readFLV publishes the tags of body until it ends, breaks the format,
// stays silent for publish_timeout or the client is closed.
func (s *Server) readFLV(c *client, w http.ResponseWriter, body io.Reader, cfg *config) error {
	rc := http.NewResponseController(w)
	timeout := cfg.PublishTimeout.Std()
	fr := newFLVReader(body, cfg.MaxTagSize)
	deadline := func() { _ = rc.SetReadDeadline(time.Now().Add(timeout)) }
	wrap := func(err error) error {
		select {
		case <-c.done:
			return errors.New(c.closedReason())
		default:
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("timeout: no data for %s", timeout)
		}
		return err
	}
	deadline()
	if err := fr.ReadHeader(); err != nil {
		c.recvBytes.Store(fr.Bytes)
		return wrap(err)
	}
	unsupported := map[string]bool{}
	for {
		deadline()
		typ, ts, b, err := fr.Next()
		c.recvBytes.Store(fr.Bytes)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return wrap(err)
		}
		p, err := flv.FromTag(typ, ts, b)
		switch {
		case errors.Is(err, flv.ErrSkip):
			continue
		case errors.Is(err, flv.ErrUnsupported):
			if k := err.Error(); !unsupported[k] {
				unsupported[k] = true
				c.log.Warn("flv tag dropped", "stream", c.ref.Key(), "error", err)
			}
			continue
		case err != nil:
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		if err := c.write(p); err != nil {
			return wrap(err)
		}
	}
}
