package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func badConfig(mode string) Config {
	cfg := patternConfig()
	cfg.Plugins = append(cfg.Plugins, "testbad")
	cfg.Blocks["testbad"] = fmt.Sprintf("  env = { RILL_TESTBAD = %q }", mode)
	return cfg
}

// A plugin that cannot start makes the whole start fail with its name and
// why, and nothing is left running (all or nothing).
func TestBrokenPluginsRefuseTheStart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode  string
		wants []string
	}{
		{"junk-stdout", []string{"testbad", "launch"}},
		{"api-version", []string{"testbad", "plugin API version 99"}},
		{"panic-start", []string{"testbad", "start"}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			d := NewDaemon(t, badConfig(tc.mode))
			if err := d.Start(); err == nil {
				t.Fatal("daemon started with a broken plugin")
			}
			if err := d.Wait(20 * time.Second); err == nil {
				t.Fatal("daemon exited 0")
			}
			for _, w := range tc.wants {
				if !strings.Contains(d.Log(), w) {
					t.Fatalf("output lacks %q:\n%s", w, d.Log())
				}
			}
			if left := shmFiles(d.ShmDir); len(left) > 0 {
				t.Fatalf("shm files left: %v", left)
			}
		})
	}
}

func TestNotAPluginIsRefused(t *testing.T) {
	t.Parallel()
	cfg := patternConfig()
	cfg.Plugins = []string{"testwriter"}
	cfg.Extra = "plugin \"script\" {}\n"
	d := NewDaemon(t, cfg)
	script := filepath.Join(d.Dir, "plugins", "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err == nil {
		t.Fatal("daemon started with a script as a plugin")
	}
	_ = d.Wait(10 * time.Second)
	if !strings.Contains(d.Log(), "not a Rill plugin") || !strings.Contains(d.Log(), "conf.hcl:") {
		t.Fatalf("output:\n%s", d.Log())
	}
}

// A plugin that keeps crashing is restarted with backoff while the others
// go on untouched.
func TestCrashingPluginIsolated(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, badConfig("crash-after"))
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 20*time.Second, "crashing plugin restarted twice", func() error {
		ps, err := d.Plugins()
		if err != nil {
			return err
		}
		if ps["testbad"].Restarts < 2 {
			return fmt.Errorf("%+v", ps["testbad"])
		}
		return nil
	})
	r, err := d.reader()
	if err != nil {
		t.Fatal(err)
	}
	ps2, _ := d.Plugins()
	for _, n := range []string{"testwriter", "testreader"} {
		if ps2[n].PID != ps[n].PID || ps2[n].Restarts != 0 || ps2[n].State != "running" {
			t.Fatalf("%s disturbed by a crashing neighbour: %+v -> %+v", n, ps[n], ps2[n])
		}
	}
	if r.Corrupt != 0 || r.Received == 0 {
		t.Fatalf("reader: %+v", r)
	}
	if !strings.Contains(d.Log(), "exit status 2") && !strings.Contains(d.Log(), "process exited") {
		t.Fatalf("crash not logged:\n%s", d.Log())
	}
	// The crash loop and its backoff show in the API and in /metrics.
	Eventually(t, 30*time.Second, "crash loop reported", func() error {
		ps, err := d.Plugins()
		if err != nil {
			return err
		}
		if b := ps["testbad"]; !b.CrashLoop || b.Failures < 3 || b.State != "restarting" || b.BackoffMS < 1000 {
			return fmt.Errorf("%+v", b)
		}
		if v := metricValue(t, d, "rill_plugin_crash_loop", `plugin="testbad"`); v != 1 {
			return fmt.Errorf("rill_plugin_crash_loop = %v", v)
		}
		if v := metricValue(t, d, "rill_plugin_restart_backoff_seconds", `plugin="testbad"`); v < 1 {
			return fmt.Errorf("rill_plugin_restart_backoff_seconds = %v", v)
		}
		return nil
	})
	ps3, _ := d.Plugins()
	if w := ps3["testwriter"]; w.CrashLoop || w.Failures != 0 || w.BackoffMS != 0 {
		t.Fatalf("a healthy plugin reported failing: %+v", w)
	}
	if v := metricValue(t, d, "rill_plugin_crash_loop", `plugin="testwriter"`); v != 0 {
		t.Fatalf("rill_plugin_crash_loop{testwriter} = %v", v)
	}
	checkClean(t, d, ps2["testwriter"].PID, ps2["testreader"].PID)
}

// metricValue reads the first sample of a metric whose labels contain
// every one of labels from /metrics (-1: none).
func metricValue(t *testing.T, d *Daemon, name string, labels ...string) float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(d.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
next:
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, name+"{") {
			continue
		}
		for _, want := range labels {
			if !strings.Contains(l, want) {
				continue next
			}
		}
		f := strings.Fields(l)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		return v
	}
	return -1
}

// A plugin pinned by sha256 runs when its binary matches; a binary that is
// not the pinned one is refused at start and by rill -t, the message naming
// both sums and the key's position.
func TestPluginChecksumPinning(t *testing.T) {
	t.Parallel()
	probe := NewDaemon(t, patternConfig())
	sum, err := fileSHA256(filepath.Join(probe.Dir, "plugins", "testwriter"))
	if err != nil {
		t.Fatal(err)
	}
	good := patternConfig()
	good.Blocks["testwriter"] = fmt.Sprintf("  sha256 = %q", sum)
	d := StartDaemon(t, good)
	waitRunning(t, d, "testwriter", "testreader")

	wrong := strings.Repeat("ab", 32)
	bad := patternConfig()
	bad.Blocks["testwriter"] = fmt.Sprintf("  sha256 = %q", wrong)
	for _, check := range []bool{true, false} {
		b := NewDaemon(t, bad)
		var out string
		if check {
			code, o := runCheck(t, b.Dir, b.Conf)
			if code == 0 {
				t.Fatalf("rill -t passed a mismatching binary:\n%s", o)
			}
			out = o
		} else {
			if err := b.Start(); err == nil {
				t.Fatal("daemon started with a binary that is not the pinned one")
			}
			_ = b.Wait(10 * time.Second)
			out = b.Log()
		}
		for _, w := range []string{"checksum mismatch", sum, wrong, `plugin "testwriter"`, "conf.hcl:"} {
			if !strings.Contains(out, w) {
				t.Fatalf("-t=%v: output lacks %q:\n%s", check, w, out)
			}
		}
	}
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// runRill runs the rill binary with args and extra environment and returns
// its exit code and combined output.
func runRill(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rill"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("rill %v: %v\n%s", args, err, out)
	return 0, ""
}

// `rill plugins list|describe|check` tell an operator what is in the plugin
// directory, and refuse a plugin of another API version naming both.
func TestPluginsCommand(t *testing.T) {
	t.Parallel()
	d := NewDaemon(t, badConfig("crash-after"))
	pdir := filepath.Join(d.Dir, "plugins")
	if err := os.WriteFile(filepath.Join(pdir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runRill(t, nil, "plugins", "list", "-d", pdir)
	if code != 0 {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	sum, err := fileSHA256(filepath.Join(pdir, "testwriter"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"NAME", "testwriter", "testreader", "testbad", "0.0.1", sum[:12], "notes.txt", "skipped: not executable"} {
		if !strings.Contains(out, w) {
			t.Fatalf("list lacks %q:\n%s", w, out)
		}
	}
	// The config's plugin_dir is found the same way a start finds it.
	code, out = runRill(t, nil, "plugins", "describe", "-c", d.Conf, "testwriter")
	var desc struct {
		Name, Version, SHA256 string
		APIVersion            int  `json:"api_version"`
		Compatible            bool `json:"api_compatible"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &desc) != nil || desc.Name != "testwriter" || desc.SHA256 != sum || desc.APIVersion != 1 || !desc.Compatible {
		t.Fatalf("describe: exit %d %+v\n%s", code, desc, out)
	}
	code, out = runRill(t, nil, "plugins", "check", filepath.Join(pdir, "testbad"))
	if code != 0 || !strings.Contains(out, "ok: testbad 0.0.1, plugin API v1") {
		t.Fatalf("check of a good plugin: exit %d\n%s", code, out)
	}
	// The same binary claiming API version 99 is refused by each command.
	bad := []string{"RILL_TESTBAD=api-version"}
	for _, args := range [][]string{
		{"plugins", "check", filepath.Join(pdir, "testbad")},
		{"plugins", "describe", filepath.Join(pdir, "testbad")},
		{"plugins", "list", "-d", pdir},
	} {
		code, out := runRill(t, bad, args...)
		if code == 0 || !strings.Contains(out, "plugin API version 99, core speaks 1") {
			t.Fatalf("%v with API 99: exit %d\n%s", args, code, out)
		}
	}
	// check launches the plugin as a start does: a broken handshake fails it.
	code, out = runRill(t, []string{"RILL_TESTBAD=junk-stdout"}, "plugins", "check", filepath.Join(pdir, "testbad"))
	if code == 0 || !strings.Contains(out, "testbad") {
		t.Fatalf("check of a plugin that breaks the handshake: exit %d\n%s", code, out)
	}
}
