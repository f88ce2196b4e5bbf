package shm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"
)

var small = Options{DataSize: 64 << 10, Slots: 64, ConfigSize: 256}

func TestSize(t *testing.T) {
	if got, want := Size(Options{}), Size(Options{DataSize: DefaultDataSize, Slots: DefaultSlots, ConfigSize: DefaultConfigSize}); got != want {
		t.Errorf("Size(defaults) = %d, want %d", got, want)
	}
	if s := Size(Options{}); s < DefaultDataSize || s%pageSize != 0 {
		t.Errorf("Size(defaults) = %d", s)
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"small data", Options{DataSize: 100}},
		{"huge data", Options{DataSize: math.MaxInt}},
		{"negative data", Options{DataSize: -1}},
		{"slots not power of two", Options{Slots: 100}},
		{"too few slots", Options{Slots: 4}},
		{"negative config", Options{ConfigSize: -5}},
		{"huge config", Options{ConfigSize: 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s := Size(tc.opts); s != 0 {
				t.Errorf("Size = %d, want 0", s)
			}
			if _, err := Format(make([]byte, 1<<20), tc.opts, 0); err == nil {
				t.Error("Format accepted invalid options")
			}
		})
	}
}

func TestFormatAttach(t *testing.T) {
	mem := make([]byte, Size(small)+100)
	r, err := Format(mem, small, 42)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Attach(mem)
	if err != nil {
		t.Fatal(err)
	}
	if a.layout != r.layout || a.MaxPayload() != small.DataSize/4 {
		t.Errorf("Attach layout %+v, Format %+v", a.layout, r.layout)
	}
	if s := a.Stats(); s.WriterPID != 42 || s.WriteSeq != 0 || s.Ended || s.HeartbeatAge > time.Second {
		t.Errorf("stats %+v", s)
	}
	if _, err := Format(mem[:Size(small)-1], small, 0); err == nil {
		t.Error("Format accepted short memory")
	}
	if _, err := Format(mem[1:], small, 0); err == nil {
		t.Error("Format accepted misaligned memory")
	}
}

func TestAttachCorruptHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(mem []byte)
	}{
		{"magic", func(m []byte) { u64at(m, hMagic).Store(1) }},
		{"version", func(m []byte) { u32at(m, hVersion).Store(99) }},
		{"reader slots", func(m []byte) { u32at(m, hReaderSlots).Store(1 << 31) }},
		{"data size huge", func(m []byte) { u64at(m, hDataSize).Store(1 << 63) }},
		{"data size zero", func(m []byte) { u64at(m, hDataSize).Store(0) }},
		{"data size unaligned", func(m []byte) { u64at(m, hDataSize).Add(8) }},
		{"data size larger", func(m []byte) { u64at(m, hDataSize).Add(1 << 20) }},
		{"slots not power of two", func(m []byte) { u32at(m, hSlots).Store(65) }},
		{"slots zero", func(m []byte) { u32at(m, hSlots).Store(0) }},
		{"slots huge", func(m []byte) { u32at(m, hSlots).Store(1 << 31) }},
		{"config size", func(m []byte) { u32at(m, hConfigSize).Store(1<<32 - 64) }},
		{"config zero", func(m []byte) { u32at(m, hConfigSize).Store(0) }},
		{"total", func(m []byte) { u64at(m, hTotal).Add(pageSize) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := make([]byte, Size(small))
			if _, err := Format(mem, small, 0); err != nil {
				t.Fatal(err)
			}
			tc.mutate(mem)
			if _, err := Attach(mem); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Attach = %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("short", func(t *testing.T) {
		mem := make([]byte, Size(small))
		Format(mem, small, 0)
		for _, n := range []int{0, 8, areaOff, Size(small) - 1} {
			if _, err := Attach(mem[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Attach(%d bytes) = %v, want ErrCorrupt", n, err)
			}
		}
	})
}

func TestCorruptRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(r *Ring)
	}{
		{"entry length", func(r *Ring) { u32at(r.mem, r.entryOff(1)+eLen).Store(1 << 30) }},
		{"entry offset unaligned", func(r *Ring) { u64at(r.mem, r.entryOff(1)+eOff).Add(3) }},
		{"entry offset beyond reserve", func(r *Ring) { u64at(r.mem, r.entryOff(1)+eOff).Store(1 << 40) }},
		{"write seq huge", func(r *Ring) { r.writeSeq.Store(1<<64 - 1) }},
		{"write seq backwards", func(r *Ring) { r.writeSeq.Store(0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHeapRing(t, small)
			rd := NewReader(r, StartGOP)
			tw := newTestWriter(NewWriter(r), 1000, 1)
			tw.fixed = 100
			tw.writeN(t, 3)
			if tc.name == "write seq backwards" {
				drain(t, rd, 1)
			}
			tc.mutate(r)
			if _, err := rd.Next(nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Next = %v, want ErrCorrupt", err)
			}
			if !rd.ready() {
				t.Error("Wait would block on a corrupt ring")
			}
		})
	}
}

func TestOrderAndWrap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		n     int
		max   int // 0: MaxPayload
		fixed int
		batch int // records written between drains
	}{
		{"few small", small, 10, 100, 0, 10},
		{"zero length", small, 10, 0, 0, 5},
		{"index wraps", small, 1000, 64, 0, 50},
		{"data wraps unaligned sizes", small, 500, 0, 0, 3},
		{"max payloads", small, 50, 0, small.DataSize / 4, 3},
		{"odd sizes wrap", small, 300, 0, 16381, 3},
		{"defaults big payloads", Options{}, 20, 0, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHeapRing(t, tc.opts)
			rd := NewReader(r, StartLive)
			defer rd.Close()
			max := tc.max
			if max == 0 && tc.name != "zero length" {
				max = r.MaxPayload()
			}
			tw := newTestWriter(NewWriter(r), max, 7)
			tw.fixed = tc.fixed
			var got []uint64
			for len(got) < tc.n {
				tw.writeN(t, tc.batch)
				g, err := drain(t, rd, 7)
				if !errors.Is(err, ErrEmpty) {
					t.Fatalf("drain: %v", err)
				}
				got = append(got, g...)
			}
			for i, v := range got {
				if v != uint64(i) {
					t.Fatalf("record %d has counter %d", i, v)
				}
			}
			if rd.Dropped() != 0 {
				t.Errorf("dropped %d", rd.Dropped())
			}
			if s := r.Stats(); s.WriteSeq != uint64(len(got)) {
				t.Errorf("write seq %d, read %d", s.WriteSeq, len(got))
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	if err := w.Write(Meta{}, make([]byte, r.MaxPayload()+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write(max+1) = %v, want ErrTooLarge", err)
	}
	if err := w.Write(Meta{}, make([]byte, r.MaxPayload())); err != nil {
		t.Errorf("Write(max) = %v", err)
	}
	if err := w.SetConfig(0, Meta{}, make([]byte, small.ConfigSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("SetConfig(max+1) = %v, want ErrTooLarge", err)
	}
	for _, slot := range []int{-1, ConfigSlots} {
		if err := w.SetConfig(slot, Meta{}, []byte{1}); err == nil {
			t.Errorf("SetConfig(slot %d) accepted", slot)
		}
	}
}

func TestConfigs(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	rd := NewReader(r, StartGOP)
	if c := rd.Configs(); len(c) != 0 {
		t.Fatalf("fresh ring has configs %v", c)
	}
	vsh := bytes.Repeat([]byte{7}, small.ConfigSize)
	w.SetConfig(0, Meta{Kind: 1, Codec: 7, DTS: 5}, vsh)
	w.SetConfig(2, Meta{Kind: 3}, []byte("meta"))
	w.SetConfig(2, Meta{Kind: 3, PTS: 9}, []byte("meta v2"))
	w.SetConfig(1, Meta{Kind: 2}, []byte("gone"))
	w.SetConfig(1, Meta{Kind: 2}, nil) // cleared
	got := rd.Configs()
	if fromRing := r.Configs(); len(fromRing) != len(got) {
		t.Errorf("Ring.Configs has %d slots, Reader.Configs %d", len(fromRing), len(got))
	}
	want := []Record{
		{Meta: Meta{Kind: 1, Codec: 7, DTS: 5}, Seq: 1, Payload: vsh},
		{Meta: Meta{Kind: 3, PTS: 9}, Seq: 2, Payload: []byte("meta v2")},
	}
	if len(got) != len(want) {
		t.Fatalf("configs %+v", got)
	}
	for i := range want {
		if got[i].Meta != want[i].Meta || got[i].Seq != want[i].Seq || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Errorf("config %d = %+v, want %+v", i, got[i].Meta, want[i].Meta)
		}
	}
	// A writer that died mid-update leaves an odd seqlock: the slot is
	// skipped, and the next writer repairs it.
	u64at(r.mem, r.configOffset(0)+cSeq).Add(1)
	if got := rd.Configs(); len(got) != 1 {
		t.Errorf("configs with a torn slot: %d", len(got))
	}
	NewWriter(r).SetConfig(0, Meta{}, []byte{1})
	if got := rd.Configs(); len(got) != 2 {
		t.Errorf("configs after repair: %d", len(got))
	}
}

func TestStartModes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      StartMode
		before    int // records before the reader starts
		syncEvery uint64
		after     int
		first     uint64 // counter of the first record read
	}{
		{"gop at newest sync", StartGOP, 25, 10, 5, 20},
		{"gop on sync record", StartGOP, 21, 10, 5, 20},
		{"gop empty ring", StartGOP, 0, 10, 5, 0},
		{"gop without sync points", StartGOP, 25, 0, 5, 25},
		{"gop overwritten waits for next", StartGOP, 200, 100, 30, 200},
		{"live", StartLive, 25, 10, 5, 25},
		{"live empty ring", StartLive, 0, 10, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHeapRing(t, small) // 64 slots
			tw := newTestWriter(NewWriter(r), 100, tc.syncEvery)
			tw.writeN(t, tc.before)
			rd := NewReader(r, tc.mode)
			tw.writeN(t, tc.after)
			got, _ := drain(t, rd, tc.syncEvery)
			if len(got) == 0 || got[0] != tc.first {
				t.Fatalf("read %v, want first %d", got, tc.first)
			}
			if last := got[len(got)-1]; last != tw.i-1 || uint64(len(got)) != tw.i-tc.first {
				t.Errorf("read %d..%d (%d records), wrote up to %d", got[0], last, len(got), tw.i-1)
			}
			if rd.Dropped() != 0 {
				t.Errorf("dropped %d before the first record", rd.Dropped())
			}
		})
	}
}

func TestLapped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fixed     int
		syncEvery uint64
		lapBy     int // records written while the reader sleeps
	}{
		{"by index", 10, 10, 3 * 64},
		{"by index sync just written", 10, 10, 64*3 + 1},
		{"by bytes", 10000, 4, 20},
		{"max payloads", 16 << 10, 3, 9},
		{"no sync points", 10, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newHeapRing(t, small)
			tw := newTestWriter(NewWriter(r), tc.fixed, tc.syncEvery)
			tw.fixed = tc.fixed
			rd := NewReader(r, StartLive)
			tw.writeN(t, 3)
			got, _ := drain(t, rd, tc.syncEvery)
			tw.writeN(t, tc.lapBy)
			after, _ := drain(t, rd, tc.syncEvery)
			if len(after) == 0 {
				// Lapped to the live edge and waiting for a sync point.
				tw.writeN(t, int(tc.syncEvery)+1)
				after, _ = drain(t, rd, tc.syncEvery)
			}
			if len(after) == 0 {
				t.Fatal("nothing read after the lap")
			}
			first := after[0]
			if tc.syncEvery != 0 && first%tc.syncEvery != 0 {
				t.Errorf("resumed at %d, not a sync point", first)
			}
			for i, v := range after {
				if v != first+uint64(i) {
					t.Fatalf("gap after resuming: %v", after)
				}
			}
			if want := first - uint64(len(got)); rd.Dropped() != want {
				t.Errorf("dropped %d, want %d (read %d, resumed at %d)", rd.Dropped(), want, len(got), first)
			}
			if rd.Dropped() == 0 {
				t.Error("no drops counted")
			}
		})
	}
}

func TestEnd(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	tw := newTestWriter(w, 100, 1)
	rd := NewReader(r, StartLive)
	tw.writeN(t, 5)
	r.End()
	r.End() // idempotent
	if !r.Ended() || !r.Stats().Ended {
		t.Fatal("not ended")
	}
	if err := tw.write(); !errors.Is(err, ErrEnded) {
		t.Errorf("Write after End = %v", err)
	}
	got, err := drain(t, rd, 1)
	if !errors.Is(err, ErrEnded) || len(got) != 5 {
		t.Errorf("drain = %d records, %v; want 5, ErrEnded", len(got), err)
	}
	if err := rd.Wait(context.Background()); err != nil {
		t.Errorf("Wait on ended ring = %v", err)
	}
	late := NewReader(r, StartGOP)
	if got, err := drain(t, late, 1); !errors.Is(err, ErrEnded) || len(got) != 1 {
		t.Errorf("late reader: %d records, %v; want the last GOP (1), ErrEnded", len(got), err)
	}
}

func TestWait(t *testing.T) {
	t.Run("data", func(t *testing.T) {
		r := newHeapRing(t, small)
		w := NewWriter(r)
		rd := NewReader(r, StartLive)
		go func() {
			time.Sleep(20 * time.Millisecond)
			w.Write(Meta{}, []byte("x"))
		}()
		if err := rd.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if rec, err := rd.Next(nil); err != nil || string(rec.Payload) != "x" {
			t.Fatalf("Next = %q, %v", rec.Payload, err)
		}
	})
	t.Run("end wakes", func(t *testing.T) {
		// Scheduling noise on a loaded machine can exceed the wait slice,
		// so the fastest of a few tries must beat it clearly.
		best := time.Hour
		for range 5 {
			r := newHeapRing(t, small)
			rd := NewReader(r, StartLive)
			go func() {
				time.Sleep(10 * time.Millisecond)
				r.End()
			}()
			start := time.Now()
			if err := rd.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			best = min(best, time.Since(start))
		}
		if best > 60*time.Millisecond {
			t.Errorf("woken after %v at best: End did not wake the futex", best)
		}
	})
	t.Run("context", func(t *testing.T) {
		r := newHeapRing(t, small)
		NewWriter(r)
		rd := NewReader(r, StartLive)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		if err := rd.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v", err)
		}
	})
	t.Run("stale heartbeat", func(t *testing.T) {
		r := newHeapRing(t, small)
		NewWriter(r)
		r.heartbeat.Store(uint64(monoNow() - int64(4*time.Second)))
		rd := NewReader(r, StartLive)
		if err := rd.Wait(context.Background()); !errors.Is(err, ErrWriterGone) {
			t.Fatalf("Wait = %v, want ErrWriterGone", err)
		}
	})
	t.Run("dead writer pid", func(t *testing.T) {
		r := newHeapRing(t, small)
		r.writerPID.Store(uint32(deadPID(t)))
		rd := NewReader(r, StartLive)
		start := time.Now()
		if err := rd.Wait(context.Background()); !errors.Is(err, ErrWriterGone) {
			t.Fatalf("Wait = %v, want ErrWriterGone", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v", d)
		}
	})
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestReaderTable(t *testing.T) {
	r := newHeapRing(t, small)
	var rds []*Reader
	for range readerSlots {
		rds = append(rds, NewReader(r, StartLive))
	}
	if s := r.Stats(); s.Readers != readerSlots {
		t.Fatalf("%d readers registered", s.Readers)
	}
	extra := NewReader(r, StartLive) // table full: reads, but without a slot
	if extra.so >= 0 {
		t.Error("extra reader got a slot")
	}
	rds[5].Close()
	rds[5].Close() // idempotent
	if _, err := rds[5].Next(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close = %v", err)
	}
	if s := r.Stats(); s.Readers != readerSlots-1 {
		t.Errorf("%d readers after Close", s.Readers)
	}
	// A slot of a dead process is reclaimed.
	dead := uint32(deadPID(t))
	u32at(r.mem, r.slotOff(9)+sPID).Store(dead)
	u32at(r.mem, r.slotOff(9)+sSleeping).Store(1)
	r.sleepers.Add(1)
	if n := r.Reclaim(); n != 1 {
		t.Errorf("Reclaim = %d, want 1", n)
	}
	if r.sleepers.Load() != 0 {
		t.Errorf("sleepers %d after reclaim", r.sleepers.Load())
	}
	for _, rd := range rds {
		rd.Close()
	}
	if s := r.Stats(); s.Readers != 0 {
		t.Errorf("%d readers after closing all", s.Readers)
	}
}

// TestWakeOnlySleepers checks that the writer wakes (bumps the futex word)
// only for announced sleepers, and that a sleeper that died costs one wake.
func TestWakeOnlySleepers(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	rd := NewReader(r, StartLive)
	defer rd.Close()
	bumps := func() uint32 {
		before := r.futex.Load()
		w.Write(Meta{}, nil)
		return r.futex.Load() - before
	}
	if n := bumps(); n != 0 {
		t.Errorf("%d wakes with nobody asleep", n)
	}
	// A reader announced its sleep and was killed before it could undo it.
	rd.sleeping.Store(1)
	r.sleepers.Add(1)
	if n := bumps(); n != 1 {
		t.Errorf("%d wakes for one sleeper", n)
	}
	if n := bumps(); n != 0 {
		t.Errorf("%d wakes after the sleeper was woken", n)
	}
	if r.sleepers.Load() != 0 || rd.sleeping.Load() != 0 {
		t.Errorf("sleepers %d, flag %d", r.sleepers.Load(), rd.sleeping.Load())
	}
}

// TestConcurrent runs a full-speed writer against readers of different
// speeds on a small ring: each reader checks every record it gets and that
// gaps are exactly what Dropped counts.
func TestConcurrent(t *testing.T) {
	n := 20000
	if raceEnabled {
		n = 5000
	}
	const syncEvery = 8
	r := newHeapRing(t, Options{DataSize: 64 << 10, Slots: 64, ConfigSize: 64})
	tw := newTestWriter(NewWriter(r), 4<<10, syncEvery)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 4 {
		rd := NewReader(r, StartGOP)
		wg.Go(func() {
			defer rd.Close()
			var buf []byte
			var read, lastSeq uint64
			last, first := int64(-1), int64(-1)
			for {
				rec, err := rd.Next(buf)
				switch {
				case errors.Is(err, ErrEmpty):
					if err := rd.Wait(context.Background()); err != nil {
						errc <- err
						return
					}
					continue
				case errors.Is(err, ErrEnded):
					if last != int64(n)-1 {
						errc <- errors.New("ended before the last record")
					}
					// Drops count from the first record read.
					if read+rd.Dropped() != uint64(last-first)+1 {
						errc <- fmt.Errorf("read %d + dropped %d != %d written from %d", read, rd.Dropped(), last-first+1, first)
					}
					t.Logf("reader %d: first %d, read %d, dropped %d", i, first, read, rd.Dropped())
					return
				case err != nil:
					errc <- err
					return
				}
				buf = rec.Payload
				if err := verify(rec, syncEvery); err != nil {
					errc <- err
					return
				}
				if rec.DTS <= last || rec.Seq <= lastSeq {
					errc <- errors.New("out of order")
					return
				}
				if rec.DTS != last+1 && rec.Flags&FlagSync == 0 {
					errc <- errors.New("resumed after a gap at a non-sync record")
					return
				}
				if first < 0 {
					first = rec.DTS
				}
				last, lastSeq = rec.DTS, rec.Seq
				read++
				if i == 3 && read%100 == 0 {
					time.Sleep(time.Millisecond) // a slow reader
				}
			}
		})
	}
	tw.writeN(t, n)
	r.End()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestZeroAllocs(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	rd := NewReader(r, StartLive)
	p := make([]byte, 1000)
	buf := make([]byte, 1000)
	a := testing.AllocsPerRun(1000, func() {
		w.Write(Meta{Flags: FlagSync}, p)
		if _, err := rd.Next(buf); err != nil {
			t.Fatal(err)
		}
	})
	if a != 0 {
		t.Errorf("Write+Next allocate %v times", a)
	}
}

func TestZeroLengthAndMeta(t *testing.T) {
	r := newHeapRing(t, small)
	w := NewWriter(r)
	rd := NewReader(r, StartLive)
	want := Meta{Kind: 200, Codec: 255, Flags: 0xfffffffe, DTS: -1 << 62, PTS: 1<<63 - 1}
	w.Write(want, nil)
	rec, err := rd.Next(nil)
	if err != nil || rec.Meta != want || len(rec.Payload) != 0 || rec.Seq != 1 {
		t.Fatalf("Next = %+v, %v", rec, err)
	}
	if got := slices.Clone(rd.Configs()); len(got) != 0 {
		t.Errorf("configs %v", got)
	}
}

func TestStatsCountRecordsByKind(t *testing.T) {
	mem := make([]byte, Size(small))
	r, err := Format(mem, small, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(r)
	for i, kind := range []uint8{1, 1, 2, 1, 3, 2, 7, 1} {
		if err := w.Write(Meta{Kind: kind, Codec: kind*10 + uint8(i), DTS: int64(i)}, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	// A reader mapping of the same memory sees the writer's counts.
	a, err := Attach(mem)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Stats().KindRecords, [4]uint64{1, 4, 2, 1}; got != want || a.Stats().WriteSeq != 8 {
		t.Errorf("records by kind %v, want %v", got, want)
	}
	if got, want := a.Stats().KindCodec, [4]uint8{0, 17, 25, 34}; got != want {
		t.Errorf("latest codec by kind %v, want %v", got, want)
	}
}
