package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// logFile is a child's log: appended to, and renamed to <name>.1 (replacing
// the previous one) once it reaches max bytes, so that a chatty child keeps
// at most twice max on disk.
type logFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

func openLogFile(dir, name string, max int64) (*logFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	l := &logFile{path: filepath.Join(dir, name), max: max}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past max.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return len(p), nil
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		_ = l.f.Close()
		l.f = nil
		_ = os.Rename(l.path, l.path+".1")
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > l.max {
		p = p[int64(len(p))-l.max:]
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return len(p), err
}

// Note writes one line of the plugin's own (start, exit) into the log.
func (l *logFile) Note(format string, args ...any) {
	_, _ = fmt.Fprintf(l, "%s rill-exec: %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// copyLog copies a child's output pipe into its log until the pipe closes
// (the child and everything that inherited the pipe are gone).
func copyLog(dst io.Writer, r io.ReadCloser, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	_, _ = io.Copy(dst, r)
}
