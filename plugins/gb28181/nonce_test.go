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
