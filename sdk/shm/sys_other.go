//go:build !linux

package shm

import (
	"errors"
	"fmt"
	"time"
)

// Shared-memory segments, bells and futexes are Linux-only. Elsewhere the
// package builds, and heap rings work with Wait polling every millisecond,
// so that code importing the SDK compiles on a developer's machine.

var errUnsupported = fmt.Errorf("shm: shared-memory rings need Linux: %w", errors.ErrUnsupported)

func futexWait(mem []byte, off int, val uint32) bool {
	time.Sleep(time.Millisecond)
	return true
}

func futexWake(mem []byte, off int, n int) {}

func pidAlive(pid int) bool { return pid > 0 }

var processStart = time.Now()

func monoNow() int64 { return int64(time.Since(processStart)) + 1 }

// Create is not supported on this platform.
func Create(path string, opts Options) (*Segment, error) { return nil, errUnsupported }

// Open is not supported on this platform.
func Open(path string, writable bool) (*Segment, error) { return nil, errUnsupported }

// Close does nothing on this platform.
func (s *Segment) Close() error { return nil }

// OpenBell is not supported on this platform.
func OpenBell(dir, name string) (*Bell, error) { return nil, errUnsupported }

// Close does nothing on this platform.
func (b *Bell) Close() error { return nil }

func (w *waker) ring(dir string, name []byte, id uint64) {}

func (w *waker) close() {}

// ShareWithGroup is not supported on this platform.
func (b *Bell) ShareWithGroup(gid int) error { return errUnsupported }
