package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseListen splits a listen address of a plugin block into the network
// and address to bind: "0.0.0.0:1935" and "tcp://0.0.0.0:1935" give
// ("tcp", "0.0.0.0:1935"), "udp://[::]:8000" gives ("udp", "[::]:8000").
// The host is an IP address (IPv6 in brackets), a host name, or empty for
// all interfaces (":1935"); the port is a number from 0 to 65535, 0
// meaning a port the system picks.
func ParseListen(s string) (network, address string, err error) {
	network, address = "tcp", s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch scheme {
		case "tcp", "udp":
			network, address = scheme, rest
		default:
			return "", "", fmt.Errorf("invalid listen address %q: unknown scheme %q (want tcp:// or udp://)", s, scheme)
		}
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", "", fmt.Errorf("invalid listen address %q: want host:port: %w", s, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return "", "", fmt.Errorf("invalid listen address %q: port %q is not a number from 0 to 65535", s, port)
	}
	if strings.HasPrefix(address, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "", fmt.Errorf("invalid listen address %q: %q in brackets is not an IPv6 address", s, host)
		}
	} else if host != "" && !validHost(host) {
		return "", "", fmt.Errorf("invalid listen address %q: host %q is neither an IP address nor a host name", s, host)
	}
	return network, address, nil
}

// validHost reports whether h is an IP address (an IPv6 one may carry a
// zone) or an RFC 1123 host name.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return hostnameRE.MatchString(strings.ToLower(h)) && len(h) <= 253
}
