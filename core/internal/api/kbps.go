package api

import (
	"sync"
	"time"
)

// kbpsWindow is SRS's rate window (kbps.recv_30s, kbps.send_30s).
const kbpsWindow = 30 * time.Second

// kbpsTracker turns byte counters into SRS's 30-second rates. Each counter
// is known to start at 0 at a given time (a publish, a client's connect),
// so the first poll already answers the average since then instead of 0,
// and later polls the rate over the last 30 s.
type kbpsTracker struct {
	mu        sync.Mutex
	series    map[string]*kbpsSeries
	lastPrune time.Time
}

type kbpsSeries struct {
	samples []kbpsSample // oldest first; the first is at least 30 s old once the series is
	seen    time.Time
}

type kbpsSample struct {
	at    time.Time
	bytes uint64
}

// rate records that counter id held bytes at time at (a counter that was 0
// at since; since may be zero when unknown) and returns its kbps.
func (k *kbpsTracker) rate(id string, since, at time.Time, bytes uint64) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.series == nil {
		k.series = map[string]*kbpsSeries{}
	}
	k.prune(at)
	s := k.series[id]
	if s == nil {
		s = &kbpsSeries{}
		k.series[id] = s
	}
	s.seen = at
	if n := len(s.samples); n > 0 && bytes < s.samples[n-1].bytes {
		s.samples = s.samples[:0] // the counter restarted (a republish)
	}
	if len(s.samples) == 0 && !since.IsZero() && since.Before(at) {
		s.samples = append(s.samples, kbpsSample{since, 0})
	}
	if n := len(s.samples); n == 0 || at.After(s.samples[n-1].at) {
		s.samples = append(s.samples, kbpsSample{at, bytes})
	}
	// Keep one sample at least a window old as the base, and at most 64.
	for len(s.samples) > 2 && at.Sub(s.samples[1].at) >= kbpsWindow {
		s.samples = s.samples[1:]
	}
	if len(s.samples) > 64 {
		s.samples = append(s.samples[:0], s.samples[len(s.samples)-64:]...)
	}
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt < 0.5 {
		return 0
	}
	return int(float64(last.bytes-first.bytes) * 8 / 1000 / dt)
}

// prune forgets counters not polled for a while (gone streams and clients).
func (k *kbpsTracker) prune(now time.Time) {
	if now.Sub(k.lastPrune) < kbpsWindow {
		return
	}
	k.lastPrune = now
	for id, s := range k.series {
		if now.Sub(s.seen) > 4*kbpsWindow {
			delete(k.series, id)
		}
	}
}
