package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Segment files are named rill-<instance>-<what> in the shm directory. Each
// running core holds an exclusive flock on rill-<instance>.lock for its whole
// life, so a later core can tell the files of a dead one from those of a
// live one (two daemons may share /dev/shm, as an origin and an edge do).

// Instance owns the shm files of one core process.
type Instance struct {
	ID   string
	Dir  string
	lock *os.File
	// share >= 0 is the group the rings are given (mode 0660), for plugins
	// that run as other users; -1: rings stay 0600, the core's user's.
	share int
}

// ShareWith makes the rings created from now on group gid's, read-write
// (0660), for plugin processes that run as other users in that group.
func (in *Instance) ShareWith(gid int) { in.share = gid }

// shareFile gives path to the shared group, when there is one.
func (in *Instance) shareFile(path string) error {
	if in.share < 0 {
		return nil
	}
	if err := os.Chown(path, -1, in.share); err != nil {
		return fmt.Errorf("share ring %s with group %d: %w", path, in.share, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return fmt.Errorf("share ring %s with group %d: %w", path, in.share, err)
	}
	return nil
}

// NewInstance picks a fresh instance id, takes its lock and sweeps the
// segments left behind by cores that died. It returns what it removed.
func NewInstance(dir string) (*Instance, []string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("shm dir %q: %w", dir, err)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, nil, err
	}
	inst := &Instance{ID: hex.EncodeToString(b[:]), Dir: dir, share: -1}
	f, err := os.OpenFile(inst.lockPath(inst.ID), os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("create instance lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("lock instance: %w", err)
	}
	inst.lock = f
	removed, err := inst.sweep()
	return inst, removed, err
}

func (in *Instance) lockPath(id string) string {
	return filepath.Join(in.Dir, "rill-"+id+".lock")
}

// Path returns the path of this instance's file with the given suffix.
func (in *Instance) Path(suffix string) string {
	return filepath.Join(in.Dir, "rill-"+in.ID+"-"+suffix)
}

// sweep removes the files of every instance whose lock nobody holds.
func (in *Instance) sweep() ([]string, error) {
	entries, err := os.ReadDir(in.Dir)
	if err != nil {
		return nil, fmt.Errorf("sweep %q: %w", in.Dir, err)
	}
	dead := map[string]bool{}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "rill-") {
			continue
		}
		rest := strings.TrimPrefix(name, "rill-")
		id, _, _ := strings.Cut(strings.TrimSuffix(rest, ".lock"), "-")
		if id == in.ID || len(id) != 8 {
			continue
		}
		isDead, seen := dead[id]
		if !seen {
			isDead = !in.held(id)
			dead[id] = isDead
		}
		if !isDead {
			continue
		}
		p := filepath.Join(in.Dir, name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// held reports whether a live core holds the lock of instance id. A missing
// lock file means the instance is dead.
func (in *Instance) held(id string) bool {
	f, err := os.Open(in.lockPath(id))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Close removes every file of this instance and releases the lock.
func (in *Instance) Close() error {
	matches, _ := filepath.Glob(filepath.Join(in.Dir, "rill-"+in.ID+"-*"))
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if in.lock != nil {
		if err := os.Remove(in.lock.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		in.lock.Close()
		in.lock = nil
	}
	return errors.Join(errs...)
}
