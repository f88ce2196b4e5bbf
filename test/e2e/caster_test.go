package e2e

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// casterEnv is a daemon with the rtmp, httpstream (HLS on) and caster
// plugins on free loopback ports.
type casterEnv struct {
	d                  *Daemon
	rtmpAddr, httpAddr string
	flvAddr, udpAddr   string
}

func startCaster(t *testing.T, casterExtra, vhostExtra string) *casterEnv {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	casterBlock := "listen = [\"127.0.0.1:0\"]\nlisten_mpegts_udp = [\"127.0.0.1:0\"]\n" + casterExtra
	if !strings.Contains(casterExtra, "output") {
		casterBlock += "\noutput = \"rtmp://127.0.0.1/live/udp\""
	}
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream", "caster"},
		Blocks: map[string]string{
			"rtmp":       `listen = ["127.0.0.1:0"]`,
			"httpstream": `listen = ["127.0.0.1:0"]` + "\n" + fmt.Sprintf("dir = %q", t.TempDir()),
			"caster":     casterBlock,
		},
		Extra: fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"10s\"\n    path = %q\n  }\n%s\n}\n", t.TempDir(), vhostExtra),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream", "caster")
	e := &casterEnv{d: d, rtmpAddr: ps["rtmp"].Listeners[0].Addr, httpAddr: ps["httpstream"].Listeners[0].Addr}
	for _, l := range ps["caster"].Listeners {
		switch l.Network {
		case "tcp":
			e.flvAddr = l.Addr
		case "udp":
			e.udpAddr = l.Addr
		}
	}
	if e.flvAddr == "" || e.udpAddr == "" {
		t.Fatalf("caster listeners %+v", ps["caster"].Listeners)
	}
	return e
}

// casterClient waits for exactly one API client of typ publishing stream
// (with received bytes) and returns it.
func casterClient(t *testing.T, d *Daemon, typ, stream string) map[string]any {
	t.Helper()
	var c map[string]any
	Eventually(t, 20*time.Second, typ+" client", func() error {
		all, err := srtClients(d, typ)
		if err != nil {
			return err
		}
		var cs []map[string]any
		for _, c := range all {
			if c["name"] == stream {
				cs = append(cs, c)
			}
		}
		if len(cs) != 1 || cs[0]["publish"] != true {
			return fmt.Errorf("%s clients %v", typ, cs)
		}
		if rb, _ := cs[0]["recv_bytes"].(float64); rb <= 0 {
			return fmt.Errorf("recv_bytes %v", cs[0]["recv_bytes"])
		}
		c = cs[0]
		return nil
	})
	return c
}

func kickClient(t *testing.T, d *Daemon, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestCasterMPEGTSOverUDP: ffmpeg sends MPEG-TS to the UDP caster; the
// configured output stream plays over RTMP, HTTP-FLV and HLS.
func TestCasterMPEGTSOverUDP(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "", "")
	ffmpegPublishAs(t, "udp://"+e.udpAddr+"?pkt_size=1316", "mpegts", 90)
	waitPublished(t, e.d, "live", "udp")
	casterClient(t, e.d, "mpegts-udp-publish", "udp")
	checkAV(t, "rtmp", ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/udp", 4), 25)
	httpWantCodecs(t, "http-flv", httpProbe(t, "http://"+e.httpAddr+"/live/udp.flv", 3), "h264", "aac")
	httpWaitStream(t, e.d, "http://"+e.httpAddr+"/live/udp.m3u8")
	httpWantCodecs(t, "hls", httpProbe(t, "http://"+e.httpAddr+"/live/udp.m3u8", 3), "h264", "aac")
}

// TestCasterFLVOverPOST: ffmpeg POSTs FLV to /live/x.flv; it plays over
// RTMP as live/x, listed as an flv-post-publish client.
func TestCasterFLVOverPOST(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "", "")
	ffmpegPublishAs(t, "http://"+e.flvAddr+"/live/x.flv?token=abc", "flv", 90, "-method", "POST")
	waitPublished(t, e.d, "live", "x")
	casterClient(t, e.d, "flv-post-publish", "x")
	checkAV(t, "rtmp", ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/x", 4), 25)
	httpWantCodecs(t, "http-flv", httpProbe(t, "http://"+e.httpAddr+"/live/x.flv", 3), "h264", "aac")
}

// TestCasterHooksKick: on_connect/on_publish/on_unpublish/on_close reach
// the callbacks for both casters, an on_publish refusal refuses, DELETE
// /api/v1/clients/{id} cuts each, a second UDP sender of a busy output is
// refused.
func TestCasterHooksKick(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	var hooks strings.Builder
	hooks.WriteString("  hooks {\n")
	for _, ev := range []string{"on_connect", "on_close", "on_publish", "on_unpublish"} {
		fmt.Fprintf(&hooks, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	hooks.WriteString("    timeout = \"2s\"\n  }\n")
	e := startCaster(t, "cooldown = \"1s\"", hooks.String())

	// FLV over POST: hooks with the query as param, kick.
	post, _ := ffmpegPublishAs(t, "http://"+e.flvAddr+"/live/h.flv?token=abc", "flv", 90, "-method", "POST")
	pdone := make(chan error, 1)
	go func() { pdone <- post.Wait() }()
	waitPublished(t, e.d, "live", "h")
	b := hs.Bodies("on_publish")
	if len(b) != 1 || b[0]["app"] != "live" || b[0]["stream"] != "h" || !strings.Contains(fmt.Sprint(b[0]["param"]), "token=abc") {
		t.Fatalf("on_publish bodies %v", b)
	}
	if len(hs.Bodies("on_connect")) != 1 {
		t.Errorf("on_connect bodies %v", hs.Bodies("on_connect"))
	}
	c := casterClient(t, e.d, "flv-post-publish", "h")
	kickClient(t, e.d, fmt.Sprint(c["id"]))
	Eventually(t, 20*time.Second, "kicked POST publisher unpublished", func() error {
		if len(hs.Bodies("on_unpublish")) != 1 || len(hs.Bodies("on_close")) != 1 {
			return fmt.Errorf("on_unpublish %v on_close %v", hs.Bodies("on_unpublish"), hs.Bodies("on_close"))
		}
		return nil
	})
	select {
	case <-pdone:
	case <-time.After(20 * time.Second):
		t.Errorf("kicked ffmpeg POST publisher still running")
	}
	if !strings.Contains(e.d.Log(), "kicked by the api") {
		t.Errorf("kick not logged")
	}

	// UDP: a sender, kicked.
	ffmpegPublishAs(t, "udp://"+e.udpAddr+"?pkt_size=1316", "mpegts", 90)
	waitPublished(t, e.d, "live", "udp")
	c = casterClient(t, e.d, "mpegts-udp-publish", "udp")
	kickClient(t, e.d, fmt.Sprint(c["id"]))
	Eventually(t, 20*time.Second, "kicked UDP publisher unpublished", func() error {
		if len(hs.Bodies("on_unpublish")) < 2 {
			return fmt.Errorf("on_unpublish %v", hs.Bodies("on_unpublish"))
		}
		return nil
	})
	// The sender goes on, so after the cooldown it publishes again.
	waitPublished(t, e.d, "live", "udp")

	// on_publish refusing: the POST gets 403 and nothing is published.
	hs.Refuse("on_publish", true)
	resp, err := http.Post("http://"+e.flvAddr+"/live/refused.flv", "video/x-flv", strings.NewReader("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("refused POST: status %d, want 403", resp.StatusCode)
	}
	hs.Refuse("on_publish", false)

	// A second UDP sender of the busy output is refused, logged with its id.
	second, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.Write(nullTS()); err != nil {
		t.Fatal(err)
	}
	logLineWith(t, e.d, "busy refusal logged", "publish refused", "client_id", "mpegts-udp-publish")
}

// nullTS is seven MPEG-TS null packets: valid input that carries nothing.
func nullTS() []byte {
	out := make([]byte, 0, 7*188)
	for i := 0; i < 7; i++ {
		pkt := make([]byte, 188)
		pkt[0], pkt[1], pkt[2], pkt[3] = 0x47, 0x1f, 0xff, 0x10
		out = append(out, pkt...)
	}
	return out
}

// TestCasterSilentUDPSender: a UDP sender that sends a datagram and then
// nothing is cut after publish_timeout.
func TestCasterSilentUDPSender(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "publish_timeout = \"1s\"\noutput = \"rtmp://127.0.0.1/live/silent\"", "")
	silent, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := silent.Write(nullTS()); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, e.d, "live", "silent")
	Eventually(t, 20*time.Second, "silent sender cut", func() error {
		if !strings.Contains(e.d.Log(), "no data for 1s") {
			return fmt.Errorf("no timeout line")
		}
		if cs, err := srtClients(e.d, "mpegts-udp-publish"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})
}

// postRaw sends a raw HTTP request and body on a new TCP connection, closes
// its write side and returns the first response line ("" when the server
// closed without answering).
func postRaw(t *testing.T, addr, head string, body []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(append([]byte(head), body...)); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// logLineWith waits for a log line holding every part.
func logLineWith(t *testing.T, d *Daemon, what string, parts ...string) {
	t.Helper()
	Eventually(t, 20*time.Second, what, func() error {
		for _, l := range strings.Split(d.Log(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return nil
			}
		}
		return fmt.Errorf("no log line with %q", parts)
	})
}

// TestCasterHostileInputs: junk UDP, a non-FLV POST, a truncated POST
// body, a huge tag and a lying Content-Length each end that input with a
// log line naming the client; a good POST stream beside them plays on,
// and a good UDP sender publishes after the junk one.
func TestCasterHostileInputs(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "max_tag_size = 1048576", "")
	ffmpegPublishAs(t, "http://"+e.flvAddr+"/live/good.flv", "flv", 120, "-method", "POST")
	waitPublished(t, e.d, "live", "good")

	// Junk UDP: random bytes without a sync byte.
	junk, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 1316)
	for i := 0; i < 50 && !strings.Contains(e.d.Log(), "malformed mpeg-ts"); i++ {
		rng.Read(buf)
		for j := range buf {
			if buf[j] == 0x47 {
				buf[j] = 0
			}
		}
		_, _ = junk.Write(buf)
		time.Sleep(20 * time.Millisecond)
	}
	logLineWith(t, e.d, "junk udp sender cut", "malformed mpeg-ts", "client_id", "mpegts-udp-publish")

	flvHead := []byte("FLV\x01\x05\x00\x00\x00\x09")
	tagHead := func(size int) []byte {
		return []byte{0, 0, 0, 0, 9, byte(size >> 16), byte(size >> 8), byte(size), 0, 0, 0, 0, 0, 0, 0}
	}
	// Not FLV at all.
	if l := postRaw(t, e.flvAddr, "POST /live/notflv.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 32\r\n\r\n", []byte(strings.Repeat("x", 32))); !strings.Contains(l, "400") {
		t.Errorf("non-FLV body: response %q, want 400", l)
	}
	logLineWith(t, e.d, "non-FLV body logged", "no FLV signature", "client_id", "live/notflv")
	// A tag announced with 1000 bytes, the body ends after 10: truncated,
	// with a Content-Length that lies about the body (100000).
	body := append(append(append([]byte{}, flvHead...), tagHead(1000)...), make([]byte, 10)...)
	postRaw(t, e.flvAddr, "POST /live/trunc.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", body)
	logLineWith(t, e.d, "truncated body logged", "truncated flv body", "client_id", "live/trunc")
	// A tag of 16 MiB - 1 with max_tag_size 1 MiB, chunked.
	huge := append(append([]byte{}, flvHead...), tagHead(1<<24-1)...)
	chunk := fmt.Sprintf("%x\r\n%s\r\n", len(huge), huge)
	if l := postRaw(t, e.flvAddr, "POST /live/huge.flv HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", []byte(chunk)); !strings.Contains(l, "400") {
		t.Errorf("huge tag: response %q, want 400", l)
	}
	logLineWith(t, e.d, "huge tag logged", "exceeds max_tag_size", "client_id", "live/huge")
	// A bad path and a bad method.
	if l := postRaw(t, e.flvAddr, "POST /../x.flv HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", nil); !strings.Contains(l, "400") {
		t.Errorf("bad path: response %q, want 400", l)
	}
	if l := postRaw(t, e.flvAddr, "GET /live/good.flv HTTP/1.1\r\nHost: x\r\n\r\n", nil); !strings.Contains(l, "405") {
		t.Errorf("GET: response %q, want 405", l)
	}

	// Nothing else was disturbed: the good stream plays, a good UDP sender
	// publishes, the plugin never restarted.
	checkAV(t, "rtmp good post stream", ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/good", 3), 10)
	ffmpegPublishAs(t, "udp://"+e.udpAddr+"?pkt_size=1316", "mpegts", 90)
	waitPublished(t, e.d, "live", "udp")
	checkAV(t, "rtmp udp after junk", ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/udp", 3), 10)
	ps, err := e.d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	if ps["caster"].Restarts != 0 || strings.Contains(e.d.Log(), "panic") {
		t.Errorf("caster restarted %d times or panicked", ps["caster"].Restarts)
	}
}

// TestCasterSecurityRules: a vhost's security rules refuse both casters'
// publishers (a POST gets 403, a UDP sender publishes nothing).
func TestCasterSecurityRules(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "", "  security {\n    rules = [\"deny publish 127.0.0.0/8\", \"allow publish all\"]\n  }\n")
	resp, err := http.Post("http://"+e.flvAddr+"/live/denied.flv", "video/x-flv", strings.NewReader("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("denied POST: status %d, want 403", resp.StatusCode)
	}
	u, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(nullTS()); err != nil {
		t.Fatal(err)
	}
	logLineWith(t, e.d, "udp sender refused", "publish refused", "client_id", "mpegts-udp-publish")
	var r streamsReply
	if err := e.d.GetJSON("/api/v1/streams/", &r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Streams {
		if s.Publish.Active {
			t.Errorf("stream %s/%s published despite the rules", s.App, s.Name)
		}
	}
}

// TestCasterUDPPeerCap: past max_udp_peers, a new UDP sender's datagrams
// are dropped with a warning; the publishing sender is untouched.
func TestCasterUDPPeerCap(t *testing.T) {
	t.Parallel()
	e := startCaster(t, "max_udp_peers = 1", "")
	a, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write(nullTS()); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, e.d, "live", "udp")
	b, err := net.Dial("udp", e.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := 0; i < 20 && !strings.Contains(e.d.Log(), "too many udp senders"); i++ {
		_, _ = b.Write(nullTS())
		_, _ = a.Write(nullTS())
		time.Sleep(50 * time.Millisecond)
	}
	logLineWith(t, e.d, "cap logged", "too many udp senders", "max_udp_peers=1", b.LocalAddr().String())
	Eventually(t, 20*time.Second, "the first sender only", func() error {
		cs, err := srtClients(e.d, "mpegts-udp-publish")
		if err != nil || len(cs) != 1 {
			return fmt.Errorf("clients %v %v, want the first sender only", cs, err)
		}
		return nil
	})
}
