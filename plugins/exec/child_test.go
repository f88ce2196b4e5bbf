package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func testSupervisor(t *testing.T) *supervisor {
	t.Helper()
	dir := t.TempDir()
	s := &supervisor{
		log:     hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn}),
		spawner: processSpawner(),
		pids:    newPIDFile(filepath.Join(dir, pidFileName)),
	}
	s.lim.Store(&limits{logDir: dir, logMax: 1 << 20, backoffMin: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond, killTimeout: 300 * time.Millisecond})
	return s
}

// eventually polls cond every 20 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// groupMembers lists the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err == nil && st.pgrp == pgid && !strings.Contains(string(b[strings.LastIndexByte(string(b), ')'):]), ") Z") {
			out = append(out, pid)
		}
	}
	return out
}

func waitDone(t *testing.T, c *child) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("child not done within 10s of Stop")
	}
}

func TestChildStopKillsItsGroup(t *testing.T) {
	s := testSupervisor(t)
	c := s.start(childSpec{key: "t/group", argv: []string{"sh", "-c", "sleep 60 & sleep 60 & wait"}, logName: "group.log"}, nil)
	var pid int
	eventually(t, "child and its two sleeps run", func() error {
		pid = c.PID()
		if n := len(groupMembers(pid)); pid == 0 || n < 3 {
			return fmt.Errorf("pid %d, %d members", pid, n)
		}
		return nil
	})
	if st, _ := procStat(pid); st.pgrp != pid {
		t.Fatalf("child is not the leader of its own group: pgrp %d", st.pgrp)
	}
	if got := s.running.Load(); got != 1 {
		t.Fatalf("running %d", got)
	}
	c.Stop()
	waitDone(t, c)
	if m := groupMembers(pid); len(m) != 0 {
		t.Fatalf("group %d left members %v", pid, m)
	}
	if got := s.running.Load(); got != 0 {
		t.Fatalf("running %d after stop", got)
	}
	b, _ := os.ReadFile(filepath.Join(s.lim.Load().logDir, "group.log"))
	if !strings.Contains(string(b), fmt.Sprintf("started pid %d: sh -c", pid)) || !strings.Contains(string(b), fmt.Sprintf("pid %d exited", pid)) {
		t.Fatalf("log:\n%s", b)
	}
}

func TestChildIgnoringSIGTERMIsKilled(t *testing.T) {
	s := testSupervisor(t)
	c := s.start(childSpec{key: "t/stubborn", argv: []string{"sh", "-c", `trap "" TERM; echo ready; sleep 60`}, logName: "stubborn.log"}, nil)
	var pid int
	eventually(t, "child ready", func() error {
		pid = c.PID()
		b, _ := os.ReadFile(filepath.Join(s.lim.Load().logDir, "stubborn.log"))
		if pid == 0 || !strings.Contains(string(b), "ready") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	c.Stop()
	waitDone(t, c)
	if m := groupMembers(pid); len(m) != 0 {
		t.Fatalf("group %d left members %v", pid, m)
	}
}

func TestChildRestartedWithBackoff(t *testing.T) {
	s := testSupervisor(t)
	c := s.start(childSpec{key: "t/crash", argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, respawn: respawnAlways, logName: "crash.log"}, nil)
	eventually(t, "three restarts", func() error {
		if n := s.restarts.Load(); n < 3 {
			return fmt.Errorf("%d restarts", n)
		}
		return nil
	})
	c.Stop()
	waitDone(t, c)
	b, _ := os.ReadFile(filepath.Join(s.lim.Load().logDir, "crash.log"))
	if strings.Count(string(b), "exit status 3") < 3 || !strings.Contains(string(b), "out\n") || !strings.Contains(string(b), "err\n") {
		t.Fatalf("log:\n%s", b)
	}
	if s.failures.Load() < 3 {
		t.Fatalf("failures %d", s.failures.Load())
	}
}

func TestChildRespawnPolicies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		argv    []string
		respawn respawn
		restart bool
	}{
		{"on-failure success", []string{"true"}, respawnOnFailure, false},
		{"on-failure failure", []string{"false"}, respawnOnFailure, true},
		{"never", []string{"false"}, respawnNever, false},
		{"always success", []string{"true"}, respawnAlways, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := testSupervisor(t)
			c := s.start(childSpec{key: "t/p", argv: tt.argv, respawn: tt.respawn, logName: "p.log"}, nil)
			defer func() { c.Stop(); waitDone(t, c) }()
			if tt.restart {
				eventually(t, "restarted", func() error {
					if s.restarts.Load() == 0 {
						return fmt.Errorf("no restart")
					}
					return nil
				})
				return
			}
			eventually(t, "exited", func() error {
				b, _ := os.ReadFile(filepath.Join(s.lim.Load().logDir, "p.log"))
				if !strings.Contains(string(b), "exited") {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			// Ten backoff periods later, still not restarted.
			time.Sleep(10 * s.lim.Load().backoffMax)
			if n := s.started.Load(); n != 1 {
				t.Fatalf("started %d times", n)
			}
		})
	}
}

func TestChildThatCannotStartIsRetried(t *testing.T) {
	s := testSupervisor(t)
	c := s.start(childSpec{key: "t/missing", argv: []string{"/nonexistent/program"}, respawn: respawnAlways, logName: "missing.log"}, nil)
	eventually(t, "retried", func() error {
		if s.failures.Load() < 2 {
			return fmt.Errorf("failures %d", s.failures.Load())
		}
		return nil
	})
	c.Stop()
	waitDone(t, c)
}

func TestReplacementWaitsForItsPredecessor(t *testing.T) {
	s := testSupervisor(t)
	old := s.start(childSpec{key: "t/r", argv: []string{"sh", "-c", `trap "" TERM; sleep 60`}, logName: "old.log"}, nil)
	eventually(t, "old runs", func() error {
		if old.PID() == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	oldPID := old.PID()
	old.Stop()
	repl := s.start(childSpec{key: "t/r", argv: []string{"sleep", "60"}, logName: "new.log"}, old.Done())
	defer func() { repl.Stop(); waitDone(t, repl) }()
	eventually(t, "replacement runs", func() error {
		if repl.PID() == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	select {
	case <-old.Done():
	default:
		t.Fatal("replacement started before its predecessor was gone")
	}
	if len(groupMembers(oldPID)) != 0 {
		t.Fatal("predecessor's group still runs")
	}
}

func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(dir, "x.log", 4096)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("a", 99) + "\n"
	for i := 0; i < 200; i++ {
		if _, err := l.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, name := range []string{"x.log", "x.log.1"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 4096 || st.Size() == 0 {
			t.Fatalf("%s: %d bytes", name, st.Size())
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("files %v", ents)
	}
}

func TestSweepLeftovers(t *testing.T) {
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60 & wait")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
		return cmd
	}
	left := start()
	other := start() // recorded with a wrong start time: somebody else's now
	eventually(t, "groups run", func() error {
		if len(groupMembers(left.Process.Pid)) < 3 || len(groupMembers(other.Process.Pid)) < 3 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	p := newPIDFile(filepath.Join(dir, pidFileName))
	p.add(left.Process.Pid)
	p.mu.Lock()
	p.pids[other.Process.Pid] = 1
	p.writeLocked()
	p.mu.Unlock()
	killed, err := sweepLeftovers(p.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(killed) != 1 || killed[0] != left.Process.Pid {
		t.Fatalf("killed %v, want [%d]", killed, left.Process.Pid)
	}
	_ = left.Wait()
	eventually(t, "leftover group gone", func() error {
		if m := groupMembers(left.Process.Pid); len(m) != 0 {
			return fmt.Errorf("members %v", m)
		}
		return nil
	})
	if len(groupMembers(other.Process.Pid)) < 3 {
		t.Fatal("a group with another start time was killed")
	}
	if _, err := os.Stat(p.path); !os.IsNotExist(err) {
		t.Fatalf("pid file still there: %v", err)
	}
}
