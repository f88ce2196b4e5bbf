package security

import (
	"errors"
	"testing"
)

func rules(t *testing.T, lines ...string) Rules {
	t.Helper()
	rs := Rules{Enabled: true}
	for _, l := range lines {
		r, err := ParseRule(l)
		if err != nil {
			t.Fatal(err)
		}
		rs.Rules = append(rs.Rules, r)
	}
	return rs
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		rules  []string
		action string
		ip     string
		allow  bool
	}{
		{"no rules", nil, "play", "1.2.3.4", true},
		{"deny all play", []string{"deny play all"}, "play", "127.0.0.1", false},
		{"deny play leaves publish", []string{"deny play all"}, "publish", "127.0.0.1", true},
		{"first match wins allow", []string{"allow play 127.0.0.1", "deny play all"}, "play", "127.0.0.1", true},
		{"first match wins deny", []string{"allow play 127.0.0.1", "deny play all"}, "play", "10.0.0.1", false},
		{"cidr deny", []string{"deny publish 10.0.0.0/8", "allow publish all"}, "publish", "10.9.8.7", false},
		{"cidr miss", []string{"deny publish 10.0.0.0/8", "allow publish all"}, "publish", "11.0.0.1", true},
		{"allow list only", []string{"allow publish 127.0.0.1"}, "publish", "127.0.0.2", false},
		{"ipv6 exact", []string{"allow play ::1", "deny play all"}, "play", "::1", true},
		{"ipv6 bracketed", []string{"deny play ::1"}, "play", "[::1]", false},
		{"ipv6 cidr", []string{"deny play fd00::/8"}, "play", "fd12::1", false},
		{"ipv4 rule vs v4-mapped", []string{"deny play 127.0.0.1"}, "play", "::ffff:127.0.0.1", false},
		{"ipv4 rule vs ipv6", []string{"deny play 127.0.0.1"}, "play", "::1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := rules(t, tc.rules...).Check(tc.action, tc.ip)
			if tc.allow && err != nil {
				t.Fatalf("denied: %v", err)
			}
			if !tc.allow && !errors.Is(err, ErrDenied) {
				t.Fatalf("allowed: %v", err)
			}
		})
	}
	if err := (Rules{Enabled: false, Rules: rules(t, "deny play all").Rules}).Check("play", "1.1.1.1"); err != nil {
		t.Fatalf("disabled rules must allow: %v", err)
	}
}

func TestParseRuleErrors(t *testing.T) {
	for _, s := range []string{"", "allow", "allow play", "permit play all", "allow watch all", "deny play 1.2.3", "deny play 10.0.0.0/33", "allow play all extra"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
