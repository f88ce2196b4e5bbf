package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

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
