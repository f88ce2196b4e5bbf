package shm

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FlagSync marks a record where a new or lapped reader may start: the writer
// sets it on video keyframes, or on every record of an audio-only stream.
const FlagSync uint32 = 1

// ConfigSlots is the number of config slots in the ring header. The SDK's
// publisher (sdk/host.go) keeps the stream metadata in slot 0, the video
// sequence header in slot 1 and the audio sequence header in slot 2
// (docs/ring.md); shm itself gives the slots no meaning.
const ConfigSlots = 4

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrEmpty is returned by Reader.Next when the reader has caught up.
	ErrEmpty = errors.New("shm: no record available")
	// ErrEnded is returned by Reader.Next once the ring is ended and every
	// record has been read, and by Writer.Write after End.
	ErrEnded = errors.New("shm: ring ended")
	// ErrWriterGone is returned by Reader.Wait when the writer process died
	// or stopped sending heartbeats for 3 s without ending the ring.
	ErrWriterGone = errors.New("shm: writer gone")
	// ErrTooLarge is returned by Writer.Write for a payload larger than
	// DataSize/4 and by Writer.SetConfig for one larger than ConfigSize.
	ErrTooLarge = errors.New("shm: payload too large")
	// ErrCorrupt reports a ring whose shared memory holds impossible values.
	ErrCorrupt = errors.New("shm: corrupt ring")
	// ErrReadOnly is returned by writing methods on a ring mapped read-only.
	ErrReadOnly = errors.New("shm: ring mapped read-only")
	// ErrClosed is returned by methods of a closed Reader or Bell.
	ErrClosed = errors.New("shm: closed")
	// ErrTableFull is returned by Reader.UseBell when every reader slot of
	// the ring belongs to a live process.
	ErrTableFull = errors.New("shm: reader table full")
)

// writerTimeout is how long a writer may stay silent before readers give up.
const writerTimeout = 3 * time.Second

// Meta describes a record. It is opaque to this package except Flags&FlagSync.
type Meta struct {
	Kind  uint8
	Codec uint8
	Flags uint32
	DTS   int64
	PTS   int64
}

// Record is a record read from a ring.
type Record struct {
	Meta
	// Seq is the record's sequence number (1 for the first record of a
	// ring). For a config slot it increases with every update of the slot.
	Seq uint64
	// Payload aliases the buffer returned by Reader.Next, or a fresh copy
	// from Reader.Configs.
	Payload []byte
}

// Ring is a single-writer, multi-reader packet ring over a byte slice,
// usually a shared-memory mapping (see Segment). A Ring interprets memory it
// does not own; the only resources it holds are the bell mappings of its
// writer (or of End), released by Segment.Close. Its methods are safe for
// concurrent use.
type Ring struct {
	mem []byte
	layout
	maxPayload int
	writable   bool   // false when the writer header is mapped read-only
	dir        string // directory of the segment, where bells live; "" on the heap

	// Views of the header words, fixed at Attach.
	ended, writerPID                             *atomic.Uint32
	writeSeq, reserve, syncSeq, bytes, heartbeat *atomic.Uint64
	futex, waiters, sleepers                     *atomic.Uint32

	wk waker // wakes bells of sleeping readers; used by the writer and End

	mu      sync.Mutex
	readers map[*Reader]struct{} // in-process readers registered with a bell
}

// Format initialises a ring in mem, which must be 8-byte aligned and at
// least Size(opts) bytes long. writerPID is the process expected to write
// (0 if not yet known; NewWriter records the real one). Format must not race
// with any other user of mem.
func Format(mem []byte, opts Options, writerPID int) (*Ring, error) {
	l, err := opts.layout()
	if err != nil {
		return nil, err
	}
	if len(mem) < l.total {
		return nil, fmt.Errorf("shm: format: memory of %d bytes, need %d", len(mem), l.total)
	}
	if !memAligned(mem) {
		return nil, errors.New("shm: format: memory not 8-byte aligned")
	}
	mem = mem[:l.total]
	u64at(mem, hMagic).Store(0)
	clear(mem[8:l.dataOff])
	u32at(mem, hVersion).Store(version)
	u32at(mem, hReaderSlots).Store(readerSlots)
	u64at(mem, hDataSize).Store(uint64(l.dataSize))
	u32at(mem, hSlots).Store(uint32(l.slots))
	u32at(mem, hConfigSize).Store(uint32(l.configSize))
	u64at(mem, hTotal).Store(uint64(l.total))
	u32at(mem, hWriterPID).Store(uint32(writerPID))
	u64at(mem, hHeartbeat).Store(uint64(monoNow()))
	u64at(mem, hMagic).Store(magic)
	return newRing(mem, l), nil
}

// Attach validates the header of an existing ring in mem and returns a view
// of it. The memory may have been written by a buggy or malicious process:
// Attach and every method of the result bounds-check what they read and
// report ErrCorrupt instead of panicking.
func Attach(mem []byte) (*Ring, error) {
	if len(mem) < areaOff+areaSize || !memAligned(mem) {
		return nil, fmt.Errorf("%w: memory of %d bytes is too small or misaligned", ErrCorrupt, len(mem))
	}
	if m := u64at(mem, hMagic).Load(); m != magic {
		return nil, fmt.Errorf("%w: bad magic %#x", ErrCorrupt, m)
	}
	if v := u32at(mem, hVersion).Load(); v != version {
		return nil, fmt.Errorf("%w: layout version %d, want %d", ErrCorrupt, v, version)
	}
	if n := u32at(mem, hReaderSlots).Load(); n != readerSlots {
		return nil, fmt.Errorf("%w: %d reader slots, want %d", ErrCorrupt, n, readerSlots)
	}
	ds := u64at(mem, hDataSize).Load()
	slots := u32at(mem, hSlots).Load()
	cs := u32at(mem, hConfigSize).Load()
	if ds > maxDataSize || ds%64 != 0 || cs%64 != 0 {
		return nil, fmt.Errorf("%w: data size %d, config size %d", ErrCorrupt, ds, cs)
	}
	l, err := Options{DataSize: int(ds), Slots: int(slots), ConfigSize: int(cs)}.layout()
	if err != nil || ds == 0 || slots == 0 || cs == 0 ||
		uint64(l.dataSize) != ds || l.slots != int(slots) || uint64(l.configSize) != uint64(cs) {
		return nil, fmt.Errorf("%w: bad geometry (data %d, slots %d, config %d)", ErrCorrupt, ds, slots, cs)
	}
	if t := u64at(mem, hTotal).Load(); t != uint64(l.total) || l.total > len(mem) {
		return nil, fmt.Errorf("%w: total size %d, layout needs %d, have %d", ErrCorrupt, t, l.total, len(mem))
	}
	return newRing(mem[:l.total], l), nil
}

func newRing(mem []byte, l layout) *Ring {
	a := areaOff
	return &Ring{
		mem:        mem,
		layout:     l,
		maxPayload: l.dataSize / 4,
		writable:   true,
		ended:      u32at(mem, hEnded),
		writerPID:  u32at(mem, hWriterPID),
		writeSeq:   u64at(mem, hWriteSeq),
		reserve:    u64at(mem, hReserve),
		syncSeq:    u64at(mem, hSyncSeq),
		bytes:      u64at(mem, hBytes),
		heartbeat:  u64at(mem, hHeartbeat),
		futex:      u32at(mem, a+aFutex),
		waiters:    u32at(mem, a+aWaiters),
		sleepers:   u32at(mem, a+aSleepers),
	}
}

// MaxPayload returns the largest payload Writer.Write accepts (DataSize/4).
func (r *Ring) MaxPayload() int { return r.maxPayload }

// End marks the ring ended and wakes every waiting reader: once they have
// read what is left, Next returns ErrEnded. It is called by the core or by
// the writer, is idempotent, and does nothing on a ring mapped read-only.
func (r *Ring) End() {
	if !r.writable {
		return
	}
	r.ended.Store(1)
	r.wake()
}

// Ended reports whether End was called.
func (r *Ring) Ended() bool { return r.ended.Load() != 0 }

// Stats is a snapshot of a ring's header. Values come from shared memory and
// are reported as found.
type Stats struct {
	WriteSeq     uint64 // seq of the newest record, 0 if none
	SyncSeq      uint64 // seq of the newest FlagSync record, 0 if none
	BytesWritten uint64 // payload bytes written
	// KindRecords counts the records written by Meta.Kind: [1] video,
	// [2] audio, [3] data as sdk/media numbers them ([0]: other kinds).
	KindRecords [4]uint64
	// KindCodec is the Meta.Codec of the latest record of each kind (0:
	// none yet): a stream's codecs even when they have no configuration
	// record (MP3, G.711).
	KindCodec     [4]uint8
	Readers       int // registered reader slots (live or not yet reclaimed)
	WriterPID     int
	LastHeartbeat int64         // CLOCK_MONOTONIC ns
	HeartbeatAge  time.Duration // time since LastHeartbeat
	Ended         bool
	ReaderSlots   []ReaderStat // the registered slots
}

// ReaderStat describes one registered reader slot.
type ReaderStat struct {
	Slot     int
	PID      int
	Next     uint64 // seq the reader reads next
	Sleeping bool
	Bell     string // bell name, "" if none
}

// Stats returns a snapshot of the ring's header and reader table.
func (r *Ring) Stats() Stats {
	hb := int64(r.heartbeat.Load())
	s := Stats{
		WriteSeq:      r.writeSeq.Load(),
		SyncSeq:       r.syncSeq.Load(),
		BytesWritten:  r.bytes.Load(),
		WriterPID:     int(r.writerPID.Load()),
		LastHeartbeat: hb,
		HeartbeatAge:  time.Duration(monoNow() - hb),
		Ended:         r.Ended(),
	}
	for k := 1; k < len(s.KindRecords); k++ {
		s.KindRecords[k] = u64at(r.mem, hKindCount+8*(k-1)).Load()
		s.KindCodec[k] = uint8(u32at(r.mem, hKindCodec+4*(k-1)).Load())
	}
	if known := s.KindRecords[1] + s.KindRecords[2] + s.KindRecords[3]; known < s.WriteSeq {
		s.KindRecords[0] = s.WriteSeq - known // else a write landed between the loads
	}
	var name [nameCap]byte
	for i := range readerSlots {
		so := r.slotOff(i)
		pid := u32at(r.mem, so+sPID).Load()
		if pid == 0 {
			continue
		}
		st := ReaderStat{
			Slot:     i,
			PID:      int(pid),
			Next:     u64at(r.mem, so+sPos).Load(),
			Sleeping: u32at(r.mem, so+sSleeping).Load() != 0,
		}
		if n, ok := r.slotBell(so, &name); ok && n > 0 {
			st.Bell = string(name[:n])
		}
		s.ReaderSlots = append(s.ReaderSlots, st)
	}
	s.Readers = len(s.ReaderSlots)
	return s
}

// Reclaim frees the reader slots of processes that no longer exist (a reader
// killed before Close) and returns how many it freed. Claiming a slot when
// the table is full does the same.
func (r *Ring) Reclaim() int {
	n := 0
	for i := range readerSlots {
		so := r.slotOff(i)
		pid := u32at(r.mem, so+sPID)
		p := pid.Load()
		if p != 0 && !pidAlive(int(p)) && pid.CompareAndSwap(p, 0) {
			r.resetSlot(so)
			n++
		}
	}
	return n
}

// writerGone reports whether the writer process is dead or silent.
func (r *Ring) writerGone() bool {
	if pid := int(r.writerPID.Load()); pid != 0 && !pidAlive(pid) {
		return true
	}
	hb := int64(r.heartbeat.Load())
	return hb > 0 && monoNow()-hb > int64(writerTimeout)
}

func (r *Ring) slotOff(i int) int { return areaOff + aTable + i*slotSize }

func (r *Ring) entryOff(seq uint64) int { return r.indexOff + int(seq&uint64(r.slots-1))*entrySize }

func (r *Ring) configOffset(i int) int { return r.configOff + i*(cHdrSize+r.configSize) }

// claimSlot takes a free reader slot for pid, or one whose owner is dead,
// and returns its offset, or -1 when the table is full.
func (r *Ring) claimSlot(pid uint32) int {
	for pass := range 2 {
		for i := range readerSlots {
			so := r.slotOff(i)
			p := u32at(r.mem, so+sPID)
			cur := p.Load()
			if cur == 0 && p.CompareAndSwap(0, pid) ||
				pass == 1 && cur != pid && !pidAlive(int(cur)) && p.CompareAndSwap(cur, pid) {
				r.resetSlot(so)
				return so
			}
		}
	}
	return -1
}

// resetSlot clears everything but the pid of a slot.
func (r *Ring) resetSlot(so int) {
	if u32at(r.mem, so+sSleeping).Swap(0) != 0 {
		r.sleepers.Add(^uint32(0))
	}
	u32at(r.mem, so+sNameLen).Store(0)
	u64at(r.mem, so+sBellID).Store(0)
	u64at(r.mem, so+sPos).Store(0)
}

// slotBell copies the bell name of the slot at so into name and validates
// it; ok is false for a corrupt name.
func (r *Ring) slotBell(so int, name *[nameCap]byte) (n int, ok bool) {
	l := u32at(r.mem, so+sNameLen).Load()
	if l == 0 {
		return 0, true
	}
	if l > maxBellName {
		return 0, false
	}
	copyOut(name[:l], r.mem, so+sName)
	if !validBellName(name[:l]) {
		return 0, false
	}
	return int(l), true
}

// registerReader and unregisterReader track in-process readers that use a
// bell, so that closing the segment detaches them before the unmap.
func (r *Ring) registerReader(rd *Reader) {
	r.mu.Lock()
	if r.readers == nil {
		r.readers = make(map[*Reader]struct{})
	}
	r.readers[rd] = struct{}{}
	r.mu.Unlock()
}

func (r *Ring) unregisterReader(rd *Reader) {
	r.mu.Lock()
	delete(r.readers, rd)
	r.mu.Unlock()
}

// detach unhooks every in-process reader from its bell; the ring's memory
// is about to go away.
func (r *Ring) detach() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for rd := range r.readers {
		if rd.bell != nil {
			rd.bell.unregister(rd)
		}
	}
	clear(r.readers)
}

// wake wakes the readers sleeping on this ring. A reader about to sleep
// sets the sleeping flag of its slot (or, without a slot, counts itself in
// waiters) and then re-checks for data; the callers of wake publish first (a
// record, or the ended flag) and then look at the flags. With sequentially
// consistent atomics, either the reader sees the news or wake sees the flag.
//
// Readers with a bell are woken through it; readers without one sleep on the
// ring's own futex word. Keeping the state per slot means a reader killed in
// its sleep costs one wake, after which its flag is clear.
func (r *Ring) wake() {
	ringWake := r.waiters.Load() != 0
	if r.sleepers.Load() != 0 && r.wakeSlots() {
		ringWake = true
	}
	if ringWake {
		r.futex.Add(1)
		futexWake(r.mem, areaOff+aFutex, 1<<30)
	}
}

// wakeSlots clears the sleeping flags, rings the bells named in those slots
// and reports whether a slot without a bell was among them.
func (r *Ring) wakeSlots() (ringWake bool) {
	r.wk.mu.Lock()
	defer r.wk.mu.Unlock()
	// Clear every flag first, ring afterwards: a bell's goroutine wakes all
	// of its process's readers whose flag is clear, so the flags of one
	// bell must all be clear before that bell rings once.
	woken := r.wk.woken[:0]
	for i := range readerSlots {
		sl := u32at(r.mem, r.slotOff(i)+sSleeping)
		if sl.Load() == 0 || sl.Swap(0) == 0 {
			continue
		}
		// sleepers is a hint kept by whoever clears a flag: a corrupt value
		// costs a table scan or, at worst, a reader waking on its timeout.
		r.sleepers.Add(^uint32(0))
		woken = append(woken, uint8(i))
	}
	r.wk.gen++
	for _, i := range woken {
		so := r.slotOff(int(i))
		n, ok := r.slotBell(so, &r.wk.name)
		if !ok || n == 0 || r.dir == "" {
			ringWake = true
			continue
		}
		r.wk.ring(r.dir, r.wk.name[:n], u64at(r.mem, so+sBellID).Load())
	}
	return ringWake
}

// pidSelf is this process's id as stored in reader slots.
var pidSelf = uint32(os.Getpid())
