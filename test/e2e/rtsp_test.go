package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// rtspEnv is a daemon with the rtmp, httpstream and rtsp plugins on free
// loopback ports.
type rtspEnv struct {
	d                            *Daemon
	rtmpAddr, httpAddr, rtspAddr string
}

func startRTSP(t *testing.T, rtspExtra, vhostBody string) *rtspEnv {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	cfg := Config{
		Plugins: []string{"rtmp", "httpstream", "rtsp"},
		Blocks: map[string]string{
			"rtmp":       `listen = ["127.0.0.1:0"]`,
			"httpstream": `listen = ["127.0.0.1:0"]` + "\n" + fmt.Sprintf("dir = %q", t.TempDir()),
			"rtsp":       "listen = [\"127.0.0.1:0\"]\n" + rtspExtra,
		},
	}
	if vhostBody != "" {
		cfg.Extra = "vhost \"__defaultVhost__\" {\n" + vhostBody + "\n}\n"
	}
	d := StartDaemon(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream", "rtsp")
	return &rtspEnv{d: d, rtmpAddr: ps["rtmp"].Listeners[0].Addr, httpAddr: ps["httpstream"].Listeners[0].Addr, rtspAddr: ps["rtsp"].Listeners[0].Addr}
}

// TestRTSPPublishTCPAndUDP: ffmpeg publishes over RTSP with RTP
// interleaved in TCP, then over UDP; each plays over RTMP and HTTP-FLV and
// is an rtsp-publish client with its received bytes.
func TestRTSPPublishTCPAndUDP(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ps, err := e.d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	pid := ps["rtsp"].PID
	fds := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		return len(ents)
	}
	before := fds()
	var pubs []*exec.Cmd
	for _, tr := range []string{"tcp", "udp"} {
		stream := "pub" + tr
		cmd, _ := ffmpegPublishAs(t, "rtsp://"+e.rtspAddr+"/live/"+stream+"?token=abc", "rtsp", 90, "-rtsp_transport", tr)
		pubs = append(pubs, cmd)
		waitPublished(t, e.d, "live", stream)
		casterClient(t, e.d, "rtsp-publish", stream)
		checkAV(t, "rtmp of rtsp/"+tr, ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/"+stream, 4), 25)
		httpWantCodecs(t, "http-flv of rtsp/"+tr, httpProbe(t, "http://"+e.httpAddr+"/live/"+stream+".flv", 3), "h264", "aac")
	}
	// The publishers gone, the plugin holds no socket of theirs (the UDP
	// SETUP's RTP/RTCP sockets included).
	during := fds()
	for _, p := range pubs {
		_ = p.Process.Kill()
	}
	Eventually(t, 30*time.Second, "rtsp publishers' sockets closed", func() error {
		if cs, err := srtClients(e.d, "rtsp-publish"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		if n := fds(); n > before {
			return fmt.Errorf("rtsp plugin has %d descriptors, %d before the publishers, %d with them", n, before, during)
		}
		return nil
	})
}

// TestRTSPPlayTCPAndUDP: an RTMP-published stream plays over RTSP with
// ffprobe and ffmpeg, over TCP and over UDP, from a key frame.
func TestRTSPPlayTCPAndUDP(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/p", 120)
	waitPublished(t, e.d, "live", "p")
	url := "rtsp://" + e.rtspAddr + "/live/p"
	for _, tr := range []string{"tcp", "udp"} {
		p := ffprobeOpts(t, url, 4, "-rtsp_transport", tr)
		checkAV(t, "ffprobe rtsp/"+tr, p, 25)
		for _, pk := range p.Packets {
			if p.Streams[pk.StreamIndex].CodecType == "video" {
				if !strings.HasPrefix(pk.Flags, "K") {
					t.Errorf("rtsp/%s: first video packet is not a key frame: %+v", tr, pk)
				}
				break
			}
		}
		// ffmpeg plays it into a file that plays.
		out := filepath.Join(t.TempDir(), "play-"+tr+".ts")
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		b, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", tr, "-i", url,
			"-t", "3", "-c", "copy", "-f", "mpegts", out).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ffmpeg play rtsp/%s: %v\n%s", tr, err, b)
		}
		checkAV(t, "ffmpeg rtsp/"+tr+" file", ffprobe(t, out, 10), 25)
	}
	var r struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := e.d.GetJSON("/api/v1/clients/", &r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.d.Log(), `"type":"rtsp-play"`) && !strings.Contains(e.d.Log(), "type=rtsp-play") {
		t.Errorf("no rtsp-play client in the log")
	}
}

// TestRTSPHEVC: H.265 published over RTSP reaches the hub as H.265 and
// plays back over RTSP.
func TestRTSPHEVC(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		needTool(t, "ffmpeg-with-libx265")
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "90",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=0:log-level=error", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+e.rtspAddr+"/live/hevc")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	Eventually(t, 30*time.Second, "api shows H265 640x360", func() error {
		v, err := streamVideo(e.d, "live", "hevc")
		if err != nil {
			return err
		}
		if v["codec"] != "H265" || v["width"] != 640.0 || v["height"] != 360.0 {
			return fmt.Errorf("video %v", v)
		}
		return nil
	})
	p := ffprobeOpts(t, "rtsp://"+e.rtspAddr+"/live/hevc", 4, "-rtsp_transport", "tcp")
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	if codecs["video"] != "hevc" || codecs["audio"] != "aac" {
		t.Fatalf("codecs %v, want hevc and aac", codecs)
	}
	n := 0
	for _, pk := range p.Packets {
		if p.Streams[pk.StreamIndex].CodecType == "video" {
			n++
		}
	}
	if n < 25 {
		t.Fatalf("%d video packets in 4 s", n)
	}
}

// rtspDial opens a raw RTSP connection.
type rtspRaw struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	cseq int
}

func rtspDial(t *testing.T, addr string) *rtspRaw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rtspRaw{t: t, c: c, r: bufio.NewReader(c)}
}

// request sends a request and returns the status line of its response
// ("" when the server closed the connection).
func (r *rtspRaw) request(method, url, headers, body string) string {
	r.t.Helper()
	r.cseq++
	msg := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s", method, url, r.cseq, headers)
	if body != "" {
		msg += fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n", len(body))
	}
	msg += "\r\n" + body
	_ = r.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := r.c.Write([]byte(msg)); err != nil {
		return ""
	}
	status, err := r.r.ReadString('\n')
	if err != nil {
		return ""
	}
	n := 0
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			return strings.TrimSpace(status)
		}
		l = strings.TrimSpace(l)
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Length") {
			fmt.Sscan(strings.TrimSpace(v), &n)
		}
	}
	if n > 0 {
		buf := make([]byte, n)
		_, _ = r.r.Read(buf)
	}
	return strings.TrimSpace(status)
}

// closedWithin reports whether the server closes the connection in d.
func (r *rtspRaw) closedWithin(d time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := r.r.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !(ok && ne.Timeout())
		}
	}
}

const rtspTestSDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:streamid=0\r\n"

// TestRTSPHooksKickIdle: callbacks for RTSP publishers and players, a
// refusal refuses, DELETE /api/v1/clients/{id} cuts each, a publisher
// whose RTP stops is cut after idle_timeout.
func TestRTSPHooksKickIdle(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	var hooks strings.Builder
	hooks.WriteString("  hooks {\n")
	for _, ev := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"} {
		fmt.Fprintf(&hooks, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	hooks.WriteString("    timeout = \"2s\"\n  }\n")
	e := startRTSP(t, `idle_timeout = "1s"`, hooks.String())

	pub, _ := ffmpegPublishAs(t, "rtsp://"+e.rtspAddr+"/live/h?token=abc", "rtsp", 90, "-rtsp_transport", "tcp")
	pdone := make(chan error, 1)
	go func() { pdone <- pub.Wait() }()
	waitPublished(t, e.d, "live", "h")
	b := hs.Bodies("on_publish")
	if len(b) != 1 || b[0]["app"] != "live" || b[0]["stream"] != "h" || !strings.Contains(fmt.Sprint(b[0]["param"]), "token=abc") {
		t.Fatalf("on_publish bodies %v", b)
	}
	// A player: on_play then on_stop; refused when on_play refuses.
	checkAV(t, "rtsp play", ffprobeOpts(t, "rtsp://"+e.rtspAddr+"/live/h", 2, "-rtsp_transport", "tcp"), 10)
	Eventually(t, 15*time.Second, "on_play and on_stop", func() error {
		if len(hs.Bodies("on_play")) != 1 || len(hs.Bodies("on_stop")) != 1 {
			return fmt.Errorf("on_play %v on_stop %v", hs.Bodies("on_play"), hs.Bodies("on_stop"))
		}
		return nil
	})
	hs.Refuse("on_play", true)
	if err := ffprobeRun("rtsp://"+e.rtspAddr+"/live/h", 2); err == nil {
		t.Errorf("a player refused by on_play played")
	}
	hs.Refuse("on_play", false)

	// A player listed as rtsp-play with its sent bytes, kicked.
	play := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", "rtsp://"+e.rtspAddr+"/live/h", "-c", "copy", "-f", "null", "-")
	if err := play.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = play.Process.Kill(); _ = play.Wait() })
	var playID string
	Eventually(t, 20*time.Second, "rtsp-play client", func() error {
		cs, err := srtClients(e.d, "rtsp-play")
		if err != nil {
			return err
		}
		if len(cs) != 1 {
			return fmt.Errorf("rtsp-play clients %v", cs)
		}
		if sb, _ := cs[0]["send_bytes"].(float64); sb <= 0 {
			return fmt.Errorf("send_bytes %v", cs[0]["send_bytes"])
		}
		playID = fmt.Sprint(cs[0]["id"])
		return nil
	})
	kickClient(t, e.d, playID)
	Eventually(t, 20*time.Second, "kicked player gone", func() error {
		if cs, err := srtClients(e.d, "rtsp-play"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})

	// The publisher kicked: on_unpublish, ffmpeg ends.
	c := casterClient(t, e.d, "rtsp-publish", "h")
	kickClient(t, e.d, fmt.Sprint(c["id"]))
	Eventually(t, 20*time.Second, "kicked publisher unpublished", func() error {
		if len(hs.Bodies("on_unpublish")) != 1 {
			return fmt.Errorf("on_unpublish %v", hs.Bodies("on_unpublish"))
		}
		return nil
	})
	select {
	case <-pdone:
	case <-time.After(20 * time.Second):
		t.Errorf("kicked ffmpeg RTSP publisher still running")
	}
	logLineWith(t, e.d, "kick logged", "kicked by the api", "client_id")

	// A publisher that announces and records over UDP but sends no RTP.
	r := rtspDial(t, e.rtspAddr)
	url := "rtsp://" + e.rtspAddr + "/live/silent"
	if s := r.request("ANNOUNCE", url, "", rtspTestSDP); !strings.Contains(s, "200") {
		t.Fatalf("ANNOUNCE: %q", s)
	}
	if s := r.request("SETUP", url+"/streamid=0", "Transport: RTP/AVP/UDP;unicast;client_port=40000-40001;mode=record\r\n", ""); !strings.Contains(s, "200") {
		t.Fatalf("SETUP: %q", s)
	}
	if s := r.request("RECORD", url, "", ""); !strings.Contains(s, "200") {
		t.Fatalf("RECORD: %q", s)
	}
	waitPublished(t, e.d, "live", "silent")
	if !r.closedWithin(20 * time.Second) {
		t.Errorf("silent publisher not cut")
	}
	logLineWith(t, e.d, "idle cut logged", "no rtp for 1s", "client_id")
}

// TestRTSPHostileInputs: junk, a huge Content-Length, an interleaved
// frame on a channel no SETUP asked for, a short RTCP packet, a long
// header, a PLAY without DESCRIBE each end that connection with a log
// line naming the client; a player of a good stream beside them plays on.
func TestRTSPHostileInputs(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/good", 120)
	waitPublished(t, e.d, "live", "good")
	good := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", "rtsp://"+e.rtspAddr+"/live/good", "-c", "copy", "-f", "null", "-")
	gdone := make(chan error, 1)
	if err := good.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { gdone <- good.Wait() }()
	t.Cleanup(func() { _ = good.Process.Kill(); <-gdone })
	url := "rtsp://" + e.rtspAddr + "/live/bad"
	cases := []struct {
		name string
		send func(r *rtspRaw)
		log  string
	}{
		{"junk", func(r *rtspRaw) {
			_, _ = r.c.Write([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12"))
		}, "malformed rtsp"},
		{"huge content-length", func(r *rtspRaw) {
			_, _ = r.c.Write([]byte("ANNOUNCE " + url + " RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9999999999999\r\n\r\n"))
		}, "Content-Length"},
		{"channel lie", func(r *rtspRaw) {
			r.request("ANNOUNCE", url, "", rtspTestSDP)
			r.request("SETUP", url+"/streamid=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n", "")
			r.request("RECORD", url, "", "")
			_, _ = r.c.Write(append([]byte("$\x07\x00\x0c"), make([]byte, 12)...))
		}, "which no SETUP asked for"},
		{"short rtcp", func(r *rtspRaw) {
			r.request("ANNOUNCE", url, "", rtspTestSDP)
			r.request("SETUP", url+"/streamid=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n", "")
			r.request("RECORD", url, "", "")
			_, _ = r.c.Write([]byte("$\x01\x00\x02\x80\xc8"))
		}, "rtcp packet of 2 bytes"},
		{"long header", func(r *rtspRaw) {
			_, _ = r.c.Write([]byte("OPTIONS " + url + " RTSP/1.0\r\nX: " + strings.Repeat("a", 10000)))
		}, "request header longer"},
		{"play without describe", func(r *rtspRaw) { r.request("PLAY", url, "", "") }, "rtsp request failed: handlePlay"},
		{"bad sdp", func(r *rtspRaw) { r.request("ANNOUNCE", url, "", "this is not an sdp\r\n") }, "has no H.264, H.265 or AAC track"},
	}
	for _, tc := range cases {
		r := rtspDial(t, e.rtspAddr)
		tc.send(r)
		if !r.closedWithin(15 * time.Second) {
			t.Errorf("%s: connection not closed", tc.name)
		}
		logLineWith(t, e.d, tc.name+" logged", tc.log, "client_id")
	}
	// The good player still plays, nothing restarted or panicked.
	select {
	case err := <-gdone:
		t.Fatalf("the good RTSP player ended: %v", err)
	default:
	}
	checkAV(t, "rtsp after hostile inputs", ffprobeOpts(t, "rtsp://"+e.rtspAddr+"/live/good", 3, "-rtsp_transport", "tcp"), 10)
	ps, err := e.d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	if ps["rtsp"].Restarts != 0 || strings.Contains(e.d.Log(), "panic") {
		t.Errorf("rtsp restarted %d times or panicked", ps["rtsp"].Restarts)
	}
}

// TestRTSPUDPRTCPJunk: datagrams that crash lal's RTCP reader (a 1-byte
// packet, sender reports shorter than 28 bytes) sent to the RTCP port a
// SETUP over UDP gave out are dropped by the socket filter the plugin puts
// on it: the plugin does not restart, and a good RTSP player beside goes
// on; well-formed RTCP still reaches the session.
func TestRTSPUDPRTCPJunk(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/good", 120)
	waitPublished(t, e.d, "live", "good")
	ps0 := waitRunning(t, e.d, "rtsp")
	r := rtspDial(t, e.rtspAddr)
	url := "rtsp://" + e.rtspAddr + "/live/udpjunk"
	if s := r.request("ANNOUNCE", url, "", rtspTestSDP); !strings.Contains(s, "200") {
		t.Fatalf("ANNOUNCE: %q", s)
	}
	status, hdr := r.requestHeaders("SETUP", url+"/streamid=0", "Transport: RTP/AVP/UDP;unicast;client_port=40010-40011;mode=record\r\n", "")
	if !strings.Contains(status, "200") {
		t.Fatalf("SETUP: %q", status)
	}
	m := regexp.MustCompile(`server_port=(\d+)-(\d+)`).FindStringSubmatch(hdr)
	if m == nil {
		t.Fatalf("SETUP response without server_port:\n%s", hdr)
	}
	if s := r.request("RECORD", url, "", ""); !strings.Contains(s, "200") {
		t.Fatalf("RECORD: %q", s)
	}
	rtcp, err := net.Dial("udp", "127.0.0.1:"+m[2])
	if err != nil {
		t.Fatal(err)
	}
	defer rtcp.Close()
	sr := make([]byte, 28)
	sr[0], sr[1], sr[3] = 0x80, 200, 6
	for _, d := range [][]byte{{0x80}, {0x80, 200, 0, 1}, sr[:20], sr[:27], {}, sr} {
		if _, err := rtcp.Write(d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	ps, err := e.d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	if p := ps["rtsp"]; p.PID != ps0["rtsp"].PID || p.Restarts != 0 || strings.Contains(e.d.Log(), "panic") {
		t.Fatalf("junk RTCP over UDP crashed the rtsp plugin: pid %d -> %d, restarts %d", ps0["rtsp"].PID, p.PID, p.Restarts)
	}
	logLineWith(t, e.d, "rtcp socket filtered", "rtcp socket filtered", "client_id")
	checkAV(t, "rtsp beside junk rtcp", ffprobeOpts(t, "rtsp://"+e.rtspAddr+"/live/good", 3, "-rtsp_transport", "tcp"), 10)
}

// requestHeaders is request, returning the response's header lines too.
func (r *rtspRaw) requestHeaders(method, url, headers, body string) (string, string) {
	r.t.Helper()
	r.cseq++
	msg := fmt.Sprintf("%s %s RTSP/1.0\r\nCSeq: %d\r\n%s", method, url, r.cseq, headers)
	if body != "" {
		msg += fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n", len(body))
	}
	msg += "\r\n" + body
	_ = r.c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := r.c.Write([]byte(msg)); err != nil {
		return "", ""
	}
	status, err := r.r.ReadString('\n')
	if err != nil {
		return "", ""
	}
	var hdr strings.Builder
	for {
		l, err := r.r.ReadString('\n')
		if err != nil || strings.TrimSpace(l) == "" {
			break
		}
		hdr.WriteString(l)
	}
	return strings.TrimSpace(status), hdr.String()
}

// TestRTSPSecurityRules: a vhost's security rules refuse RTSP players and
// publishers.
func TestRTSPSecurityRules(t *testing.T) {
	t.Parallel()
	e := startRTSP(t, "", "  security {\n    rules = [\"deny play 127.0.0.0/8\", \"deny publish 127.0.0.0/8\", \"allow play all\", \"allow publish all\"]\n  }\n")
	r := rtspDial(t, e.rtspAddr)
	if s := r.request("ANNOUNCE", "rtsp://"+e.rtspAddr+"/live/denied", "", rtspTestSDP); strings.Contains(s, "200") {
		t.Errorf("denied ANNOUNCE answered %q", s)
	}
	logLineWith(t, e.d, "publisher refused", "rtsp client refused", "client_id", "live/denied")
	if err := ffprobeRun("rtsp://"+e.rtspAddr+"/live/denied", 2); err == nil {
		t.Errorf("a player denied by the rules played")
	}
	logLineWith(t, e.d, "player refused", "rtsp client refused", "forbidden")
}
