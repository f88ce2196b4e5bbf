package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

func testSource(t *testing.T) *source {
	t.Helper()
	cfg, err := parseConfig(sdk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return newSource(newServer(), streamKey{Vhost: defaultVhost, App: "live", Stream: "s"}, cfg)
}

var (
	pktMeta    = media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: []byte{2, 0, 10}}
	pktH264Cfg = media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig | media.FlagKey, Payload: []byte{1, 0x64, 0, 0x1f, 0xff, 0xe0, 0, 0}}
	pktH264Key = media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, Payload: []byte{0, 0, 0, 1, 0x65}}
	pktAACCfg  = media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}}
	pktAAC     = media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: 23 * time.Millisecond, Payload: []byte{0x21, 0x1b}}
	pktMP3     = media.Packet{Kind: media.KindAudio, Codec: media.CodecMP3, DTS: 26 * time.Millisecond, Payload: []byte{0xff, 0xfb, 0x90, 0x64}}
)

// TestSourceAudioCodec: the source records the audio codec of the first
// audio packet, config or frame, and wakes who waits for it.
func TestSourceAudioCodec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		packets []media.Packet
		want    media.Codec
	}{
		{"aac sequence header", []media.Packet{pktMeta, pktH264Cfg, pktAACCfg}, media.CodecAAC},
		{"aac frame", []media.Packet{pktAAC}, media.CodecAAC},
		{"mp3 has no config: its first frame", []media.Packet{pktMeta, pktH264Cfg, pktH264Key, pktMP3}, media.CodecMP3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSource(t)
			for _, p := range tc.packets {
				s.handle(p, live.Mark{})
			}
			got, ended := s.audioCodec(context.Background(), 10*time.Second)
			if got != tc.want || ended {
				t.Fatalf("audio codec %v (ended %v), want %v", got, ended, tc.want)
			}
		})
	}
	t.Run("video only: none after the wait", func(t *testing.T) {
		s := testSource(t)
		for _, p := range []media.Packet{pktMeta, pktH264Cfg, pktH264Key} {
			s.handle(p, live.Mark{})
		}
		if got, ended := s.audioCodec(context.Background(), 10*time.Millisecond); got != 0 || ended {
			t.Fatalf("audio codec %v (ended %v) for a stream without audio", got, ended)
		}
	})
	t.Run("a waiter is woken by the first audio packet", func(t *testing.T) {
		s := testSource(t)
		s.handle(pktH264Cfg, live.Mark{})
		type result struct {
			c     media.Codec
			ended bool
		}
		res := make(chan result, 1)
		go func() {
			c, ended := s.audioCodec(context.Background(), 20*time.Second)
			res <- result{c, ended}
		}()
		s.handle(pktMP3, live.Mark{})
		if r := <-res; r.c != media.CodecMP3 || r.ended {
			t.Fatalf("woke with %v (ended %v), want MP3", r.c, r.ended)
		}
	})
	t.Run("a waiter is woken by the end of the stream", func(t *testing.T) {
		s := testSource(t)
		res := make(chan bool, 1)
		go func() {
			_, ended := s.audioCodec(context.Background(), 20*time.Second)
			res <- ended
		}()
		s.finish()
		if !<-res {
			t.Fatal("woke without the end of the stream")
		}
	})
	t.Run("the client leaving ends the wait", func(t *testing.T) {
		s := testSource(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got, _ := s.audioCodec(ctx, 20*time.Second); got != 0 {
			t.Fatalf("audio codec %v", got)
		}
	})
}

func TestAudioMismatch(t *testing.T) {
	for _, tc := range []struct {
		f     format
		got   media.Codec
		ended bool
		want  string // in the reason; "" = plays
	}{
		{fmtMP3, media.CodecMP3, false, ""},
		{fmtAAC, media.CodecAAC, false, ""},
		{fmtMP3, media.CodecAAC, false, "audio is AAC, .mp3 needs MP3 audio"},
		{fmtAAC, media.CodecMP3, false, "audio is MP3, .aac needs AAC audio"},
		{fmtAAC, media.CodecOpus, false, "audio is Opus, .aac needs AAC audio"},
		{fmtMP3, 0, false, "no audio within 2s, .mp3 needs MP3 audio"},
		{fmtAAC, 0, true, "stream ended"},
	} {
		t.Run(tc.f.String()+" "+tc.got.String(), func(t *testing.T) {
			why := audioMismatch(tc.f, tc.f.audio(), tc.got, tc.ended)
			if (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) {
				t.Fatalf("reason %q, want %q", why, tc.want)
			}
		})
	}
	for _, f := range []format{fmtFLV, fmtTS, fmtM3U8} {
		if f.audio() != 0 {
			t.Errorf("%s is not an audio-only format", f)
		}
	}
}
