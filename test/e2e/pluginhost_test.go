package e2e

import (
	"fmt"
	"os"
	"path/filepath"
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
	checkClean(t, d, ps2["testwriter"].PID, ps2["testreader"].PID)
}
