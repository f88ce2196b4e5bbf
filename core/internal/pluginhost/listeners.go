package pluginhost

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// bound is a socket the core holds for a plugin across its restarts.
type bound struct {
	name    string
	network string
	addr    string // actual address
	file    *os.File
	closer  interface{ Close() error }
}

// splitAddr reads "tcp://host:port", "udp://host:port" or "host:port".
func splitAddr(s, defNetwork string) (network, addr string) {
	if n, a, ok := strings.Cut(s, "://"); ok {
		return n, a
	}
	if defNetwork == "" {
		defNetwork = "tcp"
	}
	return defNetwork, s
}

// family returns network with "4" or "6" appended for an IP literal host,
// so that "0.0.0.0:1935" binds IPv4 only and "[::]:1935" IPv6 only
// (IPV6_V6ONLY), and both can be configured side by side.
func family(network, addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return network
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return network
	case ip.To4() == nil:
		return network + "6"
	default:
		// "0.0.0.0" with plain tcp would be a dual-stack socket in Go and
		// collide with a separate "[::]" listener on the same port.
		return network + "4"
	}
}

func bind(name, spec, defNetwork string) (*bound, error) {
	network, addr := splitAddr(spec, defNetwork)
	switch network {
	case "tcp":
		ln, err := net.Listen(family("tcp", addr), addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s %s for %s: %w", network, addr, name, err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("listener file %s: %w", addr, err)
		}
		return &bound{name: name, network: network, addr: ln.Addr().String(), file: f, closer: ln}, nil
	case "udp":
		pc, err := net.ListenPacket(family("udp", addr), addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s %s for %s: %w", network, addr, name, err)
		}
		f, err := pc.(*net.UDPConn).File()
		if err != nil {
			pc.Close()
			return nil, fmt.Errorf("socket file %s: %w", addr, err)
		}
		return &bound{name: name, network: network, addr: pc.LocalAddr().String(), file: f, closer: pc}, nil
	default:
		return nil, fmt.Errorf("listen %q for %s: unknown network %q (want tcp:// or udp://)", spec, name, network)
	}
}

func closeAll(bs []*bound) error {
	var errs []error
	for _, b := range bs {
		if err := b.file.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := b.closer.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
