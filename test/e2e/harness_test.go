// Package e2e starts the real daemon with real plugin binaries on loopback
// and drives it with real clients.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries built once for the whole package.
var binDir string

// plugins built for the tests: the real ones under plugins/ and the test
// plugins under test/plugins/.
var pluginPkgs = map[string]string{
	"testwriter": "./test/plugins/testwriter",
	"testreader": "./test/plugins/testreader",
	"flvpub":     "./test/plugins/flvpub",
	"testbad":    "./test/plugins/testbad",
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rill-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		if err := buildAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func buildAll(dir string) error {
	root := repoRoot()
	entries, _ := os.ReadDir(filepath.Join(root, "plugins"))
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" {
			pluginPkgs[e.Name()] = "./plugins/" + e.Name()
		}
	}
	if err := goBuild(root, filepath.Join(dir, "rill"), "./core"); err != nil {
		return err
	}
	for name, pkg := range pluginPkgs {
		if err := goBuild(root, filepath.Join(dir, "plugins", name), pkg); err != nil {
			// Reported by the tests that need this plugin (see NewDaemon).
			buildErrs[name] = err
		}
	}
	// The out-of-tree example plugins are modules of their own, built in
	// their own directory as a third party builds them.
	examples, _ := os.ReadDir(filepath.Join(root, "examples"))
	for _, e := range examples {
		mod := filepath.Join(root, "examples", e.Name())
		if !e.IsDir() {
			continue
		}
		// A plugin in another language (examples/pystats) has a build.sh
		// that writes the plugin executable to the path it is given.
		if _, err := os.Stat(filepath.Join(mod, "build.sh")); err == nil {
			out := filepath.Join(dir, "plugins", e.Name())
			if b, err := exec.Command(filepath.Join(mod, "build.sh"), out).CombinedOutput(); err != nil {
				buildErrs[e.Name()] = fmt.Errorf("%s/build.sh: %v\n%s", mod, err, b)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(mod, "go.mod")); err != nil {
			continue
		}
		if err := goBuild(mod, filepath.Join(dir, "plugins", e.Name()), "."); err != nil {
			buildErrs[e.Name()] = err
		}
	}
	return nil
}

// buildErrs holds the plugins that did not build, by name.
var buildErrs = map[string]error{}

func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Daemon is a running bin/rill under test.
type Daemon struct {
	t       *testing.T
	Dir     string
	ShmDir  string
	Conf    string
	API     string // http://127.0.0.1:port
	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     bytes.Buffer
	exited  chan struct{}
	exitErr error
}

var apiAddrRE = regexp.MustCompile(`api=(\S+)`)

// Config renders a config with the given plugin blocks and vhost body.
type Config struct {
	Plugins []string // enabled plugin names; their blocks get Blocks[name]
	Blocks  map[string]string
	Extra   string // more top-level HCL
	ShmDir  string // reuse a shm dir (for restart tests)
	// Labels writes a plugin's block under another label (an old name:
	// Labels["httpstream"] = "hls" writes plugin "hls" { }).
	Labels map[string]string
	// API is listen_api (default 127.0.0.1:0): a fixed address for daemons
	// that must know each other's API before they start (origin clusters).
	API string
}

// StartDaemon starts the daemon with cfg and waits for its API.
func StartDaemon(t *testing.T, cfg Config) *Daemon {
	t.Helper()
	d := NewDaemon(t, cfg)
	if err := d.Start(); err != nil {
		t.Fatalf("start daemon: %v\nlog:\n%s", err, d.Log())
	}
	return d
}

// NewDaemon prepares a daemon's directory and config without starting it.
func NewDaemon(t *testing.T, cfg Config) *Daemon {
	t.Helper()
	dir := t.TempDir()
	pdir := filepath.Join(dir, "plugins")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Plugins {
		if err := buildErrs[p]; err != nil {
			t.Fatalf("plugin %s did not build: %v", p, err)
		}
		if err := os.Symlink(filepath.Join(binDir, "plugins", p), filepath.Join(pdir, p)); err != nil {
			t.Fatal(err)
		}
	}
	shmDir := cfg.ShmDir
	if shmDir == "" {
		var err error
		shmDir, err = os.MkdirTemp("/dev/shm", "rilltest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(shmDir) })
	}
	var b strings.Builder
	api := cfg.API
	if api == "" {
		api = "127.0.0.1:0"
	}
	fmt.Fprintf(&b, "plugin_dir = %q\nlisten_api = %q\nlog_level = \"debug\"\nshm {\n  dir = %q\n  ring_size = \"4MiB\"\n}\n", pdir, api, shmDir)
	for _, p := range cfg.Plugins {
		label := p
		if l, ok := cfg.Labels[p]; ok {
			label = l
		}
		fmt.Fprintf(&b, "plugin %q {\n%s\n}\n", label, cfg.Blocks[p])
	}
	b.WriteString(cfg.Extra)
	conf := filepath.Join(dir, "conf.hcl")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, Dir: dir, ShmDir: shmDir, Conf: conf, exited: make(chan struct{})}
	return d
}

// Start launches the daemon and waits up to 20 s for its API address.
func (d *Daemon) Start() error {
	d.cmd = exec.Command(filepath.Join(binDir, "rill"), "-c", d.Conf)
	d.cmd.Dir = d.Dir
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return err
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		return err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			d.logMu.Lock()
			d.log.WriteString(line + "\n")
			d.logMu.Unlock()
			if strings.Contains(line, "rill started") {
				if m := apiAddrRE.FindStringSubmatch(line); m != nil {
					select {
					case addr <- m[1]:
					default:
					}
				}
			}
		}
	}()
	go func() {
		d.exitErr = d.cmd.Wait()
		close(d.exited)
	}()
	d.t.Cleanup(func() { d.Stop() })
	select {
	case a := <-addr:
		d.API = "http://" + a
		return nil
	case <-d.exited:
		return fmt.Errorf("daemon exited before serving: %v", d.exitErr)
	case <-time.After(20 * time.Second):
		return fmt.Errorf("daemon did not report its API address within 20s")
	}
}

// Log returns what the daemon logged so far.
func (d *Daemon) Log() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

// Wait waits for the daemon to exit on its own and returns its error.
func (d *Daemon) Wait(timeout time.Duration) error {
	select {
	case <-d.exited:
		return d.exitErr
	case <-time.After(timeout):
		return fmt.Errorf("daemon still running after %s", timeout)
	}
}

// Stop sends SIGTERM and waits up to 20 s for a clean exit.
func (d *Daemon) Stop() error {
	if d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	select {
	case <-d.exited:
		return d.exitErr
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.exitErr
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("daemon did not stop within 20s after SIGTERM")
	}
}

// Kill sends SIGKILL to the daemon and waits for it.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Kill()
	<-d.exited
}

// GetJSON GETs an API path and decodes the JSON answer into v.
func (d *Daemon) GetJSON(path string, v any) error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(d.API + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %v in %s", path, err, b)
	}
	return nil
}

// PluginStatus is one entry of /api/v1/plugins.
type PluginStatus struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	PID       int    `json:"pid"`
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error"`
	Failures  int    `json:"failures"`
	CrashLoop bool   `json:"crash_loop"`
	BackoffMS int64  `json:"backoff_ms"`
	Listeners []struct {
		Name    string `json:"name"`
		Network string `json:"network"`
		Addr    string `json:"addr"`
	} `json:"listeners"`
}

// Plugins returns /api/v1/plugins/ by name.
func (d *Daemon) Plugins() (map[string]PluginStatus, error) {
	var r struct {
		Code    int            `json:"code"`
		Plugins []PluginStatus `json:"plugins"`
	}
	if err := d.GetJSON("/api/v1/plugins/", &r); err != nil {
		return nil, err
	}
	out := map[string]PluginStatus{}
	for _, p := range r.Plugins {
		out[p.Name] = p
	}
	return out, nil
}

// Eventually polls cond every 50 ms until it returns nil or timeout passes.
func Eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %s: %v", what, timeout, err)
}

// shmFiles lists the files left in a shm directory.
func shmFiles(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// pidAlive reports whether pid is a live process (not a zombie).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
