package main

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/rtcp"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

func ntpOf(d time.Duration) uint64 {
	return uint64(d/time.Second)<<32 | uint64(d%time.Second)<<32/uint64(time.Second)
}

// TestAVSyncSenderReports: with a sender report per track, audio is put
// on the video timeline through the NTP clock, across RTP wraps; without
// them it goes by arrival times.
func TestAVSyncSenderReports(t *testing.T) {
	cases := []struct {
		name      string
		videoBase uint32
		audioBase uint32
	}{
		{"plain", 1000, 5000},
		{"wrapping", 0xffffff00, 0xfffff000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a avSync
			if _, ok, _ := a.audioStart(c.audioBase); ok {
				t.Fatal("audio placed before any video")
			}
			a.markVideo(c.videoBase)
			if at, ok, bySR := a.audioStart(c.audioBase); !ok || bySR || at < 0 || at > time.Second {
				t.Fatalf("without sender reports: audio at %v (ok %v, by sr %v), want by arrival", at, ok, bySR)
			}
			if _, ok := a.bySR(c.audioBase); ok {
				t.Fatal("placed by sender reports before any came")
			}
			T := 3900000000 * time.Second
			// The video SR: 1 s after the first frame.
			a.report(true, &rtcp.SenderReport{NTPTime: ntpOf(T), RTPTime: c.videoBase + 90000})
			a.report(false, &rtcp.SenderReport{NTPTime: ntpOf(T + 500*time.Millisecond), RTPTime: c.audioBase})
			// An audio sample 0.5 s after its SR is at T+1 s; the first
			// frame was at T-1 s: 2 s into the stream.
			at, ok, bySR := a.audioStart(c.audioBase + 24000)
			if !ok || !bySR || (at-2*time.Second).Abs() > time.Millisecond {
				t.Fatalf("audio at %v (ok %v, by sr %v), want 2s", at, ok, bySR)
			}
		})
	}
}

// TestSharedOpus: two players of a stream reading the same AAC packets
// (the second behind the first) get the same Opus frames from one
// transcoder; the last release frees it and empties the registry.
func TestSharedOpus(t *testing.T) {
	enc, err := avcodec.NewEncoder(media.CodecAAC, avcodec.Format{Rate: 44100, Channels: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := make([]float32, 2*44100*2)
	for i := range pcm {
		pcm[i] = float32(0.3 * math.Sin(2*math.Pi*440*float64(i/2)/44100))
	}
	frames, err := enc.Encode(nil, pcm)
	if err != nil {
		t.Fatal(err)
	}
	pkts := []media.Packet{{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: enc.Config()}}
	for i, f := range frames {
		ts := time.Duration(i) * 1024 * time.Second / 44100
		pkts = append(pkts, media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: ts, PTS: ts, Payload: f.Data})
	}
	log := hclog.NewNullLogger()
	a := opusStreams.acquire("v/live/s", log)
	b := opusStreams.acquire("v/live/s", log)
	if a != b || opusStreams.count() != 1 {
		t.Fatalf("two players of one stream got two transcoders (%d streams)", opusStreams.count())
	}
	var outA, outB []avcodec.TimedFrame
	for i, p := range pkts {
		outA = append(outA, a.frames(p)...)
		if i >= 10 { // the second player lags 10 packets
			outB = append(outB, b.frames(pkts[i-10])...)
		}
	}
	for _, p := range pkts[len(pkts)-10:] {
		outB = append(outB, b.frames(p)...)
	}
	if len(outA) < 80 || len(outA) != len(outB) {
		t.Fatalf("player a got %d opus frames, b %d", len(outA), len(outB))
	}
	for i := range outA {
		if outA[i].DTS != outB[i].DTS || !bytes.Equal(outA[i].Data, outB[i].Data) {
			t.Fatalf("frame %d differs between the players", i)
		}
	}
	// A stream whose clock goes back 60 s (its publisher reset the
	// timestamps): the transcoder starts over instead of going silent.
	c := opusStreams.acquire("v/live/reset", log)
	c.frames(pkts[0])
	for _, p := range pkts[1:40] {
		p.DTS += time.Minute
		c.frames(p)
	}
	var again []avcodec.TimedFrame
	for _, p := range pkts[1:40] {
		again = append(again, c.frames(p)...)
	}
	if len(again) < 20 || again[0].DTS > time.Second {
		t.Fatalf("after the clock went back: %d opus frames", len(again))
	}
	opusStreams.release(c)
	opusStreams.release(a)
	if opusStreams.count() != 1 {
		t.Fatal("released while a player still holds it")
	}
	opusStreams.release(b)
	if opusStreams.count() != 0 || b.tr != nil {
		t.Fatalf("last release left %d streams, transcoder %v", opusStreams.count(), b.tr)
	}
}
