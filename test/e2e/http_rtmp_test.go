package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHTTPFromRTMPPublisher publishes with a real FFmpeg over RTMP and
// plays the stream back as HTTP-FLV, HTTP-TS, HTTP-AAC and HLS.
func TestHTTPFromRTMPPublisher(t *testing.T) {
	t.Parallel()
	httpNeedFFmpeg(t)
	dir := t.TempDir()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"5s\"\n    path = %q\n  }\n}\n", dir),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	if len(ps["rtmp"].Listeners) == 0 {
		t.Fatalf("rtmp plugin has no listener: %+v", ps["rtmp"])
	}
	rtmpAddr := ps["rtmp"].Listeners[0].Addr
	addr := hlsAddr(t, d)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "60",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", "rtmp://"+rtmpAddr+"/live/rtmp")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	base := "http://" + addr + "/live/rtmp"
	httpWaitStream(t, d, base+".flv")
	httpWantCodecs(t, "flv", httpProbe(t, base+".flv", 3), "h264", "aac")
	httpWantCodecs(t, "ts", httpProbe(t, base+".ts", 3), "h264", "aac")
	httpWantCodecs(t, "aac", httpProbe(t, base+".aac", 3), "aac")
	p := waitPlaylist(t, base+".m3u8", 30*time.Second, "hls segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	for i, du := range p.Durations {
		if du < 0.5 || du > 2.5 {
			t.Errorf("segment %d lasts %.3fs, want about 1s\n%s", i, du, p.Raw)
		}
	}
	httpWantCodecs(t, "m3u8", httpProbe(t, base+".m3u8", 3), "h264", "aac")
}

// TestHTTPStreamOldPluginName: a config written for the plugin's old name,
// plugin "hls" { }, still starts the httpstream plugin with its settings
// (its listen key), says so once at its file:line:col, and the vhost's
// SRS-named hls { } block still switches HLS on; `rill -t` passes it with
// the same warning. A file with both names is refused.
func TestHTTPStreamOldPluginName(t *testing.T) {
	t.Parallel()
	httpNeedFFmpeg(t)
	dir := t.TempDir()
	cfg := Config{
		Plugins: []string{"rtmp", "httpstream"},
		Labels:  map[string]string{"httpstream": "hls"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"5s\"\n    path = %q\n  }\n}\n", dir),
	}
	chk := NewDaemon(t, cfg)
	code, out := runCheck(t, chk.Dir, chk.Conf)
	note := `plugin "hls" is the old name of plugin "httpstream"`
	if code != 0 || !strings.Contains(out, note) || !strings.Contains(out, posOfKey(t, chk.Conf, `"hls" {`)) {
		t.Fatalf("rill -t of a file with plugin \"hls\": exit %d, want 0 and the note %q at its position:\n%s", code, note, out)
	}
	d := StartDaemon(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	if !strings.HasPrefix(ps["httpstream"].Listeners[0].Addr, "127.0.0.1:") {
		t.Fatalf("httpstream listens on %s, not the old block's listen address", ps["httpstream"].Listeners[0].Addr)
	}
	if !strings.Contains(d.Log(), note) {
		t.Errorf("the daemon log does not say %q", note)
	}
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/old", 60)
	base := "http://" + hlsAddr(t, d) + "/live/old"
	httpWaitStream(t, d, base+".flv")
	httpWantCodecs(t, "flv", httpProbe(t, base+".flv", 3), "h264", "aac")
	waitPlaylist(t, base+".m3u8", 30*time.Second, "hls segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 2 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	var vhosts struct {
		Vhosts []struct {
			Name string         `json:"name"`
			HLS  map[string]any `json:"hls"`
		} `json:"vhosts"`
	}
	if err := d.GetJSON("/api/v1/vhosts/", &vhosts); err != nil {
		t.Fatal(err)
	}
	if len(vhosts.Vhosts) == 0 || vhosts.Vhosts[0].HLS["enabled"] != true {
		t.Errorf("/api/v1/vhosts/ does not show hls enabled: %+v", vhosts)
	}

	both := cfg
	both.Extra += "plugin \"httpstream\" {\n  listen = [\"127.0.0.1:0\"]\n}\n"
	bd := NewDaemon(t, both)
	code, out = runCheck(t, bd.Dir, bd.Conf)
	if code == 0 || !strings.Contains(out, "keep one block") {
		t.Fatalf("rill -t of a file with plugin \"hls\" and plugin \"httpstream\": exit %d, want a refusal saying to keep one:\n%s", code, out)
	}
}
