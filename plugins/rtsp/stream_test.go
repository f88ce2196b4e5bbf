package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/rtprtcp"
	"github.com/q191201771/lal/pkg/sdp"

	"github.com/rill-media/rill/plugins/internal/fanout"
	"github.com/rill-media/rill/sdk/media"
)

const testSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n" +
	"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 config=1210\r\na=control:streamid=1\r\n"

func testStream(t *testing.T) *rtspStream {
	t.Helper()
	sd, err := sdp.ParseSdp2LogicContext([]byte(testSDP))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &rtspStream{s: s, sdpCtx: sd, ctx: ctx, cancel: cancel, groups: map[chans]*fanout.Group{}, udp: map[*conn]*frameQueue{}, players: map[*conn]bool{}}
}

var seq uint16

func testFrame(video, key bool, ms int, n int) *rtpFrame {
	f := &rtpFrame{video: video, key: key, ts: time.Duration(ms) * time.Millisecond}
	pt := uint8(97)
	if video {
		pt = 96
	}
	for i := 0; i < n; i++ {
		h := rtprtcp.MakeDefaultRtpHeader()
		h.PacketType, h.Seq, h.Timestamp = pt, seq, uint32(ms*90)
		seq++
		f.pkts = append(f.pkts, rtprtcp.MakeRtpPacket(h, []byte{byte(ms), byte(i)}))
	}
	f.size = frameSize(f.pkts)
	return f
}

func TestFrameChannels(t *testing.T) {
	st := testStream(t)
	v, a := testFrame(true, true, 40, 2), testFrame(false, false, 40, 1)
	b := frame(v, chans{video: 0, videoRTCP: -1, audio: 2, audioRTCP: -1}, st.sdpCtx)
	if len(b) != 2*(4+14) || b[0] != '$' || b[1] != 0 || b[2] != 0 || b[3] != 14 || b[18] != '$' || b[19] != 0 {
		t.Fatalf("video framed % x", b)
	}
	if b := frame(a, chans{video: 0, videoRTCP: -1, audio: 2, audioRTCP: -1}, st.sdpCtx); len(b) != 18 || b[1] != 2 {
		t.Fatalf("audio framed % x", b)
	}
	if b := frame(a, chans{video: 0, videoRTCP: -1, audio: -1, audioRTCP: -1}, st.sdpCtx); len(b) != 0 {
		t.Fatalf("audio framed without an audio SETUP: % x", b)
	}
}

// gopOf lists the cached frames' timestamps (ms).
func gopOf(st *rtspStream) []int {
	var out []int
	for _, f := range st.gop {
		out = append(out, int(f.ts/time.Millisecond))
	}
	return out
}

func TestGOPCache(t *testing.T) {
	st := testStream(t)
	st.pushLocked(testFrame(true, false, 0, 1)) // before any keyframe: useless
	st.pushLocked(testFrame(false, false, 10, 1))
	if g := gopOf(st); len(g) != 0 {
		t.Fatalf("cached before a keyframe: %v", g)
	}
	st.pushLocked(testFrame(true, true, 40, 3))
	st.pushLocked(testFrame(false, false, 50, 1))
	st.pushLocked(testFrame(true, false, 80, 1))
	if g := gopOf(st); len(g) != 3 || g[0] != 40 {
		t.Fatalf("gop %v", g)
	}
	q, err := st.joinUDP(&conn{})
	if err != nil {
		t.Fatal(err)
	}
	st.pushLocked(testFrame(true, true, 120, 1))
	if g := gopOf(st); len(g) != 1 || g[0] != 120 {
		t.Fatalf("gop after the next keyframe %v", g)
	}
	fs, dropped, err := q.next(context.Background())
	if err != nil || dropped != 0 || len(fs) != 4 || !fs[0].key || fs[3].ts != 120*time.Millisecond {
		t.Fatalf("udp player got %d frames (dropped %d, %v)", len(fs), dropped, err)
	}
	st.end("")
	if _, _, err := q.next(context.Background()); err != io.EOF {
		t.Fatalf("queue after end: %v", err)
	}
	if _, err := st.joinUDP(&conn{}); err == nil {
		t.Fatal("joined an ended stream")
	}
}

func TestFrameQueueBound(t *testing.T) {
	q := newFrameQueue(3)
	for i := 0; i < 4; i++ {
		q.push(testFrame(true, i == 0, i*40, 1))
	}
	// Over the bound: cleared, then frames until the next keyframe skipped
	// (audio is kept).
	q.push(testFrame(true, false, 200, 1))
	q.push(testFrame(false, false, 210, 1))
	q.push(testFrame(true, true, 240, 1))
	fs, dropped, err := q.next(context.Background())
	if err != nil || dropped != 3 || len(fs) != 2 || fs[0].video || !fs[1].key {
		t.Fatalf("frames %d dropped %d err %v", len(fs), dropped, err)
	}
}

// TestJoinTCP: a TCP player gets the GOP cache framed on its channels,
// then the stream's frames, through its group.
func TestJoinTCP(t *testing.T) {
	st := testStream(t)
	cfg := *st.s.cfg.Load()
	cfg.MWLatency = 0
	st.s.cfg.Store(&cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	st.pushLocked(testFrame(true, true, 40, 2))
	sink := fanout.NewSink(srv, fanout.SinkOptions{})
	ch := chans{video: 4, videoRTCP: -1, audio: -1, audioRTCP: -1}
	if err := st.joinTCP(ch, sink); err != nil {
		t.Fatal(err)
	}
	live := testFrame(true, false, 80, 1)
	st.pushLocked(live)
	st.pushLocked(testFrame(false, false, 90, 1)) // no audio SETUP: not sent
	want := append(frame(st.gop[0], ch, st.sdpCtx), frame(live, ch, st.sdpCtx)...)
	got := make([]byte, len(want))
	_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(cli, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("player read %v\n% x\nwant\n% x", err, got, want)
	}
	st.leaveTCP(ch, sink)
	if len(st.groups) != 0 {
		t.Fatal("empty group kept")
	}
}

func TestSenderReports(t *testing.T) {
	st := testStream(t)
	st.sdpCtx.VideoClockRate, st.sdpCtx.AudioClockRate = 90000, 44100
	ch := chans{video: 0, videoRTCP: 1, audio: 2, audioRTCP: -1}
	if b := st.clock.reports(ch, st.sdpCtx, time.Now()); b != nil {
		t.Fatalf("reports before any frame: % x", b)
	}
	w := time.Unix(1_700_000_000, 500_000_000)
	v := testFrame(true, true, 10_000, 2)
	st.clock.count(v, w)
	st.clock.count(testFrame(false, false, 9_990, 1), w) // audio, older: the clock keeps the newest
	b := st.clock.reports(ch, st.sdpCtx, w.Add(time.Second))
	// Video only: the audio track has no RTCP channel.
	if len(b) != 32 || b[0] != '$' || b[1] != 1 || b[3] != 28 || b[5] != 200 {
		t.Fatalf("reports % x", b)
	}
	sr := b[4:]
	be := func(i int) uint32 {
		return uint32(sr[i])<<24 | uint32(sr[i+1])<<16 | uint32(sr[i+2])<<8 | uint32(sr[i+3])
	}
	if be(4) != v.pkts[0].Header.Ssrc || be(8) != 1_700_000_001+ntpEpochOffset || be(12) != 1<<31 {
		t.Fatalf("ssrc %x ntp %d.%d", be(4), be(8), be(12))
	}
	if be(16) != 11*90000 || be(20) != 2 || be(24) != 4 {
		t.Fatalf("rtp ts %d packets %d octets %d", be(16), be(20), be(24))
	}
	ch.audioRTCP = 3
	if b := st.clock.reports(ch, st.sdpCtx, w.Add(time.Second)); len(b) != 64 || b[33] != 3 {
		t.Fatalf("audio report missing: % x", b)
	} else if rts := uint32(b[52])<<24 | uint32(b[53])<<16 | uint32(b[54])<<8 | uint32(b[55]); rts != 11*44100 {
		t.Fatalf("audio rtp ts %d", rts)
	}
}

func TestConfigsChanged(t *testing.T) {
	var k configs
	v1 := media.Packet{Kind: media.KindVideo, Flags: media.FlagConfig, Payload: []byte{1, 2}}
	v2 := media.Packet{Kind: media.KindVideo, Flags: media.FlagConfig, Payload: []byte{1, 3}}
	a1 := media.Packet{Kind: media.KindAudio, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}}
	frame := media.Packet{Kind: media.KindVideo, Flags: media.FlagKey, Payload: []byte{9}}
	for i, c := range []struct {
		p    media.Packet
		want bool
	}{{v1, false}, {a1, false}, {frame, false}, {v1, false}, {a1, false}, {v2, true}} {
		if got := k.changed(c.p); got != c.want {
			t.Fatalf("step %d: changed %v, want %v", i, got, c.want)
		}
	}
}
