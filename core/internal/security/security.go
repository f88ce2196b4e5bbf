// Package security applies a vhost's allow/deny rules for publish and play
// by client IP, as SRS's security section does.
package security

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrDenied is returned when the rules refuse a client.
var ErrDenied = errors.New("security: denied")

// Rule is one line: allow|deny publish|play all|<ip>|<cidr>.
type Rule struct {
	Allow  bool
	Action string // "publish" or "play"
	All    bool
	Net    *net.IPNet
	Text   string
}

// Rules are a vhost's rules, checked in order: the first rule that matches
// the action and the IP decides. When none matches, the client is allowed
// unless the list has an allow rule for that action (then only what is
// allowed passes). An empty or disabled list allows everything.
type Rules struct {
	Enabled bool
	Rules   []Rule
}

// ParseRule reads one rule in SRS's words, e.g. "deny play 10.0.0.0/8".
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Rule{}, fmt.Errorf("rule %q: want \"allow|deny publish|play all|IP|CIDR\"", s)
	}
	r := Rule{Text: s}
	switch f[0] {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return Rule{}, fmt.Errorf("rule %q: %q is neither allow nor deny", s, f[0])
	}
	switch f[1] {
	case "publish", "play":
		r.Action = f[1]
	default:
		return Rule{}, fmt.Errorf("rule %q: %q is neither publish nor play", s, f[1])
	}
	switch {
	case f[2] == "all":
		r.All = true
	case strings.Contains(f[2], "/"):
		_, n, err := net.ParseCIDR(f[2])
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: bad CIDR %q", s, f[2])
		}
		r.Net = n
	default:
		ip := net.ParseIP(f[2])
		if ip == nil {
			return Rule{}, fmt.Errorf("rule %q: bad IP %q", s, f[2])
		}
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		r.Net = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
	}
	return r, nil
}

func (r Rule) matches(action string, ip net.IP) bool {
	if r.Action != action {
		return false
	}
	if r.All {
		return true
	}
	if ip == nil {
		return false
	}
	if ip4 := ip.To4(); ip4 != nil && len(r.Net.IP) == net.IPv4len {
		ip = ip4
	}
	return r.Net.Contains(ip)
}

// Check decides whether ip may do action ("publish" or "play").
func (rs Rules) Check(action, ip string) error {
	if !rs.Enabled || len(rs.Rules) == 0 {
		return nil
	}
	addr := net.ParseIP(strings.Trim(ip, "[]"))
	hasAllow := false
	for _, r := range rs.Rules {
		if r.matches(action, addr) {
			if r.Allow {
				return nil
			}
			return fmt.Errorf("%w: %s from %s by rule %q", ErrDenied, action, ip, r.Text)
		}
		if r.Allow && r.Action == action {
			hasAllow = true
		}
	}
	if hasAllow {
		return fmt.Errorf("%w: %s from %s matches no allow rule", ErrDenied, action, ip)
	}
	return nil
}
