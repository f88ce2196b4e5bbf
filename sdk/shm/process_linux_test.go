package shm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Cross-process tests re-execute the test binary as writer and reader
// processes (TestHelperProcess) on a real segment under /dev/shm. The parent
// plays the core: it creates the segment, starts the children, talks to them
// over stdin/stdout lines and removes every file at the end.

const helperEnv = "RILL_SHM_HELPER"

// helperConfig tells a child what to do; it travels as JSON in helperEnv.
type helperConfig struct {
	Role string // "writer" or "reader"
	Path string

	// writer
	Max       int    // largest payload (sizes vary), or
	Fixed     int    // fixed payload size
	SyncEvery uint64 // FlagSync on every n-th record
	Pace      bool   // stay half a ring ahead of the slowest reader at most
	Rate      int    // records per second, 0 = as fast as possible
	Stamp     bool   // PTS = CLOCK_MONOTONIC at write time (no checksums)

	// reader
	Mode       StartMode
	Bell       bool // wait on a bell rather than the ring's futex word
	PauseAfter int  // after this many records, wait for a line on stdin
	Latency    bool // record now - PTS for each record read right after Wait
	NoVerify   bool // count only (records from a Stamp writer)
}

// helperResult is what a reader child reports.
type helperResult struct {
	Count, Dropped, Bytes uint64
	First, Last           int64 // writer counters (DTS) of the first and last record
	FirstAfterPause       int64
	Err                   string // final error other than ErrEnded
	GoneAt                int64  // CLOCK_MONOTONIC when ErrWriterGone was returned
	StartNs, EndNs        int64  // CLOCK_MONOTONIC of the first and last record
	Lat                   []int64
}

func TestHelperProcess(t *testing.T) {
	env := os.Getenv(helperEnv)
	if env == "" {
		return
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var err error
	switch cfg.Role {
	case "writer":
		err = helperWriter(cfg)
	case "reader":
		err = helperReader(cfg)
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper %s %d: %v\n", cfg.Role, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperWriter writes records on command: "write N" writes N records and
// answers "wrote <total>", "stream" writes until killed, "end" ends the ring
// and exits.
func helperWriter(cfg helperConfig) error {
	seg, err := Open(cfg.Path, true)
	if err != nil {
		return err
	}
	defer seg.Close()
	r := seg.Ring
	tw := newTestWriter(NewWriter(r), max(cfg.Max, cfg.Fixed), cfg.SyncEvery)
	tw.fixed = cfg.Fixed
	start := time.Now()
	write := func() error {
		if cfg.Pace {
			limit := uint64(min(r.slots/2, r.dataSize/2/max(tw.max, 1)))
			for r.aheadOfReaders(tw.w.Seq()+1) >= limit {
				tw.w.Heartbeat()
				time.Sleep(20 * time.Microsecond)
			}
		}
		if cfg.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(tw.i) * time.Second / time.Duration(cfg.Rate))); d > 0 {
				time.Sleep(d)
			}
		}
		if cfg.Stamp {
			p := tw.buf[:cfg.Fixed]
			err := tw.w.Write(Meta{Kind: 1, DTS: int64(tw.i), PTS: monoNow()}, p)
			tw.i++
			return err
		}
		return tw.write()
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "write":
			n, _ := strconv.Atoi(arg)
			start = time.Now().Add(-time.Duration(tw.i) * time.Second / time.Duration(max(cfg.Rate, 1)))
			for range n {
				if err := write(); err != nil {
					return err
				}
			}
			fmt.Println("wrote", tw.i)
		case "for": // write for arg milliseconds
			ms, _ := strconv.Atoi(arg)
			until := time.Now().Add(time.Duration(ms) * time.Millisecond)
			start = time.Now().Add(-time.Duration(tw.i) * time.Second / time.Duration(max(cfg.Rate, 1)))
			for time.Now().Before(until) {
				for range 16 {
					if err := write(); err != nil {
						return err
					}
				}
			}
			fmt.Println("wrote", tw.i)
		case "stream":
			for {
				if err := write(); err != nil {
					return err
				}
			}
		case "end":
			r.End()
			fmt.Println("ended")
			return nil
		}
	}
	return sc.Err()
}

// aheadOfReaders returns how many records seq is ahead of the slowest
// registered reader (test flow control; the ring itself never waits).
func (r *Ring) aheadOfReaders(seq uint64) uint64 {
	var ahead uint64
	for i := range readerSlots {
		so := r.slotOff(i)
		if u32at(r.mem, so+sPID).Load() == 0 {
			continue
		}
		if pos := u64at(r.mem, so+sPos).Load(); pos < seq {
			ahead = max(ahead, seq-pos)
		}
	}
	return ahead
}

func helperReader(cfg helperConfig) error {
	seg, err := Open(cfg.Path, false)
	if err != nil {
		return err
	}
	defer seg.Close()
	rd := NewReader(seg.Ring, cfg.Mode)
	defer rd.Close()
	if cfg.Bell {
		b, err := OpenBell(filepath.Dir(cfg.Path), fmt.Sprintf("%s-bell-%d", filepath.Base(cfg.Path), os.Getpid()))
		if err != nil {
			return err
		}
		defer b.Close()
		if err := rd.UseBell(b); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	var res helperResult
	res.First, res.Last, res.FirstAfterPause = -1, -1, -1
	var buf []byte
	stdin := bufio.NewScanner(os.Stdin)
	woke := false
	paused := false
	for {
		rec, err := rd.Next(buf)
		if errors.Is(err, ErrEmpty) {
			if err := rd.Wait(context.Background()); err != nil {
				if errors.Is(err, ErrWriterGone) {
					res.GoneAt = monoNow()
				}
				res.Err = err.Error()
				break
			}
			woke = true
			continue
		}
		if errors.Is(err, ErrEnded) {
			break
		}
		if err != nil {
			return err
		}
		now := monoNow()
		buf = rec.Payload
		i := rec.DTS
		if cfg.Latency {
			if woke {
				res.Lat = append(res.Lat, now-rec.PTS)
			}
		} else if cfg.NoVerify {
		} else if err := verify(rec, cfg.SyncEvery); err != nil {
			return err
		}
		woke = false
		if res.Count == 0 {
			res.First, res.StartNs = i, now
		} else if i <= res.Last {
			return fmt.Errorf("record %d after %d", i, res.Last)
		} else if i != res.Last+1 && rec.Flags&FlagSync == 0 && cfg.SyncEvery != 0 {
			return fmt.Errorf("resumed at %d after %d, not a sync point", i, res.Last)
		}
		if paused && res.FirstAfterPause < 0 {
			res.FirstAfterPause = i
		}
		res.Last, res.EndNs = i, now
		res.Count++
		res.Bytes += uint64(len(rec.Payload))
		if cfg.PauseAfter > 0 && res.Count == uint64(cfg.PauseAfter) {
			fmt.Println("paused")
			stdin.Scan()
			paused = true
		}
	}
	res.Dropped = rd.Dropped()
	rd.Close() // before reporting: the parent checks the reader table next
	b, _ := json.Marshal(res)
	fmt.Printf("result %s\n", b)
	return nil
}

// child is a running helper process.
type child struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr strings.Builder
	waited chan error
}

func startChild(t testing.TB, cfg helperConfig) *child {
	t.Helper()
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(js))
	c := &child{t: t, cmd: cmd, lines: make(chan string, 16), waited: make(chan error, 1)}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.waited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.lines // drained by expect, or closed
		for range c.lines {
		}
	})
	return c
}

// expect waits for a stdout line starting with prefix and returns the rest.
func (c *child) expect(prefix string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("child %d exited while waiting for %q: %s", c.cmd.Process.Pid, prefix, c.stderr.String())
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest)
			}
		case <-deadline:
			c.t.Fatalf("child %d: no %q after %v", c.cmd.Process.Pid, prefix, timeout)
		}
	}
}

func (c *child) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

func (c *child) result(timeout time.Duration) helperResult {
	c.t.Helper()
	var res helperResult
	if err := json.Unmarshal([]byte(c.expect("result ", timeout)), &res); err != nil {
		c.t.Fatal(err)
	}
	return res
}

// kill sends SIGKILL and reaps the child (a zombie still counts as alive).
func (c *child) kill() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	for range c.lines {
	}
	<-c.waited
}

var segCount atomic.Int64

// newSegment creates a segment under /dev/shm named after the test and
// this process, and removes it and the children's bells at the end.
func newSegment(t testing.TB, opts Options) *Segment {
	t.Helper()
	if testing.Short() {
		t.Skip("cross-process test")
	}
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Skip("no /dev/shm")
	}
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	path := fmt.Sprintf("/dev/shm/rill-shm-test-%d-%s-%d", os.Getpid(), name, segCount.Add(1))
	seg, err := Create(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		seg.Close()
		bells, _ := filepath.Glob(path + "-bell-*") // left by killed readers
		for _, f := range append(bells, path) {
			os.Remove(f)
		}
	})
	return seg
}

// scaled returns n, or n/div under the race detector (children are race
// builds too).
func scaled(n, div int) int {
	if raceEnabled {
		return n / div
	}
	return n
}

func TestProcessFanout(t *testing.T) {
	opts := Options{DataSize: 256 << 10, Slots: 128, ConfigSize: 4096}
	seg := newSegment(t, opts)
	const syncEvery = 25
	var readers []*child
	for i := range 4 {
		readers = append(readers, startChild(t, helperConfig{
			Role: "reader", Path: seg.Path, Mode: StartGOP, SyncEvery: syncEvery, Bell: i%2 == 0,
		}))
	}
	for _, c := range readers {
		c.expect("ready", 10*time.Second)
	}
	// Half a ring of the largest payload fits in half the data region, so
	// with pacing nobody is lapped while the data wraps many times.
	w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Max: 2048, SyncEvery: syncEvery, Pace: true})
	w.expect("ready", 10*time.Second)
	n := scaled(20000, 4)
	w.send(fmt.Sprintf("write %d", n))
	w.expect("wrote", time.Minute)
	w.send("end")
	w.expect("ended", 10*time.Second)
	st := seg.Ring.Stats()
	if st.WriteSeq != uint64(n) || st.BytesWritten < uint64(opts.DataSize)*3 {
		t.Errorf("stats %+v: want %d records wrapping the data region several times", st, n)
	}
	for i, c := range readers {
		res := c.result(time.Minute)
		if res.Err != "" || res.Count != uint64(n) || res.Dropped != 0 || res.First != 0 || res.Last != int64(n-1) {
			t.Errorf("reader %d (bell %v): %+v, want %d records, none dropped", i, i%2 == 0, res, n)
		}
	}
	if st := seg.Ring.Stats(); st.Readers != 0 {
		t.Errorf("%d reader slots left after the readers exited", st.Readers)
	}
}

func TestProcessReaderKilled(t *testing.T) {
	seg := newSegment(t, Options{DataSize: 1 << 20, Slots: 1024, ConfigSize: 4096})
	const syncEvery = 10
	var readers []*child
	for i := range 3 {
		readers = append(readers, startChild(t, helperConfig{
			Role: "reader", Path: seg.Path, Mode: StartGOP, SyncEvery: syncEvery, Bell: i != 1,
		}))
	}
	for _, c := range readers {
		c.expect("ready", 10*time.Second)
	}
	w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Max: 1024, SyncEvery: syncEvery, Rate: 4000})
	w.expect("ready", 10*time.Second)
	w.send("write 1000")
	time.Sleep(100 * time.Millisecond) // the victim is busy reading
	victim := readers[0]
	if st := seg.Ring.Stats(); st.Readers != 3 {
		t.Fatalf("%d readers registered before the kill", st.Readers)
	}
	victim.kill()
	w.expect("wrote", time.Minute)
	w.send("write 1000")
	w.expect("wrote", time.Minute)
	w.send("end")
	w.expect("ended", 10*time.Second)
	for i, c := range readers[1:] {
		res := c.result(time.Minute)
		if res.Err != "" || res.Count != 2000 || res.Dropped != 0 {
			t.Errorf("surviving reader %d: %+v", i+1, res)
		}
	}
	// The survivors have closed their slots; the victim's is left behind
	// and can be reclaimed.
	if st := seg.Ring.Stats(); st.Readers != 1 || st.ReaderSlots[0].PID != victim.cmd.Process.Pid {
		t.Fatalf("reader table after the kill: %+v", st.ReaderSlots)
	}
	if n := seg.Ring.Reclaim(); n != 1 {
		t.Errorf("Reclaim = %d, want 1", n)
	}
	if st := seg.Ring.Stats(); st.Readers != 0 {
		t.Errorf("%d readers after Reclaim", st.Readers)
	}
}

func TestProcessWriterKilled(t *testing.T) {
	seg := newSegment(t, Options{DataSize: 4 << 20, Slots: 256, ConfigSize: 4096})
	const syncEvery = 5
	var readers []*child
	for i := range 2 {
		readers = append(readers, startChild(t, helperConfig{
			Role: "reader", Path: seg.Path, Mode: StartGOP, SyncEvery: syncEvery, Bell: i == 0,
		}))
	}
	for _, c := range readers {
		c.expect("ready", 10*time.Second)
	}
	// Large payloads at full speed: the kill lands mid-copy most of the time.
	w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Max: 1 << 20, SyncEvery: syncEvery})
	w.expect("ready", 10*time.Second)
	w.send("stream")
	deadline := time.Now().Add(10 * time.Second)
	for seg.Ring.Stats().WriteSeq < 200 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	killed := monoNow()
	w.kill()
	written := seg.Ring.Stats().WriteSeq
	for i, c := range readers {
		res := c.result(10 * time.Second)
		after := time.Duration(res.GoneAt - killed)
		t.Logf("reader %d: %d records (%d dropped) of %d, writer gone noticed after %v", i, res.Count, res.Dropped, written, after)
		if !strings.Contains(res.Err, ErrWriterGone.Error()) {
			t.Errorf("reader %d ended with %q, want ErrWriterGone", i, res.Err)
		}
		if after <= 0 || after > 1500*time.Millisecond {
			t.Errorf("reader %d noticed the dead writer after %v", i, after)
		}
		if res.Count == 0 {
			t.Errorf("reader %d read nothing", i)
		}
	}
}

func TestProcessLapped(t *testing.T) {
	seg := newSegment(t, Options{DataSize: 256 << 10, Slots: 128, ConfigSize: 4096})
	const syncEvery = 16
	rdr := startChild(t, helperConfig{Role: "reader", Path: seg.Path, Mode: StartGOP, SyncEvery: syncEvery, Bell: true, PauseAfter: 100})
	rdr.expect("ready", 10*time.Second)
	w := startChild(t, helperConfig{Role: "writer", Path: seg.Path, Max: 2048, SyncEvery: syncEvery})
	w.expect("ready", 10*time.Second)
	w.send("write 100") // fits in the ring: the reader sees all of it
	w.expect("wrote", 10*time.Second)
	rdr.expect("paused", 10*time.Second)
	w.send("write 1000") // laps the paused reader several times
	w.expect("wrote", 10*time.Second)
	rdr.send("resume")
	w.send("write 100")
	w.expect("wrote", 10*time.Second)
	w.send("end")
	w.expect("ended", 10*time.Second)
	res := rdr.result(10 * time.Second)
	if res.Err != "" || res.Dropped == 0 {
		t.Fatalf("lapped reader: %+v, want drops", res)
	}
	if res.FirstAfterPause%syncEvery != 0 || res.FirstAfterPause <= 100 {
		t.Errorf("resumed at %d, want a sync point after 100", res.FirstAfterPause)
	}
	if res.Last != 1199 || res.Count+res.Dropped != 1200 {
		t.Errorf("last %d, count %d + dropped %d, want 1199 and 1200", res.Last, res.Count, res.Dropped)
	}
	t.Logf("read %d, dropped %d, resumed at %d", res.Count, res.Dropped, res.FirstAfterPause)
}
