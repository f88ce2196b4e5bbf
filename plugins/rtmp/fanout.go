package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/media/flv"
)

// Bounds of the fan-out's GOP cache besides gop_cache_max_frames.
const (
	maxGopBytes       = 64 << 20
	maxAudioOnlyCache = 64 // audio frames kept for audio-only streams
)

// outMsg is one message ready for the wire: its chunks are built once per
// stream and shared read-only by every player's queue.
type outMsg struct {
	data   []byte
	ts     int64 // ms on the players' timeline
	kind   media.Kind
	key    bool
	config bool
}

// fanout reads one stream from the hub once and feeds all of this process's
// players of it (DESIGN.md: one ring reader per stream per process).
type fanout struct {
	s      *Server
	key    string
	ref    sdk.StreamRef
	opts   vhostOptions
	chunk  int
	log    hclog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	client sdk.ClientInfo

	mu       sync.Mutex
	players  map[*player]struct{}
	closing  bool
	meta     *outMsg
	vseq     *outMsg
	aseq     *outMsg
	gop      []*outMsg
	gopBytes int
	sawVideo bool

	jit  jitter
	body []byte
}

// join adds c as a player of ref, creating the stream's fan-out if needed.
func (s *Server) join(c *conn, ref sdk.StreamRef, opts vhostOptions) *player {
	key := ref.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fanouts[key]
	if f == nil {
		ctx, cancel := context.WithCancel(s.ctx)
		f = &fanout{
			s: s, key: key, ref: ref, opts: opts, chunk: c.cfg.ChunkSize,
			log: s.log.With("stream", key), ctx: ctx, cancel: cancel,
			client: c.info, players: map[*player]struct{}{}, jit: jitter{mode: opts.Jitter},
		}
		s.fanouts[key] = f
		s.wg.Add(1)
		go f.run(time.Duration(c.cfg.PlayWait))
	}
	p := newPlayer(c, f)
	f.add(p)
	return p
}

func (f *fanout) add(p *player) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.players[p] = struct{}{}
	// A new player gets metadata and sequence headers first, then the GOP
	// cache (fast start) or the live edge from the next keyframe.
	for _, m := range []*outMsg{f.meta, f.vseq, f.aseq} {
		if m != nil {
			p.enqueue(m)
		}
	}
	if f.opts.GopCache && len(f.gop) > 0 {
		for _, m := range f.gop {
			p.enqueue(m)
		}
	} else if f.sawVideo {
		p.waitKey = true
	}
}

// leave removes p; the last player stops the fan-out and its subscription.
func (f *fanout) leave(p *player) {
	p.stop()
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.mu.Lock()
	delete(f.players, p)
	empty := len(f.players) == 0
	if empty {
		f.closing = true
	}
	f.mu.Unlock()
	if empty {
		if f.s.fanouts[f.key] == f {
			delete(f.s.fanouts, f.key)
		}
		f.cancel()
	}
}

func (f *fanout) run(wait time.Duration) {
	defer f.s.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("panic in rtmp fan-out, closing its players", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			f.finish("internal error", false)
		}
	}()
	sub, err := f.s.rt.Host.Subscribe(f.ctx, f.client, f.ref, sdk.SubscribeOptions{Wait: wait})
	if err != nil {
		if f.ctx.Err() == nil {
			f.log.Info("play refused", "error", err)
		}
		notFound := !errors.Is(err, sdk.ErrForbidden)
		f.finish(err.Error(), notFound)
		return
	}
	defer sub.Close()
	f.log.Debug("fan-out subscribed", "stream_id", sub.StreamID)
	for {
		pkt, err := sub.Read(f.ctx)
		if err != nil {
			switch {
			case f.ctx.Err() != nil:
				return // last player left
			case errors.Is(err, io.EOF):
				f.finish("stream unpublished", false)
			default:
				f.log.Warn("stream read failed", "error", err)
				f.finish("stream read failed", false)
			}
			return
		}
		f.deliver(pkt)
	}
}

// deliver turns a packet into shared chunks and queues them for every player.
func (f *fanout) deliver(pkt media.Packet) {
	config := pkt.IsConfig() || pkt.Kind == media.KindData
	dtsMs := int64(pkt.DTS / time.Millisecond)
	var ts int64
	switch {
	case pkt.Kind == media.KindData:
		// FFmpeg reads onMetaData as metadata only at timestamp 0; later
		// it makes a subtitle stream of it.
		ts = 0
	case config:
		ts = f.jit.current()
	default:
		ts = f.jit.correct(dtsMs)
	}
	out := pkt
	out.DTS = time.Duration(ts) * time.Millisecond
	out.PTS = out.DTS + (pkt.PTS - pkt.DTS)
	if out.PTS < 0 || pkt.Kind != media.KindVideo {
		out.PTS = out.DTS
	}
	body, typ, wireTS, err := flv.AppendTag(f.body[:0], out)
	if err != nil {
		f.log.Warn("packet dropped: cannot write it as rtmp", "packet", pkt.String(), "error", err)
		return
	}
	f.body = body
	csid := uint32(csidVideo)
	switch pkt.Kind {
	case media.KindAudio:
		csid = csidAudio
	case media.KindData:
		csid = csidData
	}
	data := make([]byte, 0, chunkedSize(csid, wireTS, len(body), f.chunk))
	data = appendChunks(data, csid, typ, msgStreamID, wireTS, body, f.chunk)
	m := &outMsg{data: data, ts: ts, kind: pkt.Kind, key: pkt.IsKey() && pkt.Kind == media.KindVideo, config: config}

	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case pkt.Kind == media.KindData:
		f.meta = m
	case pkt.IsConfig() && pkt.Kind == media.KindVideo:
		f.vseq = m
	case pkt.IsConfig():
		f.aseq = m
	default:
		f.cache(m)
	}
	for p := range f.players {
		p.enqueue(m)
	}
}

// cache keeps the GOP cache: from the last keyframe on, bounded by
// gop_cache_max_frames and bytes (SRS clears it on overflow).
func (f *fanout) cache(m *outMsg) {
	if !f.opts.GopCache {
		if m.kind == media.KindVideo {
			f.sawVideo = true
		}
		return
	}
	if m.kind == media.KindVideo {
		f.sawVideo = true
		if m.key {
			f.clearGop()
		}
	}
	if f.sawVideo && len(f.gop) == 0 && !m.key {
		return // wait for a keyframe
	}
	if !f.sawVideo && len(f.gop) >= maxAudioOnlyCache {
		f.gopBytes -= len(f.gop[0].data)
		f.gop[0] = nil
		f.gop = f.gop[1:]
	}
	f.gop = append(f.gop, m)
	f.gopBytes += len(m.data)
	if (f.opts.GopCacheMaxFrames > 0 && len(f.gop) > f.opts.GopCacheMaxFrames) || f.gopBytes > maxGopBytes {
		f.log.Warn("gop cache overflow, cleared", "frames", len(f.gop), "bytes", f.gopBytes)
		f.clearGop()
	}
}

func (f *fanout) clearGop() {
	clear(f.gop)
	f.gop = f.gop[:0]
	f.gopBytes = 0
}

// finish ends the fan-out: players get the unpublish notice (or "stream not
// found") after what is queued, then their connections close. Players do
// not wait for a republish; they reconnect, as with lalserver.
func (f *fanout) finish(reason string, notFound bool) {
	f.s.mu.Lock()
	if f.s.fanouts[f.key] == f {
		delete(f.s.fanouts, f.key)
	}
	f.s.mu.Unlock()
	f.mu.Lock()
	f.closing = true
	players := make([]*player, 0, len(f.players))
	for p := range f.players {
		players = append(players, p)
	}
	f.mu.Unlock()
	var b []byte
	if notFound {
		b = appendAMF0(appendAMF0(appendAMF0(appendAMF0(nil, "onStatus"), 0.0), nil),
			status("error", "NetStream.Play.StreamNotFound", reason))
	} else {
		b = appendAMF0(appendAMF0(appendAMF0(appendAMF0(nil, "onStatus"), 0.0), nil),
			status("status", "NetStream.Play.UnpublishNotify", "stream is unpublished"))
	}
	notice := appendChunks(nil, csidData, msgCommandAMF0, msgStreamID, 0, b, f.chunk)
	eof := appendChunks(nil, csidControl, msgUserControl, 0, 0, []byte{0, ucStreamEOF, 0, 0, 0, msgStreamID}, f.chunk)
	for _, p := range players {
		p.end(append(notice[:len(notice):len(notice)], eof...), reason)
	}
}

// jitter corrects timestamps as SRS's time_jitter does: full keeps the
// timeline monotonic from 0, replacing jumps over 250 ms by 10 ms; zero
// only moves the start to 0; off passes them through.
type jitter struct {
	mode    jitterMode
	started bool
	lastIn  int64
	lastOut int64
	base    int64
}

const (
	maxJitterMs     = 250
	defaultFrameMs  = 10
	maxNegJitterMs  = -250
	outTimelineBase = 0
)

func (j *jitter) correct(dts int64) int64 {
	switch j.mode {
	case jitterOff:
		j.lastOut = max(dts, 0)
	case jitterZero:
		if !j.started {
			j.started, j.base = true, dts
		}
		j.lastOut = max(dts-j.base, 0)
	default:
		if !j.started {
			j.started, j.lastIn, j.lastOut = true, dts, outTimelineBase
			return j.lastOut
		}
		delta := dts - j.lastIn
		if delta < maxNegJitterMs || delta > maxJitterMs {
			delta = defaultFrameMs
		}
		j.lastIn = dts
		j.lastOut = max(j.lastOut+delta, 0)
	}
	return j.lastOut
}

// current is the timestamp for a config or metadata message: the current
// position of the timeline, without moving it.
func (j *jitter) current() int64 { return j.lastOut }

// player is one RTMP player's queue and writer goroutine.
type player struct {
	c  *conn
	f  *fanout
	wg sync.WaitGroup

	mu     sync.Mutex
	queue  []*outMsg
	qBytes int
	// qFirstTS is the timestamp of the oldest media message queued, for
	// queue_length (configs and metadata don't count).
	qFirstTS  int64
	qHasMedia bool
	waitKey   bool
	paused    bool
	stopped   bool
	final     []byte // written after the queue, then the connection closes
	endWhy    string
	wake      chan struct{}
	maxBytes  int
	maxDur    time.Duration
	mw        time.Duration
}

func newPlayer(c *conn, f *fanout) *player {
	p := &player{
		c: c, f: f, wake: make(chan struct{}, 1),
		maxBytes: c.cfg.QueueBytes, maxDur: c.vopts.QueueLength, mw: c.vopts.MWLatency,
	}
	p.wg.Add(1)
	go p.writeLoop()
	return p
}

// enqueue appends m for this player. It never blocks: a player whose queue
// passes queue_bytes or queue_length is disconnected.
func (p *player) enqueue(m *outMsg) {
	p.mu.Lock()
	if p.stopped || p.final != nil || p.paused {
		p.mu.Unlock()
		return
	}
	if p.waitKey && m.kind == media.KindVideo && !m.config {
		if !m.key {
			p.mu.Unlock()
			return
		}
		p.waitKey = false
	}
	p.queue = append(p.queue, m)
	p.qBytes += len(m.data)
	if !m.config && !p.qHasMedia {
		p.qHasMedia, p.qFirstTS = true, m.ts
	}
	over := ""
	if p.qBytes > p.maxBytes {
		over = fmt.Sprintf("%d bytes queued, limit %d", p.qBytes, p.maxBytes)
	} else if span := time.Duration(m.ts-p.qFirstTS) * time.Millisecond; p.maxDur > 0 && p.qHasMedia && !m.config && span > p.maxDur {
		over = fmt.Sprintf("%v queued, queue_length %v", span, p.maxDur)
	}
	if over != "" {
		p.stopped = true
		clear(p.queue)
		p.queue, p.qBytes = nil, 0
		p.mu.Unlock()
		p.c.log.Warn("player too slow, disconnecting", "stream", p.f.key, "queue", over)
		if tcp, ok := p.c.nc.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // reset: drop what the kernel still holds for it
		}
		p.c.close("player too slow: " + over)
		return
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *player) setPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = paused
	if paused {
		clear(p.queue)
		p.queue, p.qBytes, p.qHasMedia = p.queue[:0], 0, false
	} else {
		p.waitKey = true
	}
}

// end queues the final bytes; the writer closes the connection after them.
func (p *player) end(final []byte, why string) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.final, p.endWhy = final, why
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *player) stop() {
	p.mu.Lock()
	p.stopped = true
	clear(p.queue)
	p.queue = nil
	p.mu.Unlock()
}

// writeLoop sends the queue with one writev per merge window (SRS
// mw_latency), or as soon as something is queued when mw_latency is 0.
func (p *player) writeLoop() {
	defer p.wg.Done()
	defer func() {
		if r := recover(); r != nil {
			p.c.log.Error("panic in rtmp player writer", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			p.c.close("internal error")
		}
	}()
	var (
		batch []*outMsg
		bufs  net.Buffers
		timer *time.Timer
	)
	if p.mw > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
	}
	writeTimeout := max(p.maxDur, minPlayerDeadline)
	// The first batch (metadata, sequence headers, the GOP cache) goes out
	// at once: merging only pays off for the live packets that follow, and
	// waiting a window here would add mw_latency to the first frame.
	first := true
	for {
		select {
		case <-p.wake:
		case <-p.c.done:
			return
		}
		if timer != nil && !first {
			timer.Reset(p.mw)
			select {
			case <-timer.C:
			case <-p.c.done:
				return
			}
		}
		p.mu.Lock()
		batch, p.queue = p.queue, batch[:0]
		p.qBytes, p.qHasMedia = 0, false
		final, why := p.final, p.endWhy
		stopped := p.stopped
		p.mu.Unlock()
		if stopped {
			return
		}
		bufs = bufs[:0]
		for _, m := range batch {
			bufs = append(bufs, m.data)
		}
		if final != nil {
			bufs = append(bufs, final)
		}
		if len(bufs) > 0 {
			if err := p.write(bufs, writeTimeout); err != nil {
				p.c.close("write: " + errReason(err))
				return
			}
		}
		clear(batch)
		clear(bufs)
		if final != nil {
			p.c.close(why)
			return
		}
		if len(bufs) > 0 {
			first = false
		}
	}
}

func (p *player) write(bufs net.Buffers, timeout time.Duration) error {
	c := p.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	n, err := bufs.WriteTo(c.nc) // writev on a *net.TCPConn
	c.sendBytes.Add(uint64(n))
	return err
}
