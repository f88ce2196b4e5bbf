package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var (
	llPartRE = regexp.MustCompile(`(?m)^#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"`)
	llHintRE = regexp.MustCompile(`(?m)^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*-ll-(\d+)-(\d+)\.m4s"$`)
)

// startLLHLS starts rtmp + httpstream with ll_hls on the default vhost.
func startLLHLS(t *testing.T, hlsExtra string) (*Daemon, string, string) {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra: fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    ll_hls = true\n    part_target = \"500ms\"\n"+
			"    fragment = \"1s\"\n    window = \"12s\"\n    path = %q\n%s  }\n}\n", t.TempDir(), hlsExtra),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	return d, "rtmp://" + ps["rtmp"].Listeners[0].Addr + "/live/", "http://" + hlsAddr(t, d) + "/live/"
}

// llGet is a GET with a client timeout; it reports the status, the body
// and how long the answer took.
func llGet(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	c := http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, string(b), time.Since(start)
}

// llHint returns the segment and part of a playlist's preload hint.
func llHint(t *testing.T, pl string) (int, int) {
	t.Helper()
	m := llHintRE.FindStringSubmatch(pl)
	if m == nil {
		t.Fatalf("no EXT-X-PRELOAD-HINT:\n%s", pl)
	}
	s, _ := strconv.Atoi(m[1])
	p, _ := strconv.Atoi(m[2])
	return s, p
}

// TestHTTPLLHLS publishes H.264+AAC with ll_hls and checks the low-latency
// playlist from memory: parts, preload hint, server control, blocking
// reload that returns the awaited part, delta updates, parts and segments
// that are fMP4 fragments, 4xx at once for requests past the RFC limits,
// a blocking request on a stream that stopped ended by a 503 (not held);
// ffprobe decodes the playlist.
func TestHTTPLLHLS(t *testing.T) {
	t.Parallel()
	d, rtmpBase, base := startLLHLS(t, "")
	ffmpegPublish(t, rtmpBase+"ll", 90)
	waitPublished(t, d, "live", "ll")
	url := base + "ll.m3u8"
	var pl string
	Eventually(t, 30*time.Second, "low-latency playlist with parts", func() error {
		code, body, _ := llGet(t, url)
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if p := parsePlaylist(t, body); len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		pl = body
		return nil
	})
	for _, want := range []string{
		"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=",
		"#EXT-X-PART-INF:PART-TARGET=",
		`#EXT-X-MAP:URI="ll-ll-init-0.mp4"`,
		",INDEPENDENT=YES\n",
		"#EXT-X-PROGRAM-DATE-TIME:",
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("playlist lacks %q:\n%s", want, pl)
		}
	}
	parts := llPartRE.FindAllStringSubmatch(pl, -1)
	if len(parts) < 4 {
		t.Fatalf("%d parts:\n%s", len(parts), pl)
	}
	for _, m := range parts {
		if du, _ := strconv.ParseFloat(m[1], 64); du <= 0 || du > 1.0 {
			t.Errorf("part %s lasts %ss, want about 0.5s (part_target)", m[2], m[1])
		}
	}
	p := parsePlaylist(t, pl)
	for i, u := range p.URIs {
		if u != fmt.Sprintf("ll-ll-%d.m4s", p.Seq+i) {
			t.Fatalf("segment %d is %q:\n%s", i, u, pl)
		}
	}
	// Parts, segments and the init are fMP4 from memory: nothing of them
	// is a file under the hls path.
	code, _, init := httpGet(t, base+"ll-ll-init-0.mp4")
	if code != 200 {
		t.Fatalf("init: %d", code)
	}
	if _, err := readFragmentedMP4([]byte(init)); err != nil {
		t.Fatalf("init segment: %v", err)
	}
	code, hdr, part := httpGet(t, base+parts[0][2])
	if code != 200 || hdr.Get("Content-Type") != "video/iso.segment" || len(part) < 8 || part[4:8] != "moof" {
		t.Fatalf("part %s: %d %v %d bytes", parts[0][2], code, hdr, len(part))
	}
	code, _, seg := httpGet(t, base+p.URIs[len(p.URIs)-1])
	if code != 200 || len(seg) < 8 || seg[4:8] != "moof" || len(seg) <= len(part)/2 {
		t.Fatalf("segment: %d %d bytes", code, len(seg))
	}

	t.Run("blocking reload", func(t *testing.T) {
		_, body, _ := llGet(t, url)
		msn, part := llHint(t, body)
		want := fmt.Sprintf(`ll-ll-%d-%d.m4s"`, msn, part)
		code, got, took := llGet(t, fmt.Sprintf("%s?_HLS_msn=%d&_HLS_part=%d", url, msn, part))
		if code != 200 {
			t.Fatalf("blocking reload: %d %s", code, got)
		}
		// Either the part came in this segment, or the segment ended
		// and the next one started.
		if !strings.Contains(got, want) && !strings.Contains(got, fmt.Sprintf("\nll-ll-%d.m4s\n", msn)) {
			t.Fatalf("blocking reload for %d.%d returned a playlist without it:\n%s", msn, part, got)
		}
		t.Logf("blocking reload for %d.%d answered in %v", msn, part, took)
		// The preload hint itself blocks until the part exists.
		code, _, data := httpGet(t, base+fmt.Sprintf("ll-ll-%d-%d.m4s", msn+1, 0))
		if code != 200 || len(data) < 8 || data[4:8] != "moof" {
			t.Fatalf("next segment's first part: %d %d bytes", code, len(data))
		}
		// Waiting for a whole segment (no _HLS_part) answers once it is
		// in the playlist.
		code, got, _ = llGet(t, fmt.Sprintf("%s?_HLS_msn=%d", url, msn+1))
		if code != 200 || !strings.Contains(got, fmt.Sprintf("\nll-ll-%d.m4s\n", msn+1)) {
			t.Fatalf("blocking reload for segment %d: %d\n%s", msn+1, code, got)
		}
	})

	t.Run("delta update", func(t *testing.T) {
		// A 12 s window holds more than CAN-SKIP-UNTIL (6 s).
		Eventually(t, 30*time.Second, "delta playlist skips segments", func() error {
			code, got, _ := llGet(t, url+"?_HLS_skip=YES")
			if code != 200 {
				return fmt.Errorf("%d %s", code, got)
			}
			if !strings.Contains(got, "#EXT-X-VERSION:9\n") || !strings.Contains(got, "#EXT-X-SKIP:SKIPPED-SEGMENTS=") {
				return fmt.Errorf("no EXT-X-SKIP:\n%s", got)
			}
			full := parsePlaylist(t, pl)
			if dp := parsePlaylist(t, got); len(dp.URIs) >= len(full.URIs)+5 {
				return fmt.Errorf("delta has %d segments", len(dp.URIs))
			}
			return nil
		})
	})

	t.Run("bad requests", func(t *testing.T) {
		_, body, _ := llGet(t, url)
		msn, part := llHint(t, body)
		for _, c := range []struct {
			path string
			code int
		}{
			{"ll.m3u8?_HLS_msn=999999999", 400},
			{fmt.Sprintf("ll.m3u8?_HLS_msn=%d", msn+3), 400},
			{fmt.Sprintf("ll.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part+10), 400},
			{"ll.m3u8?_HLS_part=1", 400},
			{"ll.m3u8?_HLS_msn=-1", 400},
			{"ll.m3u8?_HLS_msn=1e9", 400},
			{"ll.m3u8?_HLS_skip=MAYBE", 400},
			{"ll.m3u8?_HLS_msn=99999999999999999999999", 400},
			{"ll-ll-999999999-0.m4s", 404},
			{fmt.Sprintf("ll-ll-%d-0.m4s", msn+5), 404},
			{fmt.Sprintf("ll-ll-%d-%d.m4s", msn, part+50), 404},
			{"ll-ll-init-7.mp4", 404},
			{"..%2f..%2fll-ll-1.m4s", 403},
		} {
			code, got, took := llGet(t, base+c.path)
			if code != c.code {
				t.Errorf("%s: %d, want %d: %.200q", c.path, code, c.code, got)
			}
			t.Logf("%s: %d in %v", c.path, code, took)
		}
		if !httpLogContains(d, "ll-hls request refused") || !strings.Contains(d.Log(), "client_id") {
			t.Errorf("refused requests not logged with a client id")
		}
		// The stream goes on for everyone else.
		code, _, _ := llGet(t, fmt.Sprintf("%s?_HLS_msn=%d", url, msn+1))
		if code != 200 {
			t.Errorf("blocking reload after the bad requests: %d", code)
		}
	})

	t.Run("ffprobe", func(t *testing.T) {
		httpWantCodecs(t, "ll-hls m3u8", httpProbe(t, url, 3), "h264", "aac")
	})

	t.Run("bounded block on a stopped stream", func(t *testing.T) {
		cmd := ffmpegPublish(t, rtmpBase+"short", 4)
		waitPublished(t, d, "live", "short")
		_ = cmd.Wait()
		surl := base + "short.m3u8"
		var last hlsPlaylist
		Eventually(t, 20*time.Second, "short stream's playlist", func() error {
			code, body, _ := llGet(t, surl)
			if code != 200 {
				return fmt.Errorf("%d %s", code, body)
			}
			last = parsePlaylist(t, body)
			return nil
		})
		next := last.Seq + len(last.URIs)
		// The publisher is gone: nothing more comes, the request is
		// answered 503 after the bound instead of being held.
		code, got, took := llGet(t, fmt.Sprintf("%s?_HLS_msn=%d", surl, next+1))
		if code != http.StatusServiceUnavailable {
			t.Fatalf("blocking reload on a stopped stream: %d %s", code, got)
		}
		t.Logf("blocking reload on a stopped stream: 503 after %v", took)
	})
}

// TestHTTPLLHLSHlsJS plays the low-latency stream with hls.js (the build
// the console vendors) in low-latency mode in headless Chromium, and
// reports hls.latency.
func TestHTTPLLHLSHlsJS(t *testing.T) {
	t.Parallel()
	playLLHlsJS(t, "", false)
}

// playLLHlsJS plays an ll_hls stream (hls block lines hlsExtra) with
// hls.js in headless Chromium for 8 s and logs its latency; byteRange
// says the parts are byte ranges (ll_hls_byterange), which hls.js must
// have seen and fetched.
func playLLHlsJS(t *testing.T, hlsExtra string, byteRange bool) {
	needTool(t, "chromium")
	d, rtmpBase, base := startLLHLS(t, hlsExtra)
	ffmpegPublish(t, rtmpBase+"js", 120)
	waitPublished(t, d, "live", "js")
	url := base + "js.m3u8"
	Eventually(t, 30*time.Second, "playlist", func() error {
		if code, body, _ := llGet(t, url); code != 200 || len(parsePlaylist(t, body).URIs) < 2 {
			return fmt.Errorf("%d", code)
		}
		return nil
	})
	hlsjs, err := os.ReadFile(filepath.Join(repoRoot(), "core/internal/console/assets/vendor/hls.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script><script>
performance.setResourceTimingBufferSize(100000);
window.stats = {errors: [], latency: [], g2g: [], parts: 0, rangeParts: 0, canBlock: false, level: false};
const hls = new Hls({lowLatencyMode: true, liveSyncDurationCount: undefined});
hls.on(Hls.Events.ERROR, (e, d) => { window.stats.errors.push(d.type + ':' + d.details + (d.fatal ? ':fatal' : '')); });
hls.on(Hls.Events.LEVEL_LOADED, (e, d) => {
  window.stats.level = true;
  window.stats.parts = d.details.partList ? d.details.partList.length : 0;
  window.stats.rangeParts = d.details.partList ? d.details.partList.filter(p => p.byteRange && p.byteRange.length === 2).length : 0;
  window.stats.canBlock = !!d.details.canBlockReload;
});
setInterval(() => {
  if (hls.latency > 0) window.stats.latency.push(hls.latency);
  // Ingest to screen: the wall clock now minus the server's
  // EXT-X-PROGRAM-DATE-TIME of the frame on screen.
  if (hls.playingDate) window.stats.g2g.push((Date.now() - hls.playingDate.getTime()) / 1000);
}, 250);
hls.loadSource(` + strconv.Quote(url) + `);
hls.attachMedia(document.getElementById('v'));
</script></body></html>`
	ctx := playerPage(t, page, map[string][]byte{"/hls.min.js": hlsjs})
	type stats struct {
		Errors  []string  `json:"errors"`
		Latency []float64 `json:"latency"`
		G2G     []float64 `json:"g2g"`
		Parts   int       `json:"parts"`
		// RangeParts counts the parts hls.js read as byte ranges.
		RangeParts int     `json:"rangeParts"`
		CanBlock   bool    `json:"canBlock"`
		Level      bool    `json:"level"`
		Time       float64 `json:"time"`
		// PartFetches and Blocking count the part and blocking playlist
		// requests the page made.
		PartFetches int `json:"partFetches"`
		Blocking    int `json:"blocking"`
	}
	// Part fetches: of part URIs, or (byte ranges) of segment URIs
	// while the playlist lists parts.
	partFetch := `/-ll-\d+-\d+\.m4s/`
	if byteRange {
		partFetch = `/-ll-\d+\.m4s/`
	}
	var st stats
	var first float64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		tctx, c := context.WithTimeout(ctx, 10*time.Second)
		got, err := chromedp.Run(tctx, chromedp.Evaluate[stats](`Object.assign({time: document.getElementById('v').currentTime,
  partFetches: performance.getEntriesByType('resource').filter(e => `+partFetch+`.test(e.name)).length,
  blocking: performance.getEntriesByType('resource').filter(e => /_HLS_msn=/.test(e.name)).length}, window.stats)`))
		c()
		st = got
		if err != nil {
			t.Fatalf("read player stats: %v", err)
		}
		if first == 0 && st.Time > 0 {
			first = st.Time
		}
		if first > 0 && st.Time-first > 8 && len(st.Latency) > 20 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !st.Level || st.Parts == 0 || !st.CanBlock {
		t.Fatalf("hls.js did not see a low-latency playlist: %+v", st)
	}
	if byteRange != (st.RangeParts == st.Parts) {
		t.Fatalf("hls.js read %d of %d parts as byte ranges (byte-range mode %v)", st.RangeParts, st.Parts, byteRange)
	}
	if first == 0 || st.Time-first <= 8 {
		t.Fatalf("video did not play 8 s: first %.2f now %.2f, errors %v", first, st.Time, st.Errors)
	}
	if len(st.Latency) == 0 {
		t.Fatalf("hls.latency never reported: %+v", st)
	}
	lat := append([]float64(nil), st.Latency[len(st.Latency)/2:]...)
	var sum, lo, hi float64
	lo = lat[0]
	for _, v := range lat {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	t.Logf("hls.js low-latency: played %.1f s, %d parts in the playlist, hls.latency mean %.2f s (min %.2f, max %.2f, %d samples of the second half), errors %v",
		st.Time-first, st.Parts, sum/float64(len(lat)), lo, hi, len(lat), st.Errors)
	if len(st.G2G) == 0 {
		t.Fatalf("hls.playingDate never set: no EXT-X-PROGRAM-DATE-TIME seen")
	}
	g := append([]float64(nil), st.G2G[len(st.G2G)/2:]...)
	slices.Sort(g)
	t.Logf("ingest-to-screen latency (now - hls.playingDate), second half: p50 %.2f s, max %.2f s, %d samples", g[len(g)/2], g[len(g)-1], len(g))
	// The player fetched parts, not only whole segments, and blocked on
	// the playlist.
	if st.PartFetches == 0 || st.Blocking == 0 {
		t.Fatalf("hls.js fetched %d parts and %d blocking playlists", st.PartFetches, st.Blocking)
	}
	t.Logf("hls.js fetched %d parts, %d blocking playlist reloads", st.PartFetches, st.Blocking)
}

// playerPage serves page (at /) and scripts on a loopback test server,
// opens it in headless Chromium and returns the tab's context.
func playerPage(t *testing.T, page string, scripts map[string][]byte) context.Context {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if js, ok := scripts[r.URL.Path]; ok {
			w.Header().Set("Content-Type", "application/javascript")
			_, _ = w.Write(js)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	}))
	t.Cleanup(srv.Close)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("open player page: %v", err)
	}
	return ctx
}
