package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pidFile records the process groups of the running children (leader pid
// and its start time), so that a plugin that comes back after being killed
// can end what its predecessor left. Pdeathsig already kills each leader
// with the plugin; this catches what a leader started itself (a script's
// children), which Pdeathsig does not reach.
type pidFile struct {
	mu   sync.Mutex
	path string
	pids map[int]uint64 // leader pid -> start time (clock ticks since boot)
}

func newPIDFile(path string) *pidFile {
	return &pidFile{path: path, pids: map[int]uint64{}}
}

// add records a new group leader.
func (p *pidFile) add(pid int) {
	st, _ := procStat(pid)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pids[pid] = st.start
	p.writeLocked()
}

// remove forgets a group whose leader was reaped and group killed.
func (p *pidFile) remove(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pids, pid)
	p.writeLocked()
}

// removeFile deletes the file once no child runs.
func (p *pidFile) removeFile() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pids) == 0 && p.path != "" {
		_ = os.Remove(p.path)
	}
}

func (p *pidFile) writeLocked() {
	if p.path == "" {
		return
	}
	keys := make([]int, 0, len(p.pids))
	for pid := range p.pids {
		keys = append(keys, pid)
	}
	sort.Ints(keys)
	var b bytes.Buffer
	for _, pid := range keys {
		fmt.Fprintf(&b, "%d %d\n", pid, p.pids[pid])
	}
	tmp := p.path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(p.path), 0o755); err != nil {
		return
	}
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return
	}
	_ = os.Rename(tmp, p.path)
}

// sweepLeftovers kills the process groups recorded in path by a previous
// plugin process and empties the file. It returns the groups it signalled.
// A recorded leader that still runs is killed only if its start time
// matches (pids are reused); a group whose leader is gone is killed through
// its remaining members, since a group id is not reused while the group has
// members.
func sweepLeftovers(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var killed []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		start, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil || pid <= 1 {
			continue
		}
		if st, err := procStat(pid); err == nil {
			if st.start != start || st.pgrp != pid {
				continue // another process now has this pid
			}
		} else if !groupHasMembers(pid) {
			continue
		}
		if syscall.Kill(-pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	_ = os.Remove(path)
	return killed, nil
}

type stat struct {
	state      string // proc(5) field 3: R, S, D, Z, ...
	ppid, pgrp int
	start      uint64
}

// procStat reads the parent, process group and start time of pid.
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid 4, pgrp 5, starttime 22 (proc(5)).
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	var s stat
	s.state = f[0]
	s.ppid, _ = strconv.Atoi(f[1])
	s.pgrp, _ = strconv.Atoi(f[2])
	s.start, _ = strconv.ParseUint(f[19], 10, 64)
	return s, nil
}

// groupHasMembers reports whether any process is in process group pgid.
func groupHasMembers(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.pgrp == pgid {
			return true
		}
	}
	return false
}

// groupHasLiveMembers reports whether a process of group pgid has not yet
// exited: zombies (exited, waiting for a parent to reap them) do not count.
func groupHasLiveMembers(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.pgrp == pgid && st.state != "Z" && st.state != "X" {
			return true
		}
	}
	return false
}

// waitGroupGone waits, at most timeout, until every process of group pgid
// has exited. A SIGKILL is delivered at once but the process takes a moment
// to die; callers that report "stopped" must not do so before that.
func waitGroupGone(pgid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for groupHasLiveMembers(pgid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
