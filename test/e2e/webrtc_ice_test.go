package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
)

// freeUDPTCPPort finds a loopback port number free for both UDP and TCP
// (ICE-TCP shares the UDP listener's port number).
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no loopback port free for both udp and tcp")
	return 0
}

// startRTCWithTCP starts the daemon with ICE-TCP on the UDP port number.
func startRTCWithTCP(t *testing.T, vhostBody string) (*rtcEnv, int) {
	t.Helper()
	port := freeUDPTCPPort(t)
	block := fmt.Sprintf("listen = [\"udp://127.0.0.1:%d\"]\nlisten_rtc_tcp = [\"127.0.0.1:%d\"]\ncandidate = \"127.0.0.1\"", port, port)
	return startRTCBlock(t, block, vhostBody), port
}

// selectedPair is the nominated candidate pair of pc's ICE transport.
func selectedPair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil
	}
	dtls := sctp.Transport()
	if dtls == nil || dtls.ICETransport() == nil {
		return nil
	}
	p, err := dtls.ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil
	}
	return p
}

// TestWebRTCICETCP plays an RTMP stream with a pion peer that may only use
// TCP candidates: the answer carries a passive TCP host candidate on the
// UDP listener's port number and media flows over it.
func TestWebRTCICETCP(t *testing.T) {
	needTool(t, "ffmpeg")
	e, port := startRTCWithTCP(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/tcp", 60)
	waitPublished(t, e.d, "live", "tcp")

	api := rtcClientAPIWith(t, func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	})
	p, offer := newWHEPPeerAPI(t, api)
	status, loc, answer, err := postSDP(e.d.API+"/rtc/v1/whep/?app=live&stream=tcp", offer)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("whep play: status %d err %v: %s", status, err, answer)
	}
	p.location = loc
	want := fmt.Sprintf("127.0.0.1 %d typ host tcptype passive", port)
	if !strings.Contains(answer, want) {
		t.Fatalf("answer lacks the ICE-TCP candidate %q:\n%s", want, answer)
	}
	p.accept(t, answer)
	checkKeyframeStart(t, p)
	// The pair in use is TCP: the client had no UDP candidate at all, and
	// its ICE transport says so.
	var pair *webrtc.ICECandidatePair
	Eventually(t, 10*time.Second, "selected candidate pair", func() error {
		if pair = selectedPair(p.pc); pair == nil {
			return fmt.Errorf("no selected pair yet")
		}
		return nil
	})
	if pair.Local.Protocol != webrtc.ICEProtocolTCP || pair.Remote.Protocol != webrtc.ICEProtocolTCP || int(pair.Remote.Port) != port {
		t.Fatalf("selected pair is not ICE-TCP to port %d: %s", port, pair)
	}
	t.Logf("selected pair: %s, %d rtp packets", pair, p.rtp.Load())
}

// postSDPTag posts an offer and returns the status, Location, ETag and body.
func postSDPTag(t *testing.T, url, offer string) (status int, location, etag, body string) {
	t.Helper()
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post(url, "application/sdp", strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("ETag"), string(b)
}

// patchFrag sends a PATCH with an sdpfrag body (RFC 9725 §4.3).
func patchFrag(t *testing.T, url, contentType, ifMatch, frag string) (status int, etag, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(frag))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag"), string(b)
}

// sdpLines returns the values of the a=<key>: lines of an SDP, in order.
func sdpLines(sdp, key string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a="+key+":"); ok {
			out = append(out, v)
		}
	}
	return out
}

// withoutCandidates is sdp without its a=candidate and end-of-candidates
// lines (an offer sent before gathering, as trickling clients do).
func withoutCandidates(sdp string) string {
	var b strings.Builder
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" || strings.HasPrefix(l, "a=candidate:") || l == "a=end-of-candidates" {
			continue
		}
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// fragOf is the sdpfrag of a local description: credentials, first mid,
// candidates (RFC 8840 §9).
func fragOf(sdp string) string {
	var b strings.Builder
	b.WriteString("a=ice-ufrag:" + sdpLines(sdp, "ice-ufrag")[0] + "\r\n")
	b.WriteString("a=ice-pwd:" + sdpLines(sdp, "ice-pwd")[0] + "\r\n")
	b.WriteString("m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:" + sdpLines(sdp, "mid")[0] + "\r\n")
	seen := map[string]bool{}
	for _, c := range sdpLines(sdp, "candidate") {
		if !seen[c] {
			seen[c] = true
			b.WriteString("a=candidate:" + c + "\r\n")
		}
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
}

// withICE is sdp with its ICE credentials and candidates taken from frag
// (how a WHEP client applies an ICE restart answer).
func withICE(sdp, frag string) string {
	ufrag, pwd := sdpLines(frag, "ice-ufrag")[0], sdpLines(frag, "ice-pwd")[0]
	var b strings.Builder
	first := true
	for _, l := range strings.Split(withoutCandidates(sdp), "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = "a=ice-ufrag:" + ufrag
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = "a=ice-pwd:" + pwd
		}
		b.WriteString(l + "\r\n")
		if first && strings.HasPrefix(l, "a=mid:") {
			first = false
			for _, c := range sdpLines(frag, "candidate") {
				b.WriteString("a=candidate:" + c + "\r\n")
			}
		}
	}
	return b.String()
}

// TestWebRTCTrickleICE sends a WHEP offer without candidates, then trickles
// them with PATCH (RFC 9725 §4.3.1): If-Match is required and checked
// against the ETag of the 201, and the session plays.
func TestWebRTCTrickleICE(t *testing.T) {
	needTool(t, "ffmpeg")
	e := startRTC(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/trickle", 60)
	waitPublished(t, e.d, "live", "trickle")

	p, offer := newWHEPPeer(t)
	status, loc, etag, answer := postSDPTag(t, e.d.API+"/rtc/v1/whep/?app=live&stream=trickle", withoutCandidates(offer))
	if status != http.StatusCreated || loc == "" || etag == "" {
		t.Fatalf("whep: status %d Location %q ETag %q: %s", status, loc, etag, answer)
	}
	p.location = loc
	frag := fragOf(offer)
	for _, c := range []struct {
		name, ct, ifMatch string
		want              int
	}{
		{"no If-Match", "application/trickle-ice-sdpfrag", "", http.StatusPreconditionRequired},
		{"stale If-Match", "application/trickle-ice-sdpfrag", `"0000"`, http.StatusPreconditionFailed},
		{"wrong type", "application/sdp", etag, http.StatusUnsupportedMediaType},
	} {
		if st, _, b := patchFrag(t, e.d.API+loc, c.ct, c.ifMatch, frag); st != c.want {
			t.Fatalf("PATCH %s: status %d, want %d: %s", c.name, st, c.want, b)
		}
	}
	if st, _, b := patchFrag(t, e.d.API+loc, "application/trickle-ice-sdpfrag", etag, frag); st != http.StatusNoContent {
		t.Fatalf("PATCH trickle: status %d: %s", st, b)
	}
	if n := pluginCounter(t, e.d, "webrtc", "trickle_candidates"); n < 1 {
		t.Fatalf("trickle_candidates = %v after a PATCH with %d candidates", n, len(sdpLines(frag, "candidate")))
	}
	p.accept(t, answer)
	checkKeyframeStart(t, p)
	if st, _, _ := patchFrag(t, e.d.API+"/rtc/v1/whep/?session=nope&token=x", "application/trickle-ice-sdpfrag", etag, frag); st != http.StatusNotFound {
		t.Fatalf("PATCH on an unknown session: %d, want 404", st)
	}
}

// TestWebRTCICERestartAddressChange moves a playing WHEP peer to new UDP
// sockets with an ICE restart through PATCH: the same session (client id)
// goes on playing from the new address. Pion's controlled ICE agent does
// not move its selected pair to a peer's new address by itself (SRS's
// "client address changing" without a restart), so the restart is how a
// client keeps its session.
func TestWebRTCICERestartAddressChange(t *testing.T) {
	needTool(t, "ffmpeg")
	e := startRTC(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/move", 60)
	waitPublished(t, e.d, "live", "move")

	p, offer := newWHEPPeer(t)
	status, loc, etag, answer := postSDPTag(t, e.d.API+"/rtc/v1/whep/?app=live&stream=move", offer)
	if status != http.StatusCreated || etag == "" {
		t.Fatalf("whep: status %d ETag %q: %s", status, etag, answer)
	}
	p.location = loc
	p.accept(t, answer)
	checkKeyframeStart(t, p)
	id := waitClient(t, e.d, "rtc-play")
	var before *webrtc.ICECandidatePair
	Eventually(t, 10*time.Second, "selected pair", func() error {
		if before = selectedPair(p.pc); before == nil {
			return fmt.Errorf("none yet")
		}
		return nil
	})

	restart, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(restart); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("restart gathering did not complete")
	}
	frag := fragOf(p.pc.LocalDescription().SDP)
	st, etag2, body := patchFrag(t, e.d.API+loc, "application/trickle-ice-sdpfrag", etag, frag)
	if st != http.StatusOK || etag2 == "" || etag2 == etag {
		t.Fatalf("PATCH ice restart: status %d ETag %q (was %q): %s", st, etag2, etag, body)
	}
	if u := sdpLines(body, "ice-ufrag"); len(u) != 1 || u[0] == sdpLines(answer, "ice-ufrag")[0] || len(sdpLines(body, "candidate")) == 0 {
		t.Fatalf("restart answer has no new ufrag or no candidate:\n%s", body)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: withICE(answer, body)}); err != nil {
		t.Fatalf("restart answer: %v", err)
	}
	// The old ETag is stale now.
	if st, _, _ := patchFrag(t, e.d.API+loc, "application/trickle-ice-sdpfrag", etag, frag); st != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with the pre-restart ETag: %d, want 412", st)
	}
	var after *webrtc.ICECandidatePair
	Eventually(t, 20*time.Second, "a new local address in use", func() error {
		after = selectedPair(p.pc)
		if after == nil || after.Local.Port == before.Local.Port {
			return fmt.Errorf("selected pair %v (before %v)", after, before)
		}
		return nil
	})
	n0 := p.rtp.Load()
	Eventually(t, 15*time.Second, "media after the restart", func() error {
		if n := p.rtp.Load(); n < n0+50 {
			return fmt.Errorf("%d rtp packets since the restart", n-n0)
		}
		return nil
	})
	cs, err := rtcClients(e.d)
	if err != nil {
		t.Fatal(err)
	}
	plays := 0
	for _, c := range cs {
		if c.Type == "rtc-play" {
			plays++
			if c.ID != id {
				t.Fatalf("play client %s listed, want the session %s kept", c.ID, id)
			}
		}
	}
	if plays != 1 {
		t.Fatalf("%d rtc-play clients after the restart, want 1: %+v", plays, cs)
	}
	if n := pluginCounter(t, e.d, "webrtc", "ice_restarts"); n != 1 {
		t.Fatalf("ice_restarts = %v", n)
	}
	t.Logf("local address %s:%d -> %s:%d", before.Local.Address, before.Local.Port, after.Local.Address, after.Local.Port)
}

// TestWebRTCViewerPLIReachesPublisher: a WHEP viewer joining and a
// viewer's PLI each make the pion WHIP publisher receive a PLI.
func TestWebRTCViewerPLIReachesPublisher(t *testing.T) {
	file := annexBFile(t)
	e := startRTC(t, "")
	pub := whipPublish(t, e.d.API, file, "live", "pli")
	waitPublished(t, e.d, "live", "pli")
	var plis atomic.Int64
	go func() {
		s := pub.pc.GetSenders()[0]
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					plis.Add(1)
				}
			}
		}
	}()
	// The publish's own start-up PLIs stop at its first keyframe; wait
	// until none came for 2 s (bounded: 30 s).
	Eventually(t, 30*time.Second, "start-up PLIs over", func() error {
		n := plis.Load()
		time.Sleep(2 * time.Second)
		if plis.Load() != n {
			return fmt.Errorf("still getting PLIs (%d)", plis.Load())
		}
		return nil
	})
	n0 := plis.Load()
	p := whepPlay(t, e.d.API, "live", "pli")
	checkKeyframeStart(t, p)
	Eventually(t, 15*time.Second, "a PLI at the publisher when a viewer joined", func() error {
		if plis.Load() <= n0 {
			return fmt.Errorf("publisher got %d PLIs, %d before the viewer", plis.Load(), n0)
		}
		return nil
	})
	time.Sleep(time.Second) // past the rate limit of the join's PLI
	n1 := plis.Load()
	var ssrc uint32
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeVideo && tr.Receiver() != nil && tr.Receiver().Track() != nil {
			ssrc = uint32(tr.Receiver().Track().SSRC())
		}
	}
	if ssrc == 0 {
		t.Fatal("viewer has no video track")
	}
	Eventually(t, 15*time.Second, "the viewer's PLI at the publisher", func() error {
		if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
		if plis.Load() <= n1 {
			return fmt.Errorf("publisher got %d PLIs, %d before the viewer's", plis.Load(), n1)
		}
		return nil
	})
	if n := pluginCounter(t, e.d, "webrtc", "pli_forwarded"); n < 2 {
		t.Fatalf("pli_forwarded = %v, want the join and the viewer's PLI", n)
	}
}
