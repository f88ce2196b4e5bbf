package main

import (
	"bytes"
	"io"
	"testing"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
)

// FuzzHandshake feeds arbitrary C0/C1/C2 bytes to the server side of the
// handshake the plugin runs on every connection (simple and complex
// digest schemes): it must return an error or succeed, never panic.
func FuzzHandshake(f *testing.F) {
	simple := append([]byte{3}, make([]byte, 1536*2)...)
	f.Add(simple)
	complexC1 := append([]byte{3, 0, 0, 0, 0, 9, 0, 124, 2}, bytes.Repeat([]byte{0xff}, 1536*2)...)
	f.Add(complexC1)
	f.Add([]byte{3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		var hs lalrtmp.HandshakeServer
		r := bytes.NewReader(in)
		if err := hs.ReadC0C1(r); err != nil {
			return
		}
		if err := hs.WriteS0S1S2(io.Discard); err != nil {
			return
		}
		_ = hs.ReadC2(r)
	})
}
