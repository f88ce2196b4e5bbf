package shm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// OpenBell creates the file dir/name (0600, failing if it exists), maps it
// and starts the bell's goroutine. name must match ^[A-Za-z0-9._-]{1,100}$
// and should be unique per process (include the pid); dir must be the
// directory of the rings the process reads. The caller owns the Bell and
// must Close it.
func OpenBell(dir, name string) (*Bell, error) {
	if !validBellName(name) {
		return nil, fmt.Errorf("shm: invalid bell name %q", name)
	}
	path := filepath.Join(dir, name)
	mem, err := createMapped(path, bellSize)
	if err != nil {
		return nil, fmt.Errorf("open bell %q: %w", path, err)
	}
	b := &Bell{
		dir:       filepath.Clean(dir),
		name:      name,
		nameBytes: []byte(name),
		path:      path,
		mem:       mem,
		id:        rand.Uint64() | 1,
		word:      u32at(mem, bWord),
		done:      make(chan struct{}),
		readers:   make(map[*Reader]struct{}),
	}
	// The wake-up pipe, opened read-write so that it never reports end of
	// file nor blocks the open, in non-blocking mode so that the os
	// package reads it through the poller.
	fpath := path + BellFIFO
	if err := unix.Mkfifo(fpath, 0o600); err != nil {
		unix.Munmap(mem)
		os.Remove(path)
		return nil, fmt.Errorf("open bell %q: mkfifo: %w", fpath, err)
	}
	fd, err := unix.Open(fpath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		unix.Munmap(mem)
		os.Remove(path)
		os.Remove(fpath)
		return nil, fmt.Errorf("open bell %q: %w", fpath, err)
	}
	b.fifo = os.NewFile(uintptr(fd), fpath)
	u64at(mem, bID).Store(b.id)
	u32at(mem, bPID).Store(pidSelf)
	u64at(mem, bMagic).Store(bellMagic)
	go b.loop()
	return b, nil
}

// Close stops the bell's goroutine, unmaps the bell and removes its file.
// Readers still using it fall back to the ring's futex word (a reader
// blocked in Wait at that moment notices within 100 ms). Idempotent.
func (b *Bell) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.word.Add(1)
	futexWake(b.mem, bWord, 1<<30)
	f := b.fifo
	if f != nil {
		_ = f.SetReadDeadline(time.Now()) // ends a read in progress
	}
	<-b.done
	if f != nil {
		_ = f.Close()
	}
	err := unix.Munmap(b.mem)
	if rerr := os.Remove(b.path); err == nil {
		err = rerr
	}
	if rerr := os.Remove(b.path + BellFIFO); err == nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("close bell %q: %w", b.path, err)
	}
	return nil
}

// createMapped creates path exclusively with mode 0600, allocates size
// bytes with fallocate and maps them read-write. fallocate, unlike
// ftruncate, really allocates tmpfs pages: a full /dev/shm fails here with
// ENOSPC instead of raising SIGBUS at the first write.
func createMapped(path string, size int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: path, Err: err}
	}
	defer unix.Close(fd)
	fail := func(op string, err error) ([]byte, error) {
		unix.Unlink(path)
		return nil, &os.PathError{Op: op, Path: path, Err: err}
	}
	if err := unix.Fallocate(fd, 0, 0, int64(size)); err != nil {
		return fail("fallocate", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	return mem, nil
}

// mapExisting maps the whole regular file at path read-write after checking
// that its size is within [minSize, maxSize].
func mapExisting(path string, minSize, maxSize int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < minSize || st.Size > maxSize {
		return nil, fmt.Errorf("%w: %s: not a regular file of %d to %d bytes (mode %#o, %d bytes)",
			ErrCorrupt, path, minSize, maxSize, st.Mode, st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	return mem, nil
}

// ShareWithGroup gives the bell's file and wake-up pipe to group gid,
// read-write (0660), so that writers running as other users of that group
// can ring it. The process must be a member of gid.
func (b *Bell) ShareWithGroup(gid int) error {
	for _, p := range []string{b.path, b.path + BellFIFO} {
		if err := os.Chown(p, -1, gid); err != nil {
			return fmt.Errorf("share bell %q with group %d: %w", p, gid, err)
		}
		if err := os.Chmod(p, 0o660); err != nil {
			return fmt.Errorf("share bell %q with group %d: %w", p, gid, err)
		}
	}
	return nil
}
