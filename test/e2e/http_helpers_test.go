package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpNeedFFmpeg skips a test without ffmpeg/ffprobe, or fails it when CI is set.
func httpNeedFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", bin, err)
			}
			t.Skipf("%s not installed", bin)
		}
	}
}

var (
	httpMediaMu    sync.Mutex
	httpMediaFiles = map[string]string{}
)

// httpTestFLV returns an FLV file made once per test run by ffmpeg from lavfi
// sources. kind: "av" (H.264 + AAC), "mp3" (H.264 + MP3), "audio" (AAC only).
func httpTestFLV(t *testing.T, kind string, seconds int) string {
	t.Helper()
	httpNeedFFmpeg(t)
	name := fmt.Sprintf("%s-%ds.flv", kind, seconds)
	httpMediaMu.Lock()
	defer httpMediaMu.Unlock()
	if p, ok := httpMediaFiles[name]; ok {
		return p
	}
	dir := filepath.Join(binDir, "media")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	dur := fmt.Sprint(seconds)
	video := []string{"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"}
	audio := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"}
	venc := []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p"}
	var args []string
	switch kind {
	case "av":
		args = append(append(append(video, audio...), venc...), "-c:a", "aac", "-ac", "2")
	case "mp3":
		args = append(append(append(video, audio...), venc...), "-c:a", "libmp3lame", "-ar", "44100")
	case "audio":
		args = append(audio, "-c:a", "aac")
	default:
		t.Fatalf("unknown media kind %q", kind)
	}
	args = append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
	args = append(args, "-t", dur, "-f", "flv", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	httpMediaFiles[name] = out
	return out
}

// hlsAddr returns the address of the httpstream plugin's HTTP listener.
func hlsAddr(t *testing.T, d *Daemon) string {
	t.Helper()
	var addr string
	Eventually(t, 20*time.Second, "httpstream plugin listening", func() error {
		ps, err := d.Plugins()
		if err != nil {
			return err
		}
		p, ok := ps["httpstream"]
		if !ok || p.State != "running" || len(p.Listeners) == 0 {
			return fmt.Errorf("httpstream plugin: %+v", p)
		}
		addr = p.Listeners[0].Addr
		return nil
	})
	return addr
}

// httpConfig is a daemon with flvpub publishing file as live/<stream> and
// the httpstream plugin; hlsVhost is the body of the default vhost's hls block.
func httpConfig(file, stream, flvpubExtra, hlsPlugin, hlsVhost string) Config {
	c := Config{
		Plugins: []string{"flvpub", "httpstream"},
		Blocks: map[string]string{
			"flvpub":     fmt.Sprintf("  file = %q\n  app = \"live\"\n  stream = %q\n%s", file, stream, flvpubExtra),
			"httpstream": "  listen = [\"127.0.0.1:0\"]\n" + hlsPlugin,
		},
	}
	if hlsVhost != "" {
		c.Extra = "vhost \"__defaultVhost__\" {\n  hls {\n" + hlsVhost + "\n  }\n}\n"
	}
	return c
}

type httpProbeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Frames    string `json:"nb_read_frames"`
}

// ffprobe reads up to seconds of url and returns its streams with the
// number of frames decoded.
func httpProbe(t *testing.T, url string, seconds int) []httpProbeStream {
	t.Helper()
	args := []string{"-v", "error", "-rw_timeout", "15000000", "-read_intervals", fmt.Sprintf("%%+%d", seconds),
		"-count_frames", "-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "json", url}
	out, err := exec.Command("ffprobe", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr)
	}
	var r struct {
		Streams []httpProbeStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return r.Streams
}

// httpWantCodecs checks that streams hold the codecs, each with decoded frames.
func httpWantCodecs(t *testing.T, what string, streams []httpProbeStream, codecs ...string) {
	t.Helper()
	got := map[string]httpProbeStream{}
	for _, s := range streams {
		got[s.CodecName] = s
	}
	for _, c := range codecs {
		s, ok := got[c]
		if !ok {
			t.Fatalf("%s: no %s stream in %+v", what, c, streams)
		}
		if s.Frames == "" || s.Frames == "0" {
			t.Fatalf("%s: %s stream decoded no frames: %+v", what, c, s)
		}
	}
	if len(streams) != len(codecs) {
		t.Fatalf("%s: want streams %v, got %+v", what, codecs, streams)
	}
}

func httpGet(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b)
}

// httpWaitStream waits until url answers 200 (the publisher is up).
func httpWaitStream(t *testing.T, d *Daemon, url string) {
	t.Helper()
	Eventually(t, 20*time.Second, "stream playable at "+url, func() error {
		c := http.Client{Timeout: 10 * time.Second}
		req, _ := http.NewRequest(http.MethodHead, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("HEAD %s: %s", url, resp.Status)
		}
		return nil
	})
}

// httpLogContains reports whether the daemon's log holds s within 10 s:
// plugin log lines reach the core's log asynchronously, after the response
// the test saw.
func httpLogContains(d *Daemon, s string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(d.Log(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
