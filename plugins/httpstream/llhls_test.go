package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// llFixture is a store with done segments 0..n-1 (1 s each, two parts)
// and an open segment n with parts parts.
func llFixture(n, parts int) *llStore {
	l := newLLStore(500*time.Millisecond, time.Second)
	in := l.initFor([]byte("init"))
	for i := range n {
		l.open(uint64(i), false, in, time.Time{})
		l.addPart(uint64(i), []byte("a"), 500*time.Millisecond)
		l.addPart(uint64(i), []byte("b"), 500*time.Millisecond)
		l.close(uint64(i), time.Second, time.Minute)
	}
	l.open(uint64(n), false, in, time.Time{})
	for range parts {
		l.addPart(uint64(n), []byte("c"), 500*time.Millisecond)
	}
	return l
}

func TestLLQueryReady(t *testing.T) {
	l := llFixture(3, 1) // done 0,1,2; open 3 with 1 part
	for _, c := range []struct {
		q       string
		ready   bool
		bad     bool
		badQury bool
	}{
		{q: "_HLS_msn=2", ready: true},
		{q: "_HLS_msn=3"},
		{q: "_HLS_msn=3&_HLS_part=0", ready: true},
		{q: "_HLS_msn=3&_HLS_part=1"},
		{q: "_HLS_msn=3&_HLS_part=3"},
		{q: "_HLS_msn=3&_HLS_part=4", bad: true},
		{q: "_HLS_msn=4&_HLS_part=2"},
		{q: "_HLS_msn=4&_HLS_part=3", bad: true},
		{q: "_HLS_msn=5"},
		{q: "_HLS_msn=6", bad: true},
		{q: "_HLS_msn=0", ready: true},
		{q: "_HLS_part=1", badQury: true},
		{q: "_HLS_msn=x", badQury: true},
		{q: "_HLS_msn=1&_HLS_msn=2", badQury: true},
		{q: "_HLS_msn=1&_HLS_part=99999999", badQury: true},
		{q: "_HLS_skip=NO", badQury: true},
	} {
		t.Run(c.q, func(t *testing.T) {
			v, _ := url.ParseQuery(c.q)
			q, err := parseLLQuery(v)
			if c.badQury {
				if !errors.Is(err, errLLBadRequest) {
					t.Fatalf("parse: %v, want a bad request", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.mu.Lock()
			ready, err := l.readyLocked(q)
			l.mu.Unlock()
			if c.bad != errors.Is(err, errLLBadRequest) || ready != c.ready {
				t.Fatalf("ready %v err %v, want ready %v bad %v", ready, err, c.ready, c.bad)
			}
		})
	}
}

func TestLLPlaylist(t *testing.T) {
	l := llFixture(8, 1)
	b, ok := l.playlist("s", false)
	if !ok {
		t.Fatal("no playlist")
	}
	pl := string(b)
	for _, want := range []string{
		"#EXT-X-VERSION:6\n",
		"#EXT-X-TARGETDURATION:1\n",
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=1.500\n",
		"#EXT-X-PART-INF:PART-TARGET=0.500\n",
		"#EXT-X-MEDIA-SEQUENCE:0\n",
		"#EXT-X-MAP:URI=\"s-ll-init-0.mp4\"\n",
		"#EXTINF:1.000,\ns-ll-0.m4s\n",
		"#EXT-X-PART:DURATION=0.500,URI=\"s-ll-7-0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"s-ll-7-1.m4s\"\n#EXTINF:1.000,\ns-ll-7.m4s\n",
		"#EXT-X-PART:DURATION=0.500,URI=\"s-ll-8-0.m4s\",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-ll-8-1.m4s\"\n",
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	// Parts only for the last three target durations.
	if strings.Contains(pl, "s-ll-4-0.m4s") {
		t.Errorf("parts of an old segment listed:\n%s", pl)
	}
	// A delta update skips what is older than CAN-SKIP-UNTIL (6 s).
	b, _ = l.playlist("s", true)
	dl := string(b)
	if !strings.Contains(dl, "#EXT-X-VERSION:9\n") || !strings.Contains(dl, "#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n") ||
		strings.Contains(dl, "\ns-ll-1.m4s\n") || !strings.Contains(dl, "\ns-ll-2.m4s\n") {
		t.Errorf("delta playlist:\n%s", dl)
	}
}

func TestLLWindowAndFiles(t *testing.T) {
	l := newLLStore(500*time.Millisecond, time.Second)
	in := l.initFor([]byte("init"))
	for i := range 10 {
		l.open(uint64(i), false, in, time.Time{})
		l.addPart(uint64(i), []byte{byte(i), 1}, 500*time.Millisecond)
		l.addPart(uint64(i), []byte{byte(i), 2}, 500*time.Millisecond)
		l.close(uint64(i), time.Second, 4*time.Second)
	}
	if got := l.segs[0].seq; got != 6 {
		t.Fatalf("window starts at %d, want 6", got)
	}
	r := httptest.NewRequest("GET", "/", nil)
	for _, c := range []struct {
		f    llFile
		want string
		err  error
	}{
		{llFile{seq: 7, part: -1}, "\x07\x01\x07\x02", nil},
		{llFile{seq: 7, part: 1}, "\x07\x02", nil},
		{llFile{seq: 7, part: 2}, "", errLLGone},
		{llFile{seq: 2, part: 0}, "", errLLGone},
		{llFile{seq: 99, part: 0}, "", errLLGone},
		{llFile{init: true, id: 0}, "init", nil},
		{llFile{init: true, id: 1}, "", errLLGone},
	} {
		b, err := l.file(r, c.f, time.Second)
		if !errors.Is(err, c.err) || string(b) != c.want {
			t.Errorf("%+v: %q %v, want %q %v", c.f, b, err, c.want, c.err)
		}
	}
	// The next part waits, bounded.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := l.file(r.WithContext(ctx), llFile{seq: 10, part: 0}, 50*time.Millisecond)
	if !errors.Is(err, errLLTimeout) || time.Since(start) > 4*time.Second {
		t.Fatalf("next part: %v after %v", err, time.Since(start))
	}
	// And comes when written.
	go func() {
		time.Sleep(20 * time.Millisecond)
		l.open(10, false, in, time.Time{})
		l.addPart(10, []byte("new"), 500*time.Millisecond)
	}()
	b, err := l.file(r.WithContext(ctx), llFile{seq: 10, part: 0}, 3*time.Second)
	if err != nil || string(b) != "new" {
		t.Fatalf("awaited part: %q %v", b, err)
	}
}

func TestParseLLName(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want llFile
	}{
		{"cam-ll-12", true, llFile{stream: "cam", seq: 12, part: -1}},
		{"cam-ll-12-3", true, llFile{stream: "cam", seq: 12, part: 3}},
		{"cam-ll-init-2", true, llFile{stream: "cam", init: true, id: 2, part: -1}},
		{"my-ll-cam-ll-1-0", true, llFile{stream: "my-ll-cam", seq: 1, part: 0}},
		{"cam-12", false, llFile{}},
		{"cam-ll-", false, llFile{}},
		{"-ll-1", false, llFile{}},
		{"cam-ll-99999999999999999999", false, llFile{}},
		{"cam-ll-1-999999", false, llFile{}},
	} {
		got, ok := parseLLName(c.in)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseLLName(%q) = %+v %v, want %+v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzLLRequest feeds request names and queries to the parsers and the
// readiness check: no panic, and every refusal is a bad request.
func FuzzLLRequest(f *testing.F) {
	for _, s := range []string{"_HLS_msn=3&_HLS_part=1", "_HLS_msn=99999999999", "_HLS_skip=YES", "_HLS_part=1", "%zz", "_HLS_msn=1&_HLS_msn=1"} {
		f.Add("cam-ll-3-1", s)
	}
	f.Add("cam-ll-init-0", "")
	l := llFixture(3, 1)
	f.Fuzz(func(t *testing.T, name, query string) {
		if fl, ok := parseLLName(name); ok && fl.part < -1 {
			t.Fatalf("negative part from %q", name)
		}
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		q, err := parseLLQuery(v)
		if err != nil {
			if !errors.Is(err, errLLBadRequest) {
				t.Fatalf("parse error %v is not a bad request", err)
			}
			return
		}
		l.mu.Lock()
		_, err = l.readyLocked(q)
		l.mu.Unlock()
		if err != nil && !errors.Is(err, errLLBadRequest) {
			t.Fatalf("ready error %v", err)
		}
		_, _ = l.playlist("cam", q.skip)
	})
}
