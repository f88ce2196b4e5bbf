package main

import (
	"strconv"
	"testing"
	"time"
)

func TestNonceTracker(t *testing.T) {
	tr := newNonceTracker(4)
	if !tr.use("a", 100, 0) || tr.use("a", 100, 0) {
		t.Fatal("without qop a nonce authenticates once")
	}
	if !tr.use("b", 100, 1) || tr.use("b", 100, 1) || !tr.use("b", 100, 3) || tr.use("b", 100, 2) {
		t.Fatal("with qop the nonce count must grow")
	}
	// Full: the oldest issue second is evicted and stays refused.
	for i := range 4 {
		tr.use("n"+strconv.Itoa(i), int64(200+i), 1)
	}
	if tr.size() > 4 {
		t.Fatalf("size %d over the bound", tr.size())
	}
	if tr.use("b", 100, 9) || tr.use("late", 100, 1) {
		t.Fatal("a nonce whose record was evicted is accepted")
	}
	tr.sweep(time.Unix(203, 0).Add(nonceLifetime + time.Second))
	if tr.size() != 0 {
		t.Fatalf("%d nonces left after their lifetime", tr.size())
	}
}

// TestNonceUnique: two challenges in the same second get different nonces
// (two devices answering nc=1 to the same nonce were taken for a replay),
// both valid; a tampered one is not.
func TestNonceUnique(t *testing.T) {
	s := newServer()
	now := time.Now()
	a, b := s.nonce(now), s.nonce(now)
	if a == b {
		t.Fatalf("same nonce twice in a second: %s", a)
	}
	for _, n := range []string{a, b} {
		if issued, fresh, ok := s.nonceValid(n, now); !ok || !fresh || issued != now.Unix() {
			t.Fatalf("nonce %s: issued %d fresh %v ok %v", n, issued, fresh, ok)
		}
	}
	if _, _, ok := s.nonceValid(a[:len(a)-1]+"0", now); ok && a[len(a)-1] != '0' {
		t.Fatal("tampered nonce accepted")
	}
	if _, fresh, ok := s.nonceValid(a, now.Add(nonceLifetime+time.Second)); !ok || fresh {
		t.Fatal("an old nonce is genuine but not fresh")
	}
}
