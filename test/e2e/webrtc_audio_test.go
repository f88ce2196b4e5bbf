package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	pmedia "github.com/pion/webrtc/v3/pkg/media"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

// opusPlayer is a WHEP peer that keeps the Opus RTP packets it receives.
type opusPlayer struct {
	pc   *webrtc.PeerConnection
	mu   sync.Mutex
	pkts []*rtp.Packet
}

func (p *opusPlayer) packets() []*rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*rtp.Packet(nil), p.pkts...)
}

func whepOpus(t *testing.T, api, app, stream string) *opusPlayer {
	t.Helper()
	pc, err := rtcClientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	p := &opusPlayer{pc: pc}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			if track.Kind() == webrtc.RTPCodecTypeAudio && track.Codec().MimeType == webrtc.MimeTypeOpus {
				p.mu.Lock()
				if len(p.pkts) < 5000 {
					p.pkts = append(p.pkts, pkt)
				}
				p.mu.Unlock()
			}
		}
	})
	status, _, answer, err := postSDP(api+"/rtc/v1/whep/?app="+app+"&stream="+stream, rtcOffer(t, pc))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("whep play: status %d err %v: %s", status, err, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("answer: %v\n%s", err, answer)
	}
	return p
}

// toneOf is the RMS and the zero-crossing frequency of mono PCM.
func toneOf(pcm []float32, rate int) (rms, hz float64) {
	var sum float64
	cross := 0
	for i, v := range pcm {
		sum += float64(v) * float64(v)
		if i > 0 && (pcm[i-1] < 0) != (v < 0) {
			cross++
		}
	}
	if len(pcm) == 0 {
		return 0, 0
	}
	return math.Sqrt(sum / float64(len(pcm))), float64(cross) / 2 / (float64(len(pcm)) / float64(rate))
}

// TestWebRTCPlayAACAsOpus: ffmpeg publishes RTMP (x264 + 440 Hz AAC); two
// pion WHEP players receive Opus, which libopus decodes to the 440 Hz tone;
// the stream has one AAC->Opus transcoder for both.
func TestWebRTCPlayAACAsOpus(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	e := startRTC(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/tone", 60)
	waitPublished(t, e.d, "live", "tone")
	players := []*opusPlayer{whepOpus(t, e.d.API, "live", "tone"), whepOpus(t, e.d.API, "live", "tone")}
	for i, p := range players {
		Eventually(t, 30*time.Second, fmt.Sprintf("player %d: 150 opus packets (3 s)", i), func() error {
			if n := len(p.packets()); n < 150 {
				return fmt.Errorf("%d opus packets", n)
			}
			return nil
		})
		pkts := p.packets()
		sort.SliceStable(pkts, func(a, b int) bool { return int16(pkts[a].SequenceNumber-pkts[b].SequenceNumber) < 0 })
		dec, err := avcodec.NewDecoder(media.CodecOpus, nil, avcodec.Format{}, avcodec.Format{Rate: 48000, Channels: 1})
		if err != nil {
			t.Fatal(err)
		}
		var pcm []float32
		steps := map[uint32]int{}
		for j, pk := range pkts {
			if j > 0 {
				steps[pk.Timestamp-pkts[j-1].Timestamp]++
			}
			if pcm, err = dec.Decode(pcm, pk.Payload); err != nil {
				t.Fatalf("player %d: opus packet %d does not decode: %v", i, j, err)
			}
		}
		dec.Close()
		// Opus frames of 20 ms: the RTP clock steps 960 at 48 kHz.
		if steps[960] < len(pkts)*9/10 {
			t.Fatalf("player %d: rtp timestamp steps %v, want 960", i, steps)
		}
		rms, hz := toneOf(pcm[len(pcm)/3:], 48000)
		t.Logf("player %d: %d opus packets, %d samples, rms %.3f, %.1f Hz", i, len(pkts), len(pcm), rms, hz)
		if rms < 0.02 {
			t.Fatalf("player %d: decoded opus is silence (rms %.4f)", i, rms)
		}
		if math.Abs(hz-440) > 15 {
			t.Fatalf("player %d: decoded tone at %.1f Hz, ffmpeg sent 440", i, hz)
		}
	}
	if n := strings.Count(e.d.Log(), "stream aac transcoded to opus for webrtc players"); n != 1 {
		t.Fatalf("%d aac->opus transcoders started for one stream and two players, want 1", n)
	}
}

// whipPublishAV publishes the Annex-B file as H.264 and a tone encoded to
// Opus by libopus (internal/avcodec) over WHIP.
func whipPublishAV(t *testing.T, api, file, app, stream string, hz float64) *whipPublisher {
	t.Helper()
	pc, err := rtcClientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	status, loc, answer, err := postSDP(api+"/rtc/v1/whip/?app="+app+"&stream="+stream, rtcOffer(t, pc))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("whip publish: status %d err %v: %s", status, err, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("answer: %v\n%s", err, answer)
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("whip publisher did not connect")
	}
	enc, err := avcodec.NewEncoder(media.CodecOpus, avcodec.Format{Rate: 48000, Channels: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &whipPublisher{pc: pc, location: loc, done: make(chan struct{}), stop: make(chan struct{})}
	audioDone := make(chan struct{})
	go func() {
		defer close(audioDone)
		defer enc.Close()
		// 20 ms of tone per Opus frame, paced, at most 60 s.
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pcm := make([]float32, 0, 960*2)
		for i := 0; i < 3000; i++ {
			pcm = pcm[:0]
			for s := i * 960; s < (i+1)*960; s++ {
				v := float32(0.5 * math.Sin(2*math.Pi*hz*float64(s)/48000))
				pcm = append(pcm, v, v)
			}
			frames, err := enc.Encode(nil, pcm)
			if err != nil {
				return
			}
			for _, f := range frames {
				if audio.WriteSample(pmedia.Sample{Data: f.Data, Duration: 20 * time.Millisecond}) != nil {
					return
				}
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	go func() {
		defer close(p.done)
		defer func() { <-audioDone }()
		for range 6 {
			if !p.sendFile(file, video) {
				return
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// pcmOver decodes secs seconds of url's audio with ffmpeg to 48 kHz mono.
func pcmOver(t *testing.T, url string, secs int) []float32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rw_timeout", "15000000", "-i", url,
		"-t", fmt.Sprint(secs), "-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg decode %s: %v\n%s", url, err, stderr.String())
	}
	pcm := make([]float32, len(out)/4)
	for i := range pcm {
		pcm[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return pcm
}

// TestWebRTCWHIPOpusPlaysAsAAC: a pion WHIP publisher sends H.264 and a
// 660 Hz tone in Opus; ffprobe over RTMP, HTTP-FLV and HLS sees AAC beside
// the H.264, ffmpeg decodes the AAC to the tone, and the audio was synced
// by the RTCP sender reports.
func TestWebRTCWHIPOpusPlaysAsAAC(t *testing.T) {
	t.Parallel()
	needTool(t, "ffprobe")
	file := annexBFile(t)
	dir := t.TempDir()
	e := startRTC(t, fmt.Sprintf("  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"10s\"\n    path = %q\n  }", dir))
	whipPublishAV(t, e.d.API, file, "live", "whipav", 660)
	waitPublished(t, e.d, "live", "whipav")
	rtmpURL := "rtmp://" + e.rtmpAddr + "/live/whipav"
	for _, u := range []string{rtmpURL, "http://" + e.httpAddr + "/live/whipav.flv"} {
		p := ffprobe(t, u, 3)
		var vcodec, acodec string
		video, audio := 0, 0
		for _, s := range p.Streams {
			for _, pk := range p.Packets {
				if pk.StreamIndex != s.Index {
					continue
				}
				if s.CodecType == "video" {
					video++
				} else if s.CodecType == "audio" {
					audio++
				}
			}
			switch s.CodecType {
			case "video":
				vcodec = s.CodecName
			case "audio":
				acodec = s.CodecName
			}
		}
		t.Logf("%s: video %s %d packets, audio %s %d packets", u, vcodec, video, acodec, audio)
		if vcodec != "h264" || video == 0 {
			t.Fatalf("%s: video %q, %d packets", u, vcodec, video)
		}
		// 3 s of 48 kHz AAC is about 140 frames.
		if acodec != "aac" || audio < 40 {
			t.Fatalf("%s: audio %q, %d packets; want aac", u, acodec, audio)
		}
	}
	// HLS: the segments hold the AAC too.
	m3u8 := "http://" + e.httpAddr + "/live/whipav.m3u8"
	waitPlaylist(t, m3u8, 30*time.Second, "two hls segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 2 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	httpWantCodecs(t, "hls", httpProbe(t, m3u8, 3), "h264", "aac")
	pcm := pcmOver(t, rtmpURL, 3)
	if len(pcm) < 48000 {
		t.Fatalf("%d samples of audio over rtmp", len(pcm))
	}
	rms, hz := toneOf(pcm[len(pcm)/3:], 48000)
	t.Logf("rtmp audio: %d samples, rms %.3f, %.1f Hz", len(pcm), rms, hz)
	if rms < 0.05 || math.Abs(hz-660) > 15 {
		t.Fatalf("rtmp audio rms %.3f at %.1f Hz, published 0.35 at 660", rms, hz)
	}
	// pion sends RTCP sender reports for both tracks: the audio was put
	// on the video's timeline through them, not by arrival times.
	synced := false
	for _, l := range strings.Split(e.d.Log(), "\n") {
		if strings.Contains(l, "publisher audio on the video timeline") {
			t.Logf("%s", l)
			synced = synced || strings.Contains(l, "by_sender_reports=true")
		}
	}
	if !synced {
		t.Fatal("publisher audio was not synced by sender reports")
	}
}
