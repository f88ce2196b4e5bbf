package pluginhost

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBindIPv4AndIPv6SamePort(t *testing.T) {
	v4, err := bind("x", "127.0.0.1:0", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll([]*bound{v4})
	_, port, _ := net.SplitHostPort(v4.addr)
	v6, err := bind("x", "[::1]:"+port, "tcp")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer closeAll([]*bound{v6})
	for _, addr := range []string{v4.addr, v6.addr} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		c.Close()
	}
}

func TestBindWildcardsSideBySide(t *testing.T) {
	v4, err := bind("x", "0.0.0.0:0", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll([]*bound{v4})
	if !strings.HasPrefix(v4.addr, "0.0.0.0:") {
		t.Fatalf("IPv4 wildcard bound as %s", v4.addr)
	}
	_, port, _ := net.SplitHostPort(v4.addr)
	v6, err := bind("x", "[::]:"+port, "tcp")
	if err != nil {
		if strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("[::] collides with 0.0.0.0 on port %s: %v", port, err)
		}
		t.Skipf("no IPv6 here: %v", err)
	}
	closeAll([]*bound{v6})
}

func TestBindUDPAndErrors(t *testing.T) {
	u, err := bind("x", "udp://127.0.0.1:0", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if u.network != "udp" {
		t.Fatalf("network %q", u.network)
	}
	closeAll([]*bound{u})
	if _, err := bind("x", "sctp://127.0.0.1:0", "tcp"); err == nil {
		t.Fatal("unknown network accepted")
	}
	if _, err := bind("x", "256.1.1.1:80", "tcp"); err == nil {
		t.Fatal("bad address accepted")
	}
}

func TestDiscoverSkipsNonPlugins(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("rtmp", 0o755)
	write("hls", 0o755)
	write("README", 0o644)
	write("Bad.Name", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	found, skipped, err := Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 || found[0].Name != "hls" || found[1].Name != "rtmp" {
		t.Fatalf("found %+v", found)
	}
	if len(skipped) != 3 {
		t.Fatalf("skipped %v", skipped)
	}
	if _, _, err := Discover(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing dir accepted")
	}
}
