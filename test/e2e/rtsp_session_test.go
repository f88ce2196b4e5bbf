package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// rtspMsg is what an RTSP client reads from a playing connection: an
// interleaved frame (channel, payload) or a response (status, headers).
type rtspMsg struct {
	channel int // -1: a response
	payload []byte
	status  string
	headers string
}

// readMsg reads one interleaved frame or response before the deadline.
func (r *rtspRaw) readMsg(deadline time.Time) (rtspMsg, error) {
	_ = r.c.SetReadDeadline(deadline)
	b, err := r.r.Peek(1)
	if err != nil {
		return rtspMsg{}, err
	}
	if b[0] == '$' {
		var h [4]byte
		if _, err := io.ReadFull(r.r, h[:]); err != nil {
			return rtspMsg{}, err
		}
		p := make([]byte, int(h[2])<<8|int(h[3]))
		if _, err := io.ReadFull(r.r, p); err != nil {
			return rtspMsg{}, err
		}
		return rtspMsg{channel: int(h[1]), payload: p}, nil
	}
	status, err := r.r.ReadString('\n')
	if err != nil {
		return rtspMsg{}, err
	}
	m := rtspMsg{channel: -1, status: strings.TrimSpace(status)}
	var hdr strings.Builder
	n := 0
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			return rtspMsg{}, err
		}
		if strings.TrimSpace(l) == "" {
			break
		}
		hdr.WriteString(l)
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Length") {
			fmt.Sscan(strings.TrimSpace(v), &n)
		}
	}
	m.headers = hdr.String()
	if n > 0 {
		if _, err := io.CopyN(io.Discard, r.r, int64(n)); err != nil {
			return rtspMsg{}, err
		}
	}
	return m, nil
}

// send writes a request without reading its response.
func (r *rtspRaw) send(method, url, headers string) int {
	r.t.Helper()
	r.cseq++
	msg := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", method, url, r.cseq, headers)
	_ = r.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.c.Write([]byte(msg)); err != nil {
		r.t.Fatalf("%s: %v", method, err)
	}
	return r.cseq
}

// await reads until the response to cseq, counting the interleaved frames
// before it; it fails the test after d.
func (r *rtspRaw) await(cseq int, d time.Duration) (rtspMsg, int) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	frames := 0
	for i := 0; i < 1_000_000; i++ {
		m, err := r.readMsg(deadline)
		if err != nil {
			r.t.Fatalf("waiting for the response to CSeq %d: %v", cseq, err)
		}
		if m.channel >= 0 {
			frames++
			continue
		}
		if strings.Contains(m.headers, fmt.Sprintf("CSeq: %d\r\n", cseq)) {
			return m, frames
		}
	}
	r.t.Fatalf("no response to CSeq %d", cseq)
	return rtspMsg{}, 0
}

// h264Key reports whether an RTP packet of H.264 (RFC 6184) carries an
// IDR slice or the start of one.
func h264Key(rtp []byte) bool {
	if len(rtp) < 14 {
		return false
	}
	p := rtp[12+4*int(rtp[0]&0x0f):]
	if len(p) < 2 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 5:
		return true
	case 28: // FU-A
		return p[1]&0x80 != 0 && p[1]&0x1f == 5
	case 24: // STAP-A
		for q := p[1:]; len(q) > 2; {
			n := int(q[0])<<8 | int(q[1])
			if n == 0 || len(q) < 2+n {
				return false
			}
			if q[2]&0x1f == 5 {
				return true
			}
			q = q[2+n:]
		}
	}
	return false
}

// TestRTSPKeepAlivePauseResume: a raw RTSP player's OPTIONS lists the
// keep-alive methods, GET_PARAMETER and SET_PARAMETER answer 200 with the
// session while RTP flows, PAUSE stops the RTP (none arrives for a while
// after its response), a later PLAY resumes it from a keyframe; with RTP
// interleaved in TCP and over UDP.
func TestRTSPKeepAlivePauseResume(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/pause", 120)
	waitPublished(t, e.d, "live", "pause")
	for _, tr := range []string{"tcp", "udp"} {
		t.Run(tr, func(t *testing.T) { testPauseResume(t, e, tr) })
	}
}

// rtpSource reads the RTP packets of a raw player's video track.
type rtpSource interface {
	// next returns the next video RTP packet before the deadline
	// (responses on the way are skipped).
	next(deadline time.Time) ([]byte, error)
}

type tcpRTP struct{ r *rtspRaw }

func (s tcpRTP) next(deadline time.Time) ([]byte, error) {
	for i := 0; i < 100_000; i++ {
		m, err := s.r.readMsg(deadline)
		if err != nil {
			return nil, err
		}
		if m.channel == 0 {
			return m.payload, nil
		}
	}
	return nil, fmt.Errorf("no RTP on channel 0")
}

type udpRTP struct{ c net.PacketConn }

func (s udpRTP) next(deadline time.Time) ([]byte, error) {
	_ = s.c.SetReadDeadline(deadline)
	buf := make([]byte, 2048)
	n, _, err := s.c.ReadFrom(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func testPauseResume(t *testing.T, e *rtspEnv, tr string) {
	url := "rtsp://" + e.rtspAddr + "/live/pause"
	r := rtspDial(t, e.rtspAddr)
	status, hdr := r.requestHeaders("OPTIONS", url, "", "")
	if !strings.Contains(status, "200") || !strings.Contains(hdr, "GET_PARAMETER") || !strings.Contains(hdr, "PAUSE") {
		t.Fatalf("OPTIONS: %q\n%s", status, hdr)
	}
	// A keep-alive before the session: 200, no session.
	if s := r.request("GET_PARAMETER", url, "", ""); !strings.Contains(s, "200") {
		t.Fatalf("GET_PARAMETER before DESCRIBE: %q", s)
	}
	// PAUSE before PLAY is not valid in that state.
	if s := r.request("PAUSE", url, "", ""); !strings.Contains(s, "455") {
		t.Fatalf("PAUSE before PLAY: %q", s)
	}
	cseq := r.send("DESCRIBE", url, "Accept: application/sdp\r\n")
	m, _ := r.await(cseq, 20*time.Second)
	if !strings.Contains(m.status, "200") {
		t.Fatalf("DESCRIBE: %q", m.status)
	}
	// lal's SDP names the video track streamid=0.
	var src rtpSource = tcpRTP{r}
	transport := "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
	if tr == "udp" {
		rtp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rtp.Close() })
		rtcp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rtcp.Close() })
		src = udpRTP{rtp}
		transport = fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d\r\n", rtp.LocalAddr().(*net.UDPAddr).Port, rtcp.LocalAddr().(*net.UDPAddr).Port)
	}
	cseq = r.send("SETUP", url+"/streamid=0", transport)
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("SETUP: %q", m.status)
	}
	sess := regexp.MustCompile(`(?m)^Session: *([^;\r\n]+)`).FindStringSubmatch(m.headers)
	if sess == nil {
		t.Fatalf("SETUP response without a Session:\n%s", m.headers)
	}
	session := "Session: " + sess[1] + "\r\n"
	cseq = r.send("PLAY", url, session+"Range: npt=0.000-\r\n")
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("PLAY: %q", m.status)
	}
	// RTP flows; the keep-alives are answered in it.
	if _, err := src.next(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("no RTP after PLAY: %v", err)
	}
	if tr == "tcp" {
		// RTCP sender reports come on the RTCP channel, their RTP time on
		// the line of the RTP packets' (a few seconds of media apart at
		// most: the GOP cache comes first).
		var last uint32
		deadline := time.Now().Add(15 * time.Second)
		for i := 0; ; i++ {
			m, err := r.readMsg(deadline)
			if err != nil || i > 100_000 {
				t.Fatalf("no RTCP sender report on channel 1: %v", err)
			}
			if m.channel == 0 && len(m.payload) >= 12 {
				last = binary.BigEndian.Uint32(m.payload[4:8])
			}
			if m.channel == 1 && len(m.payload) == 28 && m.payload[1] == 200 && last != 0 {
				d := int32(binary.BigEndian.Uint32(m.payload[16:20]) - last)
				if d < -5*90000 || d > 5*90000 {
					t.Fatalf("sender report's RTP time %d is %d ticks from the last RTP packet's", binary.BigEndian.Uint32(m.payload[16:20]), d)
				}
				break
			}
		}
	}
	for _, method := range []string{"GET_PARAMETER", "SET_PARAMETER"} {
		cseq = r.send(method, url, session)
		m, _ = r.await(cseq, 10*time.Second)
		if !strings.Contains(m.status, "200") || !strings.Contains(m.headers, "Session: "+sess[1]) {
			t.Fatalf("%s while playing: %q\n%s", method, m.status, m.headers)
		}
	}
	cseq = r.send("PAUSE", url, session)
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("PAUSE: %q", m.status)
	}
	// What was on its way when PAUSE came may still arrive: drain it for a
	// while, then nothing arrives (the stream plays at 25 fps: several
	// frames would).
	drainUntil := time.Now().Add(time.Second)
	for i := 0; i < 100_000; i++ {
		if _, err := src.next(drainUntil); err != nil {
			if isTimeout(err) {
				break
			}
			t.Fatalf("connection failed while paused: %v", err)
		}
	}
	if _, err := src.next(time.Now().Add(2 * time.Second)); err == nil {
		t.Fatalf("paused, yet RTP arrived")
	} else if !isTimeout(err) {
		t.Fatalf("connection failed while paused: %v", err)
	}
	logLineWith(t, e.d, "pause logged", "play paused", "client_id", "live/pause")
	// A keep-alive while paused.
	cseq = r.send("GET_PARAMETER", url, session)
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("GET_PARAMETER while paused: %q", m.status)
	}
	cseq = r.send("PLAY", url, session)
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("PLAY after PAUSE: %q", m.status)
	}
	// The first video frame after the resume is a keyframe: its first RTP
	// packets (one timestamp) hold an IDR slice.
	var first []byte
	key := false
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 10_000; i++ {
		p, err := src.next(deadline)
		if err != nil {
			t.Fatalf("no RTP after the resume: %v", err)
		}
		if len(p) < 12 {
			continue
		}
		if first != nil && string(p[4:8]) != string(first[4:8]) {
			break
		}
		if first == nil {
			first = p
		}
		key = key || h264Key(p)
	}
	if first == nil || !key {
		t.Fatalf("the first frame after the resume is not a keyframe (got RTP: %v)", first != nil)
	}
	logLineWith(t, e.d, "resume logged", "play resumed", "client_id", "live/pause")
	cseq = r.send("TEARDOWN", url, session)
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("TEARDOWN: %q", m.status)
	}
}

// TestRTSPAuth: a vhost with rtsp { auth }: ffmpeg publishes with
// rtsp://user:pass@ (Digest) over TCP and UDP and ffprobe plays the same
// way, the hooks see the user in param; a wrong password and no
// credentials are refused with 401 and a Digest challenge, and logged
// with the client id; Basic is refused unless enabled.
func TestRTSPAuth(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	vhost := fmt.Sprintf(`  hooks {
    on_publish = [%q]
    on_play = [%q]
    timeout = "2s"
  }
  rtsp {
    auth {
      realm = "cams"
      users = { alice = "s3cret", bob = "hunter2" }
      nonce_ttl = "1m"
    }
  }`, hs.URL+"/hook", hs.URL+"/hook")
	e := startRTSP(t, "", vhost)
	for _, tr := range []string{"tcp", "udp"} {
		stream := "auth" + tr
		ffmpegPublishAs(t, "rtsp://alice:s3cret@"+e.rtspAddr+"/live/"+stream+"?token=1&rtsp_user=mallory", "rtsp", 90, "-rtsp_transport", tr)
		waitPublished(t, e.d, "live", stream)
	}
	found := 0
	for _, b := range hs.Bodies("on_publish") {
		p := fmt.Sprint(b["param"])
		if !strings.Contains(p, "token=1") || !strings.Contains(p, "rtsp_user=alice") || strings.Contains(p, "mallory") {
			t.Errorf("on_publish param %q: want token=1 and rtsp_user=alice only", p)
		}
		found++
	}
	if found != 2 {
		t.Fatalf("on_publish bodies %v", hs.Bodies("on_publish"))
	}
	// Digest play, TCP and UDP.
	for _, tr := range []string{"tcp", "udp"} {
		checkAV(t, "authenticated rtsp play/"+tr, ffprobeOpts(t, "rtsp://bob:hunter2@"+e.rtspAddr+"/live/authtcp", 3, "-rtsp_transport", tr), 10)
	}
	Eventually(t, 10*time.Second, "on_play with the user", func() error {
		for _, b := range hs.Bodies("on_play") {
			if strings.Contains(fmt.Sprint(b["param"]), "rtsp_user=bob") {
				return nil
			}
		}
		return fmt.Errorf("on_play bodies %v", hs.Bodies("on_play"))
	})
	logLineWith(t, e.d, "authenticated logged", "rtsp authenticated", "user=bob", "client_id")
	// ffmpeg plays with the credentials too.
	out := filepath.Join(t.TempDir(), "auth.ts")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	b, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
		"-i", "rtsp://bob:hunter2@"+e.rtspAddr+"/live/authudp", "-t", "2", "-c", "copy", "-f", "mpegts", out).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("ffmpeg play with credentials: %v\n%s", err, b)
	}
	checkAV(t, "ffmpeg authenticated rtsp file", ffprobe(t, out, 10), 10)

	// Wrong password and no credentials: ffprobe and ffmpeg fail.
	url := "rtsp://" + e.rtspAddr + "/live/authtcp"
	if err := ffprobeRun("rtsp://bob:wrong@"+e.rtspAddr+"/live/authtcp", 2); err == nil {
		t.Errorf("a player with a wrong password played")
	}
	logLineWith(t, e.d, "wrong password logged", "rtsp client refused", "authentication failed for user", "bob", "client_id")
	if err := ffprobeRun(url, 2); err == nil {
		t.Errorf("a player without credentials played")
	}
	logLineWith(t, e.d, "no credentials logged", "connection closed", "needs credentials", "client_id")
	pub, stderr := ffmpegPublishAs(t, "rtsp://alice:nope@"+e.rtspAddr+"/live/authbad", "rtsp", 30, "-rtsp_transport", "tcp")
	if err := waitExit(pub, 30*time.Second); err == nil {
		t.Errorf("a publisher with a wrong password was not refused: %s", stderr)
	}

	// On the wire: 401 with a Digest challenge of the realm, no Basic; a
	// Basic answer is refused; three wrong answers close the connection.
	r := rtspDial(t, e.rtspAddr)
	status, hdr := r.requestHeaders("DESCRIBE", url, "", "")
	if !strings.Contains(status, "401") || !strings.Contains(hdr, `WWW-Authenticate: Digest realm="cams"`) || strings.Contains(hdr, "Basic") {
		t.Fatalf("DESCRIBE without credentials: %q\n%s", status, hdr)
	}
	basic := "Authorization: Basic Ym9iOmh1bnRlcjI=\r\n" // bob:hunter2
	for i := 0; i < 2; i++ {
		if s := r.request("DESCRIBE", url, basic, ""); !strings.Contains(s, "401") {
			t.Fatalf("DESCRIBE with Basic (not enabled): %q", s)
		}
	}
	r.request("DESCRIBE", url, basic, "")
	if !r.closedWithin(10 * time.Second) {
		t.Errorf("the connection stayed open after 3 failed authentications")
	}
	logLineWith(t, e.d, "closed after failures", "connection closed", "3 failed authentications", "client_id")

	// A digest that played once does not play again: a second connection
	// replaying it is challenged again with stale=true.
	r = rtspDial(t, e.rtspAddr)
	_, hdr = r.requestHeaders("DESCRIBE", url, "", "")
	m := regexp.MustCompile(`WWW-Authenticate: (Digest [^\r\n]+)`).FindStringSubmatch(hdr)
	if m == nil {
		t.Fatalf("no digest challenge:\n%s", hdr)
	}
	chal, err := digest.ParseChallenge(m[1])
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: "DESCRIBE", URI: url, Username: "bob", Password: "hunter2"})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Authorization: " + cred.String() + "\r\n"
	if s := r.request("DESCRIBE", url, auth, ""); !strings.Contains(s, "200") {
		t.Fatalf("DESCRIBE with a digest: %q", s)
	}
	r2 := rtspDial(t, e.rtspAddr)
	status, hdr = r2.requestHeaders("DESCRIBE", url, auth, "")
	if !strings.Contains(status, "401") || !strings.Contains(hdr, "stale=true") {
		t.Fatalf("replayed DESCRIBE: %q\n%s", status, hdr)
	}
	logLineWith(t, e.d, "replay logged", "rtsp digest nonce replayed", "client_id")
}

// waitExit waits for cmd to end within d (killing it then).
func waitExit(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return nil
	}
}

// rawPlayTCP DESCRIBEs, SETUPs the video track on interleaved channel ch
// and PLAYs url on a raw connection.
func rawPlayTCP(t *testing.T, addr, url string, ch int) *rtspRaw {
	t.Helper()
	r := rtspDial(t, addr)
	cseq := r.send("DESCRIBE", url, "Accept: application/sdp\r\n")
	if m, _ := r.await(cseq, 20*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("DESCRIBE: %q", m.status)
	}
	cseq = r.send("SETUP", url+"/streamid=0", fmt.Sprintf("Transport: RTP/AVP/TCP;unicast;interleaved=%d-%d\r\n", ch, ch+1))
	m, _ := r.await(cseq, 10*time.Second)
	if !strings.Contains(m.status, "200") {
		t.Fatalf("SETUP: %q", m.status)
	}
	sess := regexp.MustCompile(`(?m)^Session: *([^;\r\n]+)`).FindStringSubmatch(m.headers)
	if sess == nil {
		t.Fatalf("SETUP without a Session:\n%s", m.headers)
	}
	cseq = r.send("PLAY", url, "Session: "+sess[1]+"\r\n")
	if m, _ = r.await(cseq, 10*time.Second); !strings.Contains(m.status, "200") {
		t.Fatalf("PLAY: %q", m.status)
	}
	return r
}

// rtpSeqs reads n video RTP packets on channel ch: their SSRC and the
// sequence number of each RTP timestamp's first packet.
func rtpSeqs(t *testing.T, r *rtspRaw, ch, n int) (uint32, map[uint32]uint16) {
	t.Helper()
	var ssrc uint32
	seqs := map[uint32]uint16{}
	deadline := time.Now().Add(15 * time.Second)
	for got := 0; got < n; {
		m, err := r.readMsg(deadline)
		if err != nil {
			t.Fatalf("reading RTP on channel %d: %v", ch, err)
		}
		if m.channel == -1 || m.channel == ch+1 {
			continue
		}
		if m.channel != ch || len(m.payload) < 12 {
			t.Fatalf("frame on channel %d, want %d", m.channel, ch)
		}
		s := binary.BigEndian.Uint32(m.payload[8:12])
		if got > 0 && s != ssrc {
			t.Fatalf("SSRC changed from %x to %x", ssrc, s)
		}
		ssrc = s
		ts := binary.BigEndian.Uint32(m.payload[4:8])
		if _, ok := seqs[ts]; !ok {
			seqs[ts] = binary.BigEndian.Uint16(m.payload[2:4])
		}
		got++
	}
	return ssrc, seqs
}

// TestRTSPSharedStream: RTSP players of one stream get the same RTP (one
// packetization per stream: one SSRC, the same sequence numbers), on the
// interleaved channels each asked for; one leaving does not disturb the
// others.
func TestRTSPSharedStream(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/shared", 120)
	waitPublished(t, e.d, "live", "shared")
	url := "rtsp://" + e.rtspAddr + "/live/shared"
	a := rawPlayTCP(t, e.rtspAddr, url, 0)
	b := rawPlayTCP(t, e.rtspAddr, url, 0)
	c := rawPlayTCP(t, e.rtspAddr, url, 4)
	sa, qa := rtpSeqs(t, a, 0, 200)
	sb, _ := rtpSeqs(t, b, 0, 50)
	sc, qc := rtpSeqs(t, c, 4, 200)
	if sa != sb || sa != sc {
		t.Fatalf("SSRCs %x %x %x: one packetization per player, not per stream", sa, sb, sc)
	}
	common := 0
	for ts, seq := range qa {
		if s, ok := qc[ts]; ok {
			common++
			if s != seq {
				t.Fatalf("RTP time %d: sequence %d on one player, %d on another", ts, seq, s)
			}
		}
	}
	if common == 0 {
		t.Fatalf("the players got no frame in common")
	}
	_ = a.c.Close()
	if s, _ := rtpSeqs(t, c, 4, 50); s != sc {
		t.Fatalf("SSRC changed after a player left")
	}
	rtpSeqs(t, b, 0, 50)
}
