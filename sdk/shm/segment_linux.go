package shm

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Create creates a ring in a new file at path (mode 0600, failing if the
// file exists), allocates it with fallocate (a full tmpfs gives ENOSPC, not
// a SIGBUS later) and maps it read-write. The caller owns the file: Close
// unmaps it, and removing it is the caller's job. The writer's pid is
// recorded by NewWriter; until a writer attaches and writes or sends
// heartbeats, waiting readers report ErrWriterGone after 3 s.
func Create(path string, opts Options) (*Segment, error) {
	size := Size(opts)
	if size == 0 {
		_, err := opts.layout()
		return nil, fmt.Errorf("create ring %q: %w", path, err)
	}
	mem, err := createMapped(path, size)
	if err != nil {
		return nil, fmt.Errorf("create ring: %w", err)
	}
	r, err := Format(mem, opts, 0)
	if err != nil {
		unix.Munmap(mem)
		os.Remove(path)
		return nil, fmt.Errorf("create ring %q: %w", path, err)
	}
	r.dir = filepath.Dir(path)
	return &Segment{Path: path, Ring: r, mem: mem}, nil
}

// Open maps the existing ring at path and validates it with Attach. With
// writable false (a reader) only the reader table is writable: the writer
// header, configs, index and data are mapped read-only, so a reader cannot
// damage the stream for others. The caller must Close the Segment, after
// closing its readers and writer.
func Open(path string, writable bool) (*Segment, error) {
	mem, err := mapExisting(path, areaOff+areaSize, math.MaxInt)
	if err != nil {
		return nil, fmt.Errorf("open ring: %w", err)
	}
	r, err := Attach(mem)
	if err == nil && !writable {
		err = protect(mem, len(r.mem))
		r.writable = false
	}
	if err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("open ring %q: %w", path, err)
	}
	r.dir = filepath.Dir(path)
	return &Segment{Path: path, Ring: r, mem: mem}, nil
}

// protect makes everything but the reader area read-only. With pages larger
// than the layout's 4 KiB alignment the header shares a page with the reader
// area and stays writable.
func protect(mem []byte, total int) error {
	ps := os.Getpagesize()
	if areaOff%ps != 0 || (areaOff+areaSize)%ps != 0 {
		return nil
	}
	if err := unix.Mprotect(mem[:areaOff], unix.PROT_READ); err != nil {
		return fmt.Errorf("mprotect: %w", err)
	}
	if rest := mem[areaOff+areaSize : roundUp(total, ps)]; len(rest) > 0 {
		if err := unix.Mprotect(rest, unix.PROT_READ); err != nil {
			return fmt.Errorf("mprotect: %w", err)
		}
	}
	return nil
}

// Close detaches the process's readers of the ring from their bells and
// unmaps the segment and the bells the writer mapped. It does not remove the
// file. The Ring, its Readers and Writer must not be used afterwards.
// Idempotent.
func (s *Segment) Close() error {
	if s.mem == nil {
		return nil
	}
	s.Ring.detach()
	s.Ring.wk.close()
	err := unix.Munmap(s.mem)
	s.mem = nil
	if err != nil {
		return fmt.Errorf("close ring %q: %w", s.Path, err)
	}
	return nil
}
