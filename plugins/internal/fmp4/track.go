package fmp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// ErrUnsupportedCodec is returned for a codec this package cannot put in an
// MP4 file (G.711, AV1 for now, AMF0 data).
var ErrUnsupportedCodec = errors.New("fmp4: unsupported codec")

// ErrMalformed is returned, wrapped, for a configuration record that does
// not parse.
var ErrMalformed = errors.New("fmp4: malformed config")

// Track is one track of the file: its id, codec and decoder configuration.
// Build it with NewTrack from the codec's configuration packet.
type Track struct {
	ID        uint32 // 1-based, unique in the file
	Codec     media.Codec
	Timescale uint32 // units per second of the track's timestamps
	// Config is the decoder configuration record (avcC, hvcC), the
	// AudioSpecificConfig (AAC) or the Opus ID header, as in the packet
	// flagged media.FlagConfig. NewTrack copies it.
	Config     []byte
	Width      int // video
	Height     int
	SampleRate int // audio
	Channels   int
}

// Kind returns the track's media kind.
func (t Track) Kind() media.Kind { return t.Codec.Kind() }

// NewTrack returns the track with id for a codec configuration packet:
// H.264 or H.265 (decoder configuration record), AAC (AudioSpecificConfig)
// or Opus (ID header). Other codecs return an error wrapping
// ErrUnsupportedCodec; a record that does not parse, ErrMalformed.
func NewTrack(id uint32, config media.Packet) (Track, error) {
	if !config.IsConfig() {
		return Track{}, fmt.Errorf("%w: track from a %v packet without FlagConfig", ErrMalformed, config.Codec)
	}
	t := Track{ID: id, Codec: config.Codec, Config: append([]byte(nil), config.Payload...)}
	switch config.Codec {
	case media.CodecH264, media.CodecH265:
		w, h, _, _, err := flv.VideoInfo(config)
		if err != nil {
			return Track{}, fmt.Errorf("%w: %v: %v", ErrMalformed, config.Codec, err)
		}
		t.Width, t.Height, t.Timescale = w, h, 90000
	case media.CodecAAC:
		rate, ch, _, err := flv.AudioInfo(config)
		if err != nil {
			return Track{}, fmt.Errorf("%w: AAC: %v", ErrMalformed, err)
		}
		if ch == 0 {
			ch = 2 // defined by a program config element; the esds carries it
		}
		t.SampleRate, t.Channels, t.Timescale = rate, ch, uint32(rate)
	case media.CodecOpus:
		h, err := parseOpusHead(config.Payload)
		if err != nil {
			return Track{}, err
		}
		t.SampleRate, t.Channels, t.Timescale = 48000, int(h.channels), 48000
	default:
		return Track{}, fmt.Errorf("%w %v", ErrUnsupportedCodec, config.Codec)
	}
	if t.Timescale == 0 {
		return Track{}, fmt.Errorf("%w: %v: zero sample rate", ErrMalformed, config.Codec)
	}
	return t, nil
}

// Units converts d to the track's timescale, rounding to the nearest unit.
// It does not overflow for any time.Duration.
func (t Track) Units(d time.Duration) int64 {
	ts := int64(t.Timescale)
	sec, frac := int64(d/time.Second), int64(d%time.Second)
	r := frac * ts
	// Round half away from zero.
	if r >= 0 {
		r = (r + int64(time.Second)/2) / int64(time.Second)
	} else {
		r = (r - int64(time.Second)/2) / int64(time.Second)
	}
	return sec*ts + r
}

// defaultDuration is the duration given to a track's last sample when no
// later sample tells it (a frame at 25 fps, an AAC or Opus frame).
func (t Track) defaultDuration() uint32 {
	switch t.Codec {
	case media.CodecAAC:
		return 1024
	case media.CodecOpus:
		return 960
	}
	if t.Timescale >= 25 {
		return t.Timescale / 25
	}
	return 1
}

// opusHead is the Opus ID header (RFC 7845 §5.1).
type opusHead struct {
	channels      uint8
	preSkip       uint16
	inputRate     uint32
	gain          int16
	mappingFamily uint8
	mapping       []byte // stream count, coupled count, channel mapping
}

func parseOpusHead(b []byte) (opusHead, error) {
	if len(b) < 19 || string(b[:8]) != "OpusHead" {
		return opusHead{}, fmt.Errorf("%w: Opus ID header too short or without magic", ErrMalformed)
	}
	h := opusHead{
		channels:      b[9],
		preSkip:       binary.LittleEndian.Uint16(b[10:]),
		inputRate:     binary.LittleEndian.Uint32(b[12:]),
		gain:          int16(binary.LittleEndian.Uint16(b[16:])),
		mappingFamily: b[18],
	}
	if h.channels == 0 {
		return opusHead{}, fmt.Errorf("%w: Opus ID header with 0 channels", ErrMalformed)
	}
	if h.mappingFamily != 0 {
		n := 2 + int(h.channels)
		if len(b) < 19+n {
			return opusHead{}, fmt.Errorf("%w: Opus channel mapping table cut short", ErrMalformed)
		}
		h.mapping = b[19 : 19+n]
	}
	return h, nil
}
