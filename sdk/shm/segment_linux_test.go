package shm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestSegmentCreateOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ring")
	seg, err := Create(path, small)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != int64(Size(small)) {
		t.Fatalf("segment file: %v, %v", fi, err)
	}
	if _, err := Create(path, small); !errors.Is(err, os.ErrExist) {
		t.Errorf("Create over an existing file = %v", err)
	}
	if _, err := Create(filepath.Join(dir, "bad"), Options{Slots: 3}); err == nil {
		t.Error("Create accepted bad options")
	}
	w := NewWriter(seg.Ring)
	w.SetConfig(0, Meta{Kind: 1}, []byte("config"))
	w.Write(Meta{Flags: FlagSync}, []byte("hello"))

	ro, err := Open(path, false)
	if err != nil {
		t.Fatal(err)
	}
	rd := NewReader(ro.Ring, StartGOP)
	if rec, err := rd.Next(nil); err != nil || string(rec.Payload) != "hello" {
		t.Errorf("Next = %q, %v", rec.Payload, err)
	}
	if c := rd.Configs(); len(c) != 1 || string(c[0].Payload) != "config" {
		t.Errorf("Configs = %v", c)
	}
	if err := NewWriter(ro.Ring).Write(Meta{}, nil); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Write on a read-only mapping = %v", err)
	}
	ro.Ring.End() // no-op, no crash
	if ro.Ring.Ended() {
		t.Error("a reader ended the ring")
	}
	// The writer's header and the data are really read-only for a reader;
	// the reader table is not.
	for _, tc := range []struct {
		name  string
		off   int
		fault bool
	}{
		{"header", hWriteSeq, true},
		{"reader table", areaOff + aTable + 8, false},
		{"index", ro.Ring.indexOff, true},
		{"data", ro.Ring.dataOff + 64, true},
	} {
		if os.Getpagesize() != pageSize {
			t.Skip("page size differs from the layout's alignment")
		}
		got := faults(func() { ro.Ring.mem[tc.off]++ })
		if got != tc.fault {
			t.Errorf("%s: write faults = %v, want %v", tc.name, got, tc.fault)
		}
		if !got {
			ro.Ring.mem[tc.off]--
		}
	}
	rd.Close()
	ro.Close()
	if err := ro.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"garbage", make([]byte, Size(small))},
		{"truncated ring", func() []byte { b, _ := os.ReadFile(path); return b[:areaOff+areaSize] }()},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.content, 0o600)
		if _, err := Open(p, false); err == nil {
			t.Errorf("Open(%s) succeeded", tc.name)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing"), false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

// faults reports whether f hits a memory protection fault.
func faults(f func()) (faulted bool) {
	defer func() { faulted = recover() != nil }()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	f()
	return false
}

func TestBellNames(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"", ".", "..", "a/b", "a b", "bell\x00", strings.Repeat("x", 101), "../x", "é"} {
		if b, err := OpenBell(dir, name); err == nil {
			b.Close()
			t.Errorf("OpenBell(%q) succeeded", name)
		}
	}
	for _, name := range []string{"a", "A-b_c.1", strings.Repeat("x", 100)} {
		b, err := OpenBell(dir, name)
		if err != nil {
			t.Errorf("OpenBell(%q) = %v", name, err)
			continue
		}
		if _, err := OpenBell(dir, name); !errors.Is(err, os.ErrExist) {
			t.Errorf("second OpenBell(%q) = %v", name, err)
		}
		b.Close()
		if err := b.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("bell file left behind: %v", err)
		}
	}
}

func TestBellWake(t *testing.T) {
	dir := t.TempDir()
	seg, err := Create(filepath.Join(dir, "ring"), small)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	r := seg.Ring
	w := NewWriter(r)
	bell, err := OpenBell(dir, "bell")
	if err != nil {
		t.Fatal(err)
	}
	defer bell.Close()

	t.Run("wrong directory", func(t *testing.T) {
		other, err := OpenBell(t.TempDir(), "other")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		rd := NewReader(r, StartLive)
		defer rd.Close()
		if err := rd.UseBell(other); err == nil {
			t.Error("UseBell accepted a bell from another directory")
		}
		if err := NewReader(newHeapRing(t, small), StartLive).UseBell(bell); err == nil {
			t.Error("UseBell accepted a heap ring")
		}
	})

	// Several readers of the process share the bell; each wakes on a write.
	var rds []*Reader
	for range 3 {
		rd := NewReader(r, StartLive)
		if err := rd.UseBell(bell); err != nil {
			t.Fatal(err)
		}
		if err := rd.UseBell(bell); err != nil {
			t.Errorf("UseBell again = %v", err)
		}
		rds = append(rds, rd)
	}
	late := 0 // readers woken by their timeout, not the bell
	for round := range 3 {
		done := make(chan time.Duration, len(rds))
		for _, rd := range rds {
			go func() {
				start := time.Now()
				if err := rd.Wait(context.Background()); err != nil {
					t.Error(err)
				}
				done <- time.Since(start)
			}()
		}
		// Wait until all three are asleep, so that the write has to wake them.
		deadline := time.Now().Add(5 * time.Second)
		for r.sleepers.Load() != uint32(len(rds)) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if round == 2 {
			r.End()
		} else {
			w.Write(Meta{}, []byte("x"))
		}
		for range rds {
			if d := <-done; d >= sliceTimeout {
				late++
				t.Logf("round %d: a reader woke after %v", round, d)
			}
		}
		if n := r.sleepers.Load(); n != 0 {
			t.Errorf("round %d: %d sleepers left", round, n)
		}
		for _, rd := range rds {
			rd.Next(nil)
		}
	}
	// Nobody sleeps now: a write must not touch the bell or the futex word
	// (the writer makes no wake system call).
	word, fw := bell.word.Load(), r.futex.Load()
	r.ended.Store(0)
	w.Write(Meta{}, nil)
	if bell.word.Load() != word || r.futex.Load() != fw {
		t.Error("a write rang with nobody asleep")
	}
	if late > 1 { // one may be scheduling noise on a loaded machine
		t.Errorf("%d readers woke by timeout: the bell missed them", late)
	}
	if st := r.Stats(); st.Readers != 3 || st.ReaderSlots[0].Bell != "bell" {
		t.Errorf("stats %+v", st)
	}
	for _, rd := range rds {
		rd.Close()
	}
	if len(bell.readers) != 0 || len(r.readers) != 0 {
		t.Error("closed readers still registered")
	}
}

// TestBellRecreated checks that the writer notices a bell file replaced by a
// new one of the same name (a restarted reader process) instead of ringing
// its stale mapping.
func TestBellRecreated(t *testing.T) {
	dir := t.TempDir()
	seg, err := Create(filepath.Join(dir, "ring"), small)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	r := seg.Ring
	w := NewWriter(r)
	for gen := range 2 {
		bell, err := OpenBell(dir, "bell")
		if err != nil {
			t.Fatal(err)
		}
		rd := NewReader(r, StartLive)
		if err := rd.UseBell(bell); err != nil {
			t.Fatal(err)
		}
		word := bell.word.Load()
		woke := make(chan error)
		go func() { woke <- rd.Wait(context.Background()) }()
		for r.sleepers.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		w.Write(Meta{}, nil)
		if err := <-woke; err != nil {
			t.Fatal(err)
		}
		if bell.word.Load() == word {
			t.Errorf("generation %d: the writer did not ring the bell", gen)
		}
		rd.Close()
		bell.Close()
	}
}

func TestBellClosedFallsBack(t *testing.T) {
	dir := t.TempDir()
	seg, err := Create(filepath.Join(dir, "ring"), small)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	bell, err := OpenBell(dir, "bell")
	if err != nil {
		t.Fatal(err)
	}
	rd := NewReader(seg.Ring, StartLive)
	rd.UseBell(bell)
	bell.Close()
	go func() {
		time.Sleep(10 * time.Millisecond)
		NewWriter(seg.Ring).Write(Meta{}, nil)
	}()
	if err := rd.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rd.UseBell(bell); !errors.Is(err, ErrClosed) {
		t.Errorf("UseBell(closed bell) = %v", err)
	}
	if st := seg.Ring.Stats(); st.ReaderSlots[0].Bell != "" {
		t.Errorf("slot still names the closed bell: %+v", st.ReaderSlots[0])
	}
}
