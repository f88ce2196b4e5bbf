package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCheck runs `rill -t -c conf` in dir and returns its exit code and
// output (stdout and stderr).
func runCheck(t *testing.T, dir, conf string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rill"), "-t", "-c", conf)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), out.String()
	default:
		t.Fatalf("rill -t: %v\n%s", err, out.String())
		return 0, ""
	}
}

// posOfKey returns "conf.hcl:line:col" of the first line of file conf
// that has needle, the column being needle's (1-based, as HCL counts bytes).
func posOfKey(t *testing.T, conf, needle string) string {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		if c := strings.Index(line, needle); c >= 0 {
			return fmt.Sprintf("%s:%d:%d", filepath.Base(conf), i+1, c+1)
		}
	}
	t.Fatalf("%q not in %s", needle, conf)
	return ""
}

// TestConfigCheckAsksThePlugins: `rill -t` refuses what a start refuses,
// plugin settings included (each plugin validates them as at a start), and
// names every problem at its own key's file:line:col, the core's and the
// plugins' together; a start refuses the file with the same list.
func TestConfigCheckAsksThePlugins(t *testing.T) {
	t.Parallel()
	d := NewDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks: map[string]string{
			"rtmp":       "  listen = [\"127.0.0.1:0\"]\n  chunk_sise = 4096",
			"httpstream": "  listen = [\"127.0.0.1:0\"]",
		},
		Extra: `vhost "__defaultVhost__" {
  gop_cach = true
  hls {
    enabled  = true
    fragment = "banana"
  }
  cluster {
    mode           = "remote"
    origin         = ["127.0.0.1:1935"]
    origin_cluster = true
    coworkers      = ["127.0.0.1:9091"]
  }
  forward {
    destination = ["127.0.0.1:1936"]
    backend     = "ftp://127.0.0.1:8085/api/v1/forward"
  }
}
`,
	})
	wants := map[string]string{ // key -> what the message says
		"gop_cach":       "unknown key", // the core's, reported with the plugins'
		"chunk_sise":     "unknown key",
		"fragment":       `bad duration "banana"`,
		"origin_cluster": "an edge (mode remote) cannot be an origin",
		"backend":        "is not an http:// or https:// URL",
	}
	code, out := runCheck(t, d.Dir, d.Conf)
	if code == 0 {
		t.Fatalf("rill -t exited 0 on a broken config:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	for key, msg := range wants {
		pos := posOfKey(t, d.Conf, key+" ")
		found := false
		for _, l := range lines {
			if strings.Contains(l, pos+":") && strings.Contains(l, key) && strings.Contains(l, msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("rill -t output has no line with %s, %q and %q:\n%s", pos, key, msg, out)
		}
	}
	if strings.Contains(out, " is ok") {
		t.Errorf("rill -t says ok:\n%s", out)
	}
	if left := shmFiles(d.ShmDir); len(left) > 0 {
		t.Errorf("rill -t left shm files: %v", left)
	}

	// A start refuses the same file, at the same places.
	if err := d.Start(); err == nil {
		t.Fatal("daemon started with the config rill -t refused")
	}
	if err := d.Wait(10 * time.Second); err == nil {
		t.Fatal("daemon exited 0 on the config rill -t refused")
	}
	for key := range wants {
		if pos := posOfKey(t, d.Conf, key+" "); !strings.Contains(d.Log(), pos+":") {
			t.Errorf("start did not refuse %s at %s:\n%s", key, pos, d.Log())
		}
	}
}

// TestConfigCheckRepoConf: the repository's conf.hcl passes `rill -t`, its
// plugins launched and asked (no socket bound: a running daemon may hold
// the ports).
func TestConfigCheckRepoConf(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(binDir, "plugins"), filepath.Join(dir, "bin", "plugins")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(repoRoot(), "conf.hcl")
	code, out := runCheck(t, dir, conf)
	if code != 0 || !strings.Contains(out, "is ok: the core and 3 plugins checked it") {
		t.Fatalf("rill -t on conf.hcl: exit %d:\n%s", code, out)
	}
}

// TestConfigCheckBrokenPlugin: a plugin that cannot be launched, or speaks
// another API version, fails `rill -t` as it fails a start.
func TestConfigCheckBrokenPlugin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ mode, want string }{
		{"junk-stdout", "launch"},
		{"api-version", "plugin API version 99"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			d := NewDaemon(t, badConfig(tc.mode))
			code, out := runCheck(t, d.Dir, d.Conf)
			if code == 0 || !strings.Contains(out, "testbad") || !strings.Contains(out, tc.want) {
				t.Fatalf("rill -t: exit %d, want non-zero naming testbad and %q:\n%s", code, tc.want, out)
			}
		})
	}
}
