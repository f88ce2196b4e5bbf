package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	fo "github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

type streamKey struct{ Vhost, App, Stream string }

func (k streamKey) ref() sdk.StreamRef {
	return sdk.StreamRef{Vhost: k.Vhost, App: k.App, Stream: k.Stream}
}
func (k streamKey) String() string { return k.Vhost + "/" + k.App + "/" + k.Stream }

// sourceLinger is how long a source keeps its subscription after its last
// player left, so a reconnecting player does not resubscribe.
const sourceLinger = 3 * time.Second

var errSourceEnded = errors.New("stream ended")

// source is one subscription to a stream, fanned out in-process to every
// HTTP streaming player of it (DESIGN.md: one ring reader per stream per
// process).
type source struct {
	srv *Server
	key streamKey
	log hclog.Logger
	cfg *config

	ready chan struct{} // closed once subscribed (err set on failure)
	err   error
	// audio is closed once the audio codec is known (st.acodec) or the
	// source ended: .aac and .mp3 players wait on it before their answer.
	audio chan struct{}

	mu       sync.Mutex
	st       trackState
	gop      []media.Packet // since the last video key frame, cloned
	gopOff   bool           // over the cap: no caching until the next key frame
	feeds    map[format]*feed
	nplayers int
	ended    bool
	linger   *time.Timer
	cancel   context.CancelFunc
	warned   map[string]bool
	audioSet bool // audio closed
}

func newSource(srv *Server, key streamKey, cfg *config) *source {
	return &source{
		srv: srv, key: key, cfg: cfg, log: srv.log.With("stream", key.String()),
		ready: make(chan struct{}), audio: make(chan struct{}), feeds: map[format]*feed{}, warned: map[string]bool{},
	}
}

// run subscribes and reads the stream until it ends or the source is
// stopped. A panic in a muxer ends this stream only (THREATS.md #9-11).
func (s *source) run(ctx context.Context, client sdk.ClientInfo) {
	defer s.srv.wg.Done()
	defer s.finish()
	sub, err := s.srv.rt.Host.Subscribe(ctx, client, s.key.ref(), sdk.SubscribeOptions{Wait: s.cfg.PlayWait})
	if err != nil {
		s.err = err
		close(s.ready)
		return
	}
	defer sub.Close()
	close(s.ready)
	s.log.Info("http streaming source started", "client_id", client.ID)
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("muxer panic, stream source ended", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	ended := func(err error) {
		if !errors.Is(err, io.EOF) && ctx.Err() == nil {
			s.log.Warn("stream read ended", "error", err)
		}
		s.log.Info("http streaming source ended", "dropped", sub.Dropped())
	}
	if mw := s.cfg.MWLatency; mw > 0 {
		// Merged writes: read the ring in batches, once per window, as
		// the RTMP plugin's fan-out does (no wake-up per packet).
		pace := min(mw, maxPace)
		timer := time.NewTimer(pace)
		defer timer.Stop()
		var lastFlush time.Time
		for {
			for range 1 << 16 {
				p, ok, err := sub.TryRead()
				if err != nil {
					ended(err)
					return
				}
				if !ok {
					break
				}
				s.handle(p)
			}
			if now := time.Now(); now.Sub(lastFlush) >= mw-pace/8 {
				s.flush()
				lastFlush = now
			}
			timer.Reset(pace)
			select {
			case <-ctx.Done():
				ended(ctx.Err())
				return
			case <-timer.C:
			}
		}
	}
	for {
		p, err := sub.Read(ctx)
		if err != nil {
			ended(err)
			return
		}
		s.handle(p)
	}
}

// maxPace bounds how long the ring is left unread with merged writes.
const maxPace = 350 * time.Millisecond

// flush writes what every feed has queued.
func (s *source) flush() {
	s.mu.Lock()
	groups := make([]*fo.Group, 0, len(s.feeds))
	for _, f := range s.feeds {
		groups = append(groups, f.g)
	}
	s.mu.Unlock()
	for _, g := range groups {
		g.Flush()
	}
}

// finish ends every player (flushing what they have queued) and removes
// the source.
func (s *source) finish() {
	s.mu.Lock()
	s.ended = true
	s.audioKnownLocked()
	if s.linger != nil {
		s.linger.Stop()
	}
	for _, f := range s.feeds {
		f.g.Close() // what is pending goes out before the end
		for p := range f.players {
			p.end()
		}
	}
	s.mu.Unlock()
	s.srv.removeSource(s)
}

func (s *source) warnOnce(what string, err error) {
	if !s.warned[what] {
		s.warned[what] = true
		s.log.Warn("packet dropped", "what", what, "error", err)
	}
}

func (s *source) handle(p media.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Kind == media.KindAudio {
		// The subscription starts with the codec configurations, so an
		// AAC stream is known at once; MP3 (no config) at its first frame.
		s.st.acodec = p.Codec
		s.audioKnownLocked()
	}
	switch {
	case p.Kind == media.KindData:
		c := p.Clone()
		s.st.meta = &c
	case p.IsConfig() && p.Kind == media.KindVideo:
		c := p.Clone()
		s.st.vcfg = &c
	case p.IsConfig() && p.Kind == media.KindAudio:
		c := p.Clone()
		s.st.acfg = &c
	case p.Kind == media.KindVideo:
		s.st.hasVideo = true
		if p.IsKey() {
			s.gop, s.gopOff = s.gop[:0], false
			for _, f := range s.feeds {
				f.gop = f.gop[:0]
			}
		}
	case p.Kind == media.KindAudio:
		s.st.hasAudio = true
	}
	cache := !p.IsConfig() && p.Kind != media.KindData && s.st.vcfg != nil && !s.gopOff && s.cfg.GopCacheMaxFrames > 0
	if cache && len(s.gop) >= s.cfg.GopCacheMaxFrames {
		s.gop, s.gopOff, cache = nil, true, false
		for _, f := range s.feeds {
			f.gop = nil
		}
	}
	if cache {
		s.gop = append(s.gop, p.Clone())
	}
	for _, f := range s.feeds {
		b, err := f.enc.encode(p)
		if err != nil {
			if !isSkippable(err) {
				s.warnOnce(f.format.String()+" "+p.Codec.String(), err)
			}
			continue
		}
		if len(b) == 0 {
			continue
		}
		if cache {
			f.gop = append(f.gop, chunk{b: b, dts: p.DTS})
		}
		config := p.IsConfig() || p.Kind == media.KindData
		it := fo.Item{
			B: b, TS: p.DTS, Timed: !config,
			Video: p.Kind == media.KindVideo && !config, Key: p.Kind == media.KindVideo && p.IsKey(),
		}
		if s.cfg.MWLatency > 0 {
			f.g.Queue(it) // run flushes once per window
		} else {
			f.g.Push(it)
		}
	}
}

// attach adds a player of format f: it gets the container header, the
// codec configurations and the GOP cache first, then live packets.
func (s *source) attach(pl *player) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return errSourceEnded
	}
	f := s.feeds[pl.format]
	if f == nil {
		f = &feed{format: pl.format, enc: newEncoder(pl.format, s.cfg), players: map[*player]struct{}{}, g: fo.NewGroup(s.cfg.MWLatency)}
		for _, c := range []*media.Packet{s.st.meta, s.st.vcfg, s.st.acfg} {
			if c != nil {
				_, _ = f.enc.encode(*c)
			}
		}
		for _, p := range s.gop {
			if b, err := f.enc.encode(p); err == nil && len(b) > 0 {
				f.gop = append(f.gop, chunk{b: b, dts: p.DTS})
			}
		}
		s.feeds[pl.format] = f
	}
	init := make([][]byte, 0, len(f.gop)+1)
	if b := f.enc.prefix(&s.st); len(b) > 0 {
		init = append(init, b)
	}
	for _, c := range f.gop {
		init = append(init, c.b)
	}
	// Without a cached GOP a player starts on the next keyframe.
	f.g.Add(pl.sink, init, s.st.hasVideo && len(f.gop) == 0)
	f.players[pl] = struct{}{}
	s.nplayers++
	if s.linger != nil {
		s.linger.Stop()
		s.linger = nil
	}
	return nil
}

func (s *source) audioKnownLocked() {
	if !s.audioSet {
		s.audioSet = true
		close(s.audio)
	}
}

// audioCodec waits until the stream's audio codec is known, for at most
// wait or until ctx ends, and returns it (0: no audio came) and whether
// the source ended.
func (s *source) audioCodec(ctx context.Context, wait time.Duration) (media.Codec, bool) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.audio:
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.acodec, s.ended
}

// release is for a request that got the source but attached no player:
// without players the source stops after its linger.
func (s *source) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idleLocked()
}

// detach removes a player; the source stops a while after its last one.
func (s *source) detach(pl *player) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nplayers--
	if f := s.feeds[pl.format]; f != nil {
		delete(f.players, pl)
		f.g.Remove(pl.sink)
		if len(f.players) == 0 {
			delete(s.feeds, pl.format)
			f.g.Close()
		}
	}
	s.idleLocked()
}

// idleLocked stops the source after sourceLinger if it has no player then.
func (s *source) idleLocked() {
	if s.nplayers <= 0 && !s.ended && s.cancel != nil {
		cancel := s.cancel
		s.linger = time.AfterFunc(sourceLinger, func() {
			s.mu.Lock()
			idle := s.nplayers <= 0
			s.mu.Unlock()
			if idle {
				cancel()
			}
		})
	}
}
