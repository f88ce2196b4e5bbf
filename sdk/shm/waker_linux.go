package shm

import (
	"path/filepath"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// ring rings the bell called name in dir whose id should be id, mapping it
// on first use. The caller holds w.mu. Allocation-free once the bell is
// cached.
func (w *waker) ring(dir string, name []byte, id uint64) {
	ref := w.bells[string(name)]
	if ref == nil || ref.id != id {
		if ref != nil && monoNow() < ref.retryAt {
			return
		}
		ref = w.open(dir, string(name))
		if ref.id != id {
			// Missing file, or a stale id in the slot: try again later
			// rather than on every record.
			ref.retryAt = monoNow() + int64(sliceTimeout)
			return
		}
	}
	if ref.mem == nil || ref.gen == w.gen {
		return
	}
	ref.gen = w.gen
	ringBell(ref.mem)
}

// open (re)maps a bell file and caches the result, including a failure.
func (w *waker) open(dir, name string) *bellRef {
	if old := w.bells[name]; old != nil {
		if old.mem != nil {
			unix.Munmap(old.mem)
		}
		delete(w.bells, name)
	}
	if len(w.bells) >= maxCachedBells {
		w.closeLocked()
	}
	if w.bells == nil {
		w.bells = make(map[string]*bellRef)
	}
	ref := &bellRef{}
	w.bells[name] = ref
	mem, err := mapExisting(filepath.Join(dir, name), bellSize, bellSize)
	if err != nil {
		return ref
	}
	mem = mem[:bellSize]
	if u64at(mem, bMagic).Load() != bellMagic {
		unix.Munmap(mem)
		return ref
	}
	ref.mem = mem
	ref.id = u64at(mem, bID).Load()
	return ref
}

// ringBell bumps a bell's word and wakes its goroutine. A bell file that a
// buggy process truncated raises SIGBUS on access; it is turned into a
// recovered panic so that the writer survives.
func ringBell(mem []byte) {
	defer func() { _ = recover() }()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	u32at(mem, bWord).Add(1)
	futexWake(mem, bWord, 1)
}

// close unmaps every cached bell.
func (w *waker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeLocked()
}

func (w *waker) closeLocked() {
	for name, ref := range w.bells {
		if ref.mem != nil {
			unix.Munmap(ref.mem)
		}
		delete(w.bells, name)
	}
}
