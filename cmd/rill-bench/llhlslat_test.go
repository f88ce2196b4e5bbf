package main

import (
	"strings"
	"testing"
)

func TestLLLatVerdict(t *testing.T) {
	rows := []llLatResult{
		{name: "defaults", samples: 300, p50: 3300, p99: 3320},
		{name: "tuned", samples: 375, p50: 1500, p99: 1540},
		{name: "broken", failed: "no chromium"},
	}
	if v := llLatVerdict(rows); !strings.Contains(v, ": met; best: tuned, p50 1500 ms") {
		t.Fatalf("verdict %q", v)
	}
	if v := llLatVerdict(rows[:1]); !strings.Contains(v, "NOT met; best: defaults") {
		t.Fatalf("verdict %q", v)
	}
	if v := llLatVerdict(rows[2:]); !strings.Contains(v, "not measured") {
		t.Fatalf("verdict %q", v)
	}
}
