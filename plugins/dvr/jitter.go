package main

import "time"

// SRS's jitter constants (srs_kernel_consts.hpp, SrsRtmpJitter::correct).
const (
	maxJitter        = 250 * time.Millisecond
	defaultFrameTime = 10 * time.Millisecond
)

// jitter maps a stream's timestamps onto a file's timeline as SRS's
// time_jitter does: "full" starts at zero and replaces any jump outside
// ±250 ms by 10 ms; "zero" only subtracts the first timestamp; "off"
// keeps the stream's timestamps. One jitter per file, so every file
// starts at zero. It also keeps each kind's DTS non-decreasing, which a
// file needs whatever the mode.
type jitter struct {
	mode        string
	started     bool
	lastPkt     time.Duration
	lastCorrect time.Duration
	base        time.Duration
	lastDTS     [4]time.Duration // by media.Kind
}

func newJitter(mode string) *jitter { return &jitter{mode: mode} }

// correct returns the file's DTS and PTS for a packet of kind with dts and
// pts on the stream's timeline.
func (j *jitter) correct(kind int, dts, pts time.Duration) (time.Duration, time.Duration) {
	cts := pts - dts
	var out time.Duration
	switch j.mode {
	case jitterZero:
		if !j.started {
			j.base = dts
		}
		out = dts - j.base
	case jitterOff:
		out = dts
	default:
		if !j.started {
			j.lastPkt = dts
		}
		delta := dts - j.lastPkt
		if delta < -maxJitter || delta > maxJitter {
			delta = defaultFrameTime
		}
		out = max(0, j.lastCorrect+delta)
		j.lastCorrect = out
		j.lastPkt = dts
	}
	j.started = true
	out = max(out, 0)
	if kind >= 0 && kind < len(j.lastDTS) {
		out = max(out, j.lastDTS[kind])
		j.lastDTS[kind] = out
	}
	return out, out + cts
}

// now is the file time of the latest packet (for configs and metadata
// written in the middle of a file).
func (j *jitter) now() time.Duration {
	var t time.Duration
	for _, d := range j.lastDTS {
		t = max(t, d)
	}
	return t
}
