package shm

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestMeasure measures the ring across processes. It only runs with
// RILL_SHM_MEASURE=1 (and without -race, whose numbers mean nothing):
//
//	RILL_SHM_MEASURE=1 go test -run TestMeasure -v ./sdk/shm/
//
// Throughput: one writer process, flow-controlled by the test so that no
// reader process is lapped, writes fixed-size packets for a while; every
// reader (waiting on its process's bell) reads every packet. packets/s is
// per reader, from the first packet written to the last packet read.
//
// Wake latency: the writer stamps CLOCK_MONOTONIC into each packet at
// 1000/s; readers blocked in Wait record now-stamp for the packet they wake
// up to.
//
// RILL_SHM_MEASURE_SECONDS sets the length of each run (default 2) and
// RILL_SHM_MEASURE_BELL=0 makes readers wait on the ring's futex word
// instead of their process's bell.
func TestMeasure(t *testing.T) {
	if os.Getenv("RILL_SHM_MEASURE") != "1" {
		t.Skip("set RILL_SHM_MEASURE=1 to measure")
	}
	if raceEnabled {
		t.Skip("measuring under the race detector is meaningless")
	}
	dur := 2 * time.Second
	if s := os.Getenv("RILL_SHM_MEASURE_SECONDS"); s != "" {
		if d, err := time.ParseDuration(s + "s"); err == nil {
			dur = d
		}
	}
	type row struct {
		readers, size       int
		pps, mbps, worstPPS float64
		dropped             uint64
		p50, p99, max       time.Duration
		wakes               int
	}
	var rows []row
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, n := range []int{1, 4, 16} {
			t.Run(fmt.Sprintf("%dKB-%dreaders", size>>10, n), func(t *testing.T) {
				rw := row{readers: n, size: size}
				// Throughput.
				func() {
					seg := newSegment(t, Options{})
					readers := startReaders(t, seg.Path, n, helperConfig{NoVerify: true})
					w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Fixed: size, Stamp: true, Pace: true})
					w.expect("ready", 10*time.Second)
					start := monoNow()
					w.send(fmt.Sprintf("for %d", dur.Milliseconds()))
					w.expect("wrote", time.Minute)
					w.send("end")
					w.expect("ended", 10*time.Second)
					var sum float64
					rw.worstPPS = -1
					for _, c := range readers {
						res := c.result(time.Minute)
						if res.Err != "" {
							t.Fatalf("reader: %s", res.Err)
						}
						pps := float64(res.Count) / time.Duration(res.EndNs-start).Seconds()
						sum += pps
						if rw.worstPPS < 0 || pps < rw.worstPPS {
							rw.worstPPS = pps
						}
						rw.dropped += res.Dropped
					}
					rw.pps = sum / float64(n)
					rw.mbps = rw.pps * float64(size) / 1e6
					seg.Close()
				}()
				// Wake latency.
				func() {
					seg := newSegment(t, Options{})
					readers := startReaders(t, seg.Path, n, helperConfig{Latency: true})
					w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Fixed: size, Stamp: true, Rate: 1000})
					w.expect("ready", 10*time.Second)
					w.send(fmt.Sprintf("for %d", dur.Milliseconds()))
					w.expect("wrote", time.Minute)
					w.send("end")
					w.expect("ended", 10*time.Second)
					var lat []int64
					for _, c := range readers {
						lat = append(lat, c.result(time.Minute).Lat...)
					}
					slices.Sort(lat)
					if len(lat) == 0 {
						t.Fatal("no latency samples")
					}
					rw.wakes = len(lat)
					rw.p50 = time.Duration(lat[len(lat)/2])
					rw.p99 = time.Duration(lat[len(lat)*99/100])
					rw.max = time.Duration(lat[len(lat)-1])
				}()
				rows = append(rows, rw)
			})
		}
	}
	t.Logf("%d CPUs, %v per run", numCPU(), dur)
	t.Logf("%-8s %-7s %12s %10s %14s %8s | %8s %9s %9s %9s", "payload", "readers", "packets/s", "MB/s", "worst reader", "dropped", "wakes", "p50", "p99", "max")
	for _, r := range rows {
		t.Logf("%-8s %-7d %12.0f %10.1f %14.0f %8d | %8d %9v %9v %9v",
			fmt.Sprintf("%dKB", r.size>>10), r.readers, r.pps, r.mbps, r.worstPPS, r.dropped,
			r.wakes, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.max.Round(time.Microsecond))
	}
}

// startReaders starts n reader processes on the bells of their processes
// and waits until they are ready.
func startReaders(t *testing.T, path string, n int, cfg helperConfig) []*child {
	t.Helper()
	cfg.Role, cfg.Path, cfg.Mode = "reader", path, StartLive
	cfg.Bell = os.Getenv("RILL_SHM_MEASURE_BELL") != "0" // 0: wait on the ring's futex word
	cs := make([]*child, n)
	for i := range cs {
		cs[i] = startChild(t, cfg)
	}
	for _, c := range cs {
		c.expect("ready", 10*time.Second)
	}
	return cs
}

func numCPU() int { return runtime.NumCPU() }
