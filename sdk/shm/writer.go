package shm

import (
	"fmt"
	"os"
)

// Writer appends records to a ring. There is one writer per ring (the
// publishing process); its methods must be called from one goroutine at a
// time. Write never blocks and never waits for readers: a slow reader is
// lapped and resynchronises on its own.
type Writer struct {
	r       *Ring
	seq     uint64   // seq of the last record written
	reserve uint64   // data position of the next record
	codec   [3]uint8 // what hKindCodec holds per kind, as last stored
}

// NewWriter returns the writer of r, continuing after the records already in
// it, and records the calling process as the ring's writer (pid and
// heartbeat). On a ring mapped read-only the writer's methods return
// ErrReadOnly.
func NewWriter(r *Ring) *Writer {
	w := &Writer{r: r}
	if !r.writable {
		return w
	}
	// The writer trusts its own ring; clamp anyway so that a damaged header
	// cannot make the arithmetic below overflow.
	w.seq = min(r.writeSeq.Load(), maxSeq/2)
	w.reserve = min(uint64(align8(int(min(r.reserve.Load(), maxSeq/2)))), maxSeq/2)
	r.writerPID.Store(uint32(os.Getpid()))
	r.heartbeat.Store(uint64(monoNow()))
	return w
}

// Write appends a record with meta m and a copy of payload, which the caller
// keeps owning. It returns ErrTooLarge if len(payload) > MaxPayload() and
// ErrEnded once the ring is ended. Write never blocks and never waits for a
// reader. It allocates nothing (except when it first maps the bell of a
// sleeping reader) and makes wake system calls only for readers parked in
// Reader.Wait.
func (w *Writer) Write(m Meta, payload []byte) error {
	// Order of publication (Reader.read checks in mirror order): invalidate
	// the index entry, advance the reserve counter (so that readers still
	// copying bytes of an older record see them being overwritten), copy the
	// payload, fill the entry, store the entry's seq, then the write seq.
	r := w.r
	if !r.writable {
		return ErrReadOnly
	}
	n := len(payload)
	if n > r.maxPayload {
		return ErrTooLarge
	}
	if r.ended.Load() != 0 {
		return ErrEnded
	}
	seq := w.seq + 1
	start := w.reserve
	end := start + uint64(align8(n))
	mem := r.mem
	e := r.entryOff(seq)
	u64at(mem, e+eSeq).Store(0)
	// Swap rather than Store: a read-modify-write is a full barrier on every
	// architecture (on arm64 a plain release store would let the payload
	// stores below become visible before the reserve counter).
	r.reserve.Swap(end)
	phys := int(start % uint64(r.dataSize))
	first := min(n, r.dataSize-phys)
	copyIn(mem, r.dataOff+phys, payload[:first])
	if first < n {
		copyIn(mem, r.dataOff, payload[first:])
	}
	u64at(mem, e+eOff).Store(start)
	u32at(mem, e+eLen).Store(uint32(n))
	u32at(mem, e+eFlags).Store(m.Flags)
	u32at(mem, e+eKindCode).Store(uint32(m.Kind) | uint32(m.Codec)<<8)
	u64at(mem, e+eDTS).Store(uint64(m.DTS))
	u64at(mem, e+ePTS).Store(uint64(m.PTS))
	u64at(mem, e+eSeq).Store(seq)
	if m.Flags&FlagSync != 0 {
		r.syncSeq.Store(seq)
	}
	if m.Kind >= 1 && m.Kind <= 3 {
		k := int(m.Kind - 1)
		u64at(mem, hKindCount+8*k).Add(1)
		if w.codec[k] != m.Codec {
			w.codec[k] = m.Codec
			u32at(mem, hKindCodec+4*k).Store(uint32(m.Codec))
		}
	}
	r.writeSeq.Store(seq)
	r.bytes.Add(uint64(n))
	r.heartbeat.Store(uint64(monoNow()))
	w.seq, w.reserve = seq, end
	if r.waiters.Load() != 0 || r.sleepers.Load() != 0 {
		r.wake()
	}
	return nil
}

// SetConfig stores the latest codec configuration or metadata in config
// slot (0 <= slot < ConfigSlots), replacing what was there; an empty payload
// clears the slot. Readers get it from Reader.Configs. It returns
// ErrTooLarge if len(payload) exceeds the ring's ConfigSize. Each slot is a
// seqlock: the sequence is odd while the writer updates it.
func (w *Writer) SetConfig(slot int, m Meta, payload []byte) error {
	r := w.r
	if !r.writable {
		return ErrReadOnly
	}
	if slot < 0 || slot >= ConfigSlots {
		return fmt.Errorf("shm: config slot %d out of range [0, %d)", slot, ConfigSlots)
	}
	if len(payload) > r.configSize {
		return ErrTooLarge
	}
	mem := r.mem
	c := r.configOffset(slot)
	seq := u64at(mem, c+cSeq)
	if seq.Load()&1 != 0 { // a previous writer died mid-update
		seq.Add(1)
	}
	seq.Add(1) // odd: update in progress (a full barrier, as in Write)
	u32at(mem, c+cLen).Store(uint32(len(payload)))
	u32at(mem, c+cFlags).Store(m.Flags)
	u32at(mem, c+cKindCode).Store(uint32(m.Kind) | uint32(m.Codec)<<8)
	u64at(mem, c+cDTS).Store(uint64(m.DTS))
	u64at(mem, c+cPTS).Store(uint64(m.PTS))
	copyIn(mem, c+cHdrSize, payload)
	seq.Add(1) // even: published
	r.heartbeat.Store(uint64(monoNow()))
	return nil
}

// Heartbeat records that the writer is alive. Write does it too; a writer
// with nothing to write must call Heartbeat at least once a second, or
// waiting readers report ErrWriterGone after 3 s.
func (w *Writer) Heartbeat() {
	if w.r.writable {
		w.r.heartbeat.Store(uint64(monoNow()))
	}
}

// Seq returns the seq of the last record written (0 if none).
func (w *Writer) Seq() uint64 { return w.seq }
