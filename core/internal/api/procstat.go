package api

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procSampler reads /proc to fill SRS's summaries: CPU percentages need two
// samples, so the previous one is kept.
type procSampler struct {
	mu       sync.Mutex
	lastAt   time.Time
	lastSelf uint64 // utime+stime ticks of this process
	lastSys  [2]uint64
	selfPct  float64
	sysPct   float64
}

const clkTck = 100 // USER_HZ on Linux

func (s *procSampler) sample() (selfPct, sysPct float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	self := selfTicks()
	busy, total := sysTicks()
	if !s.lastAt.IsZero() {
		if dt := now.Sub(s.lastAt).Seconds(); dt > 0.05 {
			s.selfPct = float64(self-s.lastSelf) / clkTck / dt * 100
		}
		if dtot := total - s.lastSys[1]; dtot > 0 {
			s.sysPct = float64(busy-s.lastSys[0]) / float64(dtot) * 100
		}
	}
	if now.Sub(s.lastAt) > 500*time.Millisecond || s.lastAt.IsZero() {
		s.lastAt, s.lastSelf, s.lastSys = now, self, [2]uint64{busy, total}
	}
	return s.selfPct, s.sysPct
}

// selfTicks returns utime+stime of this process from /proc/self/stat.
func selfTicks() uint64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	return statTicks(b)
}

func statTicks(b []byte) uint64 {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// after ")" fields start at state (field 3); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// sysTicks returns busy and total jiffies from /proc/stat.
func sysTicks() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// meminfo returns /proc/meminfo values in kB.
func meminfo() map[string]uint64 {
	out := map[string]uint64{}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		out[k] = n
	}
	return out
}

// rssKB returns the resident set size of pid ("self" for this process) in kB.
func rssKB(pid string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func loadavg() (l1, l5, l15 float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		l1, _ = strconv.ParseFloat(f[0], 64)
		l5, _ = strconv.ParseFloat(f[1], 64)
		l15, _ = strconv.ParseFloat(f[2], 64)
	}
	return
}

func uptime() (up, idle float64) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return
	}
	f := strings.Fields(string(b))
	if len(f) >= 2 {
		up, _ = strconv.ParseFloat(f[0], 64)
		idle, _ = strconv.ParseFloat(f[1], 64)
	}
	return
}

func numCPU() int { return runtime.NumCPU() }

// cpuNames are the /proc/stat "cpu" counters SRS reports in
// system_proc_stats (get_proc_system_stat; guest_nice is left out as there).
var cpuNames = []string{"user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal", "guest"}

// cpuCounters reads the aggregate "cpu" line of /proc/stat; counters the
// kernel does not have are 0.
func cpuCounters(b []byte) map[string]int64 {
	out := make(map[string]int64, len(cpuNames))
	for _, n := range cpuNames {
		out[n] = 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		for i, n := range cpuNames {
			if i+1 < len(f) {
				v, _ := strconv.ParseInt(f[i+1], 10, 64)
				out[n] = v
			}
		}
		break
	}
	return out
}
