package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

const srtOn = "  srt {\n    enabled = true\n  }\n"

var srtAddrRE = regexp.MustCompile(`srt listening:.*? addr=(127\.0\.0\.1:\d+)`)

// startSRT starts a daemon with the rtmp and srt plugins, SRT enabled in
// the default vhost, and returns it with the RTMP and SRT addresses. The
// srt plugin binds its own UDP socket (port 0 here) and logs where.
func startSRT(t *testing.T, srtBlock, vhostBody string) (*Daemon, string, string) {
	t.Helper()
	return startSRTWith(t, srtBlock, vhostBody)
}

// startSRTWith is startSRT with more plugins (their blocks listen on a
// free loopback port when they take a listen key).
func startSRTWith(t *testing.T, srtBlock, vhostBody string, more ...string) (*Daemon, string, string) {
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
	blocks := map[string]string{"rtmp": `listen = ["127.0.0.1:0"]`, "srt": srtBlock}
	for _, p := range more {
		if p == "httpstream" {
			blocks[p] = `listen = ["127.0.0.1:0"]`
		}
	}
	d := StartDaemon(t, Config{
		Plugins: append([]string{"rtmp", "srt"}, more...),
		Blocks:  blocks,
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n%s\n}\n", vhostBody),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, append([]string{"rtmp", "srt"}, more...)...)
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestSRTCrossProtocol: one ffmpeg x264+aac publish over SRT plays over
// HTTP-FLV and HLS (ffprobe decodes both) and is recorded by DVR; the file
// ffprobes as h264+aac with monotonic DTS and starts on a key frame.
func TestSRTCrossProtocol(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vhost := srtOn + fmt.Sprintf("  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"20s\"\n    path = %q\n  }\n", filepath.Join(dir, "hls")) +
		fmt.Sprintf("  dvr {\n    enabled = true\n    plan = \"session\"\n    path = %q\n  }\n", filepath.Join(dir, "dvr", "[app]/[stream].[timestamp].flv"))
	d, _, srtAddr := startSRTWith(t, "", vhost, "httpstream", "dvr")
	const secs = 14
	pub, stderr := ffmpegSRTPublish(t, "srt://"+srtAddr+"?streamid=#!::r=live/cross,m=publish", secs)
	waitPublished(t, d, "live", "cross")
	base := "http://" + hlsAddr(t, d) + "/live/cross"

	httpWantCodecs(t, "http-flv", httpProbe(t, base+".flv", 3), "h264", "aac")
	checkAV(t, "http-flv", ffprobe(t, base+".flv", 3), 25)
	waitPlaylist(t, base+".m3u8", 30*time.Second, "hls playlist with 3 segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	httpWantCodecs(t, "hls", httpProbe(t, base+".m3u8", 3), "h264", "aac")

	dvrWaitExit(t, pub, 60*time.Second)
	if t.Failed() {
		t.Logf("ffmpeg: %s", stderr)
	}
	var files []string
	Eventually(t, 20*time.Second, "dvr file closed", func() error {
		files = dvrFiles(filepath.Join(dir, "dvr"), ".flv")
		if tmp := dvrFiles(filepath.Join(dir, "dvr"), ".tmp"); len(files) != 1 || len(tmp) != 0 {
			return fmt.Errorf("files %v, temporary %v", files, tmp)
		}
		return nil
	})
	dur := dvrCheckFile(t, files[0])
	if dur < secs-3 {
		t.Errorf("%s lasts %.3fs of a %ds publish", files[0], dur, secs)
	}
	if !dvrFirstFrameIsKey(t, files[0]) {
		t.Errorf("%s does not start with a key frame", files[0])
	}
}

// TestSRTHEVCOverHTTPFLV: H.265 published over SRT plays over HTTP-FLV as
// Enhanced FLV ("hvc1" sequence start, then key and inter frames that
// flv.FromTag reads as H.265 with DTS never going back).
func TestSRTHEVCOverHTTPFLV(t *testing.T) {
	t.Parallel()
	d, _, srtAddr := startSRTWith(t, "", "", "httpstream")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		needTool(t, "ffmpeg-with-libx265")
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "60",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "mpegts", "srt://"+srtAddr+"?streamid=#!::r=live/hevcflv,m=publish")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitPublished(t, d, "live", "hevcflv")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tags := readFLVTags(ctx, t, "http://"+hlsAddr(t, d)+"/live/hevcflv.flv", 40)
	var video []media.Packet
	audio := 0
	for i, m := range tags {
		p, err := flv.FromTag(m.typ, m.ts, m.body)
		if err != nil {
			t.Fatalf("tag %d (type %d): %v", i, m.typ, err)
		}
		switch m.typ {
		case flv.TagVideo:
			if len(video) == 0 && (len(m.body) < 5 || m.body[0]&0x80 == 0 || string(m.body[1:5]) != "hvc1" || !p.IsConfig()) {
				t.Fatalf("first video tag % x is not an enhanced hvc1 sequence start", m.body[:min(8, len(m.body))])
			}
			if p.Codec != media.CodecH265 {
				t.Fatalf("video tag %d: codec %v", i, p.Codec)
			}
			video = append(video, p)
		case flv.TagAudio:
			if p.Codec != media.CodecAAC {
				t.Fatalf("audio tag %d: codec %v", i, p.Codec)
			}
			audio++
		}
	}
	keys := 0
	for i, p := range video[1:] {
		if i == 0 && !p.IsKey() {
			t.Fatal("the first coded frame is not a key frame")
		}
		if i > 0 && p.DTS < video[i].DTS {
			t.Fatalf("video %d: dts %v after %v", i+1, p.DTS, video[i].DTS)
		}
		if p.IsKey() {
			keys++
		}
	}
	if keys < 1 || audio == 0 {
		t.Fatalf("%d key frames among %d video tags, %d audio tags", keys, len(video), audio)
	}
}

// TestSRTMP3AndOpus: ffmpeg publishes x264 with MP3 and with Opus audio in
// MPEG-TS over SRT; both play back over SRT with their audio codec, and the
// MP3 one also over HTTP-FLV and RTMP.
func TestSRTMP3AndOpus(t *testing.T) {
	t.Parallel()
	d, rtmpAddr, srtAddr := startSRTWith(t, "", "", "httpstream")
	ffmpegPublishAudio(t, "srt://"+srtAddr+"?streamid=#!::r=live/mp3,m=publish", "mpegts", 60, "-c:a", "libmp3lame", "-b:a", "64k")
	ffmpegPublishAudio(t, "srt://"+srtAddr+"?streamid=#!::r=live/opus,m=publish", "mpegts", 60, "-c:a", "libopus", "-b:a", "48k")
	waitPublished(t, d, "live", "mp3")
	waitPublished(t, d, "live", "opus")
	want := func(what string, p probeOut, audio string) {
		t.Helper()
		codecs := map[int]string{}
		for _, s := range p.Streams {
			codecs[s.Index] = s.CodecName
		}
		counts := map[string]int{}
		last := map[int]int64{}
		for _, pk := range p.Packets {
			counts[codecs[pk.StreamIndex]]++
			if pk.DTS == nil {
				continue
			}
			if prev, ok := last[pk.StreamIndex]; ok && *pk.DTS < prev {
				t.Fatalf("%s: %s dts %d after %d", what, codecs[pk.StreamIndex], *pk.DTS, prev)
			}
			last[pk.StreamIndex] = *pk.DTS
		}
		if counts["h264"] < 25 || counts[audio] < 25 {
			t.Fatalf("%s: packets per codec %v, want at least 25 h264 and 25 %s", what, counts, audio)
		}
	}
	want("mp3 over srt", ffprobe(t, "srt://"+srtAddr+"?streamid=#!::r=live/mp3,m=request", 3), "mp3")
	want("mp3 over rtmp", ffprobe(t, "rtmp://"+rtmpAddr+"/live/mp3", 3), "mp3")
	base := "http://" + hlsAddr(t, d) + "/live/"
	want("mp3 over http-flv", ffprobe(t, base+"mp3.flv", 3), "mp3")
	httpWantCodecs(t, "mp3 over http-flv", httpProbe(t, base+"mp3.flv", 3), "h264", "mp3")
	want("opus over srt", ffprobe(t, "srt://"+srtAddr+"?streamid=#!::r=live/opus,m=request", 3), "opus")
	httpWantCodecs(t, "opus over srt", httpProbe(t, "srt://"+srtAddr+"?streamid=#!::r=live/opus,m=request", 3), "h264", "opus")
	// HTTP-TS uses the same muxer.
	httpWantCodecs(t, "opus over http-ts", httpProbe(t, base+"opus.ts", 3), "h264", "opus")
}

// TestSRTPBKeyLen: a vhost with pbkeylen = 32 refuses a caller with the
// right passphrase but a 16-byte key, logging why with its client id, and
// takes a caller with a 32-byte key.
func TestSRTPBKeyLen(t *testing.T) {
	t.Parallel()
	const pass = "rill-secret-0123"
	d, rtmpAddr, srtAddr := startSRT(t, "", "  srt {\n    enabled = true\n    passphrase = \""+pass+"\"\n    pbkeylen = 32\n  }\n")
	url := "srt://" + srtAddr + "?streamid=#!::r=live/k,m=publish&passphrase=" + pass
	cmd, stderr := ffmpegSRTPublish(t, url+"&pbkeylen=16", 20)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("publisher with a 16-byte key exited 0")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("publisher with a 16-byte key still running: %s", stderr)
	}
	refusal := regexp.MustCompile(`srt caller refused: caller uses a 16-byte key, the vhost wants pbkeylen 32.*client_id=\S+`)
	Eventually(t, 10*time.Second, "refusal logged", func() error {
		if !refusal.MatchString(d.Log()) {
			return fmt.Errorf("no pbkeylen refusal with a client id in the log")
		}
		return nil
	})
	ffmpegSRTPublish(t, url+"&pbkeylen=32", 60)
	waitPublished(t, d, "live", "k")
	checkAV(t, "rtmp", ffprobe(t, "rtmp://"+rtmpAddr+"/live/k", 3), 10)
}
