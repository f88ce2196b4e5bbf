package main

import (
	"testing"
	"time"
)

func TestPLILimiter(t *testing.T) {
	var l pliLimiter
	t0 := time.Unix(1000, 0)
	for i, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {100 * time.Millisecond, false}, {499 * time.Millisecond, false}, {500 * time.Millisecond, true}, {600 * time.Millisecond, false}, {2 * time.Second, true}} {
		if got := l.allow(t0.Add(c.at), minPLIInterval); got != c.want {
			t.Fatalf("step %d at %v: allow = %v, want %v", i, c.at, got, c.want)
		}
	}
}
