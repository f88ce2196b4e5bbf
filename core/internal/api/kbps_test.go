package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestKbpsTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	t.Run("first poll averages since the counter started", func(t *testing.T) {
		var k kbpsTracker
		// 250 kB in 2 s = 1000 kbps.
		if got := k.rate("a", sec(0), sec(2), 250000); got != 1000 {
			t.Fatalf("first poll %d kbps, want 1000", got)
		}
	})
	t.Run("unknown start: 0 until a second sample", func(t *testing.T) {
		var k kbpsTracker
		if got := k.rate("a", time.Time{}, sec(10), 1000); got != 0 {
			t.Fatalf("%d", got)
		}
		if got := k.rate("a", time.Time{}, sec(12), 251000); got != 1000 {
			t.Fatalf("%d", got)
		}
	})
	t.Run("30 s window", func(t *testing.T) {
		var k kbpsTracker
		// 1000 kbps for 60 s, then 3000 kbps for 30 s.
		for s := 0; s <= 60; s += 2 {
			k.rate("a", sec(0), sec(float64(s)), uint64(s)*125000)
		}
		var got int
		for s := 62; s <= 90; s += 2 {
			got = k.rate("a", sec(0), sec(float64(s)), 60*125000+uint64(s-60)*375000)
		}
		if got != 3000 {
			t.Fatalf("rate over the last 30 s %d kbps, want 3000", got)
		}
	})
	t.Run("rare polls keep a base a window old", func(t *testing.T) {
		var k kbpsTracker
		k.rate("a", sec(0), sec(60), 60*125000)
		if got := k.rate("a", sec(0), sec(120), 120*125000); got != 1000 {
			t.Fatalf("%d kbps after a 60 s gap, want 1000", got)
		}
	})
	t.Run("counter restart", func(t *testing.T) {
		var k kbpsTracker
		k.rate("a", sec(0), sec(10), 10*125000)
		if got := k.rate("a", sec(20), sec(22), 2*125000); got != 1000 {
			t.Fatalf("after a restart %d kbps, want 1000 (from the new start)", got)
		}
	})
	t.Run("same sample twice", func(t *testing.T) {
		var k kbpsTracker
		a := k.rate("a", sec(0), sec(4), 500000)
		if b := k.rate("a", sec(0), sec(4), 500000); a != 1000 || b != 1000 {
			t.Fatalf("%d then %d", a, b)
		}
	})
	t.Run("forgotten when not polled", func(t *testing.T) {
		var k kbpsTracker
		k.rate("gone", sec(0), sec(1), 1)
		k.rate("a", sec(0), sec(1000), 1)
		k.mu.Lock()
		_, ok := k.series["gone"]
		k.mu.Unlock()
		if ok {
			t.Fatal("a counter not polled for 1000 s is kept")
		}
	})
}

func TestSelfStat(t *testing.T) {
	line := "4242 (rill core) S 1 4242 4242 0 -1 4194560 1000 0 0 0 50 20 0 0 20 0 12 0 123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 3 4 5 0 0 0 0 0 0 0"
	d := selfStat([]byte(line))
	want := map[string]any{
		"comm": "(rill core)", "state": "S", "ppid": int64(1), "utime": int64(50), "rss": int64(2000),
		"rsslim": int64(-1), "policy": int64(0), "delayacct_blkio_ticks": int64(3), "guest_time": int64(4), "cguest_time": int64(5),
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %#v, want %#v", k, d[k], v)
		}
	}
	if len(d) != len(statFields)+1 {
		t.Errorf("%d fields, want %d", len(d), len(statFields)+1)
	}
}

func TestCPUCounters(t *testing.T) {
	got := cpuCounters([]byte("cpu  10 1 5 100 2 3 4 6 7 8\ncpu0 1 1 1 1 1 1 1 1 1 1\n"))
	want := map[string]int64{"user": 10, "nice": 1, "sys": 5, "idle": 100, "iowait": 2, "irq": 3, "softirq": 4, "steal": 6, "guest": 7}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d counters: %v", len(got), got)
	}
	if old := cpuCounters([]byte("cpu 1 2 3 4\n")); old["user"] != 1 || old["guest"] != 0 {
		t.Errorf("short line: %v", old)
	}
}

func TestIndexesAsSRS(t *testing.T) {
	s := newTestServer()
	s.VhostInfo = func(n string) VhostInfo {
		return VhostInfo{Enabled: true, HLS: n == "live.example.com", HLSFragment: 2 * time.Second}
	}
	h := s.Handler()
	decode := func(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, rec.Body.String())
		}
		return m
	}
	cases := []struct {
		path string
		want func(m map[string]any) bool
	}{
		{"/", func(m map[string]any) bool { return m["urls"].(map[string]any)["api"] != nil }},
		{"/api/", func(m map[string]any) bool { return m["urls"].(map[string]any)["v1"] != nil }},
		{"/api/v1/", func(m map[string]any) bool { return m["tests"].(map[string]any)["requests"] != nil }},
		{"/api/v1/requests", func(m map[string]any) bool { return m["tests"] != nil }}, // SRS: the v1 index
		{"/api/v1/nosuch", func(m map[string]any) bool { return m["tests"] != nil }},
		{"/api/nosuch", func(m map[string]any) bool { return m["urls"].(map[string]any)["v1"] != nil }},
		{"/api/v1/tests/requests", func(m map[string]any) bool {
			hd := m["data"].(map[string]any)["headers"].(map[string]any)
			return hd["sigature"] != nil && hd["time"] != nil
		}},
		{"/api/v1/tests/errors", func(m map[string]any) bool { return m["code"] == 100.0 && len(m) == 1 }},
		{"/api/v1/vhosts/live.example.com", func(m map[string]any) bool {
			hls := m["vhost"].(map[string]any)["hls"].(map[string]any)
			return hls["enabled"] == true && hls["fragment"] == 2.0
		}},
		{"/api/v1/vhosts/__defaultVhost__", func(m map[string]any) bool {
			hls := m["vhost"].(map[string]any)["hls"].(map[string]any)
			_, frag := hls["fragment"]
			return hls["enabled"] == false && !frag
		}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, h, tc.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
			}
			if m := decode(t, rec); !tc.want(m) {
				t.Fatalf("%s", rec.Body.String())
			}
		})
	}
	if rec := get(t, h, "/api/v1/tests/redirects", nil); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/api/v1/tests/errors" {
		t.Errorf("redirects: HTTP %d %v", rec.Code, rec.Header())
	}
	if rec := get(t, h, "/favicon.ico", nil); rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon: HTTP %d %v", rec.Code, rec.Header())
	}
	if rec := get(t, h, "/nosuch", nil); rec.Code != http.StatusNotFound {
		t.Errorf("/nosuch: HTTP %d, want 404 (no plugin route)", rec.Code)
	}
	if b, _ := json.Marshal(fixed2(2)); string(b) != "2.00" {
		t.Errorf("fixed2: %s", b)
	}
}
