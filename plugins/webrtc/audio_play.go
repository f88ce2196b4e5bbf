package main

import (
	"bytes"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

// playOpus is what WebRTC players of an AAC stream get: Opus at 48 kHz
// stereo (the only rate WebRTC's Opus RTP clock knows).
var playOpus = avcodec.Format{Rate: 48000, Channels: 2}

const (
	playOpusBitrate = 64000
	// opusHistory is how many recent AAC frames' Opus output a stream
	// keeps, so players behind the one feeding the transcoder (a new
	// viewer starting at the GOP cache, a slower queue) get the same
	// frames: about 12 s of 44.1 kHz AAC.
	opusHistory = 512
	// timeReset is how far back a packet's DTS must be from the newest fed
	// one to count as the stream's clock going back rather than a player
	// lagging (players' queues hold far less).
	timeReset = 30 * time.Second
)

// opusStreams holds one AAC->Opus transcoder per hub stream for every
// WebRTC player of it in this process (the players share it, they do not
// each run an encoder). A process has one Server, so the registry is the
// package's.
var opusStreams = &opusRegistry{streams: map[string]*sharedOpus{}}

type opusRegistry struct {
	mu      sync.Mutex
	streams map[string]*sharedOpus
}

// acquire returns the stream's shared transcoder, made on first use.
func (r *opusRegistry) acquire(key string, log hclog.Logger) *sharedOpus {
	r.mu.Lock()
	defer r.mu.Unlock()
	so := r.streams[key]
	if so == nil {
		so = &sharedOpus{key: key, log: log.With("stream", key)}
		r.streams[key] = so
	}
	so.refs++
	return so
}

// release drops a player's reference; the last one frees the transcoder.
func (r *opusRegistry) release(so *sharedOpus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	so.refs--
	if so.refs > 0 {
		return
	}
	delete(r.streams, so.key)
	so.mu.Lock()
	so.reset(nil)
	so.mu.Unlock()
}

func (r *opusRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.streams)
}

type opusEntry struct {
	in  time.Duration // the AAC frame's DTS
	out []avcodec.TimedFrame
}

// sharedOpus transcodes one stream's AAC once: the first player to reach
// an AAC frame feeds it, and the Opus frames it produced are kept by the
// input DTS for the players that reach the same frame later.
type sharedOpus struct {
	key  string
	log  hclog.Logger
	refs int // under opusRegistry.mu

	mu      sync.Mutex
	config  []byte
	tr      *avcodec.Transcoder
	failed  bool // the config did not open a decoder: logged once
	fed     bool
	lastIn  time.Duration
	hist    []opusEntry // oldest first, at most opusHistory
	dropped int
}

// reset replaces the transcoder for a new AudioSpecificConfig (nil frees).
func (so *sharedOpus) reset(config []byte) {
	if so.tr != nil {
		so.tr.Close()
		so.tr = nil
	}
	so.config, so.failed, so.fed, so.hist = config, false, false, nil
}

// frames returns the Opus frames for one AAC packet of the stream (a
// config packet sets up the transcoder and returns none). The result is
// shared: callers must not modify it.
func (so *sharedOpus) frames(pkt media.Packet) []avcodec.TimedFrame {
	so.mu.Lock()
	defer so.mu.Unlock()
	if pkt.IsConfig() {
		if !bytes.Equal(pkt.Payload, so.config) {
			so.reset(append([]byte(nil), pkt.Payload...))
		}
		return nil
	}
	if so.config == nil || so.failed {
		return nil
	}
	if so.fed && pkt.DTS <= so.lastIn {
		// Fed already by another player: find its output.
		for i := len(so.hist) - 1; i >= 0 && so.hist[i].in >= pkt.DTS; i-- {
			if so.hist[i].in == pkt.DTS {
				return so.hist[i].out
			}
		}
		if so.lastIn-pkt.DTS < timeReset {
			return nil // a player further behind than the history: it gets no audio until it is nearer
		}
		// Far behind any player: the stream's clock went back (the
		// publisher reset its timestamps). Start over from here.
		so.reset(so.config)
	}
	if so.tr == nil {
		tr, err := avcodec.NewTranscoder(media.CodecAAC, so.config, avcodec.Format{}, media.CodecOpus, playOpus, playOpusBitrate)
		if err != nil {
			so.failed = true
			so.log.Warn("aac to opus transcoder not started, webrtc players get no audio", "error", err)
			return nil
		}
		so.tr = tr
		so.log.Info("stream aac transcoded to opus for webrtc players", "rate", playOpus.Rate, "channels", playOpus.Channels)
	}
	so.fed, so.lastIn = true, pkt.DTS
	out, err := so.tr.Feed(nil, pkt.Payload, pkt.DTS)
	if err != nil {
		so.dropped++
		if so.dropped == 1 || so.dropped%100 == 0 {
			so.log.Warn("undecodable aac frame dropped", "error", err, "dropped", so.dropped)
		}
	}
	if len(so.hist) == opusHistory {
		n := copy(so.hist, so.hist[1:])
		so.hist = so.hist[:n]
	}
	so.hist = append(so.hist, opusEntry{in: pkt.DTS, out: out})
	return out
}

// sendAAC sends a hub AAC packet to the player as Opus.
func (p *player) sendAAC(pkt media.Packet) error {
	if p.opus == nil {
		p.opus = opusStreams.acquire(p.ss.ref.Key(), p.ss.s.log)
	}
	for _, f := range p.opus.frames(pkt) {
		if err := p.send(p.audio, p.apack, f.Data, p.abase+rtpTime(f.DTS, 48000)); err != nil {
			return err
		}
	}
	return nil
}

// closeAudio releases the player's share of the stream's transcoder.
func (p *player) closeAudio() {
	if p.opus != nil {
		opusStreams.release(p.opus)
		p.opus = nil
	}
}
