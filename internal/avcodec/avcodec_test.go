package avcodec

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// sine returns n interleaved samples per channel of a tone.
func sine(f Format, hz float64, start, n int) []float32 {
	out := make([]float32, 0, n*f.Channels)
	for i := start; i < start+n; i++ {
		v := float32(0.5 * math.Sin(2*math.Pi*hz*float64(i)/float64(f.Rate)))
		for range f.Channels {
			out = append(out, v)
		}
	}
	return out
}

// toneOf measures a mono view (channel 0) of pcm: RMS and the dominant
// frequency by zero crossings (the signals are pure tones).
func toneOf(pcm []float32, f Format) (rms, hz float64) {
	var sum float64
	crossings := 0
	n := len(pcm) / f.Channels
	for i := range n {
		v := float64(pcm[i*f.Channels])
		sum += v * v
		if i > 0 && (pcm[(i-1)*f.Channels] < 0) != (pcm[i*f.Channels] < 0) {
			crossings++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return math.Sqrt(sum / float64(n)), float64(crossings) / 2 / (float64(n) / float64(f.Rate))
}

// goertzel is the relative power of hz in pcm (channel 0).
func goertzel(pcm []float32, f Format, hz float64) float64 {
	n := len(pcm) / f.Channels
	k := 2 * math.Cos(2*math.Pi*hz/float64(f.Rate))
	var s1, s2, energy float64
	for i := range n {
		x := float64(pcm[i*f.Channels])
		energy += x * x
		s := x + k*s1 - s2
		s2, s1 = s1, s
	}
	p := s1*s1 + s2*s2 - k*s1*s2
	if energy == 0 {
		return 0
	}
	return p / energy / float64(n) * 2
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		codec media.Codec
		enc   Format
		dec   Format
	}{
		{"aac 44.1k stereo", media.CodecAAC, Format{44100, 2}, Format{44100, 2}},
		{"aac 48k mono", media.CodecAAC, Format{48000, 1}, Format{48000, 1}},
		{"aac 8k mono", media.CodecAAC, Format{8000, 1}, Format{8000, 1}},
		{"opus 48k stereo", media.CodecOpus, Format{48000, 2}, Format{48000, 2}},
		{"opus 16k mono to 48k", media.CodecOpus, Format{16000, 1}, Format{48000, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const hz = 1000.0
			enc, err := NewEncoder(c.codec, c.enc, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			if c.codec == media.CodecAAC && len(enc.Config()) < 2 {
				t.Fatalf("aac encoder gave no AudioSpecificConfig: %x", enc.Config())
			}
			var frames []Frame
			// 2 s of tone, fed in odd-sized pieces to exercise re-framing.
			total, piece := 2*c.enc.Rate, 777
			for at := 0; at < total; at += piece {
				frames, err = enc.Encode(frames, sine(c.enc, hz, at, min(piece, total-at)))
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(frames) < total/enc.FrameSize()-4 {
				t.Fatalf("%d frames for %d samples of %d", len(frames), total, enc.FrameSize())
			}
			for i := 1; i < len(frames); i++ {
				if d := frames[i].PTS - frames[i-1].PTS; d != int64(enc.FrameSize()) {
					t.Fatalf("frame %d: pts step %d, want %d", i, d, enc.FrameSize())
				}
			}
			var cfg []byte
			if c.codec == media.CodecAAC {
				cfg = enc.Config()
			}
			dec, err := NewDecoder(c.codec, cfg, Format{}, c.dec)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var pcm []float32
			for _, f := range frames {
				if pcm, err = dec.Decode(pcm, f.Data); err != nil {
					t.Fatal(err)
				}
			}
			// Skip the codec's start-up (priming and its ramp).
			skip := c.dec.Rate / 5 * c.dec.Channels
			if len(pcm) < skip*3 {
				t.Fatalf("decoded %d floats", len(pcm))
			}
			body := pcm[skip:]
			rms, got := toneOf(body, c.dec)
			if rms < 0.2 {
				t.Fatalf("decoded rms %.3f: silence or near it (sent 0.354)", rms)
			}
			if math.Abs(got-hz) > 20 {
				t.Fatalf("decoded tone %.1f Hz, want %.0f", got, hz)
			}
			if p := goertzel(body, c.dec, hz); p < 0.8 {
				t.Fatalf("only %.2f of the energy at %.0f Hz", p, hz)
			}
		})
	}
}

func TestResampler(t *testing.T) {
	for _, c := range []struct{ in, out Format }{
		{Format{8000, 1}, Format{44100, 2}},
		{Format{16000, 1}, Format{48000, 1}},
		{Format{44100, 2}, Format{48000, 2}},
		{Format{48000, 2}, Format{44100, 1}},
		{Format{48000, 2}, Format{8000, 1}},
	} {
		t.Run("", func(t *testing.T) {
			r, err := NewResampler(c.in, c.out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var out []float32
			for at := 0; at < c.in.Rate; at += 320 {
				if out, err = r.Convert(out, sine(c.in, 440, at, min(320, c.in.Rate-at))); err != nil {
					t.Fatal(err)
				}
			}
			if out, err = r.Convert(out, nil); err != nil {
				t.Fatal(err)
			}
			n := len(out) / c.out.Channels
			if d := n - c.out.Rate; d < -64 || d > 64 {
				t.Fatalf("1 s at %d Hz became %d samples at %d Hz", c.in.Rate, n, c.out.Rate)
			}
			rms, hz := toneOf(out[c.out.Channels*c.out.Rate/10:], c.out)
			// Mono up-mixed to stereo is at -3 dB per channel (0.25).
			if rms < 0.2 || math.Abs(hz-440) > 5 {
				t.Fatalf("resampled tone rms %.3f at %.1f Hz, want 0.354 at 440", rms, hz)
			}
		})
	}
	if _, err := NewResampler(Format{0, 1}, Format{48000, 2}); err == nil {
		t.Fatal("a 0 Hz resampler opened")
	}
	r, _ := NewResampler(Format{48000, 2}, Format{44100, 2})
	defer r.Close()
	if _, err := r.Convert(nil, make([]float32, 3)); err == nil {
		t.Fatal("half a stereo sample was accepted")
	}
}

// TestTranscoder checks the DTS the transcoder gives over a long run: it
// follows the sample count exactly (no drift), is monotonic and spaced by
// the output frame.
func TestTranscoder(t *testing.T) {
	cases := []struct {
		name    string
		from    media.Codec
		in      Format
		to      media.Codec
		out     Format
		inFrame int
	}{
		{"aac to opus", media.CodecAAC, Format{44100, 2}, media.CodecOpus, Format{48000, 2}, 1024},
		{"opus to aac", media.CodecOpus, Format{48000, 2}, media.CodecAAC, Format{44100, 2}, 960},
		{"g711a to aac", media.CodecG711A, Format{8000, 1}, media.CodecAAC, Format{8000, 1}, 160},
		{"g711u to aac 16k", media.CodecG711U, Format{8000, 1}, media.CodecAAC, Format{16000, 1}, 160},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := sourceFrames(t, c.from, c.in, c.inFrame, 30*c.in.Rate)
			var cfg []byte
			if c.from == media.CodecAAC {
				cfg = src.config
			}
			tr, err := NewTranscoder(c.from, cfg, Format{}, c.to, c.out, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			base := 10 * time.Second
			var out []TimedFrame
			for i, f := range src.frames {
				// The input's millisecond timestamps (as FLV carries them)
				// jitter around the true time; the output must not.
				dts := base + time.Duration(i*c.inFrame)*time.Second/time.Duration(c.in.Rate)
				dts = dts.Truncate(time.Millisecond)
				if out, err = tr.Feed(out, f, dts); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			if len(out) < 100 {
				t.Fatalf("%d output frames", len(out))
			}
			step := out[1].DTS - out[0].DTS
			want := out[0].Duration
			for i := 1; i < len(out); i++ {
				if d := out[i].DTS - out[i-1].DTS; d < 0 || (i > 2 && absDur(d-want) > time.Microsecond) {
					t.Fatalf("frame %d: dts step %v, want %v (first step %v)", i, d, want, step)
				}
			}
			// The last frame's time is the sample count's, not a sum of
			// rounded steps.
			n := int64(len(out)-1) * int64(out[0].Duration) // in ns
			if drift := out[len(out)-1].DTS - out[0].DTS - time.Duration(n); absDur(drift) > time.Millisecond {
				t.Fatalf("drift %v after %v", drift, out[len(out)-1].DTS-out[0].DTS)
			}
			// The first frame may be the encoder's priming frame, one frame
			// before the input's first sample.
			if out[0].DTS < base-out[0].Duration-time.Millisecond || out[0].DTS > base+50*time.Millisecond {
				t.Fatalf("first output at %v, input started at %v", out[0].DTS, base)
			}
			if tr.Resyncs() != 0 {
				t.Fatalf("%d resyncs on a steady input", tr.Resyncs())
			}
			// A 5 s jump in the input moves the output with it.
			last := out[len(out)-1].DTS
			jump := base + 35*time.Second
			var more []TimedFrame
			for i, f := range src.frames[:50] {
				if more, err = tr.Feed(more, f, jump+time.Duration(i*c.inFrame)*time.Second/time.Duration(c.in.Rate)); err != nil {
					t.Fatal(err)
				}
			}
			if tr.Resyncs() != 1 || len(more) == 0 || more[len(more)-1].DTS < last+4*time.Second {
				t.Fatalf("after a 5 s jump: %d resyncs, last dts %v (was %v)", tr.Resyncs(), more[len(more)-1].DTS, last)
			}
			// The audio is still the tone.
			dec, err := NewDecoder(c.to, tr.Config(), Format{}, c.out)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var pcm []float32
			for _, f := range out[len(out)/2:] {
				if pcm, err = dec.Decode(pcm, f.Data); err != nil {
					t.Fatal(err)
				}
			}
			rms, hz := toneOf(pcm[len(pcm)/4:], c.out)
			if rms < 0.15 || math.Abs(hz-600) > 20 {
				t.Fatalf("transcoded tone rms %.3f at %.1f Hz, want about 0.35 at 600", rms, hz)
			}
		})
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

type encoded struct {
	config []byte
	frames [][]byte
}

// sourceFrames makes n samples of a 600 Hz tone in codec: AAC and Opus
// through this package's encoders, G.711 through FFmpeg's pcm encoders.
func sourceFrames(t testing.TB, codec media.Codec, f Format, frame, n int) encoded {
	t.Helper()
	if codec == media.CodecG711A || codec == media.CodecG711U {
		return encoded{frames: g711Frames(t, codec, sine(f, 600, 0, n), frame)}
	}
	enc, err := NewEncoder(codec, f, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if enc.FrameSize() != frame {
		t.Fatalf("%s frame size %d, test assumes %d", codec, enc.FrameSize(), frame)
	}
	frames, err := enc.Encode(nil, sine(f, 600, 0, n))
	if err != nil {
		t.Fatal(err)
	}
	out := encoded{config: enc.Config()}
	for _, fr := range frames {
		out.frames = append(out.frames, fr.Data)
	}
	return out
}

func TestGarbage(t *testing.T) {
	asc := []byte{0x12, 0x10} // AAC-LC 44.1 kHz stereo
	for _, c := range []struct {
		codec media.Codec
		cfg   []byte
	}{
		{media.CodecAAC, asc}, {media.CodecOpus, nil}, {media.CodecMP3, nil},
	} {
		d, err := NewDecoder(c.codec, c.cfg, Format{}, Format{48000, 2})
		if err != nil {
			t.Fatalf("%s: %v", c.codec, err)
		}
		bad := 0
		for i := range 200 {
			junk := make([]byte, 1+i*7%900)
			for j := range junk {
				junk[j] = byte(i*31 + j*17)
			}
			if _, err := d.Decode(nil, junk); err != nil {
				bad++
			}
		}
		if c.codec == media.CodecAAC && bad == 0 {
			t.Fatalf("%s: 200 junk frames and no error", c.codec)
		}
		d.Close()
		d.Close() // idempotent
		if _, err := d.Decode(nil, []byte{1, 2, 3}); err == nil {
			t.Fatalf("%s: decode after close did not fail", c.codec)
		}
	}
	if _, err := NewDecoder(media.CodecAAC, nil, Format{}, Format{48000, 2}); err == nil {
		t.Fatal("aac decoder without config opened")
	}
	if _, err := NewDecoder(media.CodecAAC, []byte{0xff, 0xff, 0xff}, Format{}, Format{48000, 2}); err == nil {
		t.Fatal("aac decoder opened on a junk AudioSpecificConfig")
	}
	if _, err := NewDecoder(media.CodecH264, nil, Format{}, Format{48000, 2}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("h264 audio decoder: %v", err)
	}
	if _, err := NewEncoder(media.CodecOpus, Format{44100, 2}, 0); err == nil {
		t.Fatal("libopus accepted 44.1 kHz")
	}
}

func g711Frames(t testing.TB, codec media.Codec, pcm []float32, frame int) [][]byte {
	t.Helper()
	enc, err := NewEncoder(codec, Format{8000, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	if enc.FrameSize() != frame {
		t.Fatalf("%s frame size %d, test assumes %d", codec, enc.FrameSize(), frame)
	}
	frames, err := enc.Encode(nil, pcm)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range frames {
		if len(f.Data) != frame {
			t.Fatalf("%s frame of %d bytes, want %d", codec, len(f.Data), frame)
		}
		out = append(out, f.Data)
	}
	return out
}

// BenchmarkTranscode is the CPU one stream's transcoding costs: one op is
// one second of audio (go test -bench Transcode -run '^$').
func BenchmarkTranscode(b *testing.B) {
	cases := []struct {
		name    string
		from    media.Codec
		in      Format
		to      media.Codec
		out     Format
		inFrame int
	}{
		{"aac44k-opus48k", media.CodecAAC, Format{44100, 2}, media.CodecOpus, Format{48000, 2}, 1024},
		{"opus48k-aac48k", media.CodecOpus, Format{48000, 2}, media.CodecAAC, Format{48000, 2}, 960},
		{"g711a-aac8k", media.CodecG711A, Format{8000, 1}, media.CodecAAC, Format{8000, 1}, 160},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			src := sourceFrames(b, c.from, c.in, c.inFrame, c.in.Rate)
			tr, err := NewTranscoder(c.from, src.config, Format{}, c.to, c.out, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			var out []TimedFrame
			var dts time.Duration
			step := time.Duration(c.inFrame) * time.Second / time.Duration(c.in.Rate)
			b.ResetTimer()
			for range b.N {
				for _, f := range src.frames {
					if out, err = tr.Feed(out[:0], f, dts); err != nil {
						b.Fatal(err)
					}
					dts += step
				}
			}
		})
	}
}

// TestTranscoderShift: a forward shift moves the next frames by it.
func TestTranscoderShift(t *testing.T) {
	src := sourceFrames(t, media.CodecG711A, Format{8000, 1}, 160, 8000*4)
	tr, err := NewTranscoder(media.CodecG711A, nil, Format{}, media.CodecAAC, Format{8000, 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var out []TimedFrame
	for i, f := range src.frames {
		if i == len(src.frames)/2 {
			tr.Shift(300 * time.Millisecond)
		}
		if out, err = tr.Feed(out, f, time.Duration(i)*20*time.Millisecond+300*time.Millisecond*time.Duration(min(1, i/(len(src.frames)/2)))); err != nil {
			t.Fatal(err)
		}
	}
	jumps := 0
	for i := 1; i < len(out); i++ {
		if d := out[i].DTS - out[i-1].DTS; d > out[i].Duration+time.Millisecond {
			jumps++
			if absDur(d-out[i].Duration-300*time.Millisecond) > time.Millisecond {
				t.Fatalf("frame %d: jump %v, want 300ms more than a frame", i, d)
			}
		}
	}
	if jumps != 1 || tr.Resyncs() != 0 {
		t.Fatalf("%d jumps, %d resyncs; want one shift", jumps, tr.Resyncs())
	}
}
