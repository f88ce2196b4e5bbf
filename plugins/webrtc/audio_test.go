package main

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func ntpOf(d time.Duration) uint64 {
	return uint64(d/time.Second)<<32 | uint64(d%time.Second)<<32/uint64(time.Second)
}

// TestAVSyncSenderReports: with a sender report per track, audio is put
// on the video timeline through the NTP clock, across RTP wraps; without
// them it waits for srWait.
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
			if _, ok, _ := a.audioStart(c.audioBase); ok {
				t.Fatal("audio placed without sender reports before srWait")
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
