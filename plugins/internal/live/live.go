// Package live is a plugin process's one tap on each live stream: one ring
// subscription, one read loop and one GOP cache per stream, shared by every
// reader of that stream in the process (RTMP players, HTTP-FLV/TS/AAC/MP3,
// HLS, DVR, and the packet protocols to come: WebRTC, SRT, RTSP).
//
// A Tap belongs to one process. Join adds a Reader to a stream, subscribing
// to it when it is the stream's first reader; Leave removes it, and the
// stream's last reader (after Options.Linger) closes the subscription.
//
// Readers get media.Packet values, not container bytes: a protocol encodes
// them itself, once per stream (plugins/internal/fanout writes the bytes to
// many sockets). Delivery runs on the stream's read goroutine and must not
// block; a reader with slow work of its own (a muxer writing files, a
// packetizer with its own pacing) puts a Queue between the tap and its
// goroutine, which bounds the backlog and skips to the next keyframe when
// the reader falls behind, so one slow reader never stalls the others.
//
// With a pace (merged writes, SRS's mw_latency) the ring is read in one
// batch per window, not woken for every packet, and each reader gets the
// batch in one call followed by Flush: a fan-out writes the whole batch to
// its sockets at once.
package live

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// Source is one ring subscription (sdk.Subscription implements it).
type Source interface {
	// Read blocks for the next packet; io.EOF ends the stream.
	Read(ctx context.Context) (media.Packet, error)
	// TryRead returns the next packet if there is one.
	TryRead() (media.Packet, bool, error)
	Close() error
}

// OpenFunc subscribes to a stream (sdk.Host.Subscribe behind HostOpener).
type OpenFunc func(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, opts sdk.SubscribeOptions) (Source, error)

// HostOpener returns an OpenFunc subscribing through h.
func HostOpener(h *sdk.Host) OpenFunc {
	return func(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, opts sdk.SubscribeOptions) (Source, error) {
		sub, err := h.Subscribe(ctx, client, ref, opts)
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
}

// SubscribeError is what Handler.End gets when the stream's subscription
// was refused or timed out (errors.Is sees the host's sentinels through it).
type SubscribeError struct{ Err error }

func (e *SubscribeError) Error() string { return e.Err.Error() }
func (e *SubscribeError) Unwrap() error { return e.Err }

// Default bounds of the GOP cache.
const (
	DefaultGopMaxBytes = 64 << 20
	maxAudioOnlyCache  = 64 // audio frames kept for audio-only streams
	// MaxPace bounds how long the ring is left unread with merged writes:
	// the ring must hold that much of the stream (350 ms of a 8 MiB ring:
	// up to about 190 Mbit/s).
	MaxPace  = 350 * time.Millisecond
	maxBatch = 1 << 16 // packets read per batch: a batch never starves the flush
)

// Options configure a stream when its first reader joins.
type Options struct {
	// Client and Subscribe are the subscription's identity and options.
	Client    sdk.ClientInfo
	Subscribe sdk.SubscribeOptions
	// Pace is the merge window: the ring is read once per window (at most
	// every MaxPace) and readers get each batch at once. 0 reads and
	// delivers every packet as it comes.
	Pace time.Duration
	// GopCache keeps the packets since the last video keyframe (or the last
	// audio frames of an audio-only stream) for late joiners, bounded by
	// GopMaxFrames (0: no bound) and GopMaxBytes (0: DefaultGopMaxBytes);
	// an overflow clears it until the next keyframe, as SRS does.
	GopCache     bool
	GopMaxFrames int
	GopMaxBytes  int
	// Linger keeps the subscription this long after the last reader left,
	// so a reconnecting player does not subscribe again.
	Linger time.Duration
}

// Mark tells a reader how a packet changed the GOP cache, so that a reader
// keeping its own encoded copy of the cache (bytes per format) mirrors it
// without a policy of its own.
type Mark struct {
	Reset  bool // the cache was cleared before this packet
	Trim   int  // this many of the oldest cached packets were dropped
	Cached bool // the packet was appended to the cache
}

// Init is the state a joining reader starts from.
type Init struct {
	// Meta, Video and Audio are the latest metadata and codec
	// configurations (nil: none yet).
	Meta, Video, Audio *media.Packet
	// GOP is the cache, from a keyframe on (empty when off or cleared).
	GOP []media.Packet
	// SawVideo says the stream has video: a reader without a GOP starts
	// its video at the next keyframe.
	SawVideo, SawAudio bool
}

// Handler receives one reader's stream. Its methods are called one at a
// time, in order (Start from Join, the others from the stream's read
// goroutine) and must not block the read loop for long: a slow consumer
// goes behind a Queue. A handler may call Leave, also its own. The packets and
// their payloads are shared with the other readers and valid only during the
// call: Clone what is kept.
type Handler interface {
	// Start is called once, first: from Join, with the stream's state.
	Start(init Init)
	// Packets delivers packets in order, one batch per call.
	Packets(ps []media.Packet, marks []Mark)
	// Flush ends a batch: merged writes go out now.
	Flush()
	// End is called once, last, when the stream ends (io.EOF: unpublished;
	// *SubscribeError: never subscribed) or the tap closes. It is not
	// called after Leave.
	End(err error)
}

// Tap is one process's streams. The zero value is not usable: see New.
type Tap struct {
	ctx  context.Context
	open OpenFunc
	log  hclog.Logger
	wg   sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*Stream
}

// New returns a tap opening subscriptions with open; ctx ends every stream.
func New(ctx context.Context, open OpenFunc, log hclog.Logger) *Tap {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Tap{ctx: ctx, open: open, log: log, streams: map[string]*Stream{}}
}

// Wait blocks until every stream's read loop has ended (after ctx ended or
// every reader left).
func (t *Tap) Wait() { t.wg.Wait() }

// Len is the number of open streams.
func (t *Tap) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.streams)
}

// Reader is one reader of a stream.
type Reader struct {
	s    *Stream
	h    Handler
	hmu  sync.Mutex  // held around every call of h: calls are in order, one at a time
	gone atomic.Bool // left or ended (set under s.mu)
	left atomic.Bool // left: no more calls, End included
}

// call runs f on the reader's handler, in order with its other calls,
// unless the reader has left.
func (r *Reader) call(f func(h Handler)) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if !r.left.Load() {
		f(r.h)
	}
}

// Stream returns the reader's stream.
func (r *Reader) Stream() *Stream { return r.s }

// Leave removes the reader; a call to its handler already under way may
// still finish after Leave returns, none starts later. The stream's last
// reader closes the subscription (after Options.Linger). Idempotent.
func (r *Reader) Leave() { r.s.leave(r) }

// Stream is one stream's subscription, read loop and GOP cache.
type Stream struct {
	t    *Tap
	key  string
	ref  sdk.StreamRef
	opts Options
	log  hclog.Logger
	stop context.CancelFunc
	ctx  context.Context

	ready   chan struct{} // closed once subscribed or refused
	openErr error         // the refusal, set before ready is closed

	mu       sync.Mutex
	readers  []*Reader // replaced, never modified in place
	ended    bool
	linger   *time.Timer
	meta     *media.Packet
	vcfg     *media.Packet
	acfg     *media.Packet
	gop      []media.Packet
	gopBytes int
	sawVideo bool
	sawAudio bool
	dropped  uint64
}

// Ref is the stream.
func (s *Stream) Ref() sdk.StreamRef { return s.ref }

// Ready is closed once the stream is subscribed or its subscription was
// refused (then Err says why).
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Err is the subscription's refusal (a *SubscribeError) once Ready is
// closed, or nil.
func (s *Stream) Err() error {
	select {
	case <-s.ready:
		return s.openErr
	default:
		return nil
	}
}

// Forget makes the next Join of ref subscribe anew, for a caller that
// knows ref was published again (a new ring): the stream read so far goes
// on for its readers until its ring ends.
func (t *Tap) Forget(ref sdk.StreamRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, ref.Key())
}

// Join adds h as a reader of ref. When the stream has no reader in this
// process it is opened with opts (a later Join's opts are ignored) and
// subscribed to in the background; h.Start runs before Join returns, and
// h.End follows when the subscription fails. A stream that has ended (its
// readers are being told) is replaced by a new one: a republish gets a
// fresh subscription, GOP and timeline.
func (t *Tap) Join(ref sdk.StreamRef, opts Options, h Handler) *Reader {
	key := ref.Key()
	t.mu.Lock()
	s := t.streams[key]
	if s != nil {
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		if ended {
			s = nil
		}
	}
	if s == nil {
		ctx, cancel := context.WithCancel(t.ctx)
		s = &Stream{t: t, key: key, ref: ref, opts: opts, log: t.log.With("stream", key), ctx: ctx, stop: cancel, ready: make(chan struct{})}
		if s.opts.GopMaxBytes <= 0 {
			s.opts.GopMaxBytes = DefaultGopMaxBytes
		}
		t.streams[key] = s
		t.wg.Add(1)
		go s.run()
	}
	r := &Reader{s: s, h: h}
	// Under the tap's lock: a leave cannot close s between lookup and add.
	// The state is taken and the reader added under s.mu, which the read
	// loop holds while it applies a batch and takes the readers to give it
	// to: the reader gets each packet once, in Init or in Packets. Its
	// handler lock, taken before s.mu is released, holds those Packets
	// back until Start has run.
	r.hmu.Lock()
	s.mu.Lock()
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	init := Init{Meta: s.meta, Video: s.vcfg, Audio: s.acfg, GOP: s.gop, SawVideo: s.sawVideo, SawAudio: s.sawAudio}
	ended := s.ended
	if !ended {
		rs := make([]*Reader, len(s.readers), len(s.readers)+1)
		copy(rs, s.readers)
		s.readers = append(rs, r)
	}
	s.mu.Unlock()
	t.mu.Unlock()
	h.Start(init)
	if ended { // cannot happen: ended streams are replaced above
		r.gone.Store(true)
		h.End(io.EOF)
	}
	r.hmu.Unlock()
	return r
}

func (s *Stream) leave(r *Reader) {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.gone.Load() {
		r.left.Store(true)
		return
	}
	r.gone.Store(true)
	r.left.Store(true)
	rs := make([]*Reader, 0, len(s.readers))
	for _, x := range s.readers {
		if x != r {
			rs = append(rs, x)
		}
	}
	s.readers = rs
	if len(rs) > 0 || s.ended {
		return
	}
	if s.opts.Linger <= 0 {
		s.closeLocked()
		return
	}
	s.linger = time.AfterFunc(s.opts.Linger, func() {
		s.t.mu.Lock()
		defer s.t.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.readers) == 0 && !s.ended {
			s.closeLocked()
		}
	})
}

// closeLocked ends an unread stream: the caller holds t.mu and s.mu.
func (s *Stream) closeLocked() {
	s.ended = true
	if s.t.streams[s.key] == s {
		delete(s.t.streams, s.key)
	}
	s.stop()
}

// Dropped is the number of packets readers' queues skipped, plus the
// ring's own drops once the stream has ended.
func (s *Stream) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Stream) run() {
	defer s.t.wg.Done()
	var err error
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in live stream reader, ending the stream", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = errors.New("internal error")
		}
		s.end(err)
	}()
	src, oerr := s.t.open(s.ctx, s.opts.Client, s.ref, s.opts.Subscribe)
	if oerr != nil {
		err = &SubscribeError{Err: oerr}
		s.openErr = err
		close(s.ready)
		return
	}
	close(s.ready)
	defer src.Close()
	if s.opts.Pace > 0 {
		err = s.runPaced(src)
	} else {
		err = s.runEach(src)
	}
}

func (s *Stream) runEach(src Source) error {
	ps := make([]media.Packet, 1)
	ms := make([]Mark, 1)
	for {
		p, err := src.Read(s.ctx)
		if err != nil {
			return err
		}
		ps[0] = p
		s.deliver(ps, ms)
	}
}

// runPaced reads the ring in batches, once per merge window (at most every
// MaxPace), and hands each batch to the readers at once: the players wait
// for the window anyway, and a reader that is not waiting on the ring costs
// neither the publisher's plugin a system call nor this process a wake-up
// per packet (sdk.Subscription.TryRead). The first batch (the GOP the ring
// replays to a new subscription) goes out at once.
func (s *Stream) runPaced(src Source) error {
	mw := s.opts.Pace
	pace := min(mw, MaxPace)
	timer := time.NewTimer(pace)
	defer timer.Stop()
	var lastFlush time.Time
	var ps []media.Packet
	var ms []Mark
	var buf []byte
	for {
		ps, ms, buf = ps[:0], ms[:0], buf[:0]
		var rerr error
		for range maxBatch {
			p, ok, err := src.TryRead()
			if err != nil {
				rerr = err
				break
			}
			if !ok {
				break
			}
			// The payload is valid until the next read: keep the batch's
			// payloads in one buffer reused from batch to batch.
			buf = append(buf, p.Payload...)
			ps = append(ps, p)
		}
		if len(ps) > 0 {
			// Point the payloads into buf's final backing array.
			off := 0
			for i := range ps {
				n := len(ps[i].Payload)
				ps[i].Payload = buf[off : off+n : off+n]
				off += n
			}
			ms = append(ms, make([]Mark, len(ps))...)
			s.deliver(ps, ms)
		}
		if rerr != nil {
			s.flush()
			return rerr
		}
		if now := time.Now(); now.Sub(lastFlush) >= mw-pace/8 {
			s.flush()
			lastFlush = now
		}
		timer.Reset(pace)
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-timer.C:
		}
	}
}

// deliver updates the stream's state with ps and hands them to every
// reader; without a pace each packet is flushed at once.
func (s *Stream) deliver(ps []media.Packet, ms []Mark) {
	s.mu.Lock()
	for i, p := range ps {
		ms[i] = s.updateLocked(p)
	}
	rs := s.readers
	s.mu.Unlock()
	each := s.opts.Pace <= 0
	for _, r := range rs {
		r.call(func(h Handler) {
			h.Packets(ps, ms)
			if each {
				h.Flush()
			}
		})
	}
}

func (s *Stream) flush() {
	s.mu.Lock()
	rs := s.readers
	s.mu.Unlock()
	for _, r := range rs {
		r.call(Handler.Flush)
	}
}

// updateLocked keeps the configurations and the GOP cache: from the last
// keyframe on, bounded by GopMaxFrames and GopMaxBytes (SRS clears it on
// overflow).
func (s *Stream) updateLocked(p media.Packet) Mark {
	switch {
	case p.Kind == media.KindData:
		c := p.Clone()
		s.meta = &c
		return Mark{}
	case p.IsConfig() && p.Kind == media.KindVideo:
		c := p.Clone()
		s.vcfg = &c
		return Mark{}
	case p.IsConfig():
		c := p.Clone()
		s.acfg = &c
		return Mark{}
	}
	key := p.Kind == media.KindVideo && p.IsKey()
	var m Mark
	switch p.Kind {
	case media.KindVideo:
		s.sawVideo = true
	case media.KindAudio:
		s.sawAudio = true
	}
	if !s.opts.GopCache {
		return m
	}
	if key && len(s.gop) > 0 {
		s.clearGopLocked()
		m.Reset = true
	}
	if s.sawVideo && len(s.gop) == 0 && !key {
		return m // wait for a keyframe
	}
	if !s.sawVideo && len(s.gop) >= maxAudioOnlyCache {
		// Not zeroed: a joiner may be reading it (Init.GOP); the backing
		// array goes once append has moved past it.
		s.gopBytes -= len(s.gop[0].Payload)
		s.gop = s.gop[1:]
		m.Trim = 1
	}
	s.gop = append(s.gop, p.Clone())
	s.gopBytes += len(p.Payload)
	m.Cached = true
	if (s.opts.GopMaxFrames > 0 && len(s.gop) > s.opts.GopMaxFrames) || s.gopBytes > s.opts.GopMaxBytes {
		s.log.Warn("gop cache overflow, cleared", "frames", len(s.gop), "bytes", s.gopBytes)
		s.clearGopLocked()
		return Mark{Reset: true}
	}
	return m
}

func (s *Stream) clearGopLocked() {
	// A joiner may still hold the old slice (Init.GOP): start a new one.
	s.gop = nil
	s.gopBytes = 0
}

// end tells every reader the stream ended and removes it from the tap.
func (s *Stream) end(err error) {
	s.t.mu.Lock()
	s.mu.Lock()
	s.ended = true
	if s.linger != nil {
		s.linger.Stop()
	}
	if s.t.streams[s.key] == s {
		delete(s.t.streams, s.key)
	}
	rs := s.readers
	s.readers = nil
	for _, r := range rs {
		r.gone.Store(true)
	}
	s.mu.Unlock()
	s.t.mu.Unlock()
	s.stop()
	if s.ctx.Err() != nil && !errors.Is(err, io.EOF) {
		var se *SubscribeError
		if !errors.As(err, &se) {
			err = context.Canceled
		}
	}
	for _, r := range rs {
		r.call(func(h Handler) { h.End(err) })
	}
}
