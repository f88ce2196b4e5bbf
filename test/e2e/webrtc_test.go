package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/h264reader"
)

// rtcEnv is a daemon with the rtmp and webrtc plugins on loopback.
type rtcEnv struct {
	d        *Daemon
	rtmpAddr string
	httpAddr string
	rtcAddr  string
}

func startRTC(t *testing.T, vhostBody string) *rtcEnv {
	t.Helper()
	return startRTCBlock(t, "listen = [\"udp://127.0.0.1:0\"]\ncandidate = \"127.0.0.1\"", vhostBody)
}

// startRTCBlock is startRTC with the plugin "webrtc" block given.
func startRTCBlock(t *testing.T, webrtcBlock, vhostBody string) *rtcEnv {
	t.Helper()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream", "webrtc"},
		Blocks: map[string]string{
			"rtmp":       `listen = ["127.0.0.1:0"]`,
			"httpstream": `listen = ["127.0.0.1:0"]`,
			"webrtc":     webrtcBlock,
		},
		Extra: "vhost \"__defaultVhost__\" {\n  rtc {\n    enabled = true\n    stun_timeout = 10\n  }\n" + vhostBody + "\n}\n",
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream", "webrtc")
	if len(ps["webrtc"].Listeners) == 0 || ps["webrtc"].Listeners[0].Network != "udp" {
		t.Fatalf("webrtc plugin has no udp listener: %+v", ps["webrtc"])
	}
	return &rtcEnv{d: d, rtmpAddr: ps["rtmp"].Listeners[0].Addr, httpAddr: ps["httpstream"].Listeners[0].Addr, rtcAddr: ps["webrtc"].Listeners[0].Addr}
}

// rtcClientAPI is a pion API for a test peer: loopback host candidates
// only, no mDNS, H.264 and Opus.
func rtcClientAPI(t *testing.T) *webrtc.API {
	t.Helper()
	return rtcClientAPIWith(t, nil)
}

// rtcClientAPIWith is rtcClientAPI with the setting engine changed by set
// (network types, a UDP mux of the test's own).
func rtcClientAPIWith(t *testing.T, set func(*webrtc.SettingEngine)) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if set != nil {
		set(&se)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}},
		PayloadType: 102,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
}

// rtcOffer creates pc's offer with every candidate in it.
func rtcOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ice gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// postSDP posts an offer to a WHIP/WHEP URL.
func postSDP(url, offer string) (status int, location, body string, err error) {
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post(url, "application/sdp", strings.NewReader(offer))
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b), nil
}

// annexBFile makes a 10 s 25 fps H.264 baseline Annex-B file with ffmpeg.
func annexBFile(t *testing.T) string {
	t.Helper()
	needTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "x.h264")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "10", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
		"-pix_fmt", "yuv420p", "-bsf:v", "h264_mp4toannexb", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// whipPublisher is a pion peer publishing an Annex-B file over WHIP.
type whipPublisher struct {
	pc       *webrtc.PeerConnection
	location string
	frames   atomic.Int64
	done     chan struct{}
	stop     chan struct{}
}

func whipPublish(t *testing.T, api, file, app, stream string) *whipPublisher {
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
	if _, err := pc.AddTrack(video); err != nil {
		t.Fatal(err)
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
	if !strings.Contains(loc, "action=delete") || !strings.Contains(loc, "token=") {
		t.Fatalf("whip Location %q", loc)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("answer: %v\n%s", err, answer)
	}
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("whip publisher did not connect")
	}
	p := &whipPublisher{pc: pc, location: loc, done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(p.done)
		// The file's 250 frames paced at 25 fps, at most 6 times over (60 s).
		for range 6 {
			if !p.sendFile(file, video) {
				return
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// sendFile sends the NAL units of an Annex-B file; false: stop or error.
func (p *whipPublisher) sendFile(file string, video *webrtc.TrackLocalStaticSample) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		return false
	}
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
		d := time.Duration(0)
		vcl := nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr
		if vcl {
			d = 40 * time.Millisecond
		}
		if err := video.WriteSample(media.Sample{Data: nal.Data, Duration: d}); err != nil {
			return false
		}
		if vcl {
			p.frames.Add(1)
			select {
			case <-p.stop:
				return false
			case <-time.After(d):
			}
		}
	}
}

func (p *whipPublisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// whepPlayer receives H.264 from the server and records the NAL unit types
// in arrival order.
type whepPlayer struct {
	pc       *webrtc.PeerConnection
	location string
	mu       sync.Mutex
	types    []byte
	rtp      atomic.Int64
	pSlices  atomic.Int64
	bSlices  atomic.Int64
}

// sliceType reads slice_type from a non-IDR slice header (H.264 §7.3.3):
// first_mb_in_slice and slice_type are the first two Exp-Golomb codes.
func sliceType(n []byte) (uint32, bool) {
	var bits []byte
	for _, c := range n[1:min(len(n), 16)] {
		for i := 7; i >= 0; i-- {
			bits = append(bits, c>>i&1)
		}
	}
	pos := 0
	ue := func() (uint32, bool) {
		z := 0
		for pos < len(bits) && bits[pos] == 0 {
			z++
			pos++
		}
		if pos >= len(bits) || z > 16 {
			return 0, false
		}
		pos++
		v := uint32(1)
		for range z {
			if pos >= len(bits) {
				return 0, false
			}
			v = v<<1 | uint32(bits[pos])
			pos++
		}
		return v - 1, true
	}
	if _, ok := ue(); !ok {
		return 0, false
	}
	st, ok := ue()
	return st % 5, ok
}

func (p *whepPlayer) nalTypes() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.types...)
}

// newWHEPPeer makes a recvonly peer and its offer.
func newWHEPPeer(t *testing.T) (*whepPlayer, string) {
	t.Helper()
	return newWHEPPeerAPI(t, rtcClientAPI(t))
}

// newWHEPPeerAPI is newWHEPPeer on a pion API of the test's choosing.
func newWHEPPeerAPI(t *testing.T, api *webrtc.API) (*whepPlayer, string) {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	p := &whepPlayer{pc: pc}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if track.Kind() != webrtc.RTPCodecTypeVideo {
			for {
				if _, _, err := track.ReadRTP(); err != nil {
					return
				}
			}
		}
		var dep codecs.H264Packet
		for {
			pkt, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			p.rtp.Add(1)
			au, err := dep.Unmarshal(pkt.Payload)
			if err != nil || len(au) == 0 {
				continue
			}
			p.mu.Lock()
			for _, n := range bytes.Split(au, []byte{0, 0, 0, 1}) {
				if len(n) > 0 && len(p.types) < 100000 {
					p.types = append(p.types, n[0]&0x1f)
				}
				if len(n) > 1 && n[0]&0x1f == 1 {
					switch st, ok := sliceType(n); {
					case ok && st == 1:
						p.bSlices.Add(1)
					case ok && st == 0:
						p.pSlices.Add(1)
					}
				}
			}
			p.mu.Unlock()
		}
	})
	return p, rtcOffer(t, pc)
}

func (p *whepPlayer) accept(t *testing.T, answer string) {
	t.Helper()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatalf("answer: %v\n%s", err, answer)
	}
}

func whepPlay(t *testing.T, api, app, stream string) *whepPlayer {
	t.Helper()
	p, offer := newWHEPPeer(t)
	status, loc, answer, err := postSDP(api+"/rtc/v1/whep/?app="+app+"&stream="+stream, offer)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("whep play: status %d err %v: %s", status, err, answer)
	}
	p.location = loc
	p.accept(t, answer)
	return p
}

// checkKeyframeStart waits for SPS, PPS and an IDR and checks that the
// first coded slice is the IDR, with SPS and PPS before it.
func checkKeyframeStart(t *testing.T, p *whepPlayer) {
	t.Helper()
	Eventually(t, 30*time.Second, "SPS, PPS and IDR received over webrtc", func() error {
		ts := p.nalTypes()
		var sps, pps bool
		for _, ty := range ts {
			switch ty {
			case 7:
				sps = true
			case 8:
				pps = true
			case 5:
				if !sps || !pps {
					return fmt.Errorf("IDR before SPS/PPS: %v", ts[:min(len(ts), 20)])
				}
				t.Logf("first NAL types received: %v", ts[:min(len(ts), 12)])
				return nil
			case 1:
				t.Fatalf("a non-IDR slice came before the first IDR: %v", ts[:min(len(ts), 20)])
			}
		}
		return fmt.Errorf("%d rtp packets, nal types %v", p.rtp.Load(), ts[:min(len(ts), 20)])
	})
}

type rtcClient struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Stream string `json:"stream"`
}

func rtcClients(d *Daemon) ([]rtcClient, error) {
	var r struct {
		Clients []rtcClient `json:"clients"`
	}
	err := d.GetJSON("/api/v1/clients/", &r)
	return r.Clients, err
}

func waitClient(t *testing.T, d *Daemon, typ string) string {
	t.Helper()
	var id string
	Eventually(t, 15*time.Second, typ+" client listed", func() error {
		cs, err := rtcClients(d)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Type == typ {
				id = c.ID
				return nil
			}
		}
		return fmt.Errorf("%+v", cs)
	})
	return id
}

func httpDelete(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, url, nil)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWebRTCWHIPPublishPlaysOverRTMP publishes H.264 with a pion client
// over WHIP; ffprobe reads it over RTMP; DELETE on the Location ends it.
func TestWebRTCWHIPPublishPlaysOverRTMP(t *testing.T) {
	t.Parallel()
	needTool(t, "ffprobe")
	file := annexBFile(t)
	e := startRTC(t, "")
	pub := whipPublish(t, e.d.API, file, "live", "whip")
	waitPublished(t, e.d, "live", "whip")
	for _, u := range []string{"rtmp://" + e.rtmpAddr + "/live/whip", "http://" + e.httpAddr + "/live/whip.flv"} {
		p := ffprobe(t, u, 2)
		var codec string
		var w, h, video int
		for _, s := range p.Streams {
			if s.CodecType == "video" {
				codec, w, h = s.CodecName, s.Width, s.Height
				for _, pk := range p.Packets {
					if pk.StreamIndex == s.Index {
						video++
					}
				}
			}
		}
		if codec != "h264" || w != 320 || h != 240 || video == 0 {
			t.Fatalf("%s: codec %q %dx%d, %d packets (published %d frames)", u, codec, w, h, video, pub.frames.Load())
		}
	}
	if st := httpDelete(t, e.d.API+pub.location); st != http.StatusOK {
		t.Fatalf("DELETE %s: %d", pub.location, st)
	}
	Eventually(t, 15*time.Second, "stream unpublished after DELETE", func() error {
		var r streamsReply
		if err := e.d.GetJSON("/api/v1/streams/", &r); err != nil {
			return err
		}
		for _, s := range r.Streams {
			if s.Name == "whip" && s.Publish.Active {
				return errors.New("still published")
			}
		}
		return nil
	})
	if st := httpDelete(t, e.d.API+pub.location); st != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", st)
	}
}

// TestWebRTCPlayRTMPStream plays an ffmpeg RTMP publish (x264 + aac) over
// WHEP and over SRS's /rtc/v1/play/ JSON.
func TestWebRTCPlayRTMPStream(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	e := startRTC(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/cam", 60)
	waitPublished(t, e.d, "live", "cam")

	p := whepPlay(t, e.d.API, "live", "cam")
	checkKeyframeStart(t, p)
	_, port, _ := net.SplitHostPort(e.rtcAddr)
	if ans := p.pc.RemoteDescription().SDP; !strings.Contains(ans, "127.0.0.1 "+port+" typ host") {
		t.Fatalf("answer lacks the configured candidate 127.0.0.1:%s:\n%s", port, ans)
	}

	// ?eip= overrides the candidate for one session, as in SRS.
	pe, offer0 := newWHEPPeer(t)
	status, _, answer, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream=cam&eip=192.0.2.44", offer0)
	if err != nil || status != http.StatusCreated || !strings.Contains(answer, "192.0.2.44 "+port+" typ host") {
		t.Fatalf("eip: status %d err %v answer:\n%s", status, err, answer)
	}
	_ = pe.pc.Close()

	// SRS's players (rtc_player, srs.sdk.js) send this body.
	p2, offer := newWHEPPeer(t)
	api := e.d.API + "/rtc/v1/play/"
	body, _ := json.Marshal(map[string]any{"api": api, "streamurl": "webrtc://127.0.0.1/live/cam", "clientip": nil, "sdp": offer, "tid": "7f3c2a1"})
	resp, err := http.Post(api, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Code      int    `json:"code"`
		Server    string `json:"server"`
		SDP       string `json:"sdp"`
		SessionID string `json:"sessionid"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &r); err != nil || r.Code != 0 || r.SDP == "" || !strings.Contains(r.SessionID, ":") || r.Server == "" {
		t.Fatalf("/rtc/v1/play/: %v %s", err, b)
	}
	p2.accept(t, r.SDP)
	checkKeyframeStart(t, p2)
	waitClient(t, e.d, "rtc-play")
}

// TestWebRTCHooksKickAndBadSDP checks the callbacks, the client list, kick
// and DELETE, and that broken offers get 400 with a reason while a player
// goes on receiving.
func TestWebRTCHooksKickAndBadSDP(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	var hooks strings.Builder
	hooks.WriteString("  hooks {\n")
	for _, ev := range []string{"on_publish", "on_unpublish", "on_play", "on_stop"} {
		fmt.Fprintf(&hooks, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	hooks.WriteString("    timeout = \"5s\"\n  }\n")
	file := annexBFile(t)
	e := startRTC(t, hooks.String())
	pub := whipPublish(t, e.d.API, file, "live", "hooked")
	waitPublished(t, e.d, "live", "hooked")
	pubID := waitClient(t, e.d, "rtc-publish")
	ps := hs.Bodies("on_publish")
	if len(ps) != 1 || ps[0]["stream"] != "hooked" || ps[0]["app"] != "live" || ps[0]["client_id"] != pubID {
		t.Fatalf("on_publish %v (publisher %s)", ps, pubID)
	}

	player := whepPlay(t, e.d.API, "live", "hooked")
	checkKeyframeStart(t, player)
	playID := waitClient(t, e.d, "rtc-play")
	if pl := hs.Bodies("on_play"); len(pl) == 0 || pl[0]["client_id"] != playID || pl[0]["stream"] != "hooked" {
		t.Fatalf("on_play %v (player %s)", pl, playID)
	}

	// Broken offers: 400 (413 for a huge one) with the reason.
	good := rtcOffer(t, player.pc) // a real offer shape to mangle
	noFP := strings.ReplaceAll(good, "a=fingerprint:", "a=x-fingerprint:")
	many := good
	for range 20 {
		many += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n"
	}
	for _, c := range []struct {
		name, body string
		status     int
		reason     string
	}{
		{"garbage", "this is not sdp", 400, "SDP"},
		{"empty", "", 400, "empty SDP"},
		{"no fingerprint", noFP, 400, "fingerprint"},
		{"no ice", strings.ReplaceAll(good, "a=ice-ufrag:", "a=x-ice-ufrag:"), 400, "ice-ufrag"},
		{"many m-lines", many, 400, "media sections"},
		{"huge", strings.Repeat("a=x:y\r\n", 20000), 413, "larger than"},
	} {
		status, _, body, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream=hooked", c.body)
		if err != nil || status != c.status || !strings.Contains(body, c.reason) {
			t.Errorf("%s: status %d err %v body %q, want %d with %q", c.name, status, err, body, c.status, c.reason)
		}
	}
	// Junk on the media port: random bytes, STUN-looking and DTLS-looking
	// headers with lengths past the end.
	junk, err := net.Dial("udp", e.rtcAddr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		b := make([]byte, 1+i%700)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		switch i % 3 {
		case 0: // STUN binding request header, length past the end
			copy(b, []byte{0x00, 0x01, 0xff, 0xf0, 0x21, 0x12, 0xa4, 0x42})
		case 1: // DTLS handshake record header
			copy(b, []byte{0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
		}
		_, _ = junk.Write(b)
	}
	junk.Close()

	// A peer that never completes ICE and DTLS is closed after stun_timeout.
	ghost, ghostOffer := newWHEPPeer(t)
	status, loc, _, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream=hooked", ghostOffer)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("ghost offer: %d %v", status, err)
	}
	_ = ghost.pc.Close() // never takes the answer
	lu, _ := url.Parse(loc)
	ghostID := lu.Query().Get("session")
	Eventually(t, 40*time.Second, "never-connected session closed after stun_timeout", func() error {
		if !strings.Contains(e.d.Log(), "not completed within stun_timeout") {
			return errors.New("no stun_timeout close logged")
		}
		cs, err := rtcClients(e.d)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.ID == ghostID {
				return errors.New("ghost session still listed")
			}
		}
		return nil
	})
	for _, l := range strings.Split(e.d.Log(), "\n") {
		if strings.Contains(l, "not completed within stun_timeout") && !strings.Contains(l, ghostID) {
			t.Fatalf("stun_timeout close does not name the ghost %s: %s", ghostID, l)
		}
	}

	// The player was not disturbed: more RTP after the bad offers, the junk
	// and the ghost; the plugin did not restart.
	before := player.rtp.Load()
	Eventually(t, 15*time.Second, "player still receiving after bad offers", func() error {
		if n := player.rtp.Load(); n <= before+25 {
			return fmt.Errorf("%d rtp packets, had %d", n, before)
		}
		return nil
	})

	if ps, err := e.d.Plugins(); err != nil || ps["webrtc"].Restarts != 0 || ps["webrtc"].State != "running" {
		t.Fatalf("webrtc plugin after hostile input: %+v %v", ps["webrtc"], err)
	}

	// Kick the player through the API: on_stop, gone from the list.
	if st := httpDelete(t, e.d.API+"/api/v1/clients/"+playID); st != http.StatusOK {
		t.Fatalf("kick: %d", st)
	}
	Eventually(t, 15*time.Second, "on_stop of the kicked player", func() error {
		var found bool
		for _, b := range hs.Bodies("on_stop") {
			found = found || b["client_id"] == playID
		}
		if !found {
			return fmt.Errorf("on_stop %v", hs.Bodies("on_stop"))
		}
		cs, err := rtcClients(e.d)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.ID == playID {
				return errors.New("kicked player still listed")
			}
		}
		return nil
	})
	Eventually(t, 10*time.Second, "kick logged with the client id", func() error {
		for _, l := range strings.Split(e.d.Log(), "\n") {
			if strings.Contains(l, playID) && strings.Contains(l, "kicked by the api") {
				return nil
			}
		}
		return errors.New("no log line")
	})

	// DELETE on the publisher's Location: on_unpublish.
	if st := httpDelete(t, e.d.API+pub.location); st != http.StatusOK {
		t.Fatalf("DELETE publisher: %d", st)
	}
	Eventually(t, 15*time.Second, "on_unpublish", func() error {
		u := hs.Bodies("on_unpublish")
		if len(u) != 1 || u[0]["client_id"] != pubID {
			return fmt.Errorf("on_unpublish %v", u)
		}
		return nil
	})

	// A refusing on_publish: 403 and no stream.
	hs.Refuse("on_publish", true)
	pc, err := rtcClientAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tr, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "v", "t")
	if _, err := pc.AddTrack(tr); err != nil {
		t.Fatal(err)
	}
	status, _, body, err := postSDP(e.d.API+"/rtc/v1/whip/?app=live&stream=refused", rtcOffer(t, pc))
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("publish refused by on_publish: status %d err %v %q", status, err, body)
	}

	// Nothing left: no session, no client.
	Eventually(t, 20*time.Second, "no webrtc session left", func() error {
		if n := pluginCounter(t, e.d, "webrtc", "sessions"); n != 0 {
			return fmt.Errorf("%v sessions", n)
		}
		cs, err := rtcClients(e.d)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if strings.HasPrefix(c.Type, "rtc-") {
				return fmt.Errorf("client left: %+v", c)
			}
		}
		return nil
	})
}

// pluginCounter reads one of a plugin's counters from /metrics (-1: none).
func pluginCounter(t *testing.T, d *Daemon, plugin, name string) float64 {
	t.Helper()
	return metricValue(t, d, "rill_plugin_counter", `plugin="`+plugin+`"`, `name="`+name+`"`)
}

// TestWebRTCSecurityDeniesPlay: the vhost's security rules apply to WHEP
// and SRS's JSON play, with a 403 and the rule as the reason.
func TestWebRTCSecurityDeniesPlay(t *testing.T) {
	t.Parallel()
	file := annexBFile(t)
	e := startRTC(t, "  security {\n    rules = [\"deny play 127.0.0.0/8\", \"allow play all\", \"allow publish all\"]\n  }\n")
	whipPublish(t, e.d.API, file, "live", "guarded")
	waitPublished(t, e.d, "live", "guarded")
	_, offer := newWHEPPeer(t)
	status, _, body, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream=guarded", offer)
	if err != nil || status != http.StatusForbidden || !strings.Contains(body, "deny play 127.0.0.0/8") {
		t.Fatalf("denied play: status %d err %v body %q", status, err, body)
	}
	req, _ := json.Marshal(map[string]any{"api": e.d.API + "/rtc/v1/play/", "streamurl": "webrtc://127.0.0.1/live/guarded", "clientip": nil, "sdp": offer, "tid": "1"})
	resp, err := http.Post(e.d.API+"/rtc/v1/play/", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Code != http.StatusForbidden || !strings.Contains(r.Msg, "deny play") {
		t.Fatalf("/rtc/v1/play/ denied: %v %s", err, b)
	}
	Eventually(t, 10*time.Second, "refusal logged by the session", func() error {
		if !strings.Contains(e.d.Log(), "signalling failed") {
			return errors.New("no log line")
		}
		return nil
	})
}

// TestWebRTCSilentPublisherCut: a WHIP publisher that stops sending video
// while its ICE stays up is cut after stun_timeout, and its stream ends.
func TestWebRTCSilentPublisherCut(t *testing.T) {
	t.Parallel()
	file := annexBFile(t)
	e := startRTC(t, "")
	pub := whipPublish(t, e.d.API, file, "live", "silent")
	waitPublished(t, e.d, "live", "silent")
	id := waitClient(t, e.d, "rtc-publish")
	pub.halt() // the peer connection stays open, no more media
	Eventually(t, 40*time.Second, "silent publisher cut", func() error {
		var r streamsReply
		if err := e.d.GetJSON("/api/v1/streams/", &r); err != nil {
			return err
		}
		for _, s := range r.Streams {
			if s.Name == "silent" && s.Publish.Active {
				return errors.New("still published")
			}
		}
		for _, l := range strings.Split(e.d.Log(), "\n") {
			if strings.Contains(l, id) && strings.Contains(l, "no video from the publisher within stun_timeout") {
				return nil
			}
		}
		return errors.New("cut not logged with the client id")
	})
}

// TestWebRTCDropsBframes plays an RTMP stream with B-frames over WHEP:
// with keep_bframe off (the default) no B slice reaches the peer, P slices
// do.
func TestWebRTCDropsBframes(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	e := startRTC(t, "")
	url := "rtmp://" + e.rtmpAddr + "/live/bframes"
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", "60", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p", "-f", "flv", url)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitPublished(t, e.d, "live", "bframes")
	// The source has B-frames.
	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "15000000", "-read_intervals", "%+3", "-select_streams", "v",
		"-show_entries", "frame=pict_type", "-of", "csv", url).Output()
	if err != nil || !strings.Contains(string(out), "frame,B") {
		t.Fatalf("source without B-frames: %v %.300s", err, out)
	}
	p := whepPlay(t, e.d.API, "live", "bframes")
	checkKeyframeStart(t, p)
	Eventually(t, 30*time.Second, "P slices over webrtc", func() error {
		if n := p.pSlices.Load(); n < 20 {
			return fmt.Errorf("%d P slices", n)
		}
		return nil
	})
	if n := p.bSlices.Load(); n != 0 {
		t.Fatalf("%d B slices reached the peer with keep_bframe off", n)
	}
}
