package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/rtprtcp"
	"github.com/q191201771/lal/pkg/rtsp"
	"github.com/q191201771/lal/pkg/sdp"

	"github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/wire"
)

// Client types, as the API and the callbacks show them.
const (
	typePublish = "rtsp-publish"
	typePlay    = "rtsp-play"
)

// conn is one RTSP connection: lal's command session over the guard, and
// the client it becomes at ANNOUNCE (publisher) or DESCRIBE (player).
type conn struct {
	s       *Server
	nc      net.Conn
	g       *guard
	cmd     *rtsp.ServerCommandSession
	id      string
	remote  string
	log     hclog.Logger
	started time.Time
	cfg     *config

	sent     atomic.Uint64
	recv     atomic.Uint64
	lastData atomic.Int64 // unix nanoseconds of the last RTP from a publisher

	started2 atomic.Bool // PLAY answered: the player gets RTP
	paused   atomic.Bool // PAUSE: the play loop drops the stream
	waitKey  atomic.Bool // resumed: video restarts at a keyframe
	// rmu guards playReady; not mu, which the play loop holds while lal
	// writes (and lal's writer goroutine calls wroteResponse).
	rmu sync.Mutex

	closeOnce sync.Once
	done      chan struct{}
	reason    atomic.Value // string

	mu        sync.Mutex
	info      sdk.ClientInfo
	ref       sdk.StreamRef
	url       string
	connected bool // ClientConnected succeeded: ClientClosed is due
	playing   bool // Play succeeded: PlayStopped is due
	player    bool // counted in the server's players
	pub       *sdk.Publication
	in        inConverter
	st        *rtspStream  // the player's shared stream
	ch        chans        // interleaved channels a TCP SETUP asked for
	udp       bool         // a SETUP asked for UDP: lal's session sends
	playAsked bool         // lal's PLAY came: the play loop is started
	sink      *fanout.Sink // a TCP player's socket in its stream's group
	sub       *rtsp.SubSession
	ps        *rtsp.PubSession // disposed at the end: it owns UDP sockets
	playReady chan struct{}    // guarded by rmu
	playCtx   context.Context
	playStop  context.CancelFunc
	user      string // the authenticated user (rtsp { auth })
	authFails int    // wrong credentials so far (lal's read goroutine only)
	failure   error  // why a callback refused, for the close line
	lalErr    string // the first error lal logged about the session
}

// lalError keeps the first error lal's session code logged (a bad SDP,
// a SETUP without a usable Transport, a PLAY without DESCRIBE): it is the
// reason of the close line when nothing else is.
func (c *conn) lalError(line string) {
	if i := strings.Index(line, "] "); i >= 0 {
		line = line[i+2:]
	}
	if i := strings.LastIndex(line, " - "); i >= 0 {
		line = line[:i]
	}
	c.mu.Lock()
	if c.lalErr == "" {
		c.lalErr = strings.TrimSpace(line)
	}
	c.mu.Unlock()
}

func newConn(s *Server, nc net.Conn) *conn {
	id := sdk.NewClientID()
	remote := nc.RemoteAddr().String()
	ip := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		ip = h
	}
	cfg := s.cfg.Load()
	c := &conn{
		s: s, nc: nc, id: id, remote: remote, started: time.Now(), cfg: cfg, done: make(chan struct{}),
		log:  s.log.With("client_id", id, "remote_addr", remote),
		info: sdk.ClientInfo{ID: id, IP: ip}, ch: chans{video: -1, videoRTCP: -1, audio: -1, audioRTCP: -1},
	}
	c.g = newGuard(nc, cfg.IdleTimeout.Std())
	c.g.onWrite = c.wroteResponse
	c.g.onRequest = c.onRequest
	c.g.beforeWrite = c.guardSetupResponse
	return c
}

// serverPortRE finds the RTCP port of a SETUP response's Transport header.
var serverPortRE = regexp.MustCompile(`(?i)server_port=(\d+)-(\d+)`)

// guardSetupResponse filters the RTCP socket lal bound for a SETUP over
// UDP before the response names its port (udpfilter_linux.go).
func (c *conn) guardSetupResponse(b []byte) error {
	if len(b) < 12 || string(b[:8]) != "RTSP/1.0" {
		return nil
	}
	m := serverPortRE.FindSubmatch(b)
	if m == nil {
		return nil
	}
	port, err := strconv.Atoi(string(m[2]))
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("setup response names a bad rtcp port %q", m[2])
	}
	n, err := guardRTCPPorts(map[int]bool{port: true})
	if err == nil && n == 0 {
		err = fmt.Errorf("no udp socket bound to port %d", port)
	}
	if err != nil {
		c.log.Error("rtsp over udp refused: cannot filter the rtcp socket", "port", port, "error", err)
		return fmt.Errorf("guard rtcp port %d: %w", port, err)
	}
	c.log.Debug("rtcp socket filtered", "port", port)
	return nil
}

// close ends the connection once with reason.
func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.reason.Store(reason)
		close(c.done)
		_ = c.nc.Close()
	})
}

func (c *conn) serve() {
	defer c.s.removeConn(c)
	c.cmd = rtsp.NewServerCommandSession(c, c.g, rtsp.ServerAuthConfig{}, false, "")
	c.s.mu.Lock()
	c.s.lalKeys[c.cmd.UniqueKey()] = c
	c.s.mu.Unlock()
	func() {
		defer func() {
			if r := recover(); r != nil {
				c.log.Error("panic in rtsp connection, closing it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				c.close("internal error")
			}
		}()
		_ = c.cmd.RunLoop()
	}()
	c.close("closed by peer")
	reason, _ := c.reason.Load().(string)
	level := hclog.Info
	c.mu.Lock()
	failure, lalErr := c.failure, c.lalErr
	c.mu.Unlock()
	switch {
	case c.g.Err() != nil:
		reason, level = c.g.Err().Error(), hclog.Warn
		c.s.malformed.Add(1)
	case reason != "closed by peer":
	case failure != nil:
		reason, level = failure.Error(), hclog.Warn
	case lalErr != "" && !strings.Contains(lalErr, "closed network connection") && !strings.Contains(lalErr, "EOF"):
		reason, level = "rtsp request failed: "+lalErr, hclog.Warn
	}
	c.cleanup()
	c.mu.Lock()
	typ, ref := c.info.Type, c.ref
	c.mu.Unlock()
	stream := ""
	if ref.Stream != "" {
		stream = ref.Key()
	}
	c.log.Log(level, "connection closed", "type", typ, "stream", stream, "reason", reason,
		"duration", time.Since(c.started).Round(time.Millisecond).String(), "send_bytes", c.sent.Load(), "recv_bytes", c.recv.Load())
}

// refuse records why a callback refused the client and says so.
func (c *conn) refuse(err error) error {
	c.s.refused.Add(1)
	c.mu.Lock()
	c.failure = err
	c.mu.Unlock()
	c.log.Warn("rtsp client refused", "stream", c.ref.Key(), "error", err)
	return err
}

// streamRef reads vhost/app/stream from an RTSP URL as SRS reads an RTMP
// one: the host is the vhost unless it is an IP or localhost; ?vhost= and
// ?domain= override it.
func (c *conn) streamRef(rawURL, app, stream, query string, publish bool) (sdk.StreamRef, error) {
	if !wire.ValidApp(app) || !wire.ValidName(stream) {
		return sdk.StreamRef{}, fmt.Errorf("%w: bad stream %q/%q in %q", sdk.ErrInvalid, app, stream, rawURL)
	}
	vhost := ""
	if u, err := url.Parse(rawURL); err == nil {
		if h := u.Hostname(); net.ParseIP(h) == nil && h != "localhost" {
			vhost = h
		}
	}
	q, _ := url.ParseQuery(query)
	if v := q.Get("vhost"); v != "" {
		vhost = v
	} else if v := q.Get("domain"); v != "" {
		vhost = v
	}
	vhost, ok := c.cfg.vhost(vhost)
	if !ok {
		return sdk.StreamRef{}, fmt.Errorf("%w: rtsp is disabled in vhost %q", sdk.ErrForbidden, vhost)
	}
	c.mu.Lock()
	user := c.user
	c.mu.Unlock()
	if c.cfg.authFor(vhost, publish) != nil && user == "" {
		// authorize resolves the vhost of the same URI: never reached.
		return sdk.StreamRef{}, fmt.Errorf("%w: vhost %q needs rtsp credentials", sdk.ErrForbidden, vhost)
	}
	if user != "" {
		query = withUser(query, user)
	}
	ref := sdk.StreamRef{Vhost: vhost, App: app, Stream: stream, TcURL: "rtsp://" + vhost + "/" + app}
	if query != "" {
		ref.Param = "?" + query
	}
	return ref, nil
}

// begin names the client and runs on_connect.
func (c *conn) begin(typ string, ref sdk.StreamRef, rawURL string) error {
	c.mu.Lock()
	c.info.Type, c.ref, c.url = typ, ref, rawURL
	info := c.info
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.s.ctx, hookTimeout)
	defer cancel()
	err := c.s.rt.Host.ClientConnected(ctx, info, sdk.StreamRef{Vhost: ref.Vhost, App: ref.App, Param: ref.Param, TcURL: ref.TcURL})
	switch {
	case errors.Is(err, sdk.ErrForbidden):
		return fmt.Errorf("on_connect refused: %w", err)
	case err != nil:
		c.log.Debug("report client connected", "error", err)
	default:
		c.mu.Lock()
		c.connected = true
		c.mu.Unlock()
	}
	return nil
}

// OnNewRtspPubSession is lal's ANNOUNCE: claim the stream.
func (c *conn) OnNewRtspPubSession(ps *rtsp.PubSession) error {
	ref, err := c.streamRef(ps.Url(), ps.AppName(), ps.StreamName(), ps.RawQuery(), true)
	if err != nil {
		return c.refuse(err)
	}
	// lal reads any body as an SDP (a track of payload type 0, G.711, by
	// default): a publisher needs an H.264/H.265 or AAC track with a control.
	sd := ps.GetSdp()
	video := sd.IsVideoUnpackable() && sd.HasVideoAControl()
	audio := sd.GetAudioPayloadTypeBase() == base.AvPacketPtAac && sd.Asc != nil && sd.HasAudioAControl()
	if !video && !audio {
		c.mu.Lock()
		c.ref = ref
		c.mu.Unlock()
		return c.refuse(fmt.Errorf("%w: the ANNOUNCE's sdp has no H.264, H.265 or AAC track", errMalformed))
	}
	if err := c.begin(typePublish, ref, ps.Url()); err != nil {
		return c.refuse(err)
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, hookTimeout)
	pub, err := c.s.rt.Host.Publish(ctx, c.info, ref)
	cancel()
	if err != nil {
		return c.refuse(err)
	}
	c.mu.Lock()
	c.pub = pub
	c.ps = ps
	c.in.setSDP(ps.GetSdp())
	c.mu.Unlock()
	c.lastData.Store(time.Now().UnixNano())
	c.g.streaming()
	c.s.mu.Lock()
	c.s.lalKeys[ps.UniqueKey()] = c
	c.s.mu.Unlock()
	ps.SetObserver(c)
	go c.watchIdle()
	c.log.Info("publish started", "stream", ref.Key(), "param", ref.Param, "stream_id", pub.StreamID)
	return nil
}

// watchIdle cuts a publisher that sends no RTP for idle_timeout, over UDP
// (the TCP connection stays quiet) or TCP.
func (c *conn) watchIdle() {
	timeout := c.cfg.IdleTimeout.Std()
	t := time.NewTicker(min(timeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, c.lastData.Load())) > timeout {
				c.close(fmt.Sprintf("timeout: no rtp for %s", timeout))
				return
			}
		}
	}
}

// OnSdp implements lal's IPubSessionObserver (the ANNOUNCE's SDP).
func (c *conn) OnSdp(ctx sdp.LogicContext) {
	c.mu.Lock()
	c.in.setSDP(ctx)
	c.mu.Unlock()
}

// OnRtpPacket implements lal's IPubSessionObserver: count what arrives.
func (c *conn) OnRtpPacket(pkt rtprtcp.RtpPacket) {
	c.recv.Add(uint64(len(pkt.Raw)))
	c.lastData.Store(time.Now().UnixNano())
}

// OnAvPacket implements lal's IPubSessionObserver: one frame to the hub.
// It runs on lal's goroutines (the connection's, or a UDP socket's).
func (c *conn) OnAvPacket(pkt base.AvPacket) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic converting an rtsp frame, closing the connection", "panic", fmt.Sprint(r))
			c.close("internal error")
		}
	}()
	c.mu.Lock()
	pub := c.pub
	err := error(nil)
	if pub != nil {
		err = c.in.convert(pkt, pub.Write)
	}
	c.mu.Unlock()
	if err != nil {
		c.close("write to the hub: " + err.Error())
	}
}

// OnNewRtspSubSessionDescribe is lal's DESCRIBE: authorise the player,
// open the stream and answer with its SDP.
func (c *conn) OnNewRtspSubSessionDescribe(ss *rtsp.SubSession) (bool, []byte) {
	ref, err := c.streamRef(ss.Url(), ss.AppName(), ss.StreamName(), ss.RawQuery(), false)
	if err != nil {
		_ = c.refuse(err)
		return false, nil
	}
	if err := c.begin(typePlay, ref, ss.Url()); err != nil {
		_ = c.refuse(err)
		return false, nil
	}
	if !c.s.addPlayer() {
		_ = c.refuse(fmt.Errorf("max_players %d reached", c.cfg.MaxPlayers))
		return false, nil
	}
	c.mu.Lock()
	c.player = true
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(c.s.ctx, hookTimeout)
	err = c.s.rt.Host.Play(ctx, c.info, ref)
	cancel()
	if err != nil {
		_ = c.refuse(err)
		return false, nil
	}
	c.mu.Lock()
	c.playing = true
	c.playCtx, c.playStop = context.WithCancel(c.s.ctx)
	pctx := c.playCtx
	c.mu.Unlock()
	go func() {
		select {
		case <-c.done:
		case <-pctx.Done():
		}
		c.playStop()
	}()
	st := c.s.stream(c, ref)
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	wctx, wcancel := context.WithTimeout(pctx, c.cfg.PlayWait.Std()+hookTimeout)
	defer wcancel()
	raw, err := st.wait(wctx)
	if err != nil {
		_ = c.refuse(fmt.Errorf("play %s: %w", ref.Key(), err))
		return false, nil
	}
	c.mu.Lock()
	c.sub = ss
	c.mu.Unlock()
	c.log.Info("play described", "stream", ref.Key(), "param", ref.Param)
	return true, raw
}

// noteSetup reads a player's SETUP before lal does: the interleaved
// channels of each track (the stream's frames are framed once per set of
// channels), or UDP.
func (c *conn) noteSetup(req *request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil || c.sub == nil {
		return // a publisher's, or lal refuses it
	}
	t := req.headers["transport"]
	if !strings.Contains(t, "interleaved=") {
		c.udp = true
		return
	}
	rtp, rtcp, err := parseInterleaved(t)
	if err != nil {
		return // the framer refused it already
	}
	switch {
	case c.st.sdpCtx.IsVideoUri(req.uri):
		c.ch.video, c.ch.videoRTCP = int(rtp), int(rtcp)
	case c.st.sdpCtx.IsAudioUri(req.uri):
		c.ch.audio, c.ch.audioRTCP = int(rtp), int(rtcp)
	}
}

// OnNewRtspSubSessionPlay is lal's PLAY: once lal has written the PLAY
// response, the play loop starts writing RTP.
func (c *conn) OnNewRtspSubSessionPlay(ss *rtsp.SubSession) error {
	c.mu.Lock()
	if c.st == nil || c.sub != ss {
		c.mu.Unlock()
		return c.refuse(errors.New("PLAY before a DESCRIBE that succeeded"))
	}
	again := c.playAsked
	c.playAsked = true
	c.mu.Unlock()
	if again {
		return nil // a PLAY before the first one's answer: lal answers it, one play loop
	}
	ready := make(chan struct{})
	c.rmu.Lock()
	c.playReady = ready
	c.rmu.Unlock()
	c.g.streaming()
	go c.playLoop(ready)
	return nil
}

// wroteResponse is the guard's write hook: the first response after
// PLAY's callback is PLAY's.
func (c *conn) wroteResponse(b []byte) {
	c.rmu.Lock()
	ready := c.playReady
	if ready != nil && len(b) >= 8 && string(b[:8]) == "RTSP/1.0" {
		c.playReady = nil
		close(ready)
	}
	c.rmu.Unlock()
}

func (c *conn) playLoop(ready chan struct{}) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in rtsp player, closing it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.close("internal error")
		}
	}()
	c.mu.Lock()
	ctx := c.playCtx
	c.mu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return
	case <-time.After(5 * time.Second):
		c.close("play response not written within 5s")
		return
	}
	c.mu.Lock()
	st, sub, ch, udp := c.st, c.sub, c.ch, c.udp
	c.mu.Unlock()
	if !udp && (ch.video >= 0 || ch.audio >= 0) {
		sink := fanout.NewSink(c.nc, fanout.SinkOptions{
			Lock: &c.g.wmu, MaxBytes: sinkMaxBytes, MaxDur: sinkMaxDur, WriteTimeout: sinkWriteWait, Sent: &c.sent,
			OnClose: func(why string) { c.close("play: " + why) },
		})
		c.mu.Lock()
		c.sink = sink
		c.mu.Unlock()
		c.started2.Store(true) // a PAUSE from now on pauses the sink
		if err := st.joinTCP(ch, sink); err != nil {
			c.close("play: " + err.Error())
			return
		}
		c.log.Info("play started", "stream", c.ref.Key(), "transport", "tcp")
		return
	}
	c.started2.Store(true)
	q, err := st.joinUDP(c)
	if err != nil {
		c.close("play: " + err.Error())
		return
	}
	c.log.Info("play started", "stream", c.ref.Key(), "transport", "udp")
	for {
		fs, dropped, err := q.next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.close("stream ended")
			}
			return
		}
		if dropped > 0 {
			c.log.Warn("player behind, skipping to the next keyframe", "frames", dropped)
		}
		for _, f := range fs {
			if c.paused.Load() {
				continue
			}
			if f.video && c.waitKey.Load() {
				if !f.key {
					continue
				}
				c.waitKey.Store(false)
			}
			for _, p := range f.pkts {
				sub.WriteRtpPacket(p)
				c.sent.Add(uint64(len(p.Raw)))
			}
		}
	}
}

// setPaused is PAUSE (true) and the PLAY that resumes (false, from the
// next keyframe).
func (c *conn) setPaused(paused bool) {
	c.mu.Lock()
	sink := c.sink
	if !paused {
		c.waitKey.Store(true)
	}
	c.paused.Store(paused)
	c.mu.Unlock()
	if sink != nil {
		sink.SetPaused(paused)
	}
}

// cleanup ends the publication or the play and reports the close.
func (c *conn) cleanup() {
	c.mu.Lock()
	pub, st, sink, ch, info, ref := c.pub, c.st, c.sink, c.ch, c.info, c.ref
	playing, connected, player := c.playing, c.connected, c.player
	c.pub, c.st, c.sink, c.playing, c.connected, c.player = nil, nil, nil, false, false, false
	stop := c.playStop
	ps, ss := c.ps, c.sub
	c.ps, c.sub = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	// lal's sessions own the UDP sockets of a UDP SETUP (and the command
	// session's connection, closed already): dispose them, as lal's own
	// server does after RunLoop.
	if ps != nil {
		_ = ps.Dispose()
	} else if ss != nil {
		_ = ss.Dispose()
	}
	if pub != nil {
		if err := pub.Close(); err != nil {
			c.log.Warn("unpublish", "stream", ref.Key(), "error", err)
		}
		c.log.Info("publish stopped", "stream", ref.Key())
	}
	if st != nil {
		if sink != nil {
			st.leaveTCP(ch, sink)
			sink.Close("connection closed")
		}
		st.release(c)
	}
	if player {
		c.s.removePlayer()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if playing {
		if err := c.s.rt.Host.PlayStopped(ctx, info, ref); err != nil {
			c.log.Debug("report play stopped", "error", err)
		}
		c.log.Info("play stopped", "stream", ref.Key())
	}
	if connected {
		if err := c.s.rt.Host.ClientClosed(ctx, info, ref, c.sent.Load(), c.recv.Load()); err != nil {
			c.log.Debug("report client closed", "error", err)
		}
	}
}

// stat reports a publisher or player; ok is false before ANNOUNCE or
// DESCRIBE succeeded.
func (c *conn) stat() (sdk.ClientStat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub == nil && !c.playing {
		return sdk.ClientStat{}, false
	}
	return sdk.ClientStat{
		Client: c.info, Stream: c.ref, Publish: c.pub != nil, Alive: time.Since(c.started),
		SendBytes: c.sent.Load(), RecvBytes: c.recv.Load(), URL: strings.TrimSpace(c.url),
	}, true
}
