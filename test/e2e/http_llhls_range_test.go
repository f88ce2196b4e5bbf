package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	llRangePartRE = regexp.MustCompile(`(?m)^#EXT-X-PART:DURATION=[0-9.]+,URI="([^"]*-ll-(\d+)\.m4s)",BYTERANGE="(\d+)@(\d+)"`)
	llRangeHintRE = regexp.MustCompile(`(?m)^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]*-ll-(\d+)\.m4s)",BYTERANGE-START=(\d+)$`)
	llReportRE    = regexp.MustCompile(`(?m)^#EXT-X-RENDITION-REPORT:URI="([^"]+)",LAST-MSN=(\d+),LAST-PART=(\d+)$`)
)

// llRangeGet is a GET with a Range header; it returns the status, the
// Content-Range and the body.
func llRangeGet(t *testing.T, url, rng string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", rng)
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Range %s): %v", url, rng, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatalf("GET %s (Range %s): body: %v", url, rng, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Range"), string(b)
}

// TestHTTPLLHLSByteRange: with ll_hls_byterange the parts are byte ranges
// of their segment's URI; a Range request for a part of the segment being
// written, and for one of a complete segment, is a 206 whose bytes are the
// part's (the same as its part URI serves), the preload hint's open-ended
// range gets the next part when it is complete, a range past the written
// bytes is a 416 at once, and ffprobe reads the playlist.
func TestHTTPLLHLSByteRange(t *testing.T) {
	t.Parallel()
	d, rtmpBase, base := startLLHLS(t, "    ll_hls_byterange = true\n")
	ffmpegPublish(t, rtmpBase+"br", 90)
	waitPublished(t, d, "live", "br")
	url := base + "br.m3u8"
	var pl string
	Eventually(t, 30*time.Second, "byte-range playlist", func() error {
		code, body, _ := llGet(t, url)
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if len(parsePlaylist(t, body).URIs) < 3 || llRangeHintRE.FindStringSubmatch(body) == nil {
			return fmt.Errorf("not yet:\n%s", body)
		}
		pl = body
		return nil
	})
	if strings.Contains(pl, "-ll-") && regexp.MustCompile(`-ll-\d+-\d+\.m4s`).MatchString(pl) {
		t.Fatalf("part URIs in a byte-range playlist:\n%s", pl)
	}
	parts := llRangePartRE.FindAllStringSubmatch(pl, -1)
	if len(parts) < 4 {
		t.Fatalf("%d byte-range parts:\n%s", len(parts), pl)
	}
	// Each segment's parts are contiguous from byte 0.
	next := map[string]int{}
	idx := map[string]int{}
	whole := map[string]string{}
	for _, m := range parts {
		uri, seq := m[1], m[2]
		n, _ := strconv.Atoi(m[3])
		off, _ := strconv.Atoi(m[4])
		if off != next[uri] {
			t.Fatalf("part of %s at %d, want %d:\n%s", uri, off, next[uri], pl)
		}
		next[uri] = off + n
		code, cr, body := llRangeGet(t, base+uri, fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		if code != http.StatusPartialContent || len(body) != n || !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-%d/", off, off+n-1)) {
			t.Fatalf("%s bytes %d-%d: %d %q %d bytes", uri, off, off+n-1, code, cr, len(body))
		}
		if body[4:8] != "moof" {
			t.Fatalf("%s bytes %d-%d is no fragment: %q", uri, off, off+n-1, body[:8])
		}
		// The same bytes as its own part URI serves.
		pcode, _, pbody := httpGet(t, base+fmt.Sprintf("br-ll-%s-%d.m4s", seq, idx[uri]))
		if pcode != 200 || pbody != body {
			t.Fatalf("part %s.%d: %d, %d bytes, differs from its byte range (%d bytes)", seq, idx[uri], pcode, len(pbody), len(body))
		}
		idx[uri]++
		if strings.HasSuffix(cr, "/*") {
			continue // the open segment
		}
		if whole[uri] == "" {
			_, _, whole[uri] = httpGet(t, base+uri)
		}
		if whole[uri][off:off+n] != body {
			t.Fatalf("%s bytes %d-%d differ from the segment's", uri, off, off+n-1)
		}
	}
	if len(whole) == 0 {
		t.Fatalf("no part of a complete segment listed:\n%s", pl)
	}

	t.Run("preload hint", func(t *testing.T) {
		_, body, _ := llGet(t, url)
		m := llRangeHintRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no byte-range hint:\n%s", body)
		}
		start, _ := strconv.Atoi(m[3])
		code, cr, got := llRangeGet(t, base+m[1], fmt.Sprintf("bytes=%d-", start))
		if code != http.StatusPartialContent || len(got) < 8 || got[4:8] != "moof" || !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", start)) {
			t.Fatalf("hinted range %s from %d: %d %q %d bytes", m[1], start, code, cr, len(got))
		}
		// What came is what the playlist then lists as that part.
		seq := m[2]
		code, after, _ := llGet(t, fmt.Sprintf("%s?_HLS_msn=%s", url, seq))
		if code != 200 {
			t.Fatalf("blocking reload for %s: %d", seq, code)
		}
		listed := false
		for _, p := range llRangePartRE.FindAllStringSubmatch(after, -1) {
			if p[1] == m[1] && p[4] == m[3] {
				n, _ := strconv.Atoi(p[3])
				listed = n <= len(got)
			}
		}
		if !listed {
			t.Fatalf("hinted part of %s at %d (%d bytes) not listed after:\n%s", m[1], start, len(got), after)
		}
		// A start past the written bytes of the open segment: 416 at once.
		_, body, _ = llGet(t, url)
		m = llRangeHintRE.FindStringSubmatch(body)
		start, _ = strconv.Atoi(m[3])
		code, _, _ = llRangeGet(t, base+m[1], fmt.Sprintf("bytes=%d-", start+1<<20))
		if code != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("range far past the open segment's end: %d, want 416", code)
		}
		if !httpLogContains(d, "ll-hls request refused") {
			t.Fatalf("the 416 is not logged")
		}
		// A closed range reaching past what is written comes as it is.
		code, cr, got = llRangeGet(t, base+m[1], fmt.Sprintf("bytes=%d-%d", start, start+99))
		if code != http.StatusPartialContent || len(got) != 100 || cr != fmt.Sprintf("bytes %d-%d/*", start, start+99) {
			t.Fatalf("range past the written bytes: %d %q %d bytes", code, cr, len(got))
		}
	})

	t.Run("ffprobe", func(t *testing.T) {
		httpWantCodecs(t, "ll-hls byte-range m3u8", httpProbe(t, url, 3), "h264", "aac")
	})
}

// TestHTTPLLHLSHlsJSByteRange plays the byte-range parts with hls.js in
// low-latency mode in headless Chromium.
func TestHTTPLLHLSHlsJSByteRange(t *testing.T) {
	t.Parallel()
	playLLHlsJS(t, "    ll_hls_byterange = true\n", true)
}

// TestHTTPLLHLSRenditionReports: two renditions of hls { variants } with
// ll_hls: each one's playlist reports the other's last segment and part
// (EXT-X-RENDITION-REPORT), and the part it names is in the other's
// playlist; a stream that is no variant has no report.
func TestHTTPLLHLSRenditionReports(t *testing.T) {
	t.Parallel()
	d, rtmpBase, base := startLLHLS(t, "    variants = [\"[stream]\", \"[stream]_sd\"]\n")
	for _, s := range []string{"rr", "rr_sd", "solo"} {
		ffmpegPublish(t, rtmpBase+s, 90)
	}
	for _, s := range []string{"rr", "rr_sd", "solo"} {
		waitPublished(t, d, "live", s)
	}
	for _, c := range []struct{ stream, other string }{{"rr", "rr_sd"}, {"rr_sd", "rr"}} {
		var rep []string
		var body string
		Eventually(t, 30*time.Second, c.stream+" reports "+c.other, func() error {
			var code int
			code, body, _ = llGet(t, base+c.stream+".m3u8")
			if code != 200 {
				return fmt.Errorf("%d %s", code, body)
			}
			reps := llReportRE.FindAllStringSubmatch(body, -1)
			if len(reps) != 1 {
				return fmt.Errorf("%d rendition reports:\n%s", len(reps), body)
			}
			rep = reps[0]
			return nil
		})
		if rep[1] != c.other+".m3u8" {
			t.Fatalf("%s reports %q, want %s.m3u8:\n%s", c.stream, rep[1], c.other, body)
		}
		// The reported part exists in the other rendition: a blocking
		// request for it answers at once with a playlist holding it.
		code, other, took := llGet(t, fmt.Sprintf("%s%s.m3u8?_HLS_msn=%s&_HLS_part=%s", base, c.other, rep[2], rep[3]))
		if code != 200 || !strings.Contains(other, fmt.Sprintf(`URI="%s-ll-%s-%s.m4s"`, c.other, rep[2], rep[3])) {
			t.Fatalf("%s's report %s.%s: %d, not in %s:\n%s", c.stream, rep[2], rep[3], code, c.other, other)
		}
		t.Logf("%s reports %s at %s.%s; blocking request for it answered in %v", c.stream, c.other, rep[2], rep[3], took)
	}
	code, solo, _ := llGet(t, base+"solo.m3u8")
	if code != 200 || strings.Contains(solo, "#EXT-X-RENDITION-REPORT") {
		t.Fatalf("stream that is no variant: %d\n%s", code, solo)
	}
}

// TestHTTPLLHLSViewerSessions: hls_ctx with ll_hls: the low-latency
// playlist without hls_ctx is SRS's one-variant master; with it, on_play
// once, every URI (map, parts, segments, hint) carries the session, the
// session is an hls-play client counting its bytes, blocking reload works
// with it, a kicked session is refused (playlist and parts), and a quiet
// one ends with on_stop.
func TestHTTPLLHLSViewerSessions(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	hs := NewHookServer(t)
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra: fmt.Sprintf(`vhost "__defaultVhost__" {
  hls {
    enabled     = true
    ll_hls      = true
    hls_ctx     = true
    part_target = "500ms"
    fragment    = "1s"
    window      = "4s"
    path        = %q
  }
  hooks {
    on_play = [%q]
    on_stop = [%q]
  }
}
`, t.TempDir(), hs.URL, hs.URL),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/ctx", 90)
	waitPublished(t, d, "live", "ctx")
	base := "http://" + ps["httpstream"].Listeners[0].Addr + "/live/"
	masterRE := regexp.MustCompile(`(?m)^ctx\.m3u8\?(\S*hls_ctx=([a-z0-9]+)\S*)$`)
	var master string
	Eventually(t, 30*time.Second, "master playlist", func() error {
		code, body, _ := llGet(t, base+"ctx.m3u8?token=t1")
		if code != 200 || !strings.Contains(body, "#EXT-X-STREAM-INF:BANDWIDTH=1") {
			return fmt.Errorf("HTTP %d %q", code, body)
		}
		master = body
		return nil
	})
	m := masterRE.FindStringSubmatch(master)
	if m == nil || !strings.Contains(m[1], "token=t1") {
		t.Fatalf("master playlist: %q", master)
	}
	child, id := base+"ctx.m3u8?"+m[1], m[2]
	var pl string
	Eventually(t, 20*time.Second, "session playlist with parts", func() error {
		code, body, _ := llGet(t, child)
		if code != 200 || !strings.Contains(body, "#EXT-X-PART:") || len(parsePlaylist(t, body).URIs) < 2 {
			return fmt.Errorf("HTTP %d %q", code, body)
		}
		pl = body
		return nil
	})
	q := "?hls_ctx=" + id
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`#EXT-X-MAP:URI="ctx-ll-init-\d+\.mp4([^"]*)"`),
		regexp.MustCompile(`#EXT-X-PART:DURATION=[0-9.]+,URI="ctx-ll-\d+-\d+\.m4s([^"]*)"`),
		regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="ctx-ll-\d+-\d+\.m4s([^"]*)"`),
		regexp.MustCompile(`(?m)^ctx-ll-\d+\.m4s(\S*)$`),
	} {
		all := re.FindAllStringSubmatch(pl, -1)
		if len(all) == 0 {
			t.Fatalf("no %s in:\n%s", re, pl)
		}
		for _, x := range all {
			if x[1] != q {
				t.Fatalf("%q does not carry %s:\n%s", x[0], q, pl)
			}
		}
	}
	part := regexp.MustCompile(`URI="(ctx-ll-\d+-\d+\.m4s\?hls_ctx=[a-z0-9]+)"`).FindStringSubmatch(pl)
	if code, _, body := httpGet(t, base+part[1]); code != 200 || len(body) < 8 || body[4:8] != "moof" {
		t.Fatalf("part %s: %d %d bytes", part[1], code, len(body))
	}
	p := parsePlaylist(t, pl)
	code, blocked, _ := llGet(t, fmt.Sprintf("%s&_HLS_msn=%d", child, p.Seq+len(p.URIs)))
	if code != 200 || !strings.Contains(blocked, q) {
		t.Fatalf("blocking reload with hls_ctx: %d\n%s", code, blocked)
	}
	plays := hs.Bodies("on_play")
	if len(plays) != 1 || plays[0]["client_id"] != id || plays[0]["stream"] != "ctx.m3u8" {
		t.Fatalf("on_play: %v", plays)
	}
	var clients struct {
		Clients []struct {
			ID        string  `json:"id"`
			Type      string  `json:"type"`
			SendBytes float64 `json:"send_bytes"`
		} `json:"clients"`
	}
	if err := d.GetJSON("/api/v1/clients/", &clients); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range clients.Clients {
		if c.ID == id && c.Type == "hls-play" && c.SendBytes > float64(len(pl)) {
			found = true
		}
	}
	if !found {
		t.Fatalf("ll-hls session %s not an hls-play client with its bytes: %+v", id, clients.Clients)
	}
	Eventually(t, 40*time.Second, "on_stop after the session times out", func() error {
		for _, b := range hs.Bodies("on_stop") {
			if b["client_id"] == id {
				return nil
			}
		}
		return fmt.Errorf("no on_stop yet")
	})

	// A second session, kicked, is refused on the playlist and its parts.
	_, master2, _ := llGet(t, base+"ctx.m3u8")
	m2 := masterRE.FindStringSubmatch(master2)
	if m2 == nil {
		t.Fatalf("master: %q", master2)
	}
	if code, _, _ := llGet(t, base+"ctx.m3u8?"+m2[1]); code != 200 {
		t.Fatalf("second session: HTTP %d", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+m2[2], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _, _ := llGet(t, base+"ctx.m3u8?"+m2[1]); code != http.StatusForbidden {
		t.Fatalf("kicked session's playlist: HTTP %d, want 403", code)
	}
	if code, _, _ := llGet(t, base+"ctx-ll-init-0.mp4?hls_ctx="+m2[2]); code != http.StatusForbidden {
		t.Fatalf("kicked session's init: HTTP %d, want 403", code)
	}
	// A viewer refused by on_play gets 403.
	hs.Refuse("on_play", true)
	_, master3, _ := llGet(t, base+"ctx.m3u8")
	m3 := masterRE.FindStringSubmatch(master3)
	if code, _, _ := llGet(t, base+"ctx.m3u8?"+m3[1]); code != http.StatusForbidden {
		t.Fatalf("viewer refused by on_play: HTTP %d, want 403", code)
	}
}
