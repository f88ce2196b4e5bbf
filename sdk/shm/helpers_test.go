package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
)

// Records written by tests carry their own identity: DTS is the writer's
// counter i, the payload is pattern(i) of length size(i), PTS is its CRC-32
// and Flags has FlagSync when i%syncEvery == 0. A reader can so check every
// byte of every record without knowing the writer's state.

// splitmix64 step.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pattern fills p with the byte stream of seed, eight bytes per step (the
// race detector instruments every access, so bytewise loops are slow).
func pattern(p []byte, seed uint64) {
	s := seed
	i := 0
	for ; i+8 <= len(p); i += 8 {
		s = mix(s)
		binary.LittleEndian.PutUint64(p[i:], s)
	}
	if i < len(p) {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], mix(s))
		copy(p[i:], w[:])
	}
}

// checkPattern reports the first word offset where p differs from
// pattern(seed), or -1.
func checkPattern(p []byte, seed uint64) int {
	s := seed
	i := 0
	for ; i+8 <= len(p); i += 8 {
		s = mix(s)
		if binary.LittleEndian.Uint64(p[i:]) != s {
			return i
		}
	}
	if i < len(p) {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], mix(s))
		if string(w[:len(p)-i]) != string(p[i:]) {
			return i
		}
	}
	return -1
}

// sizeFor returns a deterministic payload size in [0, max] for record i,
// favouring small sizes but hitting the extremes.
func sizeFor(i uint64, max int) int {
	switch m := mix(i ^ 0x5a5a); {
	case i%97 == 0:
		return max
	case i%89 == 0:
		return 0
	case m%4 == 0:
		return int(m>>8) % (max + 1)
	default:
		return int(m>>8) % (max/16 + 1)
	}
}

// testWriter writes identity-carrying records.
type testWriter struct {
	w         *Writer
	i         uint64 // counter of the next record
	max       int    // largest payload
	fixed     int    // if > 0, every payload has this size
	syncEvery uint64
	buf       []byte
}

func newTestWriter(w *Writer, max int, syncEvery uint64) *testWriter {
	return &testWriter{w: w, max: max, syncEvery: syncEvery, buf: make([]byte, max)}
}

func (tw *testWriter) meta(i uint64, p []byte) Meta {
	m := Meta{Kind: 1, Codec: uint8(i), DTS: int64(i), PTS: int64(crc32.ChecksumIEEE(p))}
	if tw.syncEvery != 0 && i%tw.syncEvery == 0 {
		m.Flags = FlagSync
	}
	return m
}

func (tw *testWriter) write() error {
	n := tw.fixed
	if n == 0 {
		n = sizeFor(tw.i, tw.max)
	}
	p := tw.buf[:n]
	pattern(p, tw.i)
	if err := tw.w.Write(tw.meta(tw.i, p), p); err != nil {
		return err
	}
	tw.i++
	return nil
}

func (tw *testWriter) writeN(tb testing.TB, n int) {
	tb.Helper()
	for range n {
		if err := tw.write(); err != nil {
			tb.Fatalf("write %d: %v", tw.i, err)
		}
	}
}

// verify checks a record written by a testWriter with the given syncEvery.
func verify(rec Record, syncEvery uint64) error {
	i := uint64(rec.DTS)
	if rec.Kind != 1 || rec.Codec != uint8(i) {
		return fmt.Errorf("record %d: kind %d codec %d", i, rec.Kind, rec.Codec)
	}
	if c := int64(crc32.ChecksumIEEE(rec.Payload)); c != rec.PTS {
		return fmt.Errorf("record %d (seq %d, %d bytes): crc %#x, want %#x", i, rec.Seq, len(rec.Payload), c, rec.PTS)
	}
	if at := checkPattern(rec.Payload, i); at >= 0 {
		return fmt.Errorf("record %d (seq %d): byte %d of %d differs", i, rec.Seq, at, len(rec.Payload))
	}
	wantSync := syncEvery != 0 && i%syncEvery == 0
	if got := rec.Flags&FlagSync != 0; got != wantSync {
		return fmt.Errorf("record %d: sync flag %v, want %v", i, got, wantSync)
	}
	return nil
}

func newHeapRing(tb testing.TB, opts Options) *Ring {
	tb.Helper()
	r, err := Format(make([]byte, Size(opts)), opts, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// drain reads until ErrEmpty/ErrEnded and returns the records' writer
// counters, verifying each.
func drain(tb testing.TB, rd *Reader, syncEvery uint64) ([]uint64, error) {
	tb.Helper()
	var got []uint64
	var buf []byte
	for {
		rec, err := rd.Next(buf)
		if err != nil {
			if errors.Is(err, ErrEmpty) || errors.Is(err, ErrEnded) {
				return got, err
			}
			tb.Fatalf("next: %v", err)
		}
		buf = rec.Payload
		if err := verify(rec, syncEvery); err != nil {
			tb.Fatal(err)
		}
		got = append(got, uint64(rec.DTS))
	}
}
