package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
)

// openFDs counts the open descriptors of a process.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read fds of pid %d: %v", pid, err)
	}
	return len(es)
}

// TestWebRTCNoLeaks runs many sessions through the webrtc plugin (bad
// SDPs, offers whose peer never does ICE, peers that vanish without
// DELETE, normal plays over UDP and ICE-TCP ended by DELETE) and checks that its goroutines,
// open descriptors and sessions come back to the baseline.
func TestWebRTCNoLeaks(t *testing.T) {
	needTool(t, "ffmpeg")
	e, _ := startRTCWithTCP(t, "")
	ps := waitRunning(t, e.d, "webrtc")
	pid := ps["webrtc"].PID
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/leak", 120)
	waitPublished(t, e.d, "live", "leak")

	// Warm-up: one play, so what lives as long as the stream (the tap's
	// ring reader, the mux's buffers) is in the baseline.
	w := whepPlay(t, e.d.API, "live", "leak")
	checkKeyframeStart(t, w)
	if st := httpDelete(t, e.d.API+w.location); st != http.StatusOK {
		t.Fatalf("DELETE warm-up: %d", st)
	}
	_ = w.pc.Close()
	type base struct{ fds, goroutines int }
	settled := func() base {
		var b base
		Eventually(t, 30*time.Second, "webrtc plugin idle", func() error {
			if n := pluginCounter(t, e.d, "webrtc", "sessions"); n != 0 {
				return fmt.Errorf("%v sessions", n)
			}
			b = base{openFDs(t, pid), int(pluginCounter(t, e.d, "webrtc", "goroutines"))}
			return nil
		})
		return b
	}
	b0 := settled()
	// The baseline must hold still for a moment to be one.
	time.Sleep(2 * time.Second)
	b0 = settled()
	t.Logf("baseline: %d fds, %d goroutines", b0.fds, b0.goroutines)

	whep := e.d.API + "/rtc/v1/whep/?app=live&stream=leak"
	// Bad SDPs: refused before any session exists.
	for i := range 30 {
		body := []string{"", "v=0\r\n", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", strings.Repeat("m=audio 9 RTP/AVP 0\r\n", 200)}[i%4]
		if st, _, _, err := postSDP(whep, body); err != nil || st/100 != 4 {
			t.Fatalf("bad SDP %d: status %d err %v", i, st, err)
		}
	}
	// Offers whose peer is closed at once: the session never does ICE and
	// is cut after stun_timeout (10 s).
	for range 10 {
		p, offer := newWHEPPeer(t)
		st, _, answer, err := postSDP(whep, offer)
		_ = p.pc.Close()
		if err != nil || st != http.StatusCreated {
			t.Fatalf("never-connecting peer: %d %v %s", st, err, answer)
		}
	}
	// Normal plays: half ended by DELETE, half by the peer vanishing; the
	// last four over ICE-TCP.
	tcpAPI := rtcClientAPIWith(t, func(se *webrtc.SettingEngine) {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	})
	for i := range 10 {
		var p *whepPlayer
		if i < 6 {
			p = whepPlay(t, e.d.API, "live", "leak")
		} else {
			var offer string
			p, offer = newWHEPPeerAPI(t, tcpAPI)
			st, loc, answer, err := postSDP(whep, offer)
			if err != nil || st != http.StatusCreated {
				t.Fatalf("ice-tcp play: %d %v %s", st, err, answer)
			}
			p.location = loc
			p.accept(t, answer)
		}
		checkKeyframeStart(t, p)
		if i%2 == 0 {
			if st := httpDelete(t, e.d.API+p.location); st != http.StatusOK {
				t.Fatalf("DELETE: %d", st)
			}
		}
		_ = p.pc.Close()
	}
	if n := pluginCounter(t, e.d, "webrtc", "sessions"); n < 1 {
		t.Fatalf("sessions = %v right after: the never-connecting ones should still be there", n)
	}
	var last base
	Eventually(t, 60*time.Second, "fds and goroutines back to the baseline", func() error {
		if n := pluginCounter(t, e.d, "webrtc", "sessions"); n != 0 {
			return fmt.Errorf("%v sessions left", n)
		}
		last = base{openFDs(t, pid), int(pluginCounter(t, e.d, "webrtc", "goroutines"))}
		if last.fds > b0.fds || last.goroutines > b0.goroutines {
			return fmt.Errorf("%d fds (baseline %d), %d goroutines (baseline %d)", last.fds, b0.fds, last.goroutines, b0.goroutines)
		}
		return nil
	})
	t.Logf("after 60 sessions: %d fds, %d goroutines", last.fds, last.goroutines)
	// The stream still plays.
	p := whepPlay(t, e.d.API, "live", "leak")
	checkKeyframeStart(t, p)
}
