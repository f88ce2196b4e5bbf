package pluginhost

import (
	"math"

	"github.com/hashicorp/go-hclog"
)

// pluginLogger is the logger handed to go-plugin's ClientConfig.Logger. A
// plugin logs JSON lines on stderr; go-plugin decodes them into
// map[string]interface{}, so every number arrives as float64 and would print
// as e.g. bytes="5.06e+06". pluginLogger turns whole-number float64 values
// back into int64 before they reach the core's logger.
type pluginLogger struct {
	hclog.Logger
}

func newPluginLogger(l hclog.Logger) hclog.Logger {
	if _, ok := l.(pluginLogger); ok {
		return l
	}
	return pluginLogger{l}
}

// wholeNumbers returns args with whole float64 values (in int64 range)
// replaced by int64. Keys (even positions) are left alone.
func wholeNumbers(args []interface{}) []interface{} {
	var out []interface{}
	for i := 1; i < len(args); i += 2 {
		f, ok := args[i].(float64)
		if !ok || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			continue
		}
		if out == nil {
			out = append([]interface{}(nil), args...)
		}
		out[i] = int64(f)
	}
	if out == nil {
		return args
	}
	return out
}

func (l pluginLogger) Log(level hclog.Level, msg string, args ...interface{}) {
	l.Logger.Log(level, msg, wholeNumbers(args)...)
}
func (l pluginLogger) Trace(msg string, args ...interface{}) {
	l.Logger.Trace(msg, wholeNumbers(args)...)
}
func (l pluginLogger) Debug(msg string, args ...interface{}) {
	l.Logger.Debug(msg, wholeNumbers(args)...)
}
func (l pluginLogger) Info(msg string, args ...interface{}) {
	l.Logger.Info(msg, wholeNumbers(args)...)
}
func (l pluginLogger) Warn(msg string, args ...interface{}) {
	l.Logger.Warn(msg, wholeNumbers(args)...)
}
func (l pluginLogger) Error(msg string, args ...interface{}) {
	l.Logger.Error(msg, wholeNumbers(args)...)
}
func (l pluginLogger) With(args ...interface{}) hclog.Logger {
	return pluginLogger{l.Logger.With(wholeNumbers(args)...)}
}
func (l pluginLogger) Named(name string) hclog.Logger {
	return pluginLogger{l.Logger.Named(name)}
}
func (l pluginLogger) ResetNamed(name string) hclog.Logger {
	return pluginLogger{l.Logger.ResetNamed(name)}
}
