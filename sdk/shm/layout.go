package shm

import (
	"fmt"
	"math"
)

// Layout of a ring (all words in native byte order, all offsets fixed by the
// four sizes in the header, so a reader never trusts a stored offset):
//
//	[0, 4096)             writer header: constants, then one cache line of
//	                      writer-owned counters (read-only for readers when
//	                      mapped by Open(path, false))
//	[4096, +16384)        reader area: wait counters and ring futex word, then
//	                      readerSlots entries of 192 bytes (read-write for all)
//	configs               ConfigSlots × (64-byte seqlock header + ConfigSize)
//	index                 Slots × 64-byte entries, one per record, seq written last
//	data (page aligned)   DataSize bytes used circularly; a payload may wrap
//
// Byte positions in the data region are absolute, monotonically increasing
// uint64 counters; the physical offset is pos % DataSize. A record occupies
// [off, off+align8(len)); its bytes are intact while reserve-off <= DataSize.
const (
	magic   = 0x314d48534c4c4952 // "RILLSHM1" read as a little-endian word
	version = 1

	pageSize = 4096

	// writer header
	hMagic       = 0   // u64
	hVersion     = 8   // u32
	hReaderSlots = 12  // u32
	hDataSize    = 16  // u64
	hSlots       = 24  // u32
	hConfigSize  = 28  // u32
	hTotal       = 32  // u64
	hWriterPID   = 40  // u32
	hEnded       = 44  // u32
	hWriteSeq    = 64  // u64: seq of the newest published record, 0 = none
	hReserve     = 72  // u64: data bytes reserved so far (advanced before copying)
	hSyncSeq     = 80  // u64: seq of the newest FlagSync record, 0 = none
	hBytes       = 88  // u64: payload bytes written
	hHeartbeat   = 96  // u64: CLOCK_MONOTONIC ns of the writer's last sign of life
	hKindCount   = 104 // 3 × u64: records written of Meta.Kind 1, 2 and 3 (video, audio, data in sdk/media)
	hKindCodec   = 128 // 3 × u32: Meta.Codec of the latest record of Meta.Kind 1, 2 and 3, 0 = none yet

	// reader area
	areaOff     = pageSize
	aFutex      = 0  // u32: ring futex word, bumped by the writer when aWaiters != 0
	aWaiters    = 4  // u32: readers waiting on aFutex (no bell)
	aSleepers   = 8  // u32: hint, readers with the sleeping flag set
	aTable      = 64 // reader table
	readerSlots = 64
	slotSize    = 192
	areaSize    = (aTable + readerSlots*slotSize + pageSize - 1) / pageSize * pageSize

	// reader slot
	sPID      = 0  // u32: owner process, 0 = free
	sSleeping = 4  // u32: 1 = owner is about to block, wake its bell
	sPos      = 8  // u64: seq the owner reads next (for stats and tests)
	sBellID   = 16 // u64: id stored in the bell file, detects a recreated file
	sNameLen  = 24 // u32: length of the bell name, 0 = no bell
	sName     = 32 // [nameCap]byte
	nameCap   = 104

	// config slot header (followed by the payload)
	cSeq      = 0 // u64: seqlock, odd while the writer updates the slot, 0 = never set
	cLen      = 8 // u32
	cFlags    = 12
	cKindCode = 16
	cDTS      = 24
	cPTS      = 32
	cHdrSize  = 64

	// index entry
	eSeq      = 0 // u64, written last
	eOff      = 8 // u64, absolute data position
	eLen      = 16
	eFlags    = 20
	eKindCode = 24 // kind | codec<<8
	eDTS      = 32
	ePTS      = 40
	entrySize = 64
)

// Option defaults, used for zero fields of Options.
const (
	DefaultDataSize   = 8 << 20  // 8 MiB of payload, so payloads up to 2 MiB
	DefaultSlots      = 4096     // records a reader may fall behind
	DefaultConfigSize = 64 << 10 // bytes per config slot
)

// Option limits.
const (
	minDataSize   = 4096
	maxDataSize   = 1 << 36
	minSlots      = 8
	maxSlots      = 1 << 22
	maxConfigSize = 16 << 20

	// maxSeq bounds sequence numbers and byte positions read from shared
	// memory so that arithmetic on them cannot overflow.
	maxSeq = 1 << 62
)

// Options size a ring. Zero fields take the defaults.
type Options struct {
	// DataSize is the size of the payload region in bytes, rounded up to a
	// multiple of 64 (default 8 MiB). The largest payload is DataSize/4.
	DataSize int
	// Slots is the number of index entries, a power of two (default 4096):
	// the most records a reader can fall behind before it is lapped.
	Slots int
	// ConfigSize is the capacity of each config slot in bytes, rounded up to
	// a multiple of 64 (default 64 KiB).
	ConfigSize int
}

// layout holds the validated geometry of a ring.
type layout struct {
	dataSize   int
	slots      int
	configSize int
	configOff  int
	indexOff   int
	dataOff    int
	total      int
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

func (o Options) withDefaults() Options {
	if o.DataSize == 0 {
		o.DataSize = DefaultDataSize
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.ConfigSize == 0 {
		o.ConfigSize = DefaultConfigSize
	}
	return o
}

// layout validates o (defaults applied) and computes the geometry.
func (o Options) layout() (layout, error) {
	o = o.withDefaults()
	switch {
	case o.DataSize < minDataSize || int64(o.DataSize) > maxDataSize:
		return layout{}, fmt.Errorf("shm: data size %d out of range [%d, %d]", o.DataSize, minDataSize, int64(maxDataSize))
	case o.Slots < minSlots || o.Slots > maxSlots || o.Slots&(o.Slots-1) != 0:
		return layout{}, fmt.Errorf("shm: slots %d not a power of two in [%d, %d]", o.Slots, minSlots, maxSlots)
	case o.ConfigSize < 0 || o.ConfigSize > maxConfigSize:
		return layout{}, fmt.Errorf("shm: config size %d out of range [1, %d]", o.ConfigSize, maxConfigSize)
	}
	l := layout{
		dataSize:   roundUp(o.DataSize, 64),
		slots:      o.Slots,
		configSize: roundUp(o.ConfigSize, 64),
	}
	// All terms are bounded by the limits above, far below MaxInt64; the
	// explicit check keeps 32-bit platforms honest.
	total := uint64(areaOff + areaSize)
	l.configOff = int(total)
	total += uint64(ConfigSlots) * uint64(cHdrSize+l.configSize)
	l.indexOff = int(total)
	total += uint64(l.slots) * entrySize
	total = (total + pageSize - 1) / pageSize * pageSize
	l.dataOff = int(total)
	total += uint64(l.dataSize)
	total = (total + pageSize - 1) / pageSize * pageSize
	if total > math.MaxInt {
		return layout{}, fmt.Errorf("shm: ring of %d bytes too large for this platform", total)
	}
	l.total = int(total)
	return l, nil
}

// Size returns the number of bytes a ring with opts occupies, or 0 if opts
// are invalid (Format and Create report why).
func Size(opts Options) int {
	l, err := opts.layout()
	if err != nil {
		return 0
	}
	return l.total
}

func align8(n int) int { return (n + 7) &^ 7 }
