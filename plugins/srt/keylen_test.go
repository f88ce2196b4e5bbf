package main

import (
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
)

// TestCallerKeyLen reads the key length real gosrt callers send (16, 24, 32
// bytes) and none for an unencrypted caller; it fails if a gosrt upgrade
// moves the field callerKeyLen reads.
func TestCallerKeyLen(t *testing.T) {
	ln, err := srt.Listen("srt", "127.0.0.1:0", srt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n  int
		ok bool
	}
	got := make(chan result, 1)
	go func() {
		for {
			req, err := ln.Accept2()
			if err != nil {
				return
			}
			n, ok := callerKeyLen(req)
			got <- result{n, ok}
			req.Reject(srt.REJX_FORBIDDEN)
		}
	}()
	for _, keylen := range []int{0, 16, 24, 32} {
		cfg := srt.DefaultConfig()
		cfg.StreamId = "live/k"
		cfg.ConnectionTimeout = 3 * time.Second
		if keylen != 0 {
			cfg.Passphrase = "0123456789abc"
			cfg.PBKeylen = keylen
		}
		conn, err := srt.Dial("srt", ln.Addr().String(), cfg)
		if err == nil {
			conn.Close()
			t.Fatalf("pbkeylen %d: the caller was accepted", keylen)
		}
		select {
		case r := <-got:
			if r.ok != (keylen != 0) || r.n != keylen {
				t.Fatalf("caller with pbkeylen %d: read %d, %v", keylen, r.n, r.ok)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("pbkeylen %d: no request", keylen)
		}
	}
}
