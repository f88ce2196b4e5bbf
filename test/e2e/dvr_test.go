package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DVR end-to-end tests: FFmpeg publishes x264 + aac (GOP 1 s) over RTMP to
// the rtmp plugin; the dvr plugin records; ffprobe reads the files.

const dvrGOP = 1.0 // seconds: -g 25 at 25 fps

func dvrNeedTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

// dvrStart starts a daemon with the rtmp and dvr plugins and the given
// vhost body, and returns it with the RTMP address.
func dvrStart(t *testing.T, vhostBody string) (*Daemon, string) {
	t.Helper()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "dvr"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`},
		Extra:   "vhost \"__defaultVhost__\" {\n" + vhostBody + "\n}\n",
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "dvr")
	if len(ps["rtmp"].Listeners) == 0 {
		t.Fatalf("rtmp plugin has no listener: %+v", ps["rtmp"])
	}
	return d, ps["rtmp"].Listeners[0].Addr
}

// dvrPublish runs FFmpeg publishing secs seconds to rtmp://addr/live/name.
func dvrPublish(t *testing.T, addr, name string, secs int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.Itoa(secs),
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", "rtmp://"+addr+"/live/"+name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("ffmpeg: %s", stderr.String())
		}
	})
	return cmd
}

// dvrWaitExit waits for the publisher to finish (bounded).
func dvrWaitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ffmpeg publisher: %v", err)
		}
	case <-time.After(timeout):
		t.Fatalf("ffmpeg publisher still running after %s", timeout)
	}
}

// dvrFiles lists the files under dir (recursively) with the suffix.
func dvrFiles(dir, suffix string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

type dvrProbe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		StartTime string `json:"start_time"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		DTS         *int64 `json:"dts"`
	} `json:"packets"`
}

func dvrFFprobe(file string, args ...string) (dvrProbe, error) {
	a := append([]string{"-v", "error", "-show_streams", "-show_format", "-of", "json"}, args...)
	cmd := exec.Command("ffprobe", append(a, file)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return dvrProbe{}, fmt.Errorf("ffprobe %s: %v: %s", file, err, stderr.String())
	}
	var p dvrProbe
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("ffprobe %s: %v", file, err)
	}
	return p, nil
}

func (p dvrProbe) duration() float64 {
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return d
}

// dvrCheckFile checks codecs h264+aac, a start at zero and monotonic DTS
// per stream, and returns the duration.
func dvrCheckFile(t *testing.T, file string) float64 {
	t.Helper()
	p, err := dvrFFprobe(file, "-show_packets")
	if err != nil {
		t.Fatal(err)
	}
	var codecs []string
	for _, s := range p.Streams {
		codecs = append(codecs, s.CodecName)
		if st, _ := strconv.ParseFloat(s.StartTime, 64); st > 0.1 {
			t.Errorf("%s: %s starts at %ss, want 0", file, s.CodecName, s.StartTime)
		}
	}
	sort.Strings(codecs)
	if strings.Join(codecs, ",") != "aac,h264" {
		t.Errorf("%s: codecs %v, want aac and h264", file, codecs)
	}
	last := map[int]int64{}
	for i, pk := range p.Packets {
		if pk.DTS == nil {
			continue
		}
		if prev, ok := last[pk.StreamIndex]; ok && *pk.DTS < prev {
			t.Errorf("%s: packet %d of stream %d: dts %d after %d", file, i, pk.StreamIndex, *pk.DTS, prev)
			break
		}
		last[pk.StreamIndex] = *pk.DTS
	}
	return p.duration()
}

// dvrFirstFrameIsKey reports whether the first video frame of file is a key frame.
func dvrFirstFrameIsKey(t *testing.T, file string) bool {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_frames",
		"-read_intervals", "%+#1", "-show_entries", "frame=key_frame,pict_type", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe frames of %s: %v", file, err)
	}
	var r struct {
		Frames []struct {
			KeyFrame int    `json:"key_frame"`
			PictType string `json:"pict_type"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r.Frames) == 0 {
		t.Fatalf("ffprobe frames of %s: %v %s", file, err, out)
	}
	return r.Frames[0].KeyFrame == 1
}

// TestDVRSession records one publish per format and checks the file.
func TestDVRSession(t *testing.T) {
	t.Parallel()
	dvrNeedTools(t)
	for _, tc := range []struct {
		name, path string
		relative   bool
	}{
		{"flv", "rec/[vhost]/[app]/[stream].[timestamp].flv", true},
		{"mp4", "[app]/[2006][01][02]/[stream]-[15][04][05][999].mp4", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs := NewHookServer(t)
			root := t.TempDir()
			path := tc.path
			if !tc.relative {
				path = filepath.Join(root, tc.path)
			}
			d, addr := dvrStart(t, fmt.Sprintf("  dvr {\n    enabled = true\n    plan = \"session\"\n    path = %q\n  }\n  hooks {\n    on_dvr = [%q]\n  }", path, hs.URL+"/api/v1/dvrs"))
			if tc.relative {
				root = d.Dir // the daemon's (and plugins') working directory
			}
			const secs = 8
			dvrWaitExit(t, dvrPublish(t, addr, "session", secs), 60*time.Second)
			var files []string
			Eventually(t, 20*time.Second, "recorded file closed and renamed", func() error {
				files = dvrFiles(root, "."+tc.name)
				if tmp := dvrFiles(root, ".tmp"); len(files) != 1 || len(tmp) != 0 {
					return fmt.Errorf("files %v, temporary %v", files, tmp)
				}
				return nil
			})
			dur := dvrCheckFile(t, files[0])
			t.Logf("%s: %.3fs", files[0], dur)
			if math.Abs(dur-secs) > dvrGOP {
				t.Errorf("%s lasts %.3fs, want %ds within a GOP (%.0fs)", files[0], dur, secs, dvrGOP)
			}
			if !dvrFirstFrameIsKey(t, files[0]) {
				t.Errorf("%s does not start with a key frame", files[0])
			}
			Eventually(t, 10*time.Second, "on_dvr callback", func() error {
				b := hs.Bodies("on_dvr")
				if len(b) != 1 {
					return fmt.Errorf("%d on_dvr callbacks", len(b))
				}
				file, cwd := fmt.Sprint(b[0]["file"]), fmt.Sprint(b[0]["cwd"])
				if !filepath.IsAbs(file) {
					file = filepath.Join(cwd, file)
				}
				if file != files[0] || b[0]["app"] != "live" || b[0]["stream"] != "session" {
					return fmt.Errorf("on_dvr %v, want file %s", b[0], files[0])
				}
				return nil
			})
		})
	}
}

// TestDVRSegment records 3 s segments, each starting on a key frame.
func TestDVRSegment(t *testing.T) {
	dvrNeedTools(t)
	t.Parallel()
	root := t.TempDir()
	_, addr := dvrStart(t, fmt.Sprintf("  dvr {\n    plan = \"segment\"\n    duration = \"3s\"\n    wait_keyframe = true\n    path = %q\n  }", filepath.Join(root, "[app]/[stream].[timestamp].mp4")))
	dvrWaitExit(t, dvrPublish(t, addr, "seg", 10), 60*time.Second)
	var files []string
	Eventually(t, 20*time.Second, "segments closed", func() error {
		files = dvrFiles(root, ".mp4")
		if tmp := dvrFiles(root, ".tmp"); len(files) < 3 || len(tmp) != 0 {
			return fmt.Errorf("files %v, temporary %v", files, tmp)
		}
		return nil
	})
	total := 0.0
	for i, f := range files {
		dur := dvrCheckFile(t, f)
		total += dur
		if !dvrFirstFrameIsKey(t, f) {
			t.Errorf("segment %d (%s) does not start with a key frame", i, f)
		}
		t.Logf("segment %d: %s, %.3fs", i, filepath.Base(f), dur)
		if i < len(files)-1 && math.Abs(dur-3) > 0.25 {
			t.Errorf("segment %d (%s) lasts %.3fs, want 3s (cut at the first key frame at or after 3s, GOP 1s)", i, f, dur)
		}
	}
	if math.Abs(total-10) > dvrGOP {
		t.Errorf("segments last %.3fs in all, want 10s within a GOP", total)
	}
}

// TestDVRSurvivesKill kills the dvr plugin while it writes an MP4: the
// restarted plugin finishes the file it left (renamed from .tmp, playable,
// reported with on_dvr under the publisher's client id) and records again.
func TestDVRSurvivesKill(t *testing.T) {
	dvrNeedTools(t)
	t.Parallel()
	root := t.TempDir()
	hs := NewHookServer(t)
	d, addr := dvrStart(t, fmt.Sprintf("  dvr {\n    path = %q\n  }\n  hooks {\n    on_publish = [%q]\n    on_dvr = [%q]\n  }",
		filepath.Join(root, "[app]/[stream].[timestamp].mp4"), hs.URL, hs.URL))
	dvrPublish(t, addr, "kill", 30)
	var tmp string
	Eventually(t, 20*time.Second, "mp4 being written with 3 fragments", func() error {
		files := dvrFiles(root, ".mp4.tmp")
		if len(files) != 1 {
			return fmt.Errorf("temporary files %v", files)
		}
		tmp = files[0]
		b, err := os.ReadFile(tmp)
		if err != nil {
			return err
		}
		if n := bytes.Count(b, []byte("moof")); n < 3 {
			return fmt.Errorf("%d fragments", n)
		}
		return nil
	})
	ps, err := d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	pid := ps["dvr"].PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill dvr plugin %d: %v", pid, err)
	}
	final := strings.TrimSuffix(tmp, ".tmp")
	Eventually(t, 30*time.Second, "restarted plugin finished the killed one's file and records again", func() error {
		if _, err := os.Stat(tmp); err == nil {
			return fmt.Errorf("%s still there", tmp)
		}
		if _, err := os.Stat(final); err != nil {
			return err
		}
		if files := dvrFiles(root, ".mp4.tmp"); len(files) != 1 {
			return fmt.Errorf("temporary files %v, want the new recording's", files)
		}
		return nil
	})
	p, err := dvrFFprobe(final, "-show_packets")
	if err != nil {
		t.Fatalf("file left by the killed plugin: %v", err)
	}
	video := 0
	for _, pk := range p.Packets {
		if pk.StreamIndex == 0 {
			video++
		}
	}
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || video < 50 {
		t.Errorf("file left by the killed plugin: streams %+v, %d video packets (want h264+aac, 2 s at least)", p.Streams, video)
	}
	Eventually(t, 10*time.Second, "on_dvr for the finished file", func() error {
		pub := hs.Bodies("on_publish")
		for _, b := range hs.Bodies("on_dvr") {
			if b["file"] == final {
				if len(pub) == 0 || b["client_id"] != pub[0]["client_id"] || b["stream"] != "kill" {
					return fmt.Errorf("on_dvr %v, on_publish %v: want the publisher's client id", b, pub)
				}
				return nil
			}
		}
		return fmt.Errorf("no on_dvr for %s in %v", final, hs.Bodies("on_dvr"))
	})
	if hidden, _ := filepath.Glob(filepath.Join(filepath.Dir(final), ".*.json")); len(hidden) != 1 {
		t.Errorf("journals %v, want only the running recording's", hidden)
	}
}

// dvrAPI calls the DVR API with query on /api/v1/dvr, or on SRS's RAW API
// /api/v1/raw for an rpc= query.
func dvrAPI(t *testing.T, d *Daemon, query string) map[string]any {
	t.Helper()
	get := func(path string) (int, map[string]any) {
		c := http.Client{Timeout: 15 * time.Second}
		resp, err := c.Get(d.API + path + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("GET %s?%s: %s: %s", path, query, resp.Status, b)
		}
		return resp.StatusCode, m
	}
	path := "/api/v1/dvr"
	if strings.HasPrefix(query, "rpc=") {
		path = "/api/v1/raw" // SRS's RAW API, forwarded by the core to the plugin
	}
	status, m := get(path)
	if status != http.StatusOK || m["code"] != float64(0) {
		t.Fatalf("DVR API %s: %d %v", query, status, m)
	}
	return m
}

// TestDVRAPIStartStop starts and stops the recording of a live stream of a
// vhost that records nothing by itself (apply = []), with the plugin's API
// and with SRS's RAW API form.
func TestDVRAPIStartStop(t *testing.T) {
	dvrNeedTools(t)
	t.Parallel()
	hs := NewHookServer(t)
	root := t.TempDir()
	// enabled = false: DVR is configured for the vhost but records only
	// when the API asks (SRS's on-demand DVR).
	d, addr := dvrStart(t, fmt.Sprintf("  dvr {\n    enabled = false\n    path = %q\n  }\n  hooks {\n    on_dvr = [%q]\n  }", filepath.Join(root, "[stream].[timestamp].flv"), hs.URL))
	dvrPublish(t, addr, "api", 60)
	Eventually(t, 20*time.Second, "stream published", func() error {
		var r struct {
			Streams []struct {
				Name    string `json:"name"`
				Publish struct {
					Active bool `json:"active"`
				} `json:"publish"`
			} `json:"streams"`
		}
		if err := d.GetJSON("/api/v1/streams/", &r); err != nil {
			return err
		}
		for _, s := range r.Streams {
			if s.Name == "api" && s.Publish.Active {
				return nil
			}
		}
		return fmt.Errorf("streams %+v", r.Streams)
	})
	time.Sleep(time.Second) // a recording would have started by now: none must
	if f := dvrFiles(root, ""); len(f) != 0 {
		t.Fatalf("files %v before the API asked for a recording", f)
	}
	for i, form := range []struct{ start, stop string }{
		{"vhost=__defaultVhost__&app=live&stream=api&action=start", "vhost=__defaultVhost__&app=live&stream=api&action=stop"},
		{"rpc=update&scope=dvr&value=__defaultVhost__&param=enable&data=live/api", "rpc=update&scope=dvr&value=__defaultVhost__&param=disable&data=live/api"},
	} {
		dvrAPI(t, d, form.start)
		Eventually(t, 10*time.Second, "recording listed", func() error {
			m := dvrAPI(t, d, "")
			if recs, _ := m["recordings"].([]any); len(recs) != 1 {
				return fmt.Errorf("recordings %v", m["recordings"])
			}
			if len(dvrFiles(root, ".flv.tmp")) != 1 {
				return fmt.Errorf("no file being written")
			}
			return nil
		})
		time.Sleep(2 * time.Second)
		m := dvrAPI(t, d, form.stop)
		file, _ := m["file"].(string)
		if file == "" || filepath.Dir(file) != root {
			t.Fatalf("stop answered %v, want the file under %s", m, root)
		}
		if files := dvrFiles(root, ".flv"); len(files) != i+1 {
			t.Fatalf("files after stop %d: %v", i, files)
		}
		dvrCheckFile(t, file)
		Eventually(t, 10*time.Second, "on_dvr callback", func() error {
			b := hs.Bodies("on_dvr")
			if len(b) != i+1 || b[i]["file"] != file {
				return fmt.Errorf("on_dvr bodies %v, want file %s", b, file)
			}
			return nil
		})
		if m := dvrAPI(t, d, ""); len(m["recordings"].([]any)) != 0 {
			t.Fatalf("recordings after stop: %v", m["recordings"])
		}
	}
}
