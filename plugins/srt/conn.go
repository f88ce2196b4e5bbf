package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/tsdemux"
	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// conn is one SRT caller, from its handshake request to its close.
type conn struct {
	s       *Server
	req     srt.ConnRequest
	id      string
	log     hclog.Logger
	cfg     *config
	started time.Time

	sendBytes atomic.Uint64
	recvBytes atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	reason    atomic.Value // string

	mu   sync.Mutex // guards the fields below
	sc   srt.Conn   // nil until accepted
	info sdk.ClientInfo
	ref  sdk.StreamRef
	mode mode
	url  string
	// reported: the client is in the API (accepted and told to the core).
	reported  bool
	connected bool // ClientConnected succeeded: ClientClosed is due
	playing   bool // Play succeeded: PlayStopped is due
	pub       *sdk.Publication
}

func newConn(s *Server, req srt.ConnRequest) *conn {
	id := sdk.NewClientID()
	addr := req.RemoteAddr().String()
	ip := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		ip = h
	}
	return &conn{
		s: s, req: req, id: id, cfg: s.cfg.Load(), started: time.Now(), done: make(chan struct{}),
		log:  s.log.With("client_id", id, "remote_addr", addr),
		info: sdk.ClientInfo{ID: id, IP: ip},
	}
}

// close ends the connection once, logging reason.
func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.reason.Store(reason)
		close(c.done)
		c.mu.Lock()
		sc := c.sc
		c.mu.Unlock()
		if sc != nil {
			_ = sc.Close()
		}
	})
}

func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in srt connection, closing it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.close("internal error")
		}
		c.cleanup()
	}()
	err := c.run()
	c.close(errReason(err))
	reason, _ := c.reason.Load().(string)
	level := hclog.Info
	if errors.Is(err, tsdemux.ErrMalformed) {
		level = hclog.Warn
	}
	c.mu.Lock()
	accepted := c.sc != nil
	c.mu.Unlock()
	if !accepted {
		return // refusals are logged where they happen
	}
	c.log.Log(level, "connection closed", "reason", reason, "duration", time.Since(c.started).Round(time.Millisecond).String(),
		"send_bytes", c.sendBytes.Load(), "recv_bytes", c.recvBytes.Load())
}

func errReason(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return "closed by peer"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return err.Error()
}

// refuse rejects the handshake with reason and logs why.
func (c *conn) refuse(reason srt.RejectionReason, msg string, args ...any) error {
	c.req.Reject(reason)
	c.s.rejected.Add(1)
	c.log.Warn("srt caller refused: "+msg, append(args, "streamid", c.req.StreamId(), "rejection", uint32(reason))...)
	return fmt.Errorf("refused: %s", msg)
}

// run authorises the caller, accepts it and serves it.
func (c *conn) run() error {
	if c.req.Version() < 5 {
		return c.refuse(srt.REJ_VERSION, "handshake version 4 carries no stream id")
	}
	sid, err := parseStreamID(c.req.StreamId(), c.cfg.DefaultApp)
	if err != nil {
		return c.refuse(srt.REJX_BAD_REQUEST, "bad stream id", "error", err)
	}
	vhost, enabled := c.cfg.vhost(sid.Vhost)
	if !enabled {
		return c.refuse(srt.REJX_FORBIDDEN, "srt is not enabled in the vhost", "vhost", vhost)
	}
	// Encryption: a passphrase in the config is mandatory for every caller;
	// without one, encrypted callers are refused.
	sec := c.cfg.security(vhost)
	switch {
	case sec.Passphrase == "" && c.req.IsEncrypted():
		return c.refuse(srt.REJ_UNSECURE, "caller encrypts but no passphrase is configured", "vhost", vhost)
	case sec.Passphrase != "" && !c.req.IsEncrypted():
		return c.refuse(srt.REJ_UNSECURE, "caller does not encrypt but a passphrase is configured", "vhost", vhost)
	case sec.Passphrase != "":
		if sec.PBKeyLen != 0 {
			n, ok := callerKeyLen(c.req)
			if !ok {
				return c.refuse(srt.REJ_UNSECURE, "pbkeylen is configured but the caller's key length cannot be read", "vhost", vhost, "pbkeylen", sec.PBKeyLen)
			}
			if n != sec.PBKeyLen {
				return c.refuse(srt.REJ_UNSECURE, fmt.Sprintf("caller uses a %d-byte key, the vhost wants pbkeylen %d", n, sec.PBKeyLen),
					"vhost", vhost, "pbkeylen", sec.PBKeyLen, "caller_pbkeylen", n)
			}
		}
		if err := c.req.SetPassphrase(sec.Passphrase); err != nil {
			return c.refuse(srt.REJ_BADSECRET, "wrong passphrase", "vhost", vhost, "error", err)
		}
	}
	ref := sdk.StreamRef{Vhost: vhost, App: sid.App, Stream: sid.Stream}
	if sid.Params != "" {
		ref.Param = "?" + sid.Params
	}
	ref.TcURL = "srt://" + vhost + "/" + sid.App
	typ := "srt-play"
	if sid.Mode == modePublish {
		typ = "srt-publish"
	}
	c.mu.Lock()
	c.info.Type = typ
	c.ref = ref
	c.mode = sid.Mode
	c.url = ref.TcURL + "/" + sid.Stream + ref.Param
	info := c.info
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	err = c.s.rt.Host.ClientConnected(ctx, info, sdk.StreamRef{Vhost: ref.Vhost, App: ref.App, Param: ref.Param, TcURL: ref.TcURL})
	cancel()
	if errors.Is(err, sdk.ErrForbidden) {
		return c.refuse(srt.REJX_UNAUTHORIZED, "on_connect refused", "error", err)
	} else if err != nil {
		c.log.Debug("report client connected", "error", err)
	} else {
		c.mu.Lock()
		c.connected = true
		c.mu.Unlock()
	}
	if sid.Mode == modePublish {
		return c.publish(ref)
	}
	return c.play(ref)
}

func rejection(err error) srt.RejectionReason {
	switch {
	case errors.Is(err, sdk.ErrStreamBusy):
		return srt.REJX_CONFLICT
	case errors.Is(err, sdk.ErrForbidden):
		return srt.REJX_FORBIDDEN
	case errors.Is(err, sdk.ErrInvalid):
		return srt.REJX_BAD_REQUEST
	case errors.Is(err, sdk.ErrUnavailable):
		return srt.REJX_DOWN
	}
	return srt.REJX_ISE
}

func (c *conn) accept() (srt.Conn, error) {
	sc, err := c.req.Accept()
	if err != nil {
		return nil, fmt.Errorf("srt accept: %w", err)
	}
	c.mu.Lock()
	c.sc = sc
	c.reported = true
	c.mu.Unlock()
	select {
	case <-c.done: // kicked or stopping during the handshake
		_ = sc.Close()
		return nil, net.ErrClosed
	default:
	}
	return sc, nil
}

func (c *conn) publish(ref sdk.StreamRef) error {
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	pub, err := c.s.rt.Host.Publish(ctx, c.info, ref)
	cancel()
	if err != nil {
		return c.refuse(rejection(err), "publish refused", "stream", ref.Key(), "error", err)
	}
	c.mu.Lock()
	c.pub = pub
	c.mu.Unlock()
	sc, err := c.accept()
	if err != nil {
		return err
	}
	c.log.Info("publish started", "stream", ref.Key(), "type", "srt-publish", "param", ref.Param, "stream_id", pub.StreamID)
	dm := tsdemux.New(pub.Write)
	defer c.logWarnings(dm)
	// gosrt's read deadlines do nothing: a timer cuts a silent publisher.
	timeout := c.cfg.PublishTimeout.Std()
	idle := time.AfterFunc(timeout, func() { c.close(fmt.Sprintf("timeout: no data for %s", timeout)) })
	defer idle.Stop()
	buf := make([]byte, 64<<10)
	for {
		n, err := sc.Read(buf)
		idle.Reset(timeout)
		if n > 0 {
			c.recvBytes.Add(uint64(n))
			if err := dm.Feed(buf[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			// The input ended: hand on what the interleaver still holds.
			if ferr := dm.Flush(); ferr != nil {
				return ferr
			}
			return err
		}
	}
}

// logWarnings logs the tolerated problems of the stream once, at the end.
func (c *conn) logWarnings(dm *tsdemux.Demuxer) {
	if len(dm.Warnings()) == 0 {
		return
	}
	args := make([]any, 0, 2*len(dm.Warnings()))
	for k, v := range dm.Warnings() {
		args = append(args, strings.ReplaceAll(k, " ", "_"), v)
	}
	c.log.Info("mpeg-ts problems tolerated", args...)
}

func (c *conn) play(ref sdk.StreamRef) error {
	ctx, cancel := context.WithTimeout(context.Background(), hookTimeout)
	err := c.s.rt.Host.Play(ctx, c.info, ref)
	cancel()
	if err != nil {
		return c.refuse(rejection(err), "play refused", "stream", ref.Key(), "error", err)
	}
	c.mu.Lock()
	c.playing = true
	c.mu.Unlock()
	sc, err := c.accept()
	if err != nil {
		return err
	}
	ctx, cancelRead := context.WithCancel(context.Background())
	defer cancelRead()
	go func() {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
		cancelRead()
	}()
	src, err := c.s.openSource(ctx, c.info, ref)
	if err != nil {
		return fmt.Errorf("play %s: %w", ref.Key(), err)
	}
	defer src.Close()
	c.log.Info("play started", "stream", ref.Key(), "param", ref.Param)
	// A player only reads; a caller that sends data is ignored, but its
	// close must end the play: read until the connection fails.
	go func() {
		b := make([]byte, 1500)
		for {
			if _, err := sc.Read(b); err != nil {
				cancelRead()
				return
			}
		}
	}()
	w := &tsWriter{sc: sc, sent: &c.sendBytes}
	return feedPlayer(ctx, src, w)
}

// tsWriter sends TS bytes to an SRT player.
type tsWriter struct {
	sc   io.Writer
	sent *atomic.Uint64
}

func (w *tsWriter) Write(b []byte) (int, error) {
	n, err := w.sc.Write(b)
	w.sent.Add(uint64(n))
	return n, err
}

// feedPlayer muxes src into w until the stream or the connection ends. The
// player starts at a video key frame (or at once for audio-only streams),
// with PAT and PMT first.
func feedPlayer(ctx context.Context, src source, w io.Writer) error {
	m := tsmux.New()
	var video, audio media.Codec
	started := false
	var out []byte
	for {
		p, err := src.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return net.ErrClosed
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if p.Kind == media.KindData {
			continue
		}
		if p.IsConfig() {
			if p.Kind == media.KindVideo {
				video = p.Codec
			} else {
				audio = p.Codec
			}
			m.DeclareCodecs(video, audio)
		}
		if !p.IsConfig() && !started {
			switch {
			case p.Kind == media.KindVideo && p.IsKey():
				started = true
			case p.Kind == media.KindAudio && video == 0:
				started = true // audio only
			default:
				continue
			}
		}
		out, err = m.AppendPacket(out[:0], p)
		if err != nil {
			if errors.Is(err, tsmux.ErrUnsupported) || errors.Is(err, tsmux.ErrMalformed) {
				continue
			}
			return err
		}
		if len(out) == 0 {
			continue
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
}

// cleanup ends the publication and reports the end of the client.
func (c *conn) cleanup() {
	c.mu.Lock()
	pub, info, ref := c.pub, c.info, c.ref
	c.pub = nil
	playing, connected, reported := c.playing, c.connected, c.reported
	c.playing, c.connected = false, false
	c.mu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			c.log.Warn("unpublish", "stream", ref.Key(), "error", err)
		}
		if reported {
			c.log.Info("publish stopped", "stream", ref.Key())
		}
	}
	if playing {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.s.rt.Host.PlayStopped(ctx, info, ref); err != nil {
			c.log.Debug("report play stopped", "error", err)
		}
		cancel()
		if reported {
			c.log.Info("play stopped", "stream", ref.Key())
		}
	}
	if connected {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.s.rt.Host.ClientClosed(ctx, info, ref, c.sendBytes.Load(), c.recvBytes.Load()); err != nil {
			c.log.Debug("report client closed", "error", err)
		}
	}
}

// stat reports an accepted client; ok is false during the handshake.
func (c *conn) stat() (sdk.ClientStat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reported {
		return sdk.ClientStat{}, false
	}
	return sdk.ClientStat{
		Client: c.info, Stream: c.ref, Publish: c.mode == modePublish, Alive: time.Since(c.started),
		SendBytes: c.sendBytes.Load(), RecvBytes: c.recvBytes.Load(), URL: c.url,
	}, true
}
