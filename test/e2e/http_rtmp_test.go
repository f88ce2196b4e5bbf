package e2e

import (
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// TestHTTPFromRTMPPublisher publishes with a real FFmpeg over RTMP and
// plays the stream back as HTTP-FLV, HTTP-TS, HTTP-AAC and HLS.
func TestHTTPFromRTMPPublisher(t *testing.T) {
	httpNeedFFmpeg(t)
	dir := t.TempDir()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "hls"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "hls": `  listen = ["127.0.0.1:0"]`},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"5s\"\n    path = %q\n  }\n}\n", dir),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "hls")
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
