package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

var srtAddrRE = regexp.MustCompile(`srt listening:.*? addr=(127\.0\.0\.1:\d+)`)

// startSRT starts a daemon with the rtmp and srt plugins, SRT enabled in
// the default vhost, and returns it with the RTMP and SRT addresses. The
// srt plugin binds its own UDP socket (port 0 here) and logs where.
func startSRT(t *testing.T, srtBlock, vhostSRT string) (*Daemon, string, string) {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-protocols").Output(); err != nil || !regexp.MustCompile(`(?m)^\s*srt\s*$`).Match(out) {
		needTool(t, "ffmpeg-with-srt") // skips, or fails in CI
	}
	if srtBlock == "" {
		srtBlock = `bind = ["127.0.0.1:0"]`
	}
	if vhostSRT == "" {
		vhostSRT = "enabled = true"
	}
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "srt"},
		Blocks:  map[string]string{"rtmp": `listen = ["127.0.0.1:0"]`, "srt": srtBlock},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n  srt {\n    %s\n  }\n}\n", vhostSRT),
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
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(secs),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "mpegts", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, &stderr
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
