package shm

import (
	"errors"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Futex operations (linux/futex.h). Deliberately without FUTEX_PRIVATE_FLAG:
// private futexes are keyed by address space and do not wake across
// processes.
const (
	futexOpWait = 0
	futexOpWake = 1
)

// futexTimeout is the wait slice. It is a global so that its address, passed
// to the kernel, is stable and costs no allocation.
var futexTimeout = unix.NsecToTimespec(int64(sliceTimeout))

// futexWait blocks while the word at mem[off] equals val, for at most
// sliceTimeout. It reports whether the wait timed out; a wake, a changed
// word or a signal all return false.
func futexWait(mem []byte, off int, val uint32) (timedOut bool) {
	w := u32at(mem, off)
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, addrOf(w), futexOpWait, uintptr(val), addrOf(&futexTimeout), 0, 0)
	runtime.KeepAlive(mem)
	return e == unix.ETIMEDOUT
}

// futexWake wakes up to n waiters on the word at mem[off].
func futexWake(mem []byte, off int, n int) {
	w := u32at(mem, off)
	unix.Syscall6(unix.SYS_FUTEX, addrOf(w), futexOpWake, uintptr(n), 0, 0, 0)
	runtime.KeepAlive(mem)
}

// pidAlive reports whether process pid exists (a zombie counts as alive
// until its parent reaps it). Only pid > 0 is ever signalled: kill(0) and
// kill(-1) address process groups.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// clockBase maps Go's monotonic clock (which on Linux is CLOCK_MONOTONIC
// behind a private offset) to raw CLOCK_MONOTONIC nanoseconds, comparable
// across processes, without a system call per reading.
var clockBase = sync.OnceValues(func() (time.Time, int64) {
	var ts unix.Timespec
	t0 := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return t0, 0
	}
	t1 := time.Now()
	// The midpoint of t0 and t1 corresponds to ts, within the syscall's cost.
	return t0.Add(t1.Sub(t0) / 2), ts.Nano()
})

// monoNow returns CLOCK_MONOTONIC in nanoseconds.
func monoNow() int64 {
	t0, base := clockBase()
	return base + int64(time.Since(t0))
}
