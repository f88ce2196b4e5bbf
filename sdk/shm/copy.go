package shm

import "encoding/binary"

// Payload bytes are protected by seqlocks, not by happens-before edges: a
// lapped reader may copy bytes the writer is overwriting at that moment and
// throws the copy away when its re-check fails. That is correct for the
// algorithm but is a data race in the Go memory model, and the race detector
// would report it. Under -race the copies therefore go word by word through
// atomics, which the detector understands; the normal build uses memmove.
//
// Shared offsets handed to these functions are multiples of 8, and the shared
// area is reserved in multiples of 8, so the race build may write the padding
// bytes of a trailing partial word.

// copyIn copies src into mem at off.
func copyIn(mem []byte, off int, src []byte) {
	if !raceEnabled {
		copy(mem[off:off+len(src)], src)
		return
	}
	i := 0
	for ; i+8 <= len(src); i += 8 {
		u64at(mem, off+i).Store(binary.NativeEndian.Uint64(src[i:]))
	}
	if i < len(src) {
		var w [8]byte
		copy(w[:], src[i:])
		u64at(mem, off+i).Store(binary.NativeEndian.Uint64(w[:]))
	}
}

// copyOut copies len(dst) bytes from mem at off into dst.
func copyOut(dst []byte, mem []byte, off int) {
	if !raceEnabled {
		copy(dst, mem[off:off+len(dst)])
		return
	}
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		binary.NativeEndian.PutUint64(dst[i:], u64at(mem, off+i).Load())
	}
	if i < len(dst) {
		var w [8]byte
		binary.NativeEndian.PutUint64(w[:], u64at(mem, off+i).Load())
		copy(dst[i:], w[:])
	}
}
