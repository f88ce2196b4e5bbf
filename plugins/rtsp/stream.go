package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/remux"
	"github.com/q191201771/lal/pkg/rtprtcp"
	"github.com/q191201771/lal/pkg/sdp"

	"github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// Bounds of a stream's RTP GOP cache and of a UDP player's backlog.
const (
	gopMaxBytes   = 32 << 20
	udpQueueMax   = 2048 // frames (about 30 s of 25 fps video with AAC)
	sinkMaxBytes  = 16 << 20
	sinkMaxDur    = 10 * time.Second
	sinkWriteWait = 10 * time.Second
)

// rtpFrame is one frame of the stream as RTP packets, shared read-only by
// every player.
type rtpFrame struct {
	pkts  []rtprtcp.RtpPacket
	video bool
	key   bool
	ts    time.Duration
	size  int
}

// chans are a TCP player's interleaved RTP and RTCP channels (-1: track
// not set up).
type chans struct{ video, videoRTCP, audio, audioRTCP int }

// rtspStream is one hub stream as RTSP players get it: one live-tap
// reader, one lal RTMP-to-RTSP remuxer (so one SDP, one SSRC and sequence
// per track) and one RTP GOP cache per stream, whatever the number of
// players. TCP players of the same interleaved channels share a fan-out
// group: each frame is framed once per group and written to all of them
// with one write per merge window; UDP players each get the shared
// packets through a bounded queue that lal's session sends.
type rtspStream struct {
	s   *Server
	key string
	ref sdk.StreamRef
	log hclog.Logger

	ready  chan struct{} // closed when sdp (or err) is set
	err    error
	sdpRaw []byte
	sdpCtx sdp.LogicContext
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex // guards what follows, and the pushes with the joins
	rmx      *remux.Rtmp2RtspRemuxer
	cur      []rtprtcp.RtpPacket // packets of the message being fed
	gop      []*rtpFrame
	gopBytes int
	sawVideo bool
	clock    senderClock // RTCP sender reports
	groups   map[chans]*fanout.Group
	udp      map[*conn]*frameQueue
	players  map[*conn]bool
	ended    bool
}

// stream returns the shared stream of ref, started by its first player;
// the caller is counted as a player of it until release.
func (s *Server) stream(c *conn, ref sdk.StreamRef) *rtspStream {
	key := ref.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[key]; st != nil {
		st.mu.Lock()
		if !st.ended {
			st.players[c] = true
			st.mu.Unlock()
			return st
		}
		st.mu.Unlock()
	}
	st := &rtspStream{
		s: s, key: key, ref: ref, log: s.log.With("stream", key), ready: make(chan struct{}),
		groups: map[chans]*fanout.Group{}, udp: map[*conn]*frameQueue{}, players: map[*conn]bool{c: true},
	}
	st.ctx, st.cancel = context.WithCancel(s.ctx)
	s.streams[key] = st
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		st.run(c.info)
	}()
	return st
}

// release ends c's part in the stream; the last player stops it.
func (st *rtspStream) release(c *conn) {
	st.mu.Lock()
	delete(st.players, c)
	delete(st.udp, c)
	last := len(st.players) == 0
	if last {
		st.ended = true
	}
	st.mu.Unlock()
	if last {
		st.stop()
	}
}

func (st *rtspStream) stop() {
	st.cancel()
	st.s.mu.Lock()
	if st.s.streams[st.key] == st {
		delete(st.s.streams, st.key)
	}
	st.s.mu.Unlock()
}

// wait returns the stream's SDP once known.
func (st *rtspStream) wait(ctx context.Context) ([]byte, error) {
	select {
	case <-st.ready:
		return st.sdpRaw, st.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (st *rtspStream) run(client sdk.ClientInfo) {
	readyOnce := sync.Once{}
	fail := func(err error) {
		readyOnce.Do(func() {
			st.err = err
			close(st.ready)
		})
	}
	defer func() {
		if r := recover(); r != nil {
			st.log.Error("panic in the rtsp stream, ending it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			fail(errors.New("internal error"))
			st.end("internal error")
		}
	}()
	cfg := st.s.cfg.Load()
	wctx, wcancel := context.WithTimeout(st.ctx, cfg.PlayWait.Std()+hookTimeout)
	src, err := st.s.tap.Pull(wctx, st.ref, live.Options{
		Client: client, Subscribe: sdk.SubscribeOptions{Wait: cfg.PlayWait.Std()},
		GopCache: true, GopMaxFrames: live.DefaultGopMaxFrames,
	}, st.log)
	wcancel()
	if err != nil {
		fail(err)
		st.end("")
		return
	}
	defer src.Close()
	st.mu.Lock()
	st.rmx = remux.NewRtmp2RtspRemuxer(func(ctx sdp.LogicContext) {
		st.sdpCtx, st.sdpRaw = ctx, ctx.RawSdp
	}, func(pkt rtprtcp.RtpPacket) {
		st.cur = append(st.cur, pkt)
	})
	st.mu.Unlock()
	// The stream's configs and GOP come first: lal's remuxer waits for the
	// H.264/H.265 parameter sets and the AAC config (or 16 frames of a
	// stream that lacks one) before it has an SDP. The frames it replays
	// then are dropped: the GOP cache starts at the next keyframe.
	var buf []byte
	var cfgs configs
	n := 0
	for {
		p, err := src.Read(st.ctx)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				fail(fmt.Errorf("stream %s ended before its sdp", st.key))
				st.end("stream ended")
			case st.ctx.Err() != nil:
				fail(st.ctx.Err())
				st.end("")
			default:
				fail(err)
				st.end("play: " + err.Error())
			}
			return
		}
		if cfgs.changed(p) {
			// The SDP (the parameter sets, the AAC config) is the stream's
			// and lal's remuxer keeps its first: the players reconnect and
			// get a new one.
			st.log.Info("codec configuration changed, rtsp players of the stream closed")
			st.end("codec configuration changed: reconnect for the new sdp")
			return
		}
		var msg base.RtmpMsg
		var ok bool
		msg, buf, ok = rtmpMsg(buf, p)
		if !ok {
			continue
		}
		st.mu.Lock()
		had := st.sdpRaw != nil
		st.cur = st.cur[:0]
		st.rmx.FeedRtmpMsg(msg)
		if st.sdpRaw != nil && !had {
			st.cur = nil
			readyOnce.Do(func() { close(st.ready) })
			st.log.Debug("rtsp stream described")
		} else if had && len(st.cur) > 0 {
			st.pushLocked(&rtpFrame{
				pkts: st.cur, video: p.Kind == media.KindVideo, key: p.Kind == media.KindVideo && p.Flags&media.FlagKey != 0,
				ts: p.DTS, size: frameSize(st.cur),
			})
			st.cur = nil
		}
		st.mu.Unlock()
		if n++; st.sdpRaw == nil && n > 4096 {
			fail(fmt.Errorf("stream %s: no sdp after 4096 packets", st.key))
			st.end("no sdp")
			return
		}
	}
}

func frameSize(ps []rtprtcp.RtpPacket) int {
	n := 0
	for _, p := range ps {
		n += len(p.Raw) + 4
	}
	return n
}

// pushLocked caches f (the GOP from a keyframe on; an audio-only stream's
// last frames) and hands it to every player.
func (st *rtspStream) pushLocked(f *rtpFrame) {
	now := time.Now()
	st.clock.count(f, now)
	if f.video {
		st.sawVideo = true
	}
	switch {
	case f.key:
		st.gop, st.gopBytes = st.gop[:0:0], 0
		st.gop, st.gopBytes = append(st.gop, f), f.size
	case st.sawVideo && len(st.gop) == 0:
		// no keyframe yet: nothing a player could start from
	case len(st.gop) >= live.DefaultGopMaxFrames || st.gopBytes+f.size > gopMaxBytes:
		st.gop, st.gopBytes = nil, 0 // as SRS: cleared until the next keyframe
	default:
		st.gop, st.gopBytes = append(st.gop, f), st.gopBytes+f.size
		if !st.sawVideo && len(st.gop) > 64 {
			st.gopBytes -= st.gop[0].size
			st.gop = st.gop[1:]
		}
	}
	sr := now.Sub(st.clock.lastSR) >= srInterval
	if sr {
		st.clock.lastSR = now
	}
	for ch, g := range st.groups {
		if b := frame(f, ch, st.sdpCtx); len(b) > 0 {
			g.Push(fanout.Item{B: b, TS: f.ts, Timed: true, Video: f.video, Key: f.key})
		}
		if sr {
			if b := st.clock.reports(ch, st.sdpCtx, now); len(b) > 0 {
				g.Push(fanout.Item{B: b})
			}
		}
	}
	for _, q := range st.udp {
		q.push(f)
	}
}

// frame is f as interleaved binary data (RFC 2326 §10.12) on ch's
// channels.
func frame(f *rtpFrame, ch chans, sd sdp.LogicContext) []byte {
	b := make([]byte, 0, f.size)
	for _, p := range f.pkts {
		c := ch.audio
		if sd.IsVideoPayloadTypeOrigin(int(p.Header.PacketType)) {
			c = ch.video
		}
		if c < 0 {
			continue
		}
		b = append(b, '$', byte(c), byte(len(p.Raw)>>8), byte(len(p.Raw)))
		b = append(b, p.Raw...)
	}
	return b
}

// joinTCP makes the connection's sink a member of its channels' group,
// starting with the GOP cache (or at the next keyframe without one).
func (st *rtspStream) joinTCP(ch chans, sink *fanout.Sink) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return errors.New("stream ended")
	}
	g := st.groups[ch]
	if g == nil {
		g = fanout.NewGroup(st.s.cfg.Load().mwLatency(st.ref.Vhost))
		st.groups[ch] = g
	}
	var init [][]byte
	for _, f := range st.gop {
		if b := frame(f, ch, st.sdpCtx); len(b) > 0 {
			init = append(init, b)
		}
	}
	// Sender reports at once: the client's clocks are set from the start.
	if b := st.clock.reports(ch, st.sdpCtx, time.Now()); len(b) > 0 {
		init = append(init, b)
	}
	g.Add(sink, init, len(st.gop) == 0 && st.sawVideo)
	return nil
}

// leaveTCP takes the sink out of its group; an empty group goes.
func (st *rtspStream) leaveTCP(ch chans, sink *fanout.Sink) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if g := st.groups[ch]; g != nil {
		g.Remove(sink)
		if g.Len() == 0 {
			g.Close()
			delete(st.groups, ch)
		}
	}
}

// joinUDP gives c a queue of the stream's frames, from the GOP cache on.
func (st *rtspStream) joinUDP(c *conn) (*frameQueue, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return nil, errors.New("stream ended")
	}
	q := newFrameQueue(udpQueueMax)
	q.waitKey = len(st.gop) == 0 && st.sawVideo
	for _, f := range st.gop {
		q.push(f)
	}
	st.udp[c] = q
	return q, nil
}

// end closes every player of the stream with reason ("" when the plugin
// stops or the players left).
func (st *rtspStream) end(reason string) {
	st.mu.Lock()
	st.ended = true
	ps := make([]*conn, 0, len(st.players))
	for c := range st.players {
		ps = append(ps, c)
	}
	for _, g := range st.groups {
		g.Close()
	}
	for _, q := range st.udp {
		q.close()
	}
	st.mu.Unlock()
	st.stop()
	if reason != "" {
		for _, c := range ps {
			c.close(reason)
		}
	}
}

// frameQueue is a UDP player's backlog of shared frames, bounded: past
// max it is cleared and restarts at the next keyframe.
type frameQueue struct {
	mu      sync.Mutex
	frames  []*rtpFrame
	max     int
	waitKey bool
	dropped int
	closed  bool
	signal  chan struct{}
}

func newFrameQueue(max int) *frameQueue {
	return &frameQueue{max: max, signal: make(chan struct{}, 1)}
}

func (q *frameQueue) push(f *rtpFrame) {
	q.mu.Lock()
	if q.waitKey && f.video {
		if !f.key {
			q.mu.Unlock()
			return
		}
		q.waitKey = false
	}
	if len(q.frames) >= q.max {
		q.dropped += len(q.frames)
		q.frames, q.waitKey = nil, true
		q.mu.Unlock()
		return
	}
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *frameQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// next returns the queued frames (and how many were dropped since the
// last call), waiting for some; io.EOF once closed.
func (q *frameQueue) next(ctx context.Context) ([]*rtpFrame, int, error) {
	for {
		q.mu.Lock()
		fs, dropped, closed := q.frames, q.dropped, q.closed
		q.frames, q.dropped = nil, 0
		q.mu.Unlock()
		if len(fs) > 0 || dropped > 0 {
			return fs, dropped, nil
		}
		if closed {
			return nil, 0, io.EOF
		}
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// configs are the codec configurations a stream's SDP was made from.
type configs struct{ video, audio []byte }

// changed notes p's configuration and reports one that differs from the
// first of its kind (a repeated one is not a change).
func (k *configs) changed(p media.Packet) bool {
	if p.Flags&media.FlagConfig == 0 {
		return false
	}
	var cur *[]byte
	switch p.Kind {
	case media.KindVideo:
		cur = &k.video
	case media.KindAudio:
		cur = &k.audio
	default:
		return false
	}
	if *cur == nil {
		*cur = append([]byte{}, p.Payload...)
		return false
	}
	return !bytes.Equal(*cur, p.Payload)
}
