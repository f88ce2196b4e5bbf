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
	if ringBell(ref.mem, ref.fifo) && ref.fifo >= 0 {
		// Its reader is gone (EPIPE): the futex word from now on.
		unix.Close(ref.fifo)
		ref.fifo = -1
	}
}

// open (re)maps a bell file and caches the result, including a failure.
func (w *waker) open(dir, name string) *bellRef {
	if old := w.bells[name]; old != nil {
		old.release()
		delete(w.bells, name)
	}
	if len(w.bells) >= maxCachedBells {
		w.closeLocked()
	}
	if w.bells == nil {
		w.bells = make(map[string]*bellRef)
	}
	ref := &bellRef{fifo: -1}
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
	// A bell without a pipe (or one whose reader is gone: ENXIO) is
	// rung on its futex word alone.
	if fd, err := unix.Open(filepath.Join(dir, name)+BellFIFO, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err == nil {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
			ref.fifo = fd
		} else {
			unix.Close(fd)
		}
	}
	return ref
}

// release unmaps the bell and closes its pipe.
func (ref *bellRef) release() {
	if ref.mem != nil {
		unix.Munmap(ref.mem)
		ref.mem = nil
	}
	if ref.fifo >= 0 {
		unix.Close(ref.fifo)
		ref.fifo = -1
	}
}

// ringBell bumps a bell's word and wakes its goroutine (through its pipe,
// else its futex). A bell file that a
// buggy process truncated raises SIGBUS on access; it is turned into a
// recovered panic so that the writer survives.
// It reports a pipe without a reader (the Go runtime turns SIGPIPE on such
// a descriptor into EPIPE).
func ringBell(mem []byte, fifo int) (broken bool) {
	defer func() { _ = recover() }()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	u32at(mem, bWord).Add(1)
	if fifo >= 0 {
		// Non-blocking: a full pipe already holds a wake-up.
		one := [1]byte{1}
		_, err := unix.Write(fifo, one[:])
		if err != unix.EPIPE {
			return false
		}
		broken = true
	}
	futexWake(mem, bWord, 1)
	return broken
}

// close unmaps every cached bell.
func (w *waker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closeLocked()
}

func (w *waker) closeLocked() {
	for name, ref := range w.bells {
		ref.release()
		delete(w.bells, name)
	}
}
