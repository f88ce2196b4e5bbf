package wire

import (
	"regexp"
	"strings"
)

// Stream identity, declared once for the core, the SDK and every plugin.

// DefaultVhost is SRS's fallback vhost: a stream whose host names no
// configured vhost belongs to it.
const DefaultVhost = "__defaultVhost__"

// nameRE is the allow-list for a vhost, a stream, and each "/"-separated
// segment of an app: names reach file paths (HLS, DVR) and command lines
// (exec), so nothing else passes (docs/THREATS.md rows 21 and 22).
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-~]{0,127}$`)

// ValidName accepts a vhost, stream or app segment name: letters, digits,
// "_", ".", "-", "~", at most 128 bytes, never "." or ".." alone, no path
// separator.
func ValidName(s string) bool { return nameRE.MatchString(s) && s != "." && s != ".." }

// ValidApp accepts an app: one or more valid names separated by "/" (SRS's
// multi-level apps), at most 255 bytes.
func ValidApp(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, seg := range strings.Split(s, "/") {
		if !ValidName(seg) {
			return false
		}
	}
	return true
}
