package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	b, ok := l.playlist("s", llRender{})
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
	b, _ = l.playlist("s", llRender{skip: true})
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
		_, _ = l.playlist("cam", llRender{skip: q.skip, byteRange: q.part%2 == 1})
		if r, ok := parseLLRange(query); ok && (r.start < 0 || (r.end >= 0 && r.end < r.start)) {
			t.Fatalf("bad range %+v from %q", r, query)
		}
	})
}

func TestLLByteRangePlaylist(t *testing.T) {
	l := llFixture(8, 1)
	l.addPart(8, []byte("dd"), 500*time.Millisecond)
	b, _ := l.playlist("s", llRender{byteRange: true, query: "?hls_ctx=x1", reports: []llReport{{uri: "s_sd.m3u8", msn: 8, part: 0}}})
	pl := string(b)
	for _, want := range []string{
		"#EXT-X-MAP:URI=\"s-ll-init-0.mp4?hls_ctx=x1\"\n",
		"#EXT-X-PART:DURATION=0.500,URI=\"s-ll-7.m4s?hls_ctx=x1\",BYTERANGE=\"1@0\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"s-ll-7.m4s?hls_ctx=x1\",BYTERANGE=\"1@1\"\n#EXTINF:1.000,\ns-ll-7.m4s?hls_ctx=x1\n",
		"#EXT-X-PART:DURATION=0.500,URI=\"s-ll-8.m4s?hls_ctx=x1\",BYTERANGE=\"1@0\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.500,URI=\"s-ll-8.m4s?hls_ctx=x1\",BYTERANGE=\"2@1\"\n",
		"#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s-ll-8.m4s?hls_ctx=x1\",BYTERANGE-START=3\n",
		"#EXT-X-RENDITION-REPORT:URI=\"s_sd.m3u8\",LAST-MSN=8,LAST-PART=0\n",
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	if msn, part, ok := l.lastPart(); !ok || msn != 8 || part != 1 {
		t.Errorf("lastPart %d %d %v, want 8 1", msn, part, ok)
	}
}

func TestParseLLRange(t *testing.T) {
	for _, c := range []struct {
		in   string
		ok   bool
		want llByteRange
	}{
		{"bytes=0-99", true, llByteRange{0, 99}},
		{"bytes=100-", true, llByteRange{100, -1}},
		{"bytes=-100", false, llByteRange{}},
		{"bytes=5-4", false, llByteRange{}},
		{"bytes=0-1,3-4", false, llByteRange{}},
		{"bytes=x-", false, llByteRange{}},
		{"bytes=99999999999999999999-", false, llByteRange{}},
		{"items=0-1", false, llByteRange{}},
	} {
		got, ok := parseLLRange(c.in)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseLLRange(%q) = %+v %v, want %+v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestLLServeRange asks for byte ranges of a complete segment and of the
// open one, including bytes not written yet.
func TestLLServeRange(t *testing.T) {
	l := llFixture(3, 1) // done 0..2 ("ab"), open 3 ("c")
	var cuts []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq, _ := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/"), 10, 64)
		refuse := func(code int, err error) { http.Error(w, err.Error(), code) }
		cut := func(err error) { mu.Lock(); cuts = append(cuts, err.Error()); mu.Unlock() }
		if !l.serveRange(w, r, seq, 2*time.Second, refuse, cut) {
			http.Error(w, "whole", 299)
		}
	}))
	defer srv.Close()
	get := func(seq int, rng string) (int, string, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/%d", srv.URL, seq), nil)
		req.Header.Set("Range", rng)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%d %s: %v", seq, rng, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Range"), string(b)
	}
	for _, c := range []struct {
		seq          int
		rng          string
		code         int
		crange, body string
	}{
		{2, "bytes=1-1", 206, "bytes 1-1/2", "b"},
		{2, "bytes=0-", 206, "bytes 0-1/2", "ab"},
		{2, "bytes=5-9", 416, "bytes */2", ""},
		{3, "bytes=0-0", 206, "bytes 0-0/*", "c"},
		{3, "bytes=0-", 206, "bytes 0-0/*", "c"},
		{3, "bytes=2-", 416, "bytes */*", ""},
		{3, "bytes=-1", 299, "", ""},
		{9, "bytes=0-", 404, "", ""},
	} {
		code, cr, body := get(c.seq, c.rng)
		if code != c.code || cr != c.crange || (c.body != "" && body != c.body) {
			t.Errorf("%d %s: %d %q %q, want %d %q %q", c.seq, c.rng, code, cr, body, c.code, c.crange, c.body)
		}
	}
	// The hint (from the open segment's end) waits for the next part;
	// a range past the written bytes gets them as they come.
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.addPart(3, []byte("dd"), 500*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		l.addPart(3, []byte("ee"), 500*time.Millisecond)
	}()
	done := make(chan string, 1)
	go func() {
		code, cr, body := get(3, "bytes=1-4")
		done <- fmt.Sprintf("%d %s %s", code, cr, body)
	}()
	if code, cr, body := get(3, "bytes=1-"); code != 206 || cr != "bytes 1-2/*" || body != "dd" {
		t.Errorf("hint: %d %q %q", code, cr, body)
	}
	if got := <-done; got != "206 bytes 1-4/* ddee" {
		t.Errorf("range past the written bytes: %s", got)
	}
	// A range the segment ends before: the response is cut, and why is
	// logged.
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.close(3, time.Second, time.Minute)
	}()
	req, _ := http.NewRequest("GET", srv.URL+"/3", nil)
	req.Header.Set("Range", "bytes=4-10")
	if resp, err := srv.Client().Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("range past the segment's end: full body")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(cuts) != 1 || !strings.Contains(cuts[0], "segment 3 ended at byte 5") {
		t.Errorf("cuts: %q", cuts)
	}
}

func TestVariantBase(t *testing.T) {
	key := func(s string) streamKey { return streamKey{Vhost: "v", App: "live", Stream: s} }
	for _, c := range []struct {
		tpl, stream, base string
		ok                bool
	}{
		{"[stream]", "cam", "cam", true},
		{"[stream]_sd", "cam_sd", "cam", true},
		{"[stream]_sd", "cam", "", false},
		{"[stream]_sd", "_sd", "", false},
		{"[app]_[stream]", "live_cam", "cam", true},
		{"hd_[stream]", "sd_cam", "", false},
	} {
		b, ok := variantBase(c.tpl, key(c.stream))
		if ok != c.ok || b != c.base {
			t.Errorf("variantBase(%q, %q) = %q %v, want %q %v", c.tpl, c.stream, b, ok, c.base, c.ok)
		}
	}
}
