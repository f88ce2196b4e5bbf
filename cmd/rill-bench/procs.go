package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100
// on every Linux architecture Go supports).
const clockTicks = 100

// procSet names a server's processes: the given pids, the processes whose
// command line matches pattern, and all their descendants (Rill is a core
// plus plugin processes).
type procSet struct {
	pids    []int
	pattern *regexp.Regexp
	// alone leaves the descendants out (the load tool's own figures: the
	// servers are its children).
	alone bool
}

// list returns the pids of the set now.
func (s procSet) list() []int {
	type proc struct {
		ppid int
		cmd  string
	}
	all := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		pr := proc{ppid: st.ppid}
		if s.pattern != nil {
			b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			pr.cmd = strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
		}
		all[pid] = pr
	}
	in := map[int]bool{}
	for _, pid := range s.pids {
		if _, ok := all[pid]; ok {
			in[pid] = true
		}
	}
	if s.pattern != nil {
		self := os.Getpid()
		for pid, pr := range all {
			if pid != self && s.pattern.MatchString(pr.cmd) {
				in[pid] = true
			}
		}
	}
	for changed := !s.alone; changed; { // descendants
		changed = false
		for pid, pr := range all {
			if !in[pid] && in[pr.ppid] {
				in[pid], changed = true, true
			}
		}
	}
	out := make([]int, 0, len(in))
	for pid := range in {
		out = append(out, pid)
	}
	return out
}

type stat struct {
	ppid  int
	ticks uint64 // utime + stime
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name is in parentheses and may contain anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return stat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return stat{ppid: ppid, ticks: ut + st}, nil
}

// readMem returns VmRSS and Pss of a process in KiB. Pss (proportional set
// size) shares each shared page, such as a ring segment mapped by several
// processes, among them, so that summing it over processes counts shared
// memory once.
func readMem(pid int) (rss, pss int64) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		rss = kbField(b, "VmRSS:")
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		pss = kbField(b, "Pss:")
	}
	return rss, pss
}

func kbField(b []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name) {
			f := strings.Fields(line[len(name):])
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}

// usage is what a server used over a window.
type usage struct {
	procs   int
	cpu     float64 // percent of one core
	peakRSS int64   // KiB, summed over the processes, highest sample
	peakPSS int64   // KiB
}

// sampler measures a procSet over a window: CPU from utime+stime at both
// ends, memory sampled every interval.
type sampler struct {
	set      procSet
	interval time.Duration

	start time.Time
	ticks map[int]uint64
	stop  chan struct{}
	done  chan struct{}

	mu   sync.Mutex
	peak usage
}

func startSampler(set procSet, interval time.Duration) *sampler {
	s := &sampler{set: set, interval: interval, ticks: map[int]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.start = time.Now()
	for _, pid := range set.list() {
		if st, err := readStat(pid); err == nil {
			s.ticks[pid] = st.ticks
		}
	}
	go s.run()
	return s
}

func (s *sampler) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample() {
	var rss, pss int64
	pids := s.set.list()
	for _, pid := range pids {
		r, p := readMem(pid)
		rss += r
		pss += p
	}
	s.mu.Lock()
	s.peak.procs = max(s.peak.procs, len(pids))
	s.peak.peakRSS = max(s.peak.peakRSS, rss)
	s.peak.peakPSS = max(s.peak.peakPSS, pss)
	s.mu.Unlock()
}

// finish ends the window and returns the usage. CPU counts the processes
// alive at both ends (a process started inside the window counts from 0).
func (s *sampler) finish() usage {
	close(s.stop)
	<-s.done
	s.sample()
	elapsed := time.Since(s.start).Seconds()
	var ticks uint64
	for _, pid := range s.set.list() {
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		if st.ticks >= s.ticks[pid] {
			ticks += st.ticks - s.ticks[pid]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.peak
	u.cpu = float64(ticks) / clockTicks / elapsed * 100
	return u
}
