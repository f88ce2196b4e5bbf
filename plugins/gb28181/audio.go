package main

import (
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

// G.711 from a camera becomes AAC in the hub (RTMP, FLV and HLS carry no
// G.711 that players decode): 8 kHz mono, as the camera sends it; AAC-LC
// has an 8 kHz sampling index, so no resampling is needed.
var g711AAC = avcodec.Format{Rate: 8000, Channels: 1}

const g711AACBitrate = 32000

// audioTranscode sits between the PS demuxer and the publication: G.711
// packets are transcoded to AAC, everything else passes through. Write and
// Close may be called from different goroutines (a media reader, an expiry).
type audioTranscode struct {
	next func(media.Packet) error
	log  hclog.Logger

	mu     sync.Mutex
	codec  media.Codec // the G.711 law the transcoder was made for
	tr     *avcodec.Transcoder
	config bool // the AudioSpecificConfig went out
	failed bool // the transcoder did not open: logged once, audio dropped
	closed bool
	bad    int
	frames []avcodec.TimedFrame
}

func newAudioTranscode(next func(media.Packet) error, log hclog.Logger) *audioTranscode {
	return &audioTranscode{next: next, log: log}
}

// write is the demuxer's emit function.
func (a *audioTranscode) write(p media.Packet) error {
	if p.Codec != media.CodecG711A && p.Codec != media.CodecG711U {
		return a.next(p)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	if a.tr != nil && a.codec != p.Codec {
		a.tr.Close() // the camera switched law
		a.tr, a.failed = nil, false
	}
	if a.failed {
		return nil
	}
	if a.tr == nil {
		tr, err := avcodec.NewTranscoder(p.Codec, nil, avcodec.Format{Rate: 8000, Channels: 1}, media.CodecAAC, g711AAC, g711AACBitrate)
		if err != nil {
			a.failed = true
			a.log.Error("g711 to aac transcoder not started, camera audio dropped", "codec", p.Codec.String(), "error", err)
			return nil
		}
		a.tr, a.codec = tr, p.Codec
		a.log.Info("camera g711 transcoded to aac", "codec", p.Codec.String(), "rate", g711AAC.Rate, "channels", g711AAC.Channels)
	}
	var err error
	a.frames, err = a.tr.Feed(a.frames[:0], p.Payload, p.DTS)
	if err != nil {
		a.bad++
		if a.bad == 1 || a.bad%100 == 0 {
			a.log.Warn("undecodable g711 frame dropped", "error", err, "dropped", a.bad)
		}
		return nil
	}
	for _, f := range a.frames {
		if f.DTS < 0 {
			continue // the encoder's priming frame before the stream's start
		}
		if !a.config {
			if err := a.next(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, DTS: f.DTS, PTS: f.DTS, Payload: a.tr.Config()}); err != nil {
				return err
			}
			a.config = true
		}
		if err := a.next(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: f.DTS, PTS: f.DTS, Payload: f.Data}); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the transcoder; later G.711 packets are dropped. Idempotent.
func (a *audioTranscode) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if a.tr != nil {
		a.tr.Close()
		a.tr = nil
	}
}
