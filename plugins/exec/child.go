package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Kinds of children.
const (
	kindIngest    = "ingest"
	kindTranscode = "transcode"
	kindExec      = "exec"
)

// respawn says when a child that exited is started again.
type respawn int

const (
	respawnAlways    respawn = iota // whatever the exit (ingest, transcode)
	respawnOnFailure                // non-zero exit or a signal
	respawnNever
)

// childSpec is what to run. Two specs with the same key and fingerprint are
// the same child: a reload that renders them again leaves it alone.
type childSpec struct {
	key     string // "ingest/<vhost>/<name>", "transcode/<vhost>/<app>/<stream>/<engine>", ...
	kind    string
	argv    []string
	respawn respawn
	logName string
}

func (s childSpec) fingerprint() string {
	return strings.Join(s.argv, "\x00") + "\x00" + s.logName + "\x00" + string(rune('0'+s.respawn))
}

// supervisor runs children: each in its own process group, with Pdeathsig,
// its output in a capped log file, restarted with backoff while needed.
type supervisor struct {
	log     hclog.Logger
	spawner *spawner
	pids    *pidFile
	lim     atomic.Pointer[limits]

	running  atomic.Int64
	started  atomic.Uint64
	restarts atomic.Uint64
	failures atomic.Uint64 // exits that were not asked for, and failed starts
}

// setLimits takes the tunables of c for the children started from now on.
func (s *supervisor) setLimits(c *config) {
	s.lim.Store(&limits{
		logDir: c.logDir, logMax: c.logMaxBytes,
		backoffMin: c.backoffMin, backoffMax: c.backoffMax, killTimeout: c.killTimeout,
	})
}

// child is one supervised program.
type child struct {
	spec childSpec
	sup  *supervisor
	lim  *limits
	log  hclog.Logger

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}

	mu  sync.Mutex
	pid int
}

// start supervises spec in a new goroutine. The first process starts once
// after (when not nil) is closed: a replaced child is gone before its
// successor publishes the same stream.
func (s *supervisor) start(spec childSpec, after <-chan struct{}) *child {
	c := &child{
		spec:  spec,
		sup:   s,
		lim:   s.lim.Load(),
		log:   s.log.With("child", spec.key),
		stopc: make(chan struct{}),
		done:  make(chan struct{}),
	}
	go c.run(after)
	return c
}

// Stop asks the child to end: SIGTERM to its group, SIGKILL after the kill
// timeout. It does not wait; Done is closed when the group is gone.
func (c *child) Stop() { c.stopOnce.Do(func() { close(c.stopc) }) }

// Done is closed once the child is stopped for good.
func (c *child) Done() <-chan struct{} { return c.done }

// PID is the running process's pid, 0 between runs.
func (c *child) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

func (c *child) run(after <-chan struct{}) {
	defer close(c.done)
	if after != nil {
		select {
		case <-after:
		case <-c.stopc:
			return
		}
	}
	s, lim := c.sup, c.lim
	lf, err := openLogFile(lim.logDir, c.spec.logName, lim.logMax)
	var out io.Writer = io.Discard
	if err != nil {
		c.log.Warn("child output not logged", "error", err)
	} else {
		out = lf
		defer lf.Close()
	}
	backoff := lim.backoffMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.restarts.Add(1)
		}
		began := time.Now()
		exit, stopped := c.runOnce(out, lf)
		if stopped {
			return
		}
		if c.spec.respawn == respawnNever || c.spec.respawn == respawnOnFailure && exit == nil {
			c.log.Info("child finished", "exit", errString(exit))
			<-c.stopc // keep its place until it is no longer wanted
			return
		}
		s.failures.Add(1)
		if time.Since(began) >= lim.backoffMax {
			backoff = lim.backoffMin
		}
		c.log.Warn("child exited, restarting", "error", errString(exit), "ran", time.Since(began).Round(time.Millisecond).String(),
			"backoff", backoff.String(), "log", filepath.Join(lim.logDir, c.spec.logName))
		select {
		case <-c.stopc:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, lim.backoffMax)
	}
}

// runOnce starts the process and waits until it exits or Stop is called
// (then it ends the group). stopped reports the latter.
func (c *child) runOnce(out io.Writer, lf *logFile) (exit error, stopped bool) {
	s := c.sup
	select {
	case <-c.stopc:
		return nil, true
	default:
	}
	cmd := exec.Command(c.spec.argv[0], c.spec.argv[1:]...)
	// The output goes through a pipe that we own (an *os.File, so Wait
	// does not wait for it): Wait returns when the leader exits, and the
	// copy ends when the last holder of the pipe is gone.
	r, w, err := os.Pipe()
	if err != nil {
		return err, false
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = s.spawner.start(cmd)
	w.Close()
	if err != nil {
		r.Close()
		c.log.Error("child did not start", "command", quoteArgv(c.spec.argv), "error", err)
		if lf != nil {
			lf.Note("start %s: %v", quoteArgv(c.spec.argv), err)
		}
		return err, false
	}
	pid := cmd.Process.Pid
	s.pids.add(pid)
	copied := make(chan struct{})
	go copyLog(out, r, copied)
	c.mu.Lock()
	c.pid = pid
	c.mu.Unlock()
	s.started.Add(1)
	s.running.Add(1)
	if lf != nil {
		lf.Note("started pid %d: %s", pid, quoteArgv(c.spec.argv))
	}
	c.log.Info("child started", "pid", pid, "command", quoteArgv(c.spec.argv))

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case exit = <-waited:
	case <-c.stopc:
		stopped = true
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case exit = <-waited:
		case <-time.After(c.lim.killTimeout):
			c.log.Warn("child did not stop on SIGTERM, killing its group", "pid", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			exit = <-waited
		}
	}
	// Whatever the leader left in its group goes with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if !waitGroupGone(pid, 2*time.Second) {
		c.log.Warn("child's process group still has live members 2s after SIGKILL", "pid", pid)
	}
	s.pids.remove(pid)
	s.running.Add(-1)
	c.mu.Lock()
	c.pid = 0
	c.mu.Unlock()
	select {
	case <-copied:
	case <-time.After(time.Second): // a child that left its own group holds the pipe
	}
	if lf != nil {
		lf.Note("pid %d exited: %s", pid, errString(exit))
	}
	if stopped {
		c.log.Info("child stopped", "pid", pid, "exit", errString(exit))
	}
	return exit, stopped
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	return err.Error()
}
