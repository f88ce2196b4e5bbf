package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// execEnv is a daemon with the rtmp and exec plugins.
type execEnv struct {
	d     *Daemon
	addr  string // rtmp host:port
	dir   string // test files: the source mp4, markers, child logs
	token string // unique stream name: every child's command line holds it
	extra string // the vhost part of the config, for reloads
}

// execFreePort returns a loopback port that was free a moment ago: the exec
// settings need the rtmp port before the daemon starts.
func execFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// execSourceMP4 writes a 5 s testsrc2 + sine MP4 (H.264 640x360, AAC).
func execSourceMP4(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "source.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "5", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make source mp4: %v\n%s", err, b)
	}
	return out
}

func execToken(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "exectest" + hex.EncodeToString(b)
}

// startExec starts the daemon with rtmp and exec; vhost renders the vhost
// block from the env (its dir and token).
func startExec(t *testing.T, vhost func(t *testing.T, e *execEnv) string) *execEnv {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	e := &execEnv{dir: t.TempDir(), token: execToken(t)}
	port := execFreePort(t)
	e.addr = fmt.Sprintf("127.0.0.1:%d", port)
	e.extra = vhost(t, e)
	e.d = StartDaemon(t, Config{
		Plugins: []string{"rtmp", "exec"},
		Blocks: map[string]string{
			"rtmp": fmt.Sprintf("  listen = [%q]", e.addr),
			"exec": fmt.Sprintf("  rtmp = %q\n  log_dir = %q\n  backoff_min = \"500ms\"\n  backoff_max = \"5s\"", e.addr, filepath.Join(e.dir, "logs")),
		},
		Extra: e.extra,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", e.d.Log())
			logs, _ := filepath.Glob(filepath.Join(e.dir, "logs", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), b)
			}
		}
	})
	waitRunning(t, e.d, "rtmp", "exec")
	return e
}

// execPID is the exec plugin's pid now.
func (e *execEnv) execPID(t *testing.T) int {
	t.Helper()
	ps, err := e.d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	return ps["exec"].PID
}

// reload rewrites the vhost part of the config and sends SIGHUP.
func (e *execEnv) reload(t *testing.T, extra string) {
	t.Helper()
	conf, err := os.ReadFile(e.d.Conf)
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutSuffix(string(conf), e.extra)
	if !ok {
		t.Fatalf("config does not end with the vhost part:\n%s", conf)
	}
	if err := os.WriteFile(e.d.Conf, []byte(base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	e.extra = extra
	n := strings.Count(e.d.Log(), "config reloaded")
	if err := e.d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "config reloaded", func() error {
		if strings.Count(e.d.Log(), "config reloaded") <= n {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// osProc is a process as /proc shows it.
type osProc struct {
	pid, ppid int
	argv      []string
}

func (p osProc) cmdline() string { return strings.Join(p.argv, " ") }

// listProcs lists the live processes (zombies excluded).
func listProcs() []osProc {
	ents, _ := os.ReadDir("/proc")
	var out []osProc
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(st, ')')
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		out = append(out, osProc{pid: pid, ppid: ppid, argv: argv})
	}
	return out
}

// childrenOf lists the live children of pid whose command line contains
// every one of words.
func childrenOf(pid int, words ...string) []osProc {
	var out []osProc
	for _, p := range listProcs() {
		if p.ppid != pid {
			continue
		}
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(p.cmdline(), w)
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// waitChild waits for exactly one child of the exec plugin matching words
// and returns it.
func (e *execEnv) waitChild(t *testing.T, what string, words ...string) osProc {
	t.Helper()
	var got osProc
	Eventually(t, 20*time.Second, what, func() error {
		cs := childrenOf(e.execPID(t), words...)
		if len(cs) != 1 {
			return fmt.Errorf("children matching %q: %+v", words, cs)
		}
		got = cs[0]
		return nil
	})
	return got
}

// waitGone waits until none of pids is alive.
func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	Eventually(t, 15*time.Second, what, func() error {
		for _, pid := range pids {
			if pidAlive(pid) {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				return fmt.Errorf("pid %d (%s) alive", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
		return nil
	})
}

// leftovers lists the processes whose command line holds token.
func leftovers(token string) []osProc {
	var out []osProc
	self := os.Getpid()
	for _, p := range listProcs() {
		if p.pid != self && strings.Contains(p.cmdline(), token) {
			out = append(out, p)
		}
	}
	return out
}

// waitUnpublished waits until app/stream has no publisher.
func waitUnpublished(t *testing.T, d *Daemon, app, stream string) {
	t.Helper()
	Eventually(t, 20*time.Second, "stream "+app+"/"+stream+" unpublished", func() error {
		var r streamsReply
		if err := d.GetJSON("/api/v1/streams/", &r); err != nil {
			return err
		}
		for _, s := range r.Streams {
			if s.App == app && s.Name == stream && s.Publish.Active {
				return fmt.Errorf("still published")
			}
		}
		return nil
	})
}

// execCounter reads the exec plugin's counter name from /metrics.
func execCounter(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "rill_plugin_counter{") && strings.Contains(l, `plugin="exec"`) && strings.Contains(l, `name="`+name+`"`) {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return -1
}

func probeSize(t *testing.T, url string) (codecs map[string]string, width, height int) {
	t.Helper()
	p := ffprobe(t, url, 3)
	codecs = map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
		if s.CodecType == "video" {
			width, height = s.Width, s.Height
		}
	}
	return codecs, width, height
}

// execVhost is the vhost of the main test: a looped file ingest named by
// the token, a transcode engine to 320x180, and two publish programs.
func execVhost(t *testing.T, e *execEnv) string {
	src := execSourceMP4(t, e.dir)
	return fmt.Sprintf(`
vhost "__defaultVhost__" {
  exec {
    publish = ["touch %s/[stream].marker", "sleep 300"]
    ingest %q {
      input = "file"
      url   = %q
    }
    transcode {
      engine "sd" {
        vcodec  = "libx264"
        vpreset = "ultrafast"
        vwidth  = 320
        vheight = 180
        vparams = ["-g", "25"]
        acodec  = "aac"
        abitrate = 64
      }
    }
  }
}
`, e.dir, e.token, src)
}

func TestExecIngestTranscodePublish(t *testing.T) {
	t.Parallel()
	e := startExec(t, execVhost)
	tok := e.token
	url := "rtmp://" + e.addr + "/live/" + tok

	// The ingest publishes the looped file; it is listed and plays.
	waitPublished(t, e.d, "live", tok)
	codecs, w, h := probeSize(t, url)
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || w != 640 || h != 360 {
		t.Fatalf("ingested stream: %v %dx%d, want h264+aac 640x360", codecs, w, h)
	}

	// The transcode engine publishes <stream>_sd at 320x180, and its
	// output is not transcoded again.
	waitPublished(t, e.d, "live", tok+"_sd")
	codecs, w, h = probeSize(t, url+"_sd")
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || w != 320 || h != 180 {
		t.Fatalf("transcoded stream: %v %dx%d, want h264+aac 320x180", codecs, w, h)
	}
	execPID := e.execPID(t)
	if cs := childrenOf(execPID, tok+"_sd_sd"); len(cs) != 0 {
		t.Fatalf("the transcode output was transcoded: %+v", cs)
	}

	// The publish programs ran for both streams: markers, and one sleep each.
	for _, m := range []string{tok + ".marker", tok + "_sd.marker"} {
		Eventually(t, 15*time.Second, "marker "+m, func() error {
			_, err := os.Stat(filepath.Join(e.dir, m))
			return err
		})
	}
	Eventually(t, 15*time.Second, "two sleep programs", func() error {
		if n := len(childrenOf(execPID, "sleep 300")); n != 2 {
			return fmt.Errorf("%d sleeps", n)
		}
		return nil
	})
	sleepsBefore := childrenOf(execPID, "sleep 300")
	transcoder := e.waitChild(t, "transcoder runs", "-i", "rtmp://"+e.addr+"/live/"+tok+"?", "scale=320:180")
	ingest := e.waitChild(t, "ingest runs", "-stream_loop", tok)

	// Kill the ingest's ffmpeg: the stream ends, so the transcoder and the
	// stream's publish programs are stopped; the ingest comes back with a
	// new pid and the stream plays again.
	if err := syscall.Kill(ingest.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	pids := []int{transcoder.pid}
	for _, s := range sleepsBefore {
		pids = append(pids, s.pid)
	}
	waitGone(t, "the stream's transcoder and publish programs end with it", pids...)
	var again osProc
	Eventually(t, 30*time.Second, "ingest restarted", func() error {
		cs := childrenOf(e.execPID(t), "-stream_loop", tok)
		if len(cs) != 1 || cs[0].pid == ingest.pid {
			return fmt.Errorf("ingest children %+v (killed pid %d)", cs, ingest.pid)
		}
		again = cs[0]
		return nil
	})
	waitPublished(t, e.d, "live", tok)
	waitPublished(t, e.d, "live", tok+"_sd")
	if p := ffprobe(t, url, 2); len(p.Packets) == 0 {
		t.Fatal("restarted ingest: no packets")
	}
	if n := execCounter(t, e.d, "restarts"); n < 1 {
		t.Errorf("restarts counter %v, want at least 1", n)
	}
	logs, _ := os.ReadFile(filepath.Join(e.dir, "logs", "ingest-__defaultVhost__-"+tok+".log"))
	if !strings.Contains(string(logs), fmt.Sprintf("started pid %d", again.pid)) {
		t.Errorf("ingest log does not show the restart:\n%s", logs)
	}
	if !strings.Contains(e.d.Log(), "child started") {
		t.Errorf("no child started line in the daemon log")
	}

	// Stop the daemon: no child is left.
	all := []int{again.pid}
	for _, p := range childrenOf(e.execPID(t)) {
		all = append(all, p.pid)
	}
	if err := e.d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	waitGone(t, "children gone after the daemon stopped", all...)
	if left := leftovers(tok); len(left) != 0 {
		t.Fatalf("processes left after the daemon stopped: %+v", left)
	}
}

func TestExecChildrenDieWithKilledPlugin(t *testing.T) {
	t.Parallel()
	e := startExec(t, execVhost)
	tok := e.token
	waitPublished(t, e.d, "live", tok)
	waitPublished(t, e.d, "live", tok+"_sd")
	pid := e.execPID(t)
	var kids []osProc
	Eventually(t, 20*time.Second, "ingest, transcoder and two sleeps run", func() error {
		kids = childrenOf(pid)
		if len(kids) < 4 {
			return fmt.Errorf("children %+v", kids)
		}
		return nil
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, k := range kids {
		pids = append(pids, k.pid)
	}
	waitGone(t, "children die with the SIGKILLed plugin", pids...)

	// The core restarts the plugin, which starts the ingest again.
	Eventually(t, 30*time.Second, "exec plugin restarted", func() error {
		ps, err := e.d.Plugins()
		if err != nil {
			return err
		}
		if p := ps["exec"]; p.State != "running" || p.PID == pid || p.PID == 0 {
			return fmt.Errorf("%+v", p)
		}
		return nil
	})
	waitPublished(t, e.d, "live", tok)
	if err := e.d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	Eventually(t, 15*time.Second, "nothing left after the daemon stopped", func() error {
		if left := leftovers(tok); len(left) != 0 {
			return fmt.Errorf("%+v", left)
		}
		return nil
	})
}

func TestExecReloadAddsAndRemovesIngests(t *testing.T) {
	t.Parallel()
	vhost := func(e *execEnv, withDevice bool) string {
		var dev string
		if withDevice {
			dev = fmt.Sprintf(`
    ingest "%s_dev" {
      input   = "device"
      iformat = "lavfi"
      iparams = ["-re"]
      url     = "testsrc2=size=320x240:rate=25"
      engine {
        vcodec  = "libx264"
        vpreset = "ultrafast"
        vparams = ["-g", "25", "-pix_fmt", "yuv420p"]
        acodec  = "an"
      }
    }`, e.token)
		}
		return fmt.Sprintf(`
vhost "__defaultVhost__" {
  exec {
    ingest %q {
      input = "file"
      url   = %q
    }%s
  }
}
`, e.token, filepath.Join(e.dir, "source.mp4"), dev)
	}
	e := startExec(t, func(t *testing.T, e *execEnv) string {
		execSourceMP4(t, e.dir)
		return vhost(e, false)
	})
	tok := e.token
	waitPublished(t, e.d, "live", tok)
	first := e.waitChild(t, "file ingest runs", "-stream_loop", tok)

	e.reload(t, vhost(e, true))
	waitPublished(t, e.d, "live", tok+"_dev")
	dev := e.waitChild(t, "device ingest runs", "lavfi", tok+"_dev")
	if _, w, h := probeSize(t, "rtmp://"+e.addr+"/live/"+tok+"_dev"); w != 320 || h != 240 {
		t.Fatalf("device ingest: %dx%d, want 320x240", w, h)
	}
	if cs := childrenOf(e.execPID(t), "-stream_loop", tok); len(cs) != 1 || cs[0].pid != first.pid {
		t.Fatalf("the file ingest was touched by the reload: %+v, was pid %d", cs, first.pid)
	}

	e.reload(t, vhost(e, false))
	waitGone(t, "removed ingest stopped", dev.pid)
	waitUnpublished(t, e.d, "live", tok+"_dev")
	if cs := childrenOf(e.execPID(t), "-stream_loop", tok); len(cs) != 1 || cs[0].pid != first.pid {
		t.Fatalf("the file ingest was touched by the second reload: %+v, was pid %d", cs, first.pid)
	}
	if err := e.d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	waitGone(t, "ingest gone after the daemon stopped", first.pid)
}
