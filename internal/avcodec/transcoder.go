package avcodec

import (
	"fmt"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// resyncGap is how far an input timestamp may stray from the one the
// samples decoded so far predict before the Transcoder re-anchors its
// output clock (a publisher's pause, a timestamp jump): smaller deviations
// are jitter, absorbed by counting samples.
const resyncGap = 500 * time.Millisecond

// TimedFrame is an encoded frame with its hub timestamp.
type TimedFrame struct {
	Data     []byte
	DTS      time.Duration
	Duration time.Duration
}

// Transcoder decodes one audio stream, resamples it to the encoder's
// format, re-frames it to the encoder's frame size and encodes it.
// Output timestamps come from counting samples from the first input's DTS,
// so they do not drift over hours however the input frames are sized.
type Transcoder struct {
	from, to media.Codec
	dec      *Decoder
	enc      *Encoder
	rate     int64

	started bool
	anchor  time.Duration // hub time of encoder input sample 0
	fed     int64         // samples per channel handed to the encoder
	last    time.Duration // last output DTS, to keep them monotonic
	pcm     []float32
	frames  []Frame
	resyncs int
}

// NewTranscoder makes a transcoder from codec from (with its hub config:
// AAC's AudioSpecificConfig, nil for G.711 and Opus) and input format in
// (zero for what the codec implies) to codec to in format out.
func NewTranscoder(from media.Codec, config []byte, in Format, to media.Codec, out Format, bitrate int) (*Transcoder, error) {
	enc, err := NewEncoder(to, out, bitrate)
	if err != nil {
		return nil, err
	}
	dec, err := NewDecoder(from, config, in, out)
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &Transcoder{from: from, to: to, dec: dec, enc: enc, rate: int64(out.Rate)}, nil
}

// Config is the output codec configuration (AAC AudioSpecificConfig).
func (t *Transcoder) Config() []byte { return t.enc.Config() }

// Resyncs counts the times the output clock was re-anchored.
func (t *Transcoder) Resyncs() int { return t.resyncs }

// Feed transcodes one input frame with its hub DTS and appends the frames
// it completes to dst. A frame that does not decode returns an error and
// is skipped; the transcoder goes on with the next.
func (t *Transcoder) Feed(dst []TimedFrame, frame []byte, dts time.Duration) ([]TimedFrame, error) {
	var err error
	t.pcm, err = t.dec.Decode(t.pcm[:0], frame)
	if err != nil {
		return dst, fmt.Errorf("%s to %s: %w", t.from, t.to, err)
	}
	n := int64(len(t.pcm) / t.enc.format.Channels)
	if n == 0 {
		return dst, nil
	}
	pending := int64(len(t.enc.pending) / t.enc.format.Channels)
	if !t.started {
		t.started, t.anchor = true, dts
	} else if want := t.anchor + t.samples(t.fed+pending); dts-want > resyncGap || want-dts > resyncGap {
		// This frame's first sample is at dts: move the clock so that the
		// samples buffered so far end there.
		t.anchor = dts - t.samples(t.fed+pending)
		t.resyncs++
	}
	t.frames, err = t.enc.Encode(t.frames[:0], t.pcm)
	t.fed = t.enc.next
	if err != nil {
		return dst, fmt.Errorf("%s to %s: %w", t.from, t.to, err)
	}
	for _, f := range t.frames {
		d := t.anchor + t.samples(f.PTS)
		if d < t.last {
			d = t.last
		}
		t.last = d
		dst = append(dst, TimedFrame{Data: f.Data, DTS: d, Duration: t.samples(f.Duration)})
	}
	return dst, nil
}

// Shift moves the output clock by d from the next frame on (a caller that
// learnt the stream's true start later, such as from RTCP sender reports).
// A backward shift does not make output DTS go back: frames are held at the
// last DTS until the clock passes it.
func (t *Transcoder) Shift(d time.Duration) {
	t.anchor += d
}

// samples converts a sample count at the output rate to a duration.
func (t *Transcoder) samples(n int64) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(t.rate)
}

// Close frees the decoder and encoder. It is idempotent.
func (t *Transcoder) Close() {
	t.dec.Close()
	t.enc.Close()
}
