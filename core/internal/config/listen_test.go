package config

import "testing"

func TestParseListen(t *testing.T) {
	tests := []struct {
		in            string
		network, addr string
		wantErr       string
	}{
		{in: "0.0.0.0:1935", network: "tcp", addr: "0.0.0.0:1935"},
		{in: "[::]:1935", network: "tcp", addr: "[::]:1935"},
		{in: ":1935", network: "tcp", addr: ":1935"},
		{in: "tcp://127.0.0.1:0", network: "tcp", addr: "127.0.0.1:0"},
		{in: "udp://0.0.0.0:8000", network: "udp", addr: "0.0.0.0:8000"},
		{in: "udp://[fe80::1%eth0]:8000", network: "udp", addr: "[fe80::1%eth0]:8000"},
		{in: "localhost:8080", network: "tcp", addr: "localhost:8080"},
		{in: "Media.Example.com:65535", network: "tcp", addr: "Media.Example.com:65535"},
		{in: "1935", wantErr: `invalid listen address "1935": want host:port: address 1935: missing port in address`},
		{in: "::1:1935", wantErr: `invalid listen address "::1:1935": want host:port: address ::1:1935: too many colons in address`},
		{in: "0.0.0.0:65536", wantErr: `invalid listen address "0.0.0.0:65536": port "65536" is not a number from 0 to 65535`},
		{in: "0.0.0.0:rtmp", wantErr: `invalid listen address "0.0.0.0:rtmp": port "rtmp" is not a number from 0 to 65535`},
		{in: "0.0.0.0:01935", wantErr: `invalid listen address "0.0.0.0:01935": port "01935" is not a number from 0 to 65535`},
		{in: "0.0.0.0:", wantErr: `invalid listen address "0.0.0.0:": port "" is not a number from 0 to 65535`},
		{in: "srt://0.0.0.0:10080", wantErr: `invalid listen address "srt://0.0.0.0:10080": unknown scheme "srt" (want tcp:// or udp://)`},
		{in: "bad_host!:1", wantErr: `invalid listen address "bad_host!:1": host "bad_host!" is neither an IP address nor a host name`},
		{in: "[localhost]:1", wantErr: `invalid listen address "[localhost]:1": "localhost" in brackets is not an IPv6 address`},
		{in: "[1.2.3.4]:1", wantErr: `invalid listen address "[1.2.3.4]:1": "1.2.3.4" in brackets is not an IPv6 address`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			network, addr, err := ParseListen(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseListen(%q) = %q, %q, %v; want error %q", tt.in, network, addr, err, tt.wantErr)
				}
				return
			}
			if err != nil || network != tt.network || addr != tt.addr {
				t.Fatalf("ParseListen(%q) = %q, %q, %v; want %q, %q", tt.in, network, addr, err, tt.network, tt.addr)
			}
		})
	}
}
