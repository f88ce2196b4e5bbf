package e2e

import (
	"bytes"
	"fmt"
	"math/rand"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
)

const srtOn = "  srt {\n    enabled = true\n  }\n"

var srtAddrRE = regexp.MustCompile(`srt listening:.*? addr=(127\.0\.0\.1:\d+)`)

// startSRT starts a daemon with the rtmp and srt plugins, SRT enabled in
// the default vhost, and returns it with the RTMP and SRT addresses. The
// srt plugin binds its own UDP socket (port 0 here) and logs where.
func startSRT(t *testing.T, srtBlock, vhostBody string) (*Daemon, string, string) {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-protocols").Output(); err != nil || !regexp.MustCompile(`(?m)^\s*srt\s*$`).Match(out) {
		needTool(t, "ffmpeg-with-srt") // skips, or fails in CI
	}
	if srtBlock == "" {
		srtBlock = `bind = ["127.0.0.1:0"]`
	}
	if vhostBody == "" {
		vhostBody = srtOn
	}
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "srt"},
		Blocks:  map[string]string{"rtmp": `listen = ["127.0.0.1:0"]`, "srt": srtBlock},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n%s\n}\n", vhostBody),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "srt")
	var srtAddr string
	Eventually(t, 20*time.Second, "srt listening", func() error {
		m := srtAddrRE.FindStringSubmatch(d.Log())
		if m == nil {
			return fmt.Errorf("no srt listening line yet")
		}
		srtAddr = m[1]
		return nil
	})
	return d, ps["rtmp"].Listeners[0].Addr, srtAddr
}

// ffmpegSRTPublish publishes testsrc2 + sine as x264 + aac in MPEG-TS to
// an SRT url for secs seconds; the process is killed at the end of the test.
func ffmpegSRTPublish(t *testing.T, url string, secs int) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return ffmpegPublishAs(t, url, "mpegts", secs)
}

// checkAV checks that a probe saw h264 640x360 and aac with at least n
// packets each, dts never going back, the first packet a key frame.
func checkAV(t *testing.T, what string, p probeOut, n int) {
	t.Helper()
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
		if s.CodecType == "video" && (s.Width != 640 || s.Height != 360) {
			t.Errorf("%s: video size %dx%d, want 640x360", what, s.Width, s.Height)
		}
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" {
		t.Fatalf("%s: codecs %v, want h264 and aac", what, codecs)
	}
	last := map[int]int64{}
	counts := map[int]int{}
	for _, pk := range p.Packets {
		if pk.DTS == nil {
			continue
		}
		if prev, ok := last[pk.StreamIndex]; ok && *pk.DTS < prev {
			t.Fatalf("%s: stream %d: dts %d after %d", what, pk.StreamIndex, *pk.DTS, prev)
		}
		last[pk.StreamIndex] = *pk.DTS
		counts[pk.StreamIndex]++
	}
	if len(counts) != 2 || counts[0] < n || counts[1] < n {
		t.Fatalf("%s: packets per stream %v, want at least %d each", what, counts, n)
	}
}

func TestSRTPublishPlayOverRTMP(t *testing.T) {
	d, rtmpAddr, srtAddr := startSRT(t, "", "")
	ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/x,m=publish,token=abc", 60)
	waitPublished(t, d, "live", "x")
	p := ffprobe(t, "rtmp://"+rtmpAddr+"/live/x", 4)
	checkAV(t, "rtmp", p, 25)
	if len(p.Packets) > 0 && p.Streams[p.Packets[0].StreamIndex].CodecType == "video" && !strings.HasPrefix(p.Packets[0].Flags, "K") {
		t.Errorf("first video packet is not a key frame: %+v", p.Packets[0])
	}
	if !strings.Contains(d.Log(), "publish started") || !strings.Contains(d.Log(), "srt-publish") {
		t.Errorf("no srt publish in the log")
	}
}

func TestSRTPlayFromRTMP(t *testing.T) {
	d, rtmpAddr, srtAddr := startSRT(t, "", "")
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/y", 60)
	waitPublished(t, d, "live", "y")
	p := ffprobe(t, "srt://"+srtAddr+"?streamid=#!::r=live/y,m=request", 4)
	checkAV(t, "srt play", p, 25)
	first := -1
	for _, pk := range p.Packets {
		if p.Streams[pk.StreamIndex].CodecType == "video" {
			first = 0
			if !strings.HasPrefix(pk.Flags, "K") {
				t.Errorf("first video packet is not a key frame: %+v", pk)
			}
			break
		}
	}
	if first < 0 {
		t.Fatal("no video packet")
	}
	// A bare stream id plays too.
	checkAV(t, "srt play, bare id", ffprobe(t, "srt://"+srtAddr+"?streamid=live/y", 3), 10)
}

// srtClients lists the API's clients of the given type.
func srtClients(d *Daemon, typ string) ([]map[string]any, error) {
	var r struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := d.GetJSON("/api/v1/clients/", &r); err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, c := range r.Clients {
		if c["type"] == typ {
			out = append(out, c)
		}
	}
	return out, nil
}

func TestSRTHooksClientsKick(t *testing.T) {
	hs := NewHookServer(t)
	var hooks strings.Builder
	hooks.WriteString("  hooks {\n")
	for _, ev := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"} {
		fmt.Fprintf(&hooks, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	hooks.WriteString("    timeout = \"2s\"\n  }\n")
	d, rtmpAddr, srtAddr := startSRT(t, "", srtOn+hooks.String())
	pub, _ := ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/h,m=publish,token=abc", 60)
	done := make(chan error, 1)
	go func() { done <- pub.Wait() }()
	waitPublished(t, d, "live", "h")
	b := hs.Bodies("on_publish")
	if len(b) != 1 || b[0]["app"] != "live" || b[0]["stream"] != "h" || !strings.Contains(fmt.Sprint(b[0]["param"]), "token=abc") {
		t.Fatalf("on_publish bodies %v", b)
	}
	if len(hs.Bodies("on_connect")) != 1 {
		t.Errorf("on_connect bodies %v", hs.Bodies("on_connect"))
	}

	// An SRT player: on_play, listed as srt-play; refused when on_play refuses.
	if err := ffprobeRun("srt://"+srtAddr+"?streamid=#!::r=live/h,m=request", 2); err != nil {
		t.Fatalf("srt player: %v", err)
	}
	Eventually(t, 15*time.Second, "on_play and on_stop", func() error {
		if len(hs.Bodies("on_play")) != 1 || len(hs.Bodies("on_stop")) != 1 {
			return fmt.Errorf("on_play %v on_stop %v", hs.Bodies("on_play"), hs.Bodies("on_stop"))
		}
		return nil
	})
	hs.Refuse("on_play", true)
	if err := ffprobeRun("srt://"+srtAddr+"?streamid=#!::r=live/h,m=request", 2); err == nil {
		t.Errorf("a player refused by on_play played")
	}
	hs.Refuse("on_play", false)

	// The publisher is an srt-publish client; deleting it kicks it.
	var id string
	Eventually(t, 15*time.Second, "srt-publish client", func() error {
		cs, err := srtClients(d, "srt-publish")
		if err != nil {
			return err
		}
		if len(cs) != 1 || cs[0]["publish"] != true || cs[0]["name"] != "h" {
			return fmt.Errorf("clients %v", cs)
		}
		id, _ = cs[0]["id"].(string)
		return nil
	})
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	Eventually(t, 20*time.Second, "kicked publisher unpublished", func() error {
		if len(hs.Bodies("on_unpublish")) != 1 {
			return fmt.Errorf("on_unpublish %v", hs.Bodies("on_unpublish"))
		}
		if cs, err := srtClients(d, "srt-publish"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})
	if !strings.Contains(d.Log(), "kicked by the api") {
		t.Errorf("kick not logged")
	}
	// on_publish refusing: the SRT caller is refused.
	hs.Refuse("on_publish", true)
	refused, _ := ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/h2,m=publish", 20)
	rdone := make(chan error, 1)
	go func() { rdone <- refused.Wait() }()
	select {
	case err := <-rdone:
		if err == nil {
			t.Errorf("publisher refused by on_publish exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Errorf("publisher refused by on_publish still running")
	}
	_ = rtmpAddr
}

func TestSRTPassphrase(t *testing.T) {
	const pass = "rill-secret-0123"
	d, rtmpAddr, srtAddr := startSRT(t, `bind = ["127.0.0.1:0"]
passphrase = "`+pass+`"
pbkeylen = 16`, "")
	for _, bad := range []string{"", "&passphrase=wrong-secret-999"} {
		cmd, stderr := ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/p,m=publish"+bad, 20)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("publisher with passphrase %q exited 0", bad)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("publisher with passphrase %q still running: %s", bad, stderr)
		}
	}
	if !strings.Contains(d.Log(), "srt caller refused") {
		t.Errorf("no refusal in the log")
	}
	ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/p,m=publish&passphrase="+pass+"&pbkeylen=16", 60)
	waitPublished(t, d, "live", "p")
	checkAV(t, "rtmp", ffprobe(t, "rtmp://"+rtmpAddr+"/live/p", 3), 10)
}

// TestSRTJunkEndsConnection: a caller that sends what is not MPEG-TS is
// cut with a clear log line; the plugin goes on serving the next caller.
func TestSRTJunkEndsConnection(t *testing.T) {
	d, rtmpAddr, srtAddr := startSRT(t, "", "")
	cfg := srt.DefaultConfig()
	cfg.StreamId = "#!::r=live/junk,m=publish"
	conn, err := srt.Dial("srt", srtAddr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	waitPublished(t, d, "live", "junk")
	junk := make([]byte, 1316)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200 && !strings.Contains(d.Log(), "malformed mpeg-ts"); i++ {
		rng.Read(junk)
		for j := range junk {
			if junk[j] == 0x47 {
				junk[j] = 0
			}
		}
		if _, err := conn.Write(junk); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	Eventually(t, 20*time.Second, "junk publisher cut", func() error {
		if !strings.Contains(d.Log(), "malformed mpeg-ts") {
			return fmt.Errorf("no malformed mpeg-ts line")
		}
		if cs, err := srtClients(d, "srt-publish"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})
	ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/junk,m=publish", 60)
	waitPublished(t, d, "live", "junk")
	checkAV(t, "rtmp after junk", ffprobe(t, "rtmp://"+rtmpAddr+"/live/junk", 3), 10)
}

// TestSRTPublishHEVC: H.265 in MPEG-TS over SRT reaches the hub (the API
// shows it) and plays back over SRT.
func TestSRTPublishHEVC(t *testing.T) {
	d, _, srtAddr := startSRT(t, "", "")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		needTool(t, "ffmpeg-with-libx265")
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "60",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "mpegts", "srt://"+srtAddr+"?streamid=#!::r=live/hevc,m=publish")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	Eventually(t, 30*time.Second, "api shows H265 640x360", func() error {
		v, err := streamVideo(d, "live", "hevc")
		if err != nil {
			return err
		}
		if v["codec"] != "H265" || v["width"] != 640.0 || v["height"] != 360.0 {
			return fmt.Errorf("video %v", v)
		}
		return nil
	})
	p := ffprobe(t, "srt://"+srtAddr+"?streamid=#!::r=live/hevc,m=request", 3)
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
		t.Fatalf("%d video packets in 3 s", n)
	}
}

// TestSRTSilentPublisherCut: a publisher whose SRT connection stays up
// (keepalives) but that sends no data is cut after publish_timeout.
func TestSRTSilentPublisherCut(t *testing.T) {
	d, _, srtAddr := startSRT(t, `bind = ["127.0.0.1:0"]
publish_timeout = "1s"`, "")
	cfg := srt.DefaultConfig()
	cfg.StreamId = "#!::r=live/silent,m=publish"
	conn, err := srt.Dial("srt", srtAddr, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	waitPublished(t, d, "live", "silent")
	Eventually(t, 20*time.Second, "silent publisher cut", func() error {
		if !strings.Contains(d.Log(), "no data for 1s") {
			return fmt.Errorf("no timeout line")
		}
		if cs, err := srtClients(d, "srt-publish"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})
}

// TestSRTListenKeyRefused: SRS habit puts listen in the srt block, which
// the core would otherwise drop silently (the plugin binds bind itself).
func TestSRTListenKeyRefused(t *testing.T) {
	d := NewDaemon(t, Config{Plugins: []string{"srt"}, Blocks: map[string]string{"srt": `listen = ["127.0.0.1:10080"]`}})
	code, out := runCheck(t, d.Dir, d.Conf)
	if code == 0 || !strings.Contains(out, `plugin "srt" key "listen"`) || !strings.Contains(out, "bind") {
		t.Fatalf("rill -t: exit %d, want listen refused:\n%s", code, out)
	}
	if err := d.Start(); err == nil {
		t.Fatalf("the daemon started with listen in the srt block:\n%s", d.Log())
	}
}

// TestSRTPlayerListedAndKicked: an SRT player that connects before the
// publisher waits for it (play_wait), is listed as srt-play and is cut by
// DELETE /api/v1/clients/{id}.
func TestSRTPlayerListedAndKicked(t *testing.T) {
	d, rtmpAddr, srtAddr := startSRT(t, `bind = ["127.0.0.1:0"]
play_wait = "30s"`, "")
	player := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-i", "srt://"+srtAddr+"?streamid=#!::r=live/k,m=request", "-f", "null", "-")
	if err := player.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- player.Wait() }()
	t.Cleanup(func() { _ = player.Process.Kill() })
	var id string
	Eventually(t, 20*time.Second, "srt-play client listed", func() error {
		cs, err := srtClients(d, "srt-play")
		if err != nil {
			return err
		}
		if len(cs) != 1 || cs[0]["publish"] != false {
			return fmt.Errorf("clients %v", cs)
		}
		id, _ = cs[0]["id"].(string)
		return nil
	})
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/k", 60)
	waitPublished(t, d, "live", "k")
	Eventually(t, 20*time.Second, "player receives media", func() error {
		cs, err := srtClients(d, "srt-play")
		if err != nil || len(cs) != 1 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		if n, _ := cs[0]["send_bytes"].(float64); n < 100000 {
			return fmt.Errorf("sent %v bytes", cs[0]["send_bytes"])
		}
		return nil
	})
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	Eventually(t, 20*time.Second, "kicked player gone", func() error {
		if cs, err := srtClients(d, "srt-play"); err != nil || len(cs) != 0 {
			return fmt.Errorf("clients %v %v", cs, err)
		}
		return nil
	})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("kicked ffmpeg player still running")
	}
}
