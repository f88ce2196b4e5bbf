package wire

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, ok := range []string{"live", "cam_1", "a.b-c~d", "_x", strings.Repeat("a", 128)} {
		if !ValidName(ok) {
			t.Errorf("ValidName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", ".", "..", "../x", "a/b", "a\\b", "a\x00", "-x", ".hidden", "a b", "%2e%2e", strings.Repeat("a", 129)} {
		if ValidName(bad) {
			t.Errorf("ValidName(%q) = true", bad)
		}
	}
	for _, ok := range []string{"live", "a/b/c"} {
		if !ValidApp(ok) {
			t.Errorf("ValidApp(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "/live", "live/", "a//b", "a/../b", strings.Repeat("a/", 128) + "a"} {
		if ValidApp(bad) {
			t.Errorf("ValidApp(%q) = true", bad)
		}
	}
}
