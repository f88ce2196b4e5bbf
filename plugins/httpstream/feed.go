package main

import (
	"errors"

	"github.com/rill-media/rill/internal/flv"
	fo "github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/plugins/internal/flvmux"
	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk/media"
)

// encoder turns the packets of one stream into one container format. Each
// packet is encoded once per format and the bytes are shared by every
// player of that format.
type encoder interface {
	// prefix returns what a new player gets before the GOP cache: the
	// container header and the current codec configurations.
	prefix(st *trackState) []byte
	// encode returns the bytes for p (possibly none).
	encode(p media.Packet) ([]byte, error)
}

// trackState is what a source knows about its stream's tracks.
type trackState struct {
	meta, vcfg, acfg *media.Packet // cloned
	hasAudio         bool          // audio frames seen (MP3 has no config)
	hasVideo         bool
	acodec           media.Codec // of the last audio packet (config or frame); 0 before any
}

func newEncoder(f format, cfg *config) encoder {
	switch f {
	case fmtFLV:
		return &flvEncoder{opts: flvmux.Options{LegacyHEVC: cfg.FLVLegacyHEVC}}
	case fmtTS:
		return &tsEncoder{m: tsmux.New()}
	case fmtAAC:
		return &aacEncoder{}
	case fmtMP3:
		return &mp3Encoder{}
	}
	return nil
}

type flvEncoder struct{ opts flvmux.Options }

func (e *flvEncoder) prefix(st *trackState) []byte {
	b := flvmux.AppendHeader(nil, st.hasAudio || st.acfg != nil, st.hasVideo || st.vcfg != nil)
	for _, p := range []*media.Packet{st.meta, st.vcfg, st.acfg} {
		if p != nil {
			b, _ = flvmux.AppendTag(b, *p, e.opts) // validated when they arrived
		}
	}
	return b
}

func (e *flvEncoder) encode(p media.Packet) ([]byte, error) { return flvmux.AppendTag(nil, p, e.opts) }

type tsEncoder struct{ m *tsmux.Muxer }

func (e *tsEncoder) prefix(st *trackState) []byte {
	var v, a media.Codec
	if st.vcfg != nil {
		v = st.vcfg.Codec
	}
	if st.acfg != nil {
		a = st.acfg.Codec
	}
	e.m.DeclareCodecs(v, a)
	return e.m.AppendTables(nil)
}

func (e *tsEncoder) encode(p media.Packet) ([]byte, error) {
	b, err := e.m.AppendPacket(nil, p)
	if errors.Is(err, tsmux.ErrUnsupported) {
		return nil, nil // no such track in TS; the FLV feed still has it
	}
	return b, err
}

type aacEncoder struct {
	asc tsmux.AAC
	ok  bool
}

func (e *aacEncoder) prefix(st *trackState) []byte {
	if st.acfg != nil && st.acfg.Codec == media.CodecAAC {
		_, _ = e.encode(*st.acfg)
	}
	return nil
}

func (e *aacEncoder) encode(p media.Packet) ([]byte, error) {
	if p.Codec != media.CodecAAC {
		return nil, nil
	}
	if p.IsConfig() {
		a, err := tsmux.ParseASC(p.Payload)
		if err != nil {
			return nil, err
		}
		e.asc, e.ok = a, true
		return nil, nil
	}
	if !e.ok {
		return nil, nil
	}
	return e.asc.AppendADTS(nil, p.Payload)
}

type mp3Encoder struct{}

func (mp3Encoder) prefix(*trackState) []byte { return nil }

func (mp3Encoder) encode(p media.Packet) ([]byte, error) {
	if p.Codec != media.CodecMP3 || p.IsConfig() || len(p.Payload) == 0 {
		return nil, nil
	}
	return append([]byte(nil), p.Payload...), nil
}

// feed is one format of one source: its encoder, its encoded GOP cache and
// its players.
type feed struct {
	format  format
	enc     encoder
	gop     []chunk
	players map[*player]struct{}
	g       *fo.Group // writes to the players
}

// isSkippable tells errors of packets to drop quietly.
func isSkippable(err error) bool {
	return errors.Is(err, flv.ErrUnsupported)
}
