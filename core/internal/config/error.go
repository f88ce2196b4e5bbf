package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error classes. Every *Error wraps exactly one of them, so a caller can
// test a joined error from Load or Parse with errors.Is.
var (
	// ErrSyntax is the class of HCL syntax errors.
	ErrSyntax = errors.New("config: syntax error")
	// ErrDuplicate is the class of keys or blocks defined twice, and of a
	// block and an attribute sharing a name.
	ErrDuplicate = errors.New("config: duplicate definition")
	// ErrUnknownKey is the class of keys the core does not know.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrInvalidValue is the class of values of the wrong type or out of
	// range, and of expressions that are not literals.
	ErrInvalidValue = errors.New("config: invalid value")
)

// Error is one problem found in a config file, with the position of the
// offending key. Load and Parse return an errors.Join of *Error values
// sorted by position.
type Error struct {
	// File is the config file name as given to Load or Parse.
	File string
	// Line and Col are 1-based; both are 0 when the position is unknown.
	Line, Col int
	// Key names what is wrong as an operator reads it, e.g.
	// `vhost "live" key "gop_cach"`; empty for syntax errors.
	Key string
	// Msg says what is wrong, lower-case, e.g. "unknown key".
	Msg string
	// Err is the class of the problem: ErrSyntax, ErrDuplicate,
	// ErrUnknownKey or ErrInvalidValue. It is not part of Error().
	Err error
}

// Error formats the problem as "file:line:col: key: msg", leaving out what
// is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(formatPos(e.File, e.Line, e.Col))
	if e.Key != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Key)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the class of the problem.
func (e *Error) Unwrap() error { return e.Err }

// formatPos renders "file:line:col", "file" when the line is unknown, and
// "line:col" when the file name is empty.
func formatPos(file string, line, col int) string {
	switch {
	case line <= 0:
		return file
	case file == "":
		return fmt.Sprintf("%d:%d", line, col)
	default:
		return fmt.Sprintf("%s:%d:%d", file, line, col)
	}
}

// joinErrors sorts errs by position and joins them; nil when errs is empty.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if a.Col != b.Col {
			return a.Col - b.Col
		}
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Msg, b.Msg)
	})
	out := make([]error, len(sorted))
	for i, e := range sorted {
		out[i] = e
	}
	return errors.Join(out...)
}
