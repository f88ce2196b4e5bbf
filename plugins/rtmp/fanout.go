package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/flv"
	fo "github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
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

// fanout is this process's RTMP side of one stream: one reader of the
// stream's live tap (plugins/internal/live: one ring subscription, one
// paced read loop, one GOP cache per process), turning each packet into
// chunks once for all of its players. It mirrors the tap's GOP cache in
// chunk form (live.Mark), so a joining player gets bytes without encoding.
type fanout struct {
	s     *Server
	key   string
	ref   sdk.StreamRef
	opts  vhostOptions
	chunk int
	log   hclog.Logger
	rd    *live.Reader

	mu       sync.Mutex
	players  map[*player]struct{}
	closing  bool
	meta     *outMsg
	vseq     *outMsg
	aseq     *outMsg
	gop      []*outMsg
	sawVideo bool

	jit  jitter
	body []byte
	// g writes the stream to the players: one shared buffer per merge
	// window, one writev per player (plugins/internal/fanout).
	g *fo.Group
}

var _ live.Handler = (*fanout)(nil)

// join adds c as a player of ref, creating the stream's fan-out if needed.
func (s *Server) join(c *conn, ref sdk.StreamRef, opts vhostOptions) *player {
	key := ref.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fanouts[key]
	if f == nil {
		f = &fanout{
			s: s, key: key, ref: ref, opts: opts, chunk: c.cfg.ChunkSize,
			log: s.log.With("stream", key), players: map[*player]struct{}{}, jit: jitter{mode: opts.Jitter},
			g: fo.NewGroup(opts.MWLatency),
		}
		s.fanouts[key] = f
		f.rd = s.liveTap().Join(ref, live.Options{
			Client:    c.info,
			Subscribe: sdk.SubscribeOptions{Wait: time.Duration(c.cfg.PlayWait)},
			Pace:      opts.MWLatency,
			GopCache:  opts.GopCache, GopMaxFrames: opts.GopCacheMaxFrames, GopMaxBytes: maxGopBytes,
		}, f)
	}
	p := newPlayer(c, f)
	f.add(p)
	return p
}

// maxGopBytes bounds the GOP cache besides gop_cache_max_frames.
const maxGopBytes = 64 << 20

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

// leave removes p; the last player stops the fan-out and its tap reader.
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
		if f.rd != nil {
			f.rd.Leave()
		}
		f.g.Close()
	}
}

// Start implements live.Handler: the state of a stream the tap already
// reads (none when this fan-out opened it: the ring replays the GOP).
func (f *fanout) Start(init live.Init) {
	for _, c := range []*media.Packet{init.Meta, init.Video, init.Audio} {
		if c != nil {
			f.deliver(*c, live.Mark{})
		}
	}
	f.mu.Lock()
	f.sawVideo = f.sawVideo || init.SawVideo
	f.mu.Unlock()
	for _, p := range init.GOP {
		f.deliver(p, live.Mark{Cached: true})
	}
}

// Packets implements live.Handler.
func (f *fanout) Packets(ps []media.Packet, ms []live.Mark) {
	for i, p := range ps {
		f.deliver(p, ms[i])
	}
}

// Flush implements live.Handler: with merged writes, the batch the tap
// read in this window goes out now.
func (f *fanout) Flush() {
	if f.opts.MWLatency > 0 {
		f.g.Flush()
	}
}

// End implements live.Handler.
func (f *fanout) End(err error) {
	var se *live.SubscribeError
	switch {
	case errors.As(err, &se):
		if f.s.ctx.Err() == nil {
			f.log.Info("play refused", "error", se.Err)
		}
		f.finish(se.Err.Error(), !errors.Is(err, sdk.ErrForbidden))
	case errors.Is(err, io.EOF):
		f.finish("stream unpublished", false)
	case errors.Is(err, context.Canceled):
		// the plugin is stopping
	default:
		f.log.Warn("stream read failed", "error", err)
		f.finish("stream read failed", false)
	}
}

// deliver turns a packet into shared chunks and queues them for every player.
func (f *fanout) deliver(pkt media.Packet, mark live.Mark) {
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
	f.mu.Lock()
	defer f.mu.Unlock()
	if mark.Reset {
		clear(f.gop)
		f.gop = f.gop[:0]
	}
	if n := min(mark.Trim, len(f.gop)); n > 0 {
		clear(f.gop[:n])
		f.gop = f.gop[n:]
	}
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

	switch {
	case pkt.Kind == media.KindData:
		f.meta = m
	case pkt.IsConfig() && pkt.Kind == media.KindVideo:
		f.vseq = m
	case pkt.IsConfig():
		f.aseq = m
	default:
		if pkt.Kind == media.KindVideo {
			f.sawVideo = true
		}
		if mark.Cached {
			f.gop = append(f.gop, m)
		}
	}
	it := fo.Item{
		B: m.data, TS: time.Duration(ts) * time.Millisecond, Timed: !config,
		Video: pkt.Kind == media.KindVideo && !config, Key: m.key,
	}
	if f.opts.MWLatency > 0 {
		f.g.Queue(it) // the tap flushes once per window
	} else {
		f.g.Push(it)
	}
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
