package shm

import "sync"

// maxCachedBells bounds the writer's cache of mapped bell files.
const maxCachedBells = 256

// waker is the writer side of the bells: the bell files named in the reader
// table, mapped once and cached by name.
type waker struct {
	mu    sync.Mutex
	gen   uint64             // wake pass, so a bell is rung once per pass
	name  [nameCap]byte      // scratch for slot names
	woken [readerSlots]uint8 // scratch: slots whose flag was cleared
	bells map[string]*bellRef
}

// bellRef is a cached bell mapping.
type bellRef struct {
	fifo    int    // the bell's wake-up pipe, -1 if it has none
	mem     []byte // nil if the file could not be mapped
	id      uint64
	gen     uint64
	retryAt int64 // monoNow after which a failed or mismatched bell is reopened
}
