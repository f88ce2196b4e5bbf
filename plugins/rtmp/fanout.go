package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	fo "github.com/rill-media/rill/plugins/internal/fanout"
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
	// g writes the stream to the players: one shared buffer per merge
	// window, one writev per player (plugins/internal/fanout).
	g *fo.Group
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
			g: fo.NewGroup(opts.MWLatency),
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
	// cache (fast start), written at once (merging pays off only for the
	// live packets that follow), or the live edge from the next keyframe.
	var init [][]byte
	for _, m := range []*outMsg{f.meta, f.vseq, f.aseq} {
		if m != nil {
			init = append(init, m.data)
		}
	}
	fromGop := f.opts.GopCache && len(f.gop) > 0
	if fromGop {
		for _, m := range f.gop {
			init = append(init, m.data)
		}
	}
	f.g.Add(p.sink, init, f.sawVideo && (!fromGop || !f.gop[0].key))
}

// leave removes p; the last player stops the fan-out and its subscription.
func (f *fanout) leave(p *player) {
	f.g.Remove(p.sink)
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
		f.g.Close()
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
	if f.opts.MWLatency > 0 {
		f.runPaced(sub)
		return
	}
	for {
		pkt, err := sub.Read(f.ctx)
		if err != nil {
			f.readFailed(err)
			return
		}
		f.deliver(pkt)
	}
}

// maxPace bounds how long the ring is left unread with merged writes: the
// ring must hold that much of the stream (350 ms of a 8 MiB ring: up to
// about 190 Mbit/s).
const maxPace = 350 * time.Millisecond

// runPaced reads the ring in batches, once per merge window (at most every
// maxPace), and writes each batch to the players at once: the players wait
// for the window anyway, and a reader that is not waiting on the ring costs
// neither the publisher's plugin a system call nor this process a wake-up
// per packet (sdk.Subscription.TryRead). The first batch (the GOP the ring
// replays to a new subscription) goes out at once.
func (f *fanout) runPaced(sub *sdk.Subscription) {
	mw := f.opts.MWLatency
	pace := min(mw, maxPace)
	timer := time.NewTimer(pace)
	defer timer.Stop()
	var lastFlush time.Time
	for {
		for range 1 << 16 { // bounded: a batch never starves the flush
			pkt, ok, err := sub.TryRead()
			if err != nil {
				f.readFailed(err)
				return
			}
			if !ok {
				break
			}
			f.deliver(pkt)
		}
		if now := time.Now(); now.Sub(lastFlush) >= mw-pace/8 {
			f.g.Flush()
			lastFlush = now
		}
		timer.Reset(pace)
		select {
		case <-f.ctx.Done():
			return // last player left
		case <-timer.C:
		}
	}
}

// readFailed ends the fan-out after its subscription failed.
func (f *fanout) readFailed(err error) {
	switch {
	case f.ctx.Err() != nil:
		// the last player left
	case errors.Is(err, io.EOF):
		f.finish("stream unpublished", false)
	default:
		f.log.Warn("stream read failed", "error", err)
		f.finish("stream read failed", false)
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
	it := fo.Item{
		B: m.data, TS: time.Duration(ts) * time.Millisecond, Timed: !config,
		Video: pkt.Kind == media.KindVideo && !config, Key: m.key,
	}
	if f.opts.MWLatency > 0 {
		f.g.Queue(it) // runPaced flushes
	} else {
		f.g.Push(it)
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
	f.g.Close()
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
	final := append(notice[:len(notice):len(notice)], eof...)
	for _, p := range players {
		p.sink.End(final, reason)
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

// player is one RTMP player of a fan-out: its socket in the fan-out's
// group, bounded by queue_bytes and queue_length.
type player struct {
	c    *conn
	f    *fanout
	sink *fo.Sink
}

func newPlayer(c *conn, f *fanout) *player {
	p := &player{c: c, f: f}
	p.sink = fo.NewSink(c.nc, fo.SinkOptions{
		Lock:         &c.wmu, // command replies share the socket
		Sent:         &c.sendBytes,
		MaxBytes:     c.cfg.QueueBytes,
		MaxDur:       c.vopts.QueueLength,
		WriteTimeout: max(c.vopts.QueueLength, minPlayerDeadline),
		OnClose: func(why string) {
			if strings.HasPrefix(why, fo.TooSlow) {
				c.log.Warn("player too slow, disconnecting", "stream", f.key, "queue", why)
			}
			c.close(why)
		},
	})
	return p
}

func (p *player) setPaused(paused bool) { p.sink.SetPaused(paused) }
