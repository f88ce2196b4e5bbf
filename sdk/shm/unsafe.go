package shm

import (
	"sync/atomic"
	"unsafe"
)

// This is the only file of the package that imports unsafe. Everything else
// reaches shared memory through the typed views below, so the unsafe
// reasoning lives in one place:
//
//   - mem is either Go heap memory (tests) or a MAP_SHARED mapping. Neither
//     moves: the Go heap is not compacting, and the GC ignores pointers into
//     foreign mappings. A pointer into mem keeps heap memory alive; mappings
//     are kept alive by their Segment.
//   - Every offset passed in is computed from the validated layout (never
//     taken raw from shared memory) and is a multiple of the word size;
//     memAligned checks the base once, at Format/Attach time.
//   - The index expressions below are bounds-checked, so a layout bug panics
//     in tests instead of touching memory outside mem.

// memAligned reports whether mem starts on an 8-byte boundary, which the
// 64-bit atomics require (on arm64 a misaligned atomic faults).
func memAligned(mem []byte) bool {
	return len(mem) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(mem)))%8 == 0
}

// u32at returns an atomic view of the 4-byte word at mem[off:off+4].
func u32at(mem []byte, off int) *atomic.Uint32 {
	_ = mem[off : off+4] // bounds check without a (racy) read
	return (*atomic.Uint32)(unsafe.Pointer(&mem[off]))
}

// u64at returns an atomic view of the 8-byte word at mem[off:off+8].
func u64at(mem []byte, off int) *atomic.Uint64 {
	_ = mem[off : off+8]
	return (*atomic.Uint64)(unsafe.Pointer(&mem[off]))
}

// addrOf returns the address of *p for a raw system call argument (the futex
// word, the futex timeout). The caller keeps p reachable until the call
// returns (runtime.KeepAlive) and p must not point into a goroutine stack:
// futex words live in mem, timeouts in heap-allocated waiter structs.
func addrOf[T any](p *T) uintptr {
	return uintptr(unsafe.Pointer(p))
}
