package shm

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

// Bell file layout: one page holding a futex word. The writer of a ring maps
// the bell files named in the reader table and bumps their word.
const (
	bellMagic   = 0x314c45424c4c4952 // "RILLBEL1" read as a little-endian word
	bMagic      = 0                  // u64
	bID         = 8                  // u64: random, copied into reader slots
	bPID        = 16                 // u32: owner process
	bWord       = 64                 // u32: futex word, bumped by writers
	bellSize    = pageSize
	maxBellName = 100
)

// BellFIFO is the suffix of a bell's wake-up pipe, the named FIFO beside
// its file: writers write a byte to it after bumping the word.
const BellFIFO = ".fifo"

// validBellName reports whether name matches ^[A-Za-z0-9._-]{1,100}$ and is
// not "." or "..", so that it names a file directly inside the ring's
// directory.
func validBellName[T string | []byte](name T) bool {
	if len(name) == 0 || len(name) > maxBellName || string(name) == "." || string(name) == ".." {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Bell is a process's doorbell: a small file holding a futex word that the
// writers of every ring this process reads bump when they publish to one of
// its sleeping readers. One goroutine per Bell waits on the word and wakes
// the process's waiting readers. Create one per process with OpenBell, pass
// it to Reader.UseBell, and Close it after those readers.
type Bell struct {
	dir, name string
	nameBytes []byte
	path      string
	mem       []byte
	id        uint64
	word      *atomic.Uint32
	closed    atomic.Bool
	done      chan struct{}
	// fifo is the bell's wake-up pipe (BellFIFO), read through Go's
	// network poller: the bell goroutine never sits in a blocking system
	// call, which would keep the runtime's sysmon thread polling every
	// 20 µs (measured: most of an idle plugin's CPU). nil: the futex word.
	fifo *os.File

	mu      sync.Mutex
	readers map[*Reader]struct{}
}

// Name returns the bell's file name.
func (b *Bell) Name() string { return b.name }

func (b *Bell) register(rd *Reader) {
	b.mu.Lock()
	b.readers[rd] = struct{}{}
	b.mu.Unlock()
}

func (b *Bell) unregister(rd *Reader) {
	b.mu.Lock()
	delete(b.readers, rd)
	b.mu.Unlock()
}

// notify signals the parked readers whose sleeping flag a writer cleared
// and reports whether there were any.
func (b *Bell) notify() (woke bool) {
	b.mu.Lock()
	for rd := range b.readers {
		if rd.parked.Load() && rd.sleeping.Load() == 0 {
			select {
			case rd.wakeC <- struct{}{}:
				woke = true
			default:
			}
		}
	}
	b.mu.Unlock()
	return woke
}

// loop is the bell goroutine: read the word, wake whoever was rung, and wait
// for the word to change (or 100 ms). A ring between the read and the wait
// changes the word, so the wait returns at once and nothing is lost.
func (b *Bell) loop() {
	defer close(b.done)
	if b.fifo != nil {
		var buf [64]byte
		for !b.closed.Load() {
			if b.notify() {
				runtime.Gosched() // as below
			}
			// Writers bump the word, then write a byte: what they wrote
			// stays until read, so a ring is never lost. The read waits
			// in the poller, not in a system call.
			if _, err := b.fifo.Read(buf[:]); err != nil {
				if b.closed.Load() {
					return
				}
				b.fifo = nil // cannot happen with O_RDWR; use the futex
				break
			}
		}
	}
	for !b.closed.Load() {
		v := b.word.Load()
		if b.notify() {
			// The woken readers sit in this P's run queue; blocking in the
			// futex right away would leave them to another thread (a second
			// thread wakeup on the latency path). Let them run here first.
			runtime.Gosched()
		}
		futexWait(b.mem, bWord, v)
	}
}
