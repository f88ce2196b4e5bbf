package sdk

import (
	"time"

	"github.com/hashicorp/go-hclog"
)

// durationLogger wraps the plugin's JSON logger so time.Duration values are
// logged in their String() form ("18.398s"). hclog's JSON output would
// otherwise write them as nanosecond integers, which reach the core as a
// bare number (duration=18398000000).
type durationLogger struct {
	hclog.Logger
}

func newDurationLogger(l hclog.Logger) hclog.Logger {
	if _, ok := l.(durationLogger); ok {
		return l
	}
	return durationLogger{l}
}

// durationStrings returns args with time.Duration values (odd positions)
// replaced by their String() form.
func durationStrings(args []interface{}) []interface{} {
	var out []interface{}
	for i := 1; i < len(args); i += 2 {
		d, ok := args[i].(time.Duration)
		if !ok {
			continue
		}
		if out == nil {
			out = append([]interface{}(nil), args...)
		}
		out[i] = d.String()
	}
	if out == nil {
		return args
	}
	return out
}

func (l durationLogger) Log(level hclog.Level, msg string, args ...interface{}) {
	l.Logger.Log(level, msg, durationStrings(args)...)
}
func (l durationLogger) Trace(msg string, args ...interface{}) {
	l.Logger.Trace(msg, durationStrings(args)...)
}
func (l durationLogger) Debug(msg string, args ...interface{}) {
	l.Logger.Debug(msg, durationStrings(args)...)
}
func (l durationLogger) Info(msg string, args ...interface{}) {
	l.Logger.Info(msg, durationStrings(args)...)
}
func (l durationLogger) Warn(msg string, args ...interface{}) {
	l.Logger.Warn(msg, durationStrings(args)...)
}
func (l durationLogger) Error(msg string, args ...interface{}) {
	l.Logger.Error(msg, durationStrings(args)...)
}
func (l durationLogger) With(args ...interface{}) hclog.Logger {
	return durationLogger{l.Logger.With(durationStrings(args)...)}
}
func (l durationLogger) Named(name string) hclog.Logger {
	return durationLogger{l.Logger.Named(name)}
}
func (l durationLogger) ResetNamed(name string) hclog.Logger {
	return durationLogger{l.Logger.ResetNamed(name)}
}
