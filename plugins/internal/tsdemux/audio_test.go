package tsdemux

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk/media"
)

// inOrder fails unless the packets handed on (video and audio merged) never
// go back in DTS.
func inOrder(t *testing.T, all []media.Packet) {
	t.Helper()
	for i := 1; i < len(all); i++ {
		if all[i].DTS < all[i-1].DTS {
			t.Fatalf("packet %d (%v) goes back from %v", i, all[i], all[i-1])
		}
	}
}

func demuxFile(t *testing.T, name string) (collected, []media.Packet, *Demuxer) {
	t.Helper()
	ts, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var all []media.Packet
	var c collected
	d := New(func(p media.Packet) error {
		p = p.Clone()
		all = append(all, p)
		switch {
		case p.Kind == media.KindVideo && p.IsConfig():
			c.videoConfig = append(c.videoConfig, p)
		case p.Kind == media.KindVideo:
			c.video = append(c.video, p)
		case p.IsConfig():
			c.audioConfig = append(c.audioConfig, p)
		default:
			c.audio = append(c.audio, p)
		}
		return nil
	})
	for len(ts) > 0 {
		n := min(1316, len(ts))
		if err := d.Feed(ts[:n]); err != nil {
			t.Fatal(err)
		}
		ts = ts[n:]
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	return c, all, d
}

// testdata/opus.ts and mp3.ts are 1 s of FFmpeg output (libx264 25 fps
// with libopus 32 kb/s stereo or libmp3lame 64 kb/s mono, -f mpegts);
// ffprobe -count_packets reads 25 video packets and 51 Opus or 40 MP3
// packets in them.
func TestDemuxFFmpegOpus(t *testing.T) {
	c, all, d := demuxFile(t, "testdata/opus.ts")
	if len(c.video) != 25 || len(c.audio) != 51 {
		t.Fatalf("%d video, %d audio packets, want 25, 51 (warnings %v)", len(c.video), len(c.audio), d.Warnings())
	}
	if len(c.audioConfig) != 1 {
		t.Fatalf("audio configs %v", c.audioConfig)
	}
	h := c.audioConfig[0].Payload
	if c.audioConfig[0].Codec != media.CodecOpus || len(h) != 19 || string(h[:8]) != "OpusHead" || h[9] != 2 {
		t.Fatalf("opus config % x", h)
	}
	if pre := binary.LittleEndian.Uint16(h[10:]); pre != 312 {
		t.Errorf("pre-skip %d, want libopus's 312 from the first start trim", pre)
	}
	for i, p := range c.audio {
		if p.Codec != media.CodecOpus || opusDuration(p.Payload) != 20*time.Millisecond {
			t.Fatalf("audio %d: %v, duration %v", i, p, opusDuration(p.Payload))
		}
		if i > 0 && p.DTS-c.audio[i-1].DTS != 20*time.Millisecond {
			t.Fatalf("audio %d: dts %v after %v", i, p.DTS, c.audio[i-1].DTS)
		}
	}
	inOrder(t, all)
}

func TestDemuxFFmpegMP3(t *testing.T) {
	c, all, d := demuxFile(t, "testdata/mp3.ts")
	if len(c.video) != 25 || len(c.audio) != 40 || len(c.audioConfig) != 0 {
		t.Fatalf("%d video, %d audio, %d audio config packets, want 25, 40, 0 (warnings %v)", len(c.video), len(c.audio), len(c.audioConfig), d.Warnings())
	}
	for i, p := range c.audio {
		h, err := parseMPEGAudio(p.Payload)
		if p.Codec != media.CodecMP3 || err != nil || h.layer != 3 || h.length != len(p.Payload) {
			t.Fatalf("audio %d: %v: %+v %v", i, p, h, err)
		}
		if i > 0 && !near(p.DTS-c.audio[i-1].DTS, 1152*time.Second/44100) {
			t.Fatalf("audio %d: dts %v after %v", i, p.DTS, c.audio[i-1].DTS)
		}
	}
	inOrder(t, all)
}

// TestDemuxInterleaves checks the test above can fail: FFmpeg writes an
// audio PES of several frames after video that is later in time.
func TestDemuxInterleaves(t *testing.T) {
	ts, err := os.ReadFile("testdata/opus.ts")
	if err != nil {
		t.Fatal(err)
	}
	var raw []media.Packet
	d := New(func(p media.Packet) error { raw = append(raw, p.Clone()); return nil })
	d.emitDirect = true // packets as their PES complete
	if err := d.Feed(ts); err != nil {
		t.Fatal(err)
	}
	back := false
	for i := 1; i < len(raw); i++ {
		back = back || raw[i].DTS < raw[i-1].DTS
	}
	if !back {
		t.Fatal("the fixture is in DTS order without interleaving: it tests nothing")
	}
}

func TestDemuxOpusMP3RoundTrip(t *testing.T) {
	head := opusHead(2, 312)
	mp3Frame := func(i int) []byte {
		// MPEG-1 layer III, 128 kb/s, 44.1 kHz, no padding: 417 bytes.
		f := make([]byte, 417)
		f[0], f[1], f[2], f[3] = 0xff, 0xfb, 0x90, 0x64
		f[10] = byte(i)
		return f
	}
	for _, tc := range []struct {
		codec media.Codec
		frame func(i int) []byte
		step  time.Duration
	}{
		{media.CodecOpus, func(i int) []byte { return append([]byte{0xfc, byte(i)}, bytes.Repeat([]byte{byte(i)}, 100+i*10)...) }, 20 * time.Millisecond},
		{media.CodecMP3, mp3Frame, 1152 * time.Second / 44100},
	} {
		t.Run(tc.codec.String(), func(t *testing.T) {
			m := tsmux.New()
			var ts []byte
			add := func(p media.Packet) {
				var err error
				if ts, err = m.AppendPacket(ts, p); err != nil {
					t.Fatal(err)
				}
			}
			if tc.codec == media.CodecOpus {
				add(media.Packet{Kind: media.KindAudio, Codec: media.CodecOpus, Flags: media.FlagConfig, Payload: head})
			}
			var want [][]byte
			for i := 0; i < 40; i++ {
				f := tc.frame(i)
				want = append(want, f)
				at := time.Second + time.Duration(i)*tc.step
				add(media.Packet{Kind: media.KindAudio, Codec: tc.codec, DTS: at, PTS: at, Payload: f})
			}
			c, d, err := demuxAll(t, ts, 1316)
			if err != nil || len(d.warnings) != 0 {
				t.Fatalf("%v %v", err, d.warnings)
			}
			if len(c.audio) != len(want) {
				t.Fatalf("%d frames, want %d", len(c.audio), len(want))
			}
			for i, p := range c.audio {
				if p.Codec != tc.codec || !bytes.Equal(p.Payload, want[i]) {
					t.Fatalf("frame %d: %v", i, p)
				}
				if i > 0 && !near(p.DTS-c.audio[i-1].DTS, tc.step) {
					t.Fatalf("frame %d: dts %v after %v", i, p.DTS, c.audio[i-1].DTS)
				}
			}
			if tc.codec == media.CodecOpus && (len(c.audioConfig) != 1 || c.audioConfig[0].Payload[9] != 2) {
				t.Fatalf("opus configs %v", c.audioConfig)
			}
		})
	}
}

// TestDemuxPMTVersionChange switches the audio track from AAC to MP3 and
// back mid-stream (each switch a new PMT version, as tsmux writes it): the
// AAC configuration must be sent again after the switch back.
func TestDemuxPMTVersionChange(t *testing.T) {
	m := tsmux.New()
	var ts []byte
	add := func(p media.Packet) {
		var err error
		if ts, err = m.AppendPacket(ts, p); err != nil {
			t.Fatal(err)
		}
	}
	mp3 := make([]byte, 417)
	mp3[0], mp3[1], mp3[2], mp3[3] = 0xff, 0xfb, 0x90, 0x64
	at := time.Second
	aac := func(n int) {
		add(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: asc})
		for range n {
			add(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: at, PTS: at, Payload: bytes.Repeat([]byte{1}, 50)})
			at += 23 * time.Millisecond
		}
	}
	aac(10)
	for range 10 {
		add(media.Packet{Kind: media.KindAudio, Codec: media.CodecMP3, DTS: at, PTS: at, Payload: mp3})
		at += 26 * time.Millisecond
	}
	aac(10)
	c, d, err := demuxAll(t, ts, 1316)
	if err != nil {
		t.Fatal(err)
	}
	var codecs []media.Codec
	for _, p := range c.audio {
		if len(codecs) == 0 || codecs[len(codecs)-1] != p.Codec {
			codecs = append(codecs, p.Codec)
		}
	}
	if len(c.audio) != 30 || len(codecs) != 3 || codecs[0] != media.CodecAAC || codecs[1] != media.CodecMP3 || codecs[2] != media.CodecAAC {
		t.Fatalf("%d frames, codecs %v (warnings %v)", len(c.audio), codecs, d.warnings)
	}
	if len(c.audioConfig) != 2 {
		t.Fatalf("%d AAC configurations, want 2 (one after the switch back)", len(c.audioConfig))
	}
}

func TestOpusDuration(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want time.Duration
	}{
		{[]byte{0xfc}, 20 * time.Millisecond},         // CELT FB 20 ms, 1 frame
		{[]byte{0xfd}, 40 * time.Millisecond},         // 2 frames
		{[]byte{0xe3, 0x03}, 7500 * time.Microsecond}, // CELT 2.5 ms, code 3, 3 frames
		{[]byte{0x1b, 0x02}, 120 * time.Millisecond},  // SILK 60 ms x2
		{[]byte{0x1b}, 0},                             // code 3 without the count
		{[]byte{0x1f, 0x03}, 0},                       // 180 ms: too long
		{nil, 0},
	} {
		if got := opusDuration(tc.p); got != tc.want {
			t.Errorf("% x: %v, want %v", tc.p, got, tc.want)
		}
	}
}

// TestDemuxMP2DoesNotHoldVideo: MPEG audio layer II (FFmpeg's default
// audio in mpegts) is dropped; the video must not wait in the interleaver
// for audio that never comes. testdata/mp2.ts: 1 s, 25 frames, -c:a mp2.
func TestDemuxMP2DoesNotHoldVideo(t *testing.T) {
	ts, err := os.ReadFile("testdata/mp2.ts")
	if err != nil {
		t.Fatal(err)
	}
	var video, audio int
	d := New(func(p media.Packet) error {
		if p.Kind == media.KindVideo && !p.IsConfig() {
			video++
		} else if p.Kind == media.KindAudio {
			audio++
		}
		return nil
	})
	if err := d.Feed(ts); err != nil {
		t.Fatal(err)
	}
	// Before Flush: every frame but the last (its PES ends with the input).
	if video < 24 || audio != 0 {
		t.Fatalf("%d video frames handed on before the end, want 24; %d audio packets, want 0 (warnings %v)", video, audio, d.Warnings())
	}
	if d.Warnings()["mpeg audio layer 2 dropped: only layer III (MP3) is carried"] == 0 {
		t.Fatalf("warnings %v", d.Warnings())
	}
}

// TestInterleaverBounded: audio stamped an hour ahead of the video must not
// queue without bound while video flows.
func TestInterleaverBounded(t *testing.T) {
	var out int
	il := interleaver{out: func(media.Packet) error { out++; return nil }}
	il.tracks(true, true)
	for i := 0; i < 5000; i++ {
		at := time.Duration(i) * 20 * time.Millisecond
		if err := il.push(media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: at, PTS: at, Payload: []byte{1}}); err != nil {
			t.Fatal(err)
		}
		if err := il.push(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: at + time.Hour, PTS: at + time.Hour, Payload: []byte{2}}); err != nil {
			t.Fatal(err)
		}
		if n := len(il.q[0]) + len(il.q[1]); n > 2*maxQueued+2 {
			t.Fatalf("after %d pairs %d packets queued", i+1, n)
		}
	}
	if out < 2*5000-2*maxQueued-2 {
		t.Fatalf("%d packets handed on", out)
	}
}
