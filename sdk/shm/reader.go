package shm

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"
)

// StartMode selects where a new Reader starts.
type StartMode int

const (
	// StartGOP starts at the newest FlagSync record still in the ring (the
	// start of the current GOP), or at the next FlagSync record written if
	// that one is gone.
	StartGOP StartMode = iota
	// StartLive starts at the next record written.
	StartLive
)

// sliceTimeout bounds every blocking wait; after it the writer's liveness
// is checked.
const sliceTimeout = 100 * time.Millisecond

// nextTries bounds the retries of one Next call (each retry follows a lap,
// so it can only spin while the writer overtakes the reader).
const nextTries = 64

// Reader reads the records of a ring in order, at its own pace. A Reader is
// used by one goroutine at a time. It holds a slot of the ring's reader
// table (if one is free) until Close.
type Reader struct {
	r        *Ring
	next     uint64 // seq to read next
	dropped  uint64
	waitSync bool // skip records until a FlagSync record
	started  bool // a record was returned; drops count from here
	closed   bool

	so       int            // offset of the reader slot, -1 if none
	pos      *atomic.Uint64 // the slot's position word, or &local
	local    atomic.Uint64
	sleeping *atomic.Uint32 // the slot's sleeping flag

	bell   *Bell
	parked atomic.Bool   // blocked in Wait on the bell
	wakeC  chan struct{} // signalled by the bell goroutine
	timer  *time.Timer
}

// NewReader returns a reader of r starting as mode says. It claims a slot of
// the reader table (reclaiming one of a dead process if all are taken); a
// reader without a slot still reads, but cannot use a bell.
func NewReader(r *Ring, mode StartMode) *Reader {
	rd := &Reader{r: r, so: -1, wakeC: make(chan struct{}, 1)}
	rd.pos = &rd.local
	if so := r.claimSlot(pidSelf); so >= 0 {
		rd.takeSlot(so)
	}
	ws := r.writeSeq.Load()
	sy := r.syncSeq.Load()
	switch {
	case ws >= maxSeq:
		rd.next = maxSeq // Next reports ErrCorrupt
	case mode == StartGOP && sy != 0 && sy <= ws && ws-sy < uint64(r.slots):
		rd.next = sy
	default:
		rd.next = ws + 1
		rd.waitSync = mode == StartGOP && sy != 0
	}
	rd.pos.Store(rd.next)
	return rd
}

func (rd *Reader) takeSlot(so int) {
	rd.so = so
	rd.pos = u64at(rd.r.mem, so+sPos)
	rd.sleeping = u32at(rd.r.mem, so+sSleeping)
}

// Next copies the next record's payload into buf and returns the record;
// Record.Payload aliases buf, or a larger buffer allocated when buf is too
// small (pass it back in to reuse it). Next never blocks: it returns
// ErrEmpty when the reader has caught up (see Wait), ErrEnded after End once
// every record is read, and ErrCorrupt when the ring holds impossible values.
//
// A reader that was lapped (the records it wanted were overwritten) skips to
// the newest FlagSync record, or to the live edge and then the next FlagSync
// record, and adds the records it skipped to Dropped. Next never returns a
// record whose bytes were overwritten while it copied them.
func (rd *Reader) Next(buf []byte) (Record, error) {
	if rd.closed {
		return Record{}, ErrClosed
	}
	r := rd.r
	for range nextTries {
		ended := r.ended.Load() != 0
		ws := r.writeSeq.Load()
		if ws >= maxSeq {
			return Record{}, fmt.Errorf("%w: write seq %d", ErrCorrupt, ws)
		}
		if rd.waitSync {
			rd.seekSync(ws)
		}
		if rd.next > ws {
			if rd.next > ws+1 {
				return Record{}, fmt.Errorf("%w: write seq went back to %d, reader at %d", ErrCorrupt, ws, rd.next)
			}
			if ended {
				return Record{}, ErrEnded
			}
			return Record{}, ErrEmpty
		}
		if ws-rd.next >= uint64(r.slots) {
			rd.lapped(ws)
			continue
		}
		rec, ok, err := rd.read(rd.next, &buf)
		if err != nil {
			return Record{}, err
		}
		if !ok {
			rd.lapped(ws)
			continue
		}
		rd.next++
		rd.started = true
		return rec, nil
	}
	return Record{}, ErrEmpty
}

// read copies record s. ok is false if the record was overwritten before or
// while it was copied. *buf is replaced when it grows.
func (rd *Reader) read(s uint64, buf *[]byte) (rec Record, ok bool, err error) {
	r := rd.r
	mem := r.mem
	e := r.entryOff(s)
	seq := u64at(mem, e+eSeq)
	if seq.Load() != s {
		return Record{}, false, nil
	}
	off := u64at(mem, e+eOff).Load()
	n := u32at(mem, e+eLen).Load()
	flags := u32at(mem, e+eFlags).Load()
	kc := u32at(mem, e+eKindCode).Load()
	dts := int64(u64at(mem, e+eDTS).Load())
	pts := int64(u64at(mem, e+ePTS).Load())
	res := r.reserve.Load()
	// The writer reserves a record's bytes before it publishes the entry, so
	// a consistent entry satisfies off+align8(n) <= res.
	if uint64(n) > uint64(r.maxPayload) || off%8 != 0 || off > res || res-off < uint64(align8(int(n))) {
		if seq.Load() != s {
			return Record{}, false, nil
		}
		return Record{}, false, fmt.Errorf("%w: record %d at %d+%d, reserved %d", ErrCorrupt, s, off, n, res)
	}
	if res-off > uint64(r.dataSize) {
		return Record{}, false, nil // already being overwritten
	}
	if cap(*buf) < int(n) {
		*buf = make([]byte, n)
	}
	p := (*buf)[:n]
	phys := int(off % uint64(r.dataSize))
	first := min(int(n), r.dataSize-phys)
	copyOut(p[:first], mem, r.dataOff+phys)
	if first < int(n) {
		copyOut(p[first:], mem, r.dataOff)
	}
	// The position store is also the seqlock's read barrier: a release
	// store keeps the copy above before it, and the acquire loads below
	// cannot move above it (needed on arm64; free on amd64).
	rd.pos.Store(s)
	if seq.Load() != s || r.reserve.Load()-off > uint64(r.dataSize) {
		return Record{}, false, nil
	}
	return Record{
		Meta:    Meta{Kind: uint8(kc), Codec: uint8(kc >> 8), Flags: flags, DTS: dts, PTS: pts},
		Seq:     s,
		Payload: p,
	}, true, nil
}

// lapped moves a reader that lost records to the newest sync point, or to
// the live edge to wait for the next one. It always moves forward.
func (rd *Reader) lapped(ws uint64) {
	old := rd.next
	sy := rd.r.syncSeq.Load()
	if sy > old && sy <= ws && ws-sy < uint64(rd.r.slots) {
		rd.next = sy
	} else {
		rd.next = ws + 1
		rd.waitSync = sy != 0
	}
	rd.drop(rd.next - old)
	rd.pos.Store(rd.next)
}

// seekSync skips to the newest FlagSync record at or after next, or past
// every record written if there is none yet.
func (rd *Reader) seekSync(ws uint64) {
	sy := rd.r.syncSeq.Load()
	switch {
	case sy == 0:
		rd.waitSync = false
	case sy >= rd.next && sy <= ws:
		rd.drop(sy - rd.next)
		rd.next = sy
		rd.waitSync = false
	case rd.next <= ws:
		rd.drop(ws + 1 - rd.next)
		rd.next = ws + 1
	}
}

func (rd *Reader) drop(n uint64) {
	if rd.started {
		rd.dropped += n
	}
}

// Dropped returns how many records the reader skipped because it was
// lapped, counted from the first record it read.
func (rd *Reader) Dropped() uint64 { return rd.dropped }

// Configs returns copies of the non-empty config slots, each consistent (a
// slot being updated is retried). A slot whose writer died mid-update, or
// that is corrupt, is left out.
func (rd *Reader) Configs() []Record { return rd.r.Configs() }

// Configs is Reader.Configs without a reader, for the core's inspection of
// a ring (stream codec info).
func (r *Ring) Configs() []Record {
	var out []Record
	for i := range ConfigSlots {
		if rec, ok := r.readConfig(i); ok {
			out = append(out, rec)
		}
	}
	return out
}

func (r *Ring) readConfig(i int) (Record, bool) {
	mem := r.mem
	c := r.configOffset(i)
	seq := u64at(mem, c+cSeq)
	var fence atomic.Uint64
	for try := range 100 {
		s1 := seq.Load()
		if s1 == 0 || s1 >= maxSeq {
			return Record{}, false
		}
		if s1&1 != 0 {
			if try > 10 {
				runtime.Gosched()
			}
			continue
		}
		n := u32at(mem, c+cLen).Load()
		if n == 0 || uint64(n) > uint64(r.configSize) {
			if seq.Load() == s1 {
				return Record{}, false // empty or corrupt
			}
			continue
		}
		flags := u32at(mem, c+cFlags).Load()
		kc := u32at(mem, c+cKindCode).Load()
		dts := int64(u64at(mem, c+cDTS).Load())
		pts := int64(u64at(mem, c+cPTS).Load())
		p := make([]byte, n)
		copyOut(p, mem, c+cHdrSize)
		fence.Store(s1) // read barrier, see Reader.read
		if seq.Load() == s1 {
			return Record{
				Meta:    Meta{Kind: uint8(kc), Codec: uint8(kc >> 8), Flags: flags, DTS: dts, PTS: pts},
				Seq:     s1 / 2,
				Payload: p,
			}, true
		}
	}
	return Record{}, false
}

// ready reports whether Next may have something to say: a record, the end,
// or corruption.
func (rd *Reader) ready() bool {
	return rd.r.ended.Load() != 0 || rd.r.writeSeq.Load() != rd.next-1
}

// WriterGone reports whether the ring's writer process is dead or its
// heartbeat is older than 3 s (what Wait checks after a slice), for a
// reader that polls with Next instead of waiting.
func (rd *Reader) WriterGone() bool { return rd.r.ended.Load() == 0 && rd.r.writerGone() }

// Wait blocks until Next may have data, the ring is ended, or ctx is done
// (returning ctx.Err()). It waits in slices of at most 100 ms; after a
// slice that timed out it checks the writer and returns ErrWriterGone if
// the writer process is dead or its heartbeat is older than 3 s.
//
// With a bell (UseBell) the reader sleeps on a channel signalled by the
// bell's goroutine and ctx is honoured at once. Without one it sleeps on the
// ring's own futex word, blocking its thread, and notices ctx within 100 ms.
//
// Each wake costs the writer a system call and the reader a thread wakeup,
// while a reader that is not in Wait costs the writer nothing: a reader that
// serves its clients in batches (merged writes every 100 ms, say) should
// drain the ring with Next, do its batch, and only then Wait again.
func (rd *Reader) Wait(ctx context.Context) error {
	if rd.closed {
		return ErrClosed
	}
	for {
		if rd.ready() {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if rd.bell != nil && rd.bell.closed.Load() {
			rd.dropBell()
		}
		var timedOut bool
		if rd.bell != nil {
			timedOut = rd.sleepBell(ctx)
		} else {
			timedOut = rd.sleepRing()
		}
		if timedOut && rd.r.writerGone() && !rd.ready() {
			return ErrWriterGone
		}
	}
}

// sleepRing waits on the ring's futex word. Protocol: announce (set the
// slot's sleeping flag, or count in waiters without a slot), read the word,
// re-check for data, then wait only if the word is unchanged; the writer
// publishes, then bumps the word if it finds an announcement.
func (rd *Reader) sleepRing() (timedOut bool) {
	r := rd.r
	if rd.so >= 0 {
		if rd.sleeping.CompareAndSwap(0, 1) {
			r.sleepers.Add(1)
		}
	} else {
		r.waiters.Add(1)
	}
	v := r.futex.Load()
	if !rd.ready() {
		timedOut = futexWait(r.mem, areaOff+aFutex, v)
	}
	if rd.so >= 0 {
		if rd.sleeping.CompareAndSwap(1, 0) {
			r.sleepers.Add(^uint32(0))
		}
	} else {
		r.waiters.Add(^uint32(0))
	}
	return timedOut
}

// dropBell stops using a bell that was closed under the reader: the slot
// no longer names it, so the writer wakes the reader on the ring's word.
func (rd *Reader) dropBell() {
	u32at(rd.r.mem, rd.so+sNameLen).Store(0)
	u64at(rd.r.mem, rd.so+sBellID).Store(0)
	rd.bell.unregister(rd)
	rd.r.unregisterReader(rd)
	rd.bell = nil
}

// sleepBell waits for the bell goroutine. Protocol: set the sleeping flag,
// re-check for data, then block; the writer publishes, then clears set
// flags and rings the bells named in those slots.
func (rd *Reader) sleepBell(ctx context.Context) (timedOut bool) {
	r := rd.r
	rd.parked.Store(true)
	if rd.sleeping.CompareAndSwap(0, 1) {
		r.sleepers.Add(1)
	}
	if !rd.ready() {
		if rd.timer == nil {
			rd.timer = time.NewTimer(sliceTimeout)
		} else {
			rd.timer.Reset(sliceTimeout)
		}
		select {
		case <-rd.wakeC:
		case <-rd.timer.C:
			timedOut = true
		case <-ctx.Done():
		}
		rd.timer.Stop()
	}
	rd.parked.Store(false)
	if rd.sleeping.CompareAndSwap(1, 0) {
		r.sleepers.Add(^uint32(0))
	}
	select {
	case <-rd.wakeC:
	default:
	}
	return timedOut
}

// UseBell makes Wait sleep on b, the process's doorbell, instead of the
// ring's futex word: the writer then rings b when it publishes. b must live
// in the directory of the ring's segment. The reader keeps using b until
// Close; b must outlive the readers using it.
func (rd *Reader) UseBell(b *Bell) error {
	if rd.closed || b == nil || b.closed.Load() {
		return ErrClosed
	}
	if rd.bell == b {
		return nil
	}
	if rd.bell != nil && rd.bell.closed.Load() {
		rd.dropBell()
	}
	if rd.bell != nil {
		return fmt.Errorf("shm: reader already uses bell %q", rd.bell.name)
	}
	r := rd.r
	if r.dir == "" || filepath.Clean(b.dir) != r.dir {
		return fmt.Errorf("shm: bell %q is in %q, not in the ring's directory %q", b.name, b.dir, r.dir)
	}
	if rd.so < 0 {
		so := r.claimSlot(pidSelf)
		if so < 0 {
			return ErrTableFull
		}
		rd.takeSlot(so)
		rd.pos.Store(rd.next)
	}
	mem := r.mem
	u32at(mem, rd.so+sNameLen).Store(0)
	copyIn(mem, rd.so+sName, b.nameBytes)
	u64at(mem, rd.so+sBellID).Store(b.id)
	u32at(mem, rd.so+sNameLen).Store(uint32(len(b.nameBytes)))
	rd.bell = b
	b.register(rd)
	r.registerReader(rd)
	return nil
}

// Close releases the reader's table slot and bell registration. It is
// idempotent and does not wait for a concurrent Wait (a Reader belongs to
// one goroutine).
func (rd *Reader) Close() error {
	if rd.closed {
		return nil
	}
	rd.closed = true
	r := rd.r
	if rd.bell != nil {
		rd.bell.unregister(rd)
		r.unregisterReader(rd)
	}
	if rd.so >= 0 {
		r.resetSlot(rd.so)
		u32at(r.mem, rd.so+sPID).CompareAndSwap(pidSelf, 0)
		rd.pos = &rd.local
	}
	if rd.timer != nil {
		rd.timer.Stop()
	}
	return nil
}
