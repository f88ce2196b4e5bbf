package main

import (
	"math"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

// TestAudioTranscode: G.711 packets (from FFmpeg's pcm_alaw and pcm_mulaw
// encoders) come out as an AudioSpecificConfig and AAC frames with
// monotonic times that decode to the tone; other packets pass as they are;
// after Close G.711 is dropped.
func TestAudioTranscode(t *testing.T) {
	for _, codec := range []media.Codec{media.CodecG711A, media.CodecG711U} {
		t.Run(codec.String(), func(t *testing.T) {
			enc, err := avcodec.NewEncoder(codec, avcodec.Format{Rate: 8000, Channels: 1}, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			pcm := make([]float32, 8000*4)
			for i := range pcm {
				pcm[i] = float32(0.5 * math.Sin(2*math.Pi*700*float64(i)/8000))
			}
			g711, err := enc.Encode(nil, pcm)
			if err != nil {
				t.Fatal(err)
			}
			var got []media.Packet
			a := newAudioTranscode(func(p media.Packet) error { got = append(got, p); return nil }, hclog.NewNullLogger())
			video := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Payload: []byte{0, 0, 0, 1, 0x65}}
			if err := a.write(video); err != nil || len(got) != 1 || got[0].Codec != media.CodecH264 {
				t.Fatalf("video not passed through: %v %+v", err, got)
			}
			got = got[:0]
			for i, f := range g711 {
				ts := time.Second + time.Duration(i)*20*time.Millisecond
				if err := a.write(media.Packet{Kind: media.KindAudio, Codec: codec, DTS: ts, PTS: ts, Payload: f.Data}); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) < 25 || !got[0].IsConfig() || got[0].Codec != media.CodecAAC {
				t.Fatalf("%d packets, first %+v", len(got), got[0])
			}
			dec, err := avcodec.NewDecoder(media.CodecAAC, got[0].Payload, avcodec.Format{}, avcodec.Format{Rate: 8000, Channels: 1})
			if err != nil {
				t.Fatalf("the config does not open an aac decoder: %v", err)
			}
			defer dec.Close()
			var out []float32
			for i, p := range got[1:] {
				if p.Codec != media.CodecAAC || p.IsConfig() {
					t.Fatalf("packet %d: %+v", i, p)
				}
				if i > 0 && p.DTS-got[i].DTS != 128*time.Millisecond {
					t.Fatalf("packet %d: dts step %v, want 128ms (1024 samples at 8 kHz)", i, p.DTS-got[i].DTS)
				}
				if out, err = dec.Decode(out, p.Payload); err != nil {
					t.Fatal(err)
				}
			}
			var sum float64
			cross := 0
			body := out[len(out)/4:]
			for i, v := range body {
				sum += float64(v * v)
				if i > 0 && (body[i-1] < 0) != (v < 0) {
					cross++
				}
			}
			rms, hz := math.Sqrt(sum/float64(len(body))), float64(cross)/2/(float64(len(body))/8000)
			if rms < 0.2 || math.Abs(hz-700) > 15 {
				t.Fatalf("aac decodes to rms %.3f at %.1f Hz, want 0.35 at 700", rms, hz)
			}
			a.Close()
			a.Close()
			n := len(got)
			if err := a.write(media.Packet{Kind: media.KindAudio, Codec: codec, DTS: time.Hour, Payload: g711[0].Data}); err != nil || len(got) != n {
				t.Fatalf("g711 after close: %v, %d packets", err, len(got)-n)
			}
		})
	}
}
