package shm

// Segment is a ring in a shared-memory file (normally under /dev/shm),
// mapped into this process. The creator (the core) owns the file and removes
// it; Close only unmaps.
type Segment struct {
	// Path is the segment's file.
	Path string
	// Ring is the ring in the mapping. It must not be used after Close.
	Ring *Ring

	mem []byte
}
