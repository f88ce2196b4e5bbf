package e2e

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/ivfreader"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"
)

// ivfFile encodes 10 s of 25 fps test video to IVF with ffmpeg's libvpx
// (encoder "libvpx" or "libvpx-vp9"), a keyframe every second.
func ivfFile(t *testing.T, encoder string) string {
	t.Helper()
	needTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "x.ivf")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "10", "-c:v", encoder, "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-g", "25", "-b:v", "500k", "-f", "ivf", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", encoder, err, b)
	}
	return out
}

// ivfFrames reads the frames of an IVF file.
func ivfFrames(t *testing.T, file string) [][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for range 100000 {
		fr, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fr)
	}
	return out
}

// vpxClientAPI is a pion API for a test peer offering one video codec.
func vpxClientAPI(t *testing.T, c webrtc.RTPCodecCapability) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &webrtc.MediaEngine{}
	c.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// TestWebRTCVPxPassthrough publishes VP8 and VP9 over WHIP (pion, frames
// from libvpx) and plays them over WHEP: every frame the player rebuilds is
// byte for byte one the publisher sent, the first is a keyframe.
func TestWebRTCVPxPassthrough(t *testing.T) {
	t.Parallel()
	e := startRTC(t, "")
	for _, c := range []struct {
		name, encoder string
		cap           webrtc.RTPCodecCapability
		dep           func() rtp.Depacketizer
		key           func([]byte) bool
	}{
		{"vp8", "libvpx", webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			func() rtp.Depacketizer { return &codecs.VP8Packet{} }, func(f []byte) bool { return f[0]&1 == 0 }},
		{"vp9", "libvpx-vp9", webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"},
			func() rtp.Depacketizer { return &codecs.VP9Packet{} }, func(f []byte) bool { return f[0]&0x04 == 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			frames := ivfFrames(t, ivfFile(t, c.encoder))
			sent := map[[32]byte]bool{}
			for _, f := range frames {
				sent[sha256.Sum256(f)] = true
			}
			stream := "pass" + c.name

			// The publisher.
			pc, err := vpxClientAPI(t, c.cap).NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			track, err := webrtc.NewTrackLocalStaticSample(c.cap, "video", "test")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTrack(track); err != nil {
				t.Fatal(err)
			}
			status, _, answer, err := postSDP(e.d.API+"/rtc/v1/whip/?app=live&stream="+stream, rtcOffer(t, pc))
			if err != nil || status != http.StatusCreated {
				t.Fatalf("whip: %d %v: %s", status, err, answer)
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 6 { // the file at 25 fps, at most 6 times (60 s)
					for _, f := range frames {
						if err := track.WriteSample(media.Sample{Data: f, Duration: 40 * time.Millisecond}); err != nil {
							return
						}
						select {
						case <-stop:
							return
						case <-time.After(40 * time.Millisecond):
						}
					}
				}
			}()
			defer func() { close(stop); wg.Wait() }()
			waitPublished(t, e.d, "live", stream)
			// The player gets the passthrough codec once the publisher's
			// track arrived (before, the offer of VP8/VP9 only is refused):
			// retry the play until it is answered.
			var got, keys, bad atomic.Int64
			var first atomic.Value
			var player *webrtc.PeerConnection
			Eventually(t, 20*time.Second, "whep answer in "+c.name, func() error {
				pl, err := vpxClientAPI(t, c.cap).NewPeerConnection(webrtc.Configuration{})
				if err != nil {
					return err
				}
				if _, err := pl.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
					pl.Close()
					return err
				}
				status, _, answer, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream="+stream, rtcOffer(t, pl))
				if err != nil || status != http.StatusCreated {
					pl.Close()
					return fmt.Errorf("whep: %d %v: %s", status, err, answer)
				}
				pl.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
					sb := samplebuilder.New(512, c.dep(), 90000)
					for {
						p, _, err := tr.ReadRTP()
						if err != nil {
							return
						}
						sb.Push(p)
						for s := sb.Pop(); s != nil; s = sb.Pop() {
							if got.Add(1) == 1 {
								first.Store(s.Data)
							}
							if c.key(s.Data) {
								keys.Add(1)
							}
							if !sent[sha256.Sum256(s.Data)] {
								bad.Add(1)
							}
						}
					}
				})
				if err := pl.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
					pl.Close()
					return err
				}
				player = pl
				return nil
			})
			defer player.Close()
			Eventually(t, 30*time.Second, c.name+" frames at the player", func() error {
				if n := got.Load(); n < 60 || keys.Load() < 2 {
					return fmt.Errorf("%d frames, %d keyframes", n, keys.Load())
				}
				return nil
			})
			if f := first.Load().([]byte); !c.key(f) {
				t.Fatalf("first frame at the player is not a keyframe: %x", f[:min(len(f), 8)])
			}
			if b := bad.Load(); b > 0 {
				t.Fatalf("%d of %d frames at the player differ from every frame sent", b, got.Load())
			}
			t.Logf("%s: %d frames, %d keyframes, all byte-identical to frames sent", c.name, got.Load(), keys.Load())
		})
	}
}
