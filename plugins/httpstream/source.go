package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	fo "github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/plugins/internal/live"
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

// source is the HTTP streaming side of one stream: one reader of the
// stream's live tap (plugins/internal/live), shared with this process's
// HLS writer, so the ring is read once however many formats and players
// it has. Each format is encoded once (a feed) for all of its players.
type source struct {
	srv *Server
	key streamKey
	log hclog.Logger
	cfg *config
	rd  *live.Reader
	mw  time.Duration // merged-write window of the stream's vhost

	mu       sync.Mutex
	st       trackState
	gop      []media.Packet // the tap's GOP cache (its Init and marks), cloned
	gopSeq   uint64         // packets ever cached: the last one's number
	feeds    map[format]*feed
	nplayers int
	ended    bool
	linger   *time.Timer
	warned   map[string]bool
	// audio is closed once the audio codec is known (st.acodec) or the
	// source ended: .aac and .mp3 players wait on it before their answer.
	audio    chan struct{}
	audioSet bool // audio closed
}

var _ live.Handler = (*source)(nil)

func mwOf(cfg *config, vhost string) time.Duration {
	mw, _ := cfg.play(vhost)
	return mw
}

func newSource(srv *Server, key streamKey, cfg *config) *source {
	return &source{
		srv: srv, key: key, cfg: cfg, log: srv.log.With("stream", key.String()), mw: mwOf(cfg, key.Vhost),
		audio: make(chan struct{}), feeds: map[format]*feed{}, warned: map[string]bool{},
	}
}

// Start implements live.Handler: the state of a stream the tap already
// reads (for the HLS writer, or a previous source in its linger).
func (s *source) Start(init live.Init) {
	for _, c := range []*media.Packet{init.Meta, init.Video, init.Audio} {
		if c != nil {
			s.handle(*c, live.Mark{})
		}
	}
	s.mu.Lock()
	s.st.hasVideo = s.st.hasVideo || init.SawVideo
	s.st.hasAudio = s.st.hasAudio || init.SawAudio
	s.mu.Unlock()
	for _, p := range init.GOP {
		s.handle(p, live.Mark{Cached: true})
	}
}

// Packets implements live.Handler.
func (s *source) Packets(ps []media.Packet, ms []live.Mark) {
	for i, p := range ps {
		s.handle(p, ms[i])
	}
}

// Flush implements live.Handler: what every feed has queued goes out.
func (s *source) Flush() {
	if s.mw <= 0 {
		return // every item was pushed at once
	}
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

// End implements live.Handler.
func (s *source) End(err error) {
	if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && s.srv.ctx.Err() == nil {
		s.log.Warn("stream read ended", "error", err)
	}
	s.log.Info("http streaming source ended")
	s.finish()
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

func (s *source) handle(p media.Packet, mark live.Mark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Kind == media.KindAudio {
		// The tap starts a reader with the codec configurations, so an
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
	case p.Kind == media.KindAudio:
		s.st.hasAudio = true
	}
	// Mirror the tap's GOP cache, in packets and in each feed's bytes.
	if mark.Reset {
		s.gop = s.gop[:0:0]
		for _, f := range s.feeds {
			f.gop = f.gop[:0:0]
		}
	}
	if n := mark.Trim; n > 0 {
		s.gop = s.gop[min(n, len(s.gop)):]
		first := s.gopSeq + 1 - uint64(len(s.gop))
		for _, f := range s.feeds {
			i := 0
			for i < len(f.gop) && f.gop[i].seq < first {
				i++
			}
			f.gop = f.gop[i:]
		}
	}
	cache := mark.Cached
	if cache {
		s.gop = append(s.gop, p.Clone())
		s.gopSeq++
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
			f.gop = append(f.gop, chunk{b: b, dts: p.DTS, seq: s.gopSeq})
		}
		config := p.IsConfig() || p.Kind == media.KindData
		it := fo.Item{
			B: b, TS: p.DTS, Timed: !config,
			Video: p.Kind == media.KindVideo && !config, Key: p.Kind == media.KindVideo && p.IsKey(),
		}
		if s.mw > 0 {
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
		f = &feed{format: pl.format, enc: newEncoder(pl.format, s.cfg), players: map[*player]struct{}{}, g: fo.NewGroup(s.mw)}
		for _, c := range []*media.Packet{s.st.meta, s.st.vcfg, s.st.acfg} {
			if c != nil {
				_, _ = f.enc.encode(*c)
			}
		}
		first := s.gopSeq + 1 - uint64(len(s.gop))
		for i, p := range s.gop {
			if b, err := f.enc.encode(p); err == nil && len(b) > 0 {
				f.gop = append(f.gop, chunk{b: b, dts: p.DTS, seq: first + uint64(i)})
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

// idleLocked stops the source after sourceLinger if it has no player then.
func (s *source) idleLocked() {
	if s.nplayers <= 0 && !s.ended && s.rd != nil {
		if s.linger != nil {
			s.linger.Stop()
		}
		s.linger = time.AfterFunc(sourceLinger, func() {
			s.mu.Lock()
			idle := s.nplayers <= 0 && !s.ended
			s.mu.Unlock()
			if idle {
				s.rd.Leave()
				s.finish()
			}
		})
	}
}
