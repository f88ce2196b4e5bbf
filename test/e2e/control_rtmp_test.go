package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ffprobeRun plays url with ffprobe for a few seconds and returns its error.
func ffprobeRun(url string, secs int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_packets",
		"-read_intervals", fmt.Sprintf("%%+%d", secs), "-of", "json", url).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %.300s", err, out)
	}
	if !strings.Contains(string(out), `"codec_type": "video"`) {
		return fmt.Errorf("no video packets: %.300s", out)
	}
	return nil
}

func hookVhost(hs *HookServer) string {
	var b strings.Builder
	b.WriteString("vhost \"__defaultVhost__\" {\n  hooks {\n")
	for _, ev := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop"} {
		fmt.Fprintf(&b, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	b.WriteString("    timeout = \"5s\"\n  }\n}\n")
	return b.String()
}

// TestRTMPCallbacksWithFFmpeg checks SRS's callback bodies for a real ffmpeg
// publisher and ffprobe players, and that a refusing hook blocks a player.
func TestRTMPCallbacksWithFFmpeg(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	hs := NewHookServer(t)
	d, addr := startRTMP(t, "", hookVhost(hs))
	pub := ffmpegPublish(t, "rtmp://"+addr+"/live/hooked?token=abc", 60)
	waitPublished(t, d, "live", "hooked")

	if err := ffprobeRun("rtmp://"+addr+"/live/hooked?who=player", 2); err != nil {
		t.Fatalf("play: %v", err)
	}
	Eventually(t, 10*time.Second, "on_stop and on_close of the player", func() error {
		if len(hs.Bodies("on_stop")) == 0 || len(hs.Bodies("on_close")) == 0 {
			return fmt.Errorf("on_stop %d on_close %d", len(hs.Bodies("on_stop")), len(hs.Bodies("on_close")))
		}
		return nil
	})
	conn := hs.Bodies("on_connect")
	pubB := hs.Bodies("on_publish")[0]
	play := hs.Bodies("on_play")[0]
	stop := hs.Bodies("on_stop")[0]
	if len(conn) < 2 {
		t.Fatalf("on_connect for the publisher and the player: %v", conn)
	}
	want := func(what string, b map[string]any, kv map[string]string) {
		t.Helper()
		for k, v := range kv {
			if fmt.Sprint(b[k]) != v {
				t.Errorf("%s %s = %v, want %q (body %v)", what, k, b[k], v, b)
			}
		}
		for _, k := range []string{"server_id", "service_id", "client_id", "ip"} {
			if s, _ := b[k].(string); s == "" {
				t.Errorf("%s lacks %s: %v", what, k, b)
			}
		}
	}
	want("on_connect", conn[0], map[string]string{"action": "on_connect", "vhost": "__defaultVhost__", "app": "live"})
	want("on_publish", pubB, map[string]string{"action": "on_publish", "app": "live", "stream": "hooked", "param": "?token=abc", "stream_url": "/live/hooked"})
	want("on_play", play, map[string]string{"action": "on_play", "app": "live", "stream": "hooked", "param": "?who=player"})
	want("on_stop", stop, map[string]string{"action": "on_stop", "stream": "hooked", "client_id": fmt.Sprint(play["client_id"])})
	if !strings.HasPrefix(fmt.Sprint(pubB["tcUrl"]), "rtmp://") {
		t.Errorf("on_publish tcUrl %v", pubB["tcUrl"])
	}
	if play["stream_id"] == nil || play["stream_id"] == "" {
		t.Errorf("on_play lacks stream_id: %v", play)
	}
	var closed bool
	for _, c := range hs.Bodies("on_close") {
		if c["client_id"] == play["client_id"] {
			closed = true
			if _, ok := c["send_bytes"].(float64); !ok || c["send_bytes"].(float64) <= 0 {
				t.Errorf("on_close send_bytes: %v", c)
			}
		}
	}
	if !closed {
		t.Errorf("no on_close for the player %v: %v", play["client_id"], hs.Bodies("on_close"))
	}

	// A refusing on_play blocks the player; the publisher goes on.
	hs.Refuse("on_play", true)
	if err := ffprobeRun("rtmp://"+addr+"/live/hooked", 2); err == nil {
		t.Fatal("a player refused by on_play got media")
	}
	hs.Refuse("on_play", false)
	if !strings.Contains(d.Log(), "play refused") {
		t.Fatalf("refusal not logged:\n%s", d.Log())
	}

	// on_unpublish when the publisher leaves.
	_ = pub.Process.Kill()
	Eventually(t, 10*time.Second, "on_unpublish", func() error {
		if len(hs.Bodies("on_unpublish")) == 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	if u := hs.Bodies("on_unpublish")[0]; u["stream"] != "hooked" || u["client_id"] != pubB["client_id"] {
		t.Fatalf("on_unpublish %v vs on_publish %v", u, pubB)
	}
}

// TestSecurityRulesIPv4AndIPv6 checks allow/deny by address family with
// real clients on 127.0.0.1 and ::1.
func TestSecurityRulesIPv4AndIPv6(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0", "[::1]:0"]`},
		Extra: `vhost "__defaultVhost__" {
  security {
    rules = ["deny publish 127.0.0.1", "deny play ::1", "allow play all", "allow publish all"]
  }
}
`,
	})
	ps := waitRunning(t, d, "rtmp")
	var v4, v6 string
	for _, l := range ps["rtmp"].Listeners {
		if strings.HasPrefix(l.Addr, "[") {
			v6 = l.Addr
		} else {
			v4 = l.Addr
		}
	}
	if v4 == "" || v6 == "" {
		t.Fatalf("listeners: %+v", ps["rtmp"].Listeners)
	}
	// Publishing from 127.0.0.1 is denied...
	denied := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
		"-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", "rtmp://"+v4+"/live/sec")
	if out, err := denied.CombinedOutput(); err == nil {
		t.Fatalf("publish from 127.0.0.1 was allowed: %s", out)
	}
	// ...from ::1 it is allowed.
	ffmpegPublish(t, "rtmp://"+v6+"/live/sec", 60)
	waitPublished(t, d, "live", "sec")
	if err := ffprobeRun("rtmp://"+v4+"/live/sec", 2); err != nil {
		t.Fatalf("play from 127.0.0.1 must be allowed: %v", err)
	}
	if err := ffprobeRun("rtmp://"+v6+"/live/sec", 2); err == nil {
		t.Fatal("play from ::1 must be denied")
	}
	if !strings.Contains(d.Log(), "deny play ::1") || !strings.Contains(d.Log(), "deny publish 127.0.0.1") {
		t.Fatalf("denials not logged:\n%s", d.Log())
	}
}

// TestDeleteClientKicksFFmpegPlayer ends a real player through the API.
func TestDeleteClientKicksFFmpegPlayer(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	d, addr := startRTMP(t, "", "")
	ffmpegPublish(t, "rtmp://"+addr+"/live/kick", 60)
	waitPublished(t, d, "live", "kick")
	player := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "rtmp://"+addr+"/live/kick", "-f", "null", "-")
	if err := player.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- player.Wait() }()
	t.Cleanup(func() { _ = player.Process.Kill() })
	var id string
	Eventually(t, 15*time.Second, "player listed", func() error {
		var r struct {
			Clients []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
			} `json:"clients"`
		}
		if err := d.GetJSON("/api/v1/clients/", &r); err != nil {
			return err
		}
		for _, c := range r.Clients {
			if c.Type == "rtmp-play" {
				id = c.ID
				return nil
			}
		}
		return fmt.Errorf("%+v", r.Clients)
	})
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("kicked ffmpeg player still running")
	}
	if !strings.Contains(d.Log(), id) {
		t.Fatalf("kick of %s not logged", id)
	}
}

// TestReloadHLSFragmentKeepsOtherVhostPlayer changes one vhost's HLS
// fragment by reload while an RTMP player of another vhost keeps receiving.
func TestReloadHLSFragmentKeepsOtherVhostPlayer(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	vhosts := func(fragment string) string {
		return fmt.Sprintf(`vhost "__defaultVhost__" {
}
vhost "hls.example.com" {
  hls {
    enabled  = true
    fragment = %q
    window   = "20s"
    path     = "hlsroot"
  }
}
`, fragment)
	}
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra:   vhosts("1s"),
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	rtmpAddr, httpAddr := ps["rtmp"].Listeners[0].Addr, ps["httpstream"].Listeners[0].Addr
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/plain", 90)
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/segs?vhost=hls.example.com", 90)
	waitPublished(t, d, "live", "plain")
	player := newGoPlayer(t, "rtmp://"+rtmpAddr+"/live/plain")
	m3u8 := "http://" + httpAddr + "/live/segs.m3u8?vhost=hls.example.com"
	target := func() (int, error) {
		resp, err := http.Get(m3u8)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return 0, err
		}
		body := string(raw)
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "#EXT-X-TARGETDURATION:"); ok {
				var td int
				_, err := fmt.Sscan(v, &td)
				return td, err
			}
		}
		return 0, fmt.Errorf("no target duration in %q", body)
	}
	Eventually(t, 30*time.Second, "HLS playlist with 1s fragments", func() error {
		td, err := target()
		if err == nil && td != 1 {
			err = fmt.Errorf("target duration %d", td)
		}
		return err
	})
	v0 := player.video.Load()
	conf, _ := os.ReadFile(d.Conf)
	newConf := strings.Replace(string(conf), `fragment = "1s"`, `fragment = "4s"`, 1)
	if newConf == string(conf) {
		t.Fatal("config not changed")
	}
	if err := os.WriteFile(d.Conf, []byte(newConf), 0o644); err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := d.GetJSON("/api/v1/raw?rpc=reload", &rr); err != nil || rr.Code != 0 {
		t.Fatalf("reload: %v %+v", err, rr)
	}
	// New segments follow the new fragment: the target duration grows.
	Eventually(t, 40*time.Second, "HLS target duration follows the reload", func() error {
		td, err := target()
		if err == nil && td < 4 {
			err = fmt.Errorf("target duration %d", td)
		}
		return err
	})
	ps2, _ := d.Plugins()
	if ps2["rtmp"].PID != ps["rtmp"].PID || ps2["httpstream"].PID != ps["httpstream"].PID {
		t.Fatalf("reload restarted plugins: %+v -> %+v", ps, ps2)
	}
	player.mu.Lock()
	nonMono := player.nonMono
	player.mu.Unlock()
	if player.video.Load() <= v0+50 || nonMono != 0 {
		t.Fatalf("RTMP player of the other vhost disturbed: %d -> %d video messages, %d non-monotonic", v0, player.video.Load(), nonMono)
	}
}
