package main

import (
	"sync"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// stream is what the plugin counted of one stream.
type stream struct {
	ref    sdk.StreamRef
	window time.Duration

	mu      sync.Mutex
	live    bool
	started time.Time
	ended   time.Time
	packets uint64
	bytes   uint64
	keys    uint64
	kinds   map[string]*kindStats
	frames  []time.Time // arrival of the video frames in the window
}

type kindStats struct {
	Codec   string        `json:"codec"`
	Packets uint64        `json:"packets"`
	Bytes   uint64        `json:"bytes"`
	LastDTS time.Duration `json:"-"`
}

// Snapshot is one stream as the API shows it.
type Snapshot struct {
	Key     string                `json:"key"`
	Vhost   string                `json:"vhost"`
	App     string                `json:"app"`
	Stream  string                `json:"stream"`
	Live    bool                  `json:"live"`
	Packets uint64                `json:"packets"`
	Bytes   uint64                `json:"bytes"`
	Keys    uint64                `json:"key_frames"`
	FPS     float64               `json:"fps"`
	Kinds   map[string]kindExport `json:"kinds"`
	Started time.Time             `json:"started"`
	Ended   *time.Time            `json:"ended,omitempty"`
}

type kindExport struct {
	Codec   string `json:"codec"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	LastDTS int64  `json:"last_dts_ms"`
}

func newStream(ref sdk.StreamRef, window time.Duration) *stream {
	return &stream{ref: ref, window: window, live: true, started: time.Now(), kinds: map[string]*kindStats{}}
}

func (s *stream) running() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.live }

func (s *stream) stop() {
	s.mu.Lock()
	s.live, s.ended = false, time.Now()
	s.mu.Unlock()
}

// count adds one packet read at now. Configuration records (FlagConfig)
// are counted as packets of their kind but are not frames.
func (s *stream) count(p media.Packet, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.packets++
	s.bytes += uint64(len(p.Payload))
	k := s.kinds[kindName(p.Kind)]
	if k == nil {
		k = &kindStats{}
		s.kinds[kindName(p.Kind)] = k
	}
	k.Codec = p.Codec.String()
	k.Packets++
	k.Bytes += uint64(len(p.Payload))
	k.LastDTS = p.DTS
	if p.Kind != media.KindVideo || p.IsConfig() {
		return
	}
	if p.IsKey() {
		s.keys++
	}
	s.frames = append(s.frames, now)
	s.trim(now)
}

// trim drops the frames older than the window (and bounds the slice).
func (s *stream) trim(now time.Time) {
	cut := 0
	for cut < len(s.frames) && now.Sub(s.frames[cut]) > s.window {
		cut++
	}
	if cut > 0 {
		s.frames = append(s.frames[:0], s.frames[cut:]...)
	}
	if len(s.frames) > 10000 { // 2000 fps over 5 s: more is not video
		s.frames = s.frames[len(s.frames)-10000:]
	}
}

func (s *stream) snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.live {
		s.trim(now)
	}
	out := Snapshot{Key: s.ref.Key(), Vhost: s.ref.Vhost, App: s.ref.App, Stream: s.ref.Stream, Live: s.live,
		Packets: s.packets, Bytes: s.bytes, Keys: s.keys, Started: s.started, Kinds: map[string]kindExport{}}
	if !s.live {
		e := s.ended
		out.Ended = &e
	} else if len(s.frames) > 1 {
		span := s.frames[len(s.frames)-1].Sub(s.frames[0])
		if span > 0 {
			out.FPS = float64(len(s.frames)-1) / span.Seconds()
		}
	}
	for n, k := range s.kinds {
		out.Kinds[n] = kindExport{Codec: k.Codec, Packets: k.Packets, Bytes: k.Bytes, LastDTS: k.LastDTS.Milliseconds()}
	}
	return out
}
