package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a server under test, started by the suite.
type server struct {
	name     string
	rtmpAddr string // host:port, "" if it has no RTMP
	httpAddr string // host:port of HTTP-FLV
	procs    procSet
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
	stdin    io.WriteCloser
	// start is the floor's replay start (its send clock).
	start time.Time
}

func (s *server) rtmpURL(stream string) string {
	return "rtmp://" + s.rtmpAddr + "/live/" + stream
}

func (s *server) flvURL(stream string) string {
	return "http://" + s.httpAddr + "/live/" + stream + ".flv"
}

// alive reports whether the server's main process still runs.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 5 s.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// The processes of the set, listed while the main one still runs:
	// once it exits, its children are no longer its descendants.
	pids := s.procs.list()
	cmdlines := map[int]string{}
	for _, pid := range pids {
		cmdlines[pid] = cmdline(pid)
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	// A plugin that outlived its core would skew the next server's figures.
	// Plugins exit with their core; give them a moment, then kill those
	// still there (the same process: same command line).
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range pids {
		if pid == s.cmd.Process.Pid {
			continue
		}
		for cmdline(pid) == cmdlines[pid] && cmdlines[pid] != "" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if c := cmdline(pid); c != "" && c == cmdlines[pid] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (s *server) launch(dir string, name string, args ...string) error {
	s.logPath = filepath.Join(dir, s.name+".log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.cmd = cmd
	s.procs = procSet{pids: []int{cmd.Process.Pid}}
	s.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(s.exited) }()
	return nil
}

// cmdline returns the command line of a process, "" if it is gone.
func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(b)
}

// logTail returns the last lines of the server's log, for error messages.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// freePort returns a loopback address nobody listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func freePorts(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, s *server, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !s.alive() {
			return fmt.Errorf("%s exited: %s", s.name, s.logTail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: %s not listening after %v", s.name, addr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rillConfig is the benchmark's conf.hcl: the rtmp and httpstream plugins on
// loopback, merged writes at SRS's defaults (350 ms, the plugins'
// defaults), GOP cache on, HLS off (lalserver's too), plus a vhost with
// merged writes off for the low-latency row.
const rillConfig = `# written by rill-bench
plugin_dir = %q
listen_api = %q
log_level  = "warn"

shm {
  dir = "/dev/shm"
}

plugin "rtmp" {
  listen = [%q]
}

plugin "httpstream" {
  listen = [%q]
}

vhost "__defaultVhost__" {
  gop_cache = true
%s}

vhost "lowlat" {
  gop_cache = true
  play {
    min_latency = true
  }
}
`

// startRill starts bin/rill with a temporary config and waits until both
// plugins run.
//
// With hlsDir set, HLS is on in the default vhost (2 s fragments) and
// writes under hlsDir.
func startRill(ctx context.Context, dir, bin, pluginDir, hlsDir string) (*server, error) {
	addrs, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &server{name: "rill", rtmpAddr: addrs[0], httpAddr: addrs[1]}
	pluginDir, err = filepath.Abs(pluginDir)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "rill.hcl")
	hls := ""
	if hlsDir != "" {
		hls = fmt.Sprintf("  hls {\n    enabled  = true\n    fragment = \"2s\"\n    window   = \"20s\"\n    path     = %q\n  }\n", hlsDir)
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, rillConfig, pluginDir, addrs[2], addrs[0], addrs[1], hls), 0o644); err != nil {
		return nil, err
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if err := s.launch(dir, bin, "-c", conf); err != nil {
		return nil, err
	}
	if err := waitRillPlugins(ctx, s, addrs[2], 20*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitRillPlugins polls the API until the rtmp and httpstream plugins run.
func waitRillPlugins(ctx context.Context, s *server, api string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cl := &http.Client{Timeout: time.Second}
	var last string
	for {
		if !s.alive() {
			return fmt.Errorf("rill exited: %s", s.logTail())
		}
		if resp, err := cl.Get("http://" + api + "/api/v1/plugins/"); err == nil {
			var body struct {
				Plugins []struct {
					Name      string `json:"name"`
					State     string `json:"state"`
					LastError string `json:"last_error"`
				} `json:"plugins"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
			resp.Body.Close()
			running := map[string]bool{}
			var states []string
			for _, p := range body.Plugins {
				running[p.Name] = p.State == "running"
				states = append(states, p.Name+"="+p.State+" "+p.LastError)
			}
			if err == nil && running["rtmp"] && running["httpstream"] {
				return nil
			}
			last = strings.Join(states, ", ")
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("rill plugins not running after %v (%s): %s", timeout, last, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startLal starts lalserver with a temporary config: RTMP and HTTP-FLV on
// loopback, a one-GOP cache as Rill's gop_cache, everything else off.
//
// With hlsDir set, its HLS is on (2 s fragments, /hls/<stream>.m3u8).
func startLal(ctx context.Context, dir, bin, hlsDir string) (*server, error) {
	addrs, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &server{name: "lalserver", rtmpAddr: addrs[0], httpAddr: addrs[1]}
	conf := map[string]any{
		"conf_version": "v0.4.1",
		"rtmp": map[string]any{
			"enable": true, "addr": addrs[0], "rtmps_enable": false,
			"gop_num": 1, "single_gop_max_frame_num": 0, "merge_write_size": 0,
		},
		"in_session":   map[string]any{"add_dummy_audio_enable": false},
		"default_http": map[string]any{"http_listen_addr": addrs[1]},
		"httpflv": map[string]any{
			"enable": true, "enable_https": false, "url_pattern": "/",
			"gop_num": 1, "single_gop_max_frame_num": 0,
		},
		"hls":               map[string]any{"enable": false, "enable_https": false},
		"httpts":            map[string]any{"enable": false, "enable_https": false},
		"rtsp":              map[string]any{"enable": false, "rtsps_enable": false, "ws_rtsp_enable": false},
		"record":            map[string]any{"enable_flv": false, "enable_mpegts": false},
		"relay_push":        map[string]any{"enable": false},
		"static_relay_pull": map[string]any{"enable": false},
		"http_api":          map[string]any{"enable": false},
		"server_id":         "1",
		"http_notify":       map[string]any{"enable": false},
		"simple_auth":       map[string]any{},
		"pprof":             map[string]any{"enable": false},
		"log": map[string]any{
			"level": 3, "filename": filepath.Join(dir, "lalserver-internal.log"), "is_to_stdout": false,
			"is_rotate_daily": false, "short_file_flag": true, "timestamp_flag": true,
			"timestamp_with_ms_flag": true, "level_flag": true, "assert_behavior": 1,
		},
		"debug": map[string]any{"log_group_interval_sec": 0},
	}
	if hlsDir != "" {
		conf["hls"] = map[string]any{
			"enable": true, "enable_https": false, "url_pattern": "/hls/", "out_path": hlsDir + "/",
			"fragment_duration_ms": 2000, "fragment_num": 10, "delete_threshold": 10, "cleanup_mode": 1,
			"use_memory_as_disk_flag": false, "sub_session_timeout_ms": 30000, "sub_session_hash_key": "",
		}
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	path := filepath.Join(dir, "lalserver.conf.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return nil, err
	}
	bin, err = filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if err := s.launch(dir, bin, "-c", path); err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := waitTCP(ctx, s, a, 10*time.Second); err != nil {
			s.stop()
			return nil, err
		}
	}
	return s, nil
}

// startFloor starts the floor program in one of its modes and reads its
// listen address and replay start from its first line.
func startFloor(ctx context.Context, dir, bin, flv, mode string, window time.Duration) (*server, error) {
	s := &server{name: "floor-" + mode}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if flv, err = filepath.Abs(flv); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-flv", flv, "-mode", mode, "-window", window.String(), "-for", "30m")
	cmd.Dir = dir
	s.logPath = filepath.Join(dir, s.name+".log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor: %w", err)
	}
	s.cmd = cmd
	s.procs = procSet{pids: []int{cmd.Process.Pid}}
	s.exited = make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(out)
		line, _ := br.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, br)
		_ = cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	select {
	case line := <-lines:
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "listen":
				s.httpAddr = v
			case "start_unix_nano":
				ns, _ := strconv.ParseInt(v, 10, 64)
				s.start = time.Unix(0, ns)
			}
		}
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	if s.httpAddr == "" || s.start.IsZero() {
		s.stop()
		return nil, errors.New("floor did not start: " + s.logTail())
	}
	return s, nil
}
