package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var streamInfRE = regexp.MustCompile(`(?m)^#EXT-X-STREAM-INF:(.+)\n(.+)$`)

// hlsVariant is one #EXT-X-STREAM-INF of a master playlist.
type hlsVariant struct {
	bandwidth, avg int
	resolution     string
	codecs         string
	uri            string
}

func parseMaster(t *testing.T, s string) []hlsVariant {
	t.Helper()
	var vs []hlsVariant
	for _, m := range streamInfRE.FindAllStringSubmatch(s, -1) {
		v := hlsVariant{uri: m[2]}
		attrs := m[1]
		if i := strings.Index(attrs, `CODECS="`); i >= 0 {
			rest := attrs[i+len(`CODECS="`):]
			v.codecs, _, _ = strings.Cut(rest, `"`)
			attrs = attrs[:i] + strings.TrimPrefix(rest[len(v.codecs):], `"`)
		}
		for _, kv := range strings.Split(attrs, ",") {
			k, val, _ := strings.Cut(kv, "=")
			switch k {
			case "BANDWIDTH":
				v.bandwidth, _ = strconv.Atoi(val)
			case "AVERAGE-BANDWIDTH":
				v.avg, _ = strconv.Atoi(val)
			case "RESOLUTION":
				v.resolution = val
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// startVariants starts rtmp, exec (a 320x180 "sd" transcode engine) and
// httpstream with hls { variants = ["[stream]", "[stream]_sd", ...] },
// and publishes live/abr with ffmpeg; it returns once both renditions are
// published.
func startVariants(t *testing.T) *Daemon {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", execFreePort(t))
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "exec", "httpstream"},
		Blocks: map[string]string{
			"rtmp":       fmt.Sprintf("  listen = [%q]", addr),
			"exec":       fmt.Sprintf("  rtmp = %q\n  log_dir = %q", addr, filepath.Join(dir, "logs")),
			"httpstream": `  listen = ["127.0.0.1:0"]`,
		},
		Extra: fmt.Sprintf(`vhost "__defaultVhost__" {
  hls {
    enabled  = true
    fragment = "1s"
    window   = "10s"
    path     = %q
    variants = ["[stream]", "[stream]_sd", "[stream]_missing"]
  }
  exec {
    transcode {
      engine "sd" {
        vcodec   = "libx264"
        vpreset  = "ultrafast"
        vbitrate = 150
        vwidth   = 320
        vheight  = 180
        vparams  = ["-g", "25"]
        acodec   = "aac"
        abitrate = 32
      }
    }
  }
}
`, filepath.Join(dir, "hls")),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	waitRunning(t, d, "rtmp", "exec", "httpstream")
	ffmpegPublish(t, "rtmp://"+addr+"/live/abr", 120)
	waitPublished(t, d, "live", "abr")
	waitPublished(t, d, "live", "abr_sd")
	return d
}

// TestHTTPHLSVariants publishes one stream, which plugin "exec" transcodes
// to <stream>_sd at 320x180; hls { variants } makes <stream>_master.m3u8 a
// master playlist of both renditions with BANDWIDTH, RESOLUTION and CODECS
// measured from their segments, and ffprobe reads both through it.
func TestHTTPHLSVariants(t *testing.T) {
	t.Parallel()
	d := startVariants(t)
	base := "http://" + hlsAddr(t, d) + "/live/"
	var vs []hlsVariant
	var raw string
	Eventually(t, 60*time.Second, "master playlist with both renditions", func() error {
		code, hdr, body := httpGet(t, base+"abr_master.m3u8")
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/vnd.apple.mpegurl" {
			return fmt.Errorf("content type %q", ct)
		}
		raw = body
		vs = parseMaster(t, body)
		if len(vs) != 2 {
			return fmt.Errorf("%d variants:\n%s", len(vs), body)
		}
		return nil
	})
	hd, sd := vs[0], vs[1]
	if hd.uri != "abr.m3u8" || sd.uri != "abr_sd.m3u8" {
		t.Fatalf("variant URIs %q %q:\n%s", hd.uri, sd.uri, raw)
	}
	if hd.resolution != "640x360" || sd.resolution != "320x180" {
		t.Errorf("resolutions %q %q, want 640x360 and 320x180:\n%s", hd.resolution, sd.resolution, raw)
	}
	codecRE := regexp.MustCompile(`^avc1\.[0-9a-f]{6},mp4a\.40\.2$`)
	for _, v := range vs {
		if !codecRE.MatchString(v.codecs) {
			t.Errorf("%s: CODECS %q, want avc1.xxxxxx,mp4a.40.2", v.uri, v.codecs)
		}
		if v.avg <= 0 || v.bandwidth < v.avg {
			t.Errorf("%s: BANDWIDTH %d AVERAGE-BANDWIDTH %d", v.uri, v.bandwidth, v.avg)
		}
	}
	if hd.avg <= sd.avg {
		t.Errorf("the 640x360 rendition (%d b/s) is not above the 320x180 one (%d b/s):\n%s", hd.avg, sd.avg, raw)
	}
	t.Logf("master:\n%s", raw)
	// A stream with no variant live answers 404.
	if code, _, _ := httpGet(t, base+"nothere_master.m3u8"); code != 404 {
		t.Errorf("master of a stream with no rendition: %d", code)
	}
	// ffprobe reads the master: a program per rendition, both decoded.
	streams := httpProbe(t, base+"abr_master.m3u8", 3)
	sizes := map[string]bool{}
	for _, s := range streams {
		if s.CodecType == "video" {
			sizes[fmt.Sprintf("%dx%d", s.Width, s.Height)] = s.Frames != "" && s.Frames != "0"
		}
	}
	if !sizes["640x360"] || !sizes["320x180"] {
		t.Errorf("ffprobe through the master: %+v", streams)
	}
}

// throttle is a loopback HTTP proxy to the plugin whose answers are sent
// at most rate bytes per second while limited is set: a reader with less
// bandwidth than the top rendition.
type throttle struct {
	target  string
	limited atomic.Bool
	rate    int
}

func (th *throttle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+th.target+r.URL.RequestURI(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 4096)
	for range 1 << 20 {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if th.limited.Load() {
				w.(http.Flusher).Flush()
				time.Sleep(time.Duration(n) * time.Second / time.Duration(th.rate))
			}
		}
		if err != nil {
			return
		}
	}
}

// TestHTTPHLSVariantsPlayerSwitches plays the master playlist with hls.js
// in headless Chromium through a loopback proxy: with the bandwidth free
// it climbs to the 640x360 rendition; limited to 80 kB/s (below that
// rendition's 2 Mbit/s, above the 320x180 one) it switches down.
func TestHTTPHLSVariantsPlayerSwitches(t *testing.T) {
	t.Parallel()
	needTool(t, "chromium")
	d := startVariants(t)
	th := &throttle{target: hlsAddr(t, d), rate: 80 << 10}
	proxy := httptest.NewServer(th)
	defer proxy.Close()
	master := proxy.URL + "/live/abr_master.m3u8"
	Eventually(t, 60*time.Second, "master playlist with both renditions", func() error {
		code, _, body := httpGet(t, master)
		if code != 200 || len(parseMaster(t, body)) != 2 {
			return fmt.Errorf("%d:\n%s", code, body)
		}
		return nil
	})
	hlsjs, err := os.ReadFile(filepath.Join(repoRoot(), "core/internal/console/assets/vendor/hls.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script><script>
window.stats = {switches: [], errors: []};
const hls = new Hls({capLevelToPlayerSize: false, abrEwmaDefaultEstimate: 5000000});
hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => window.stats.switches.push(hls.levels[d.level].height));
hls.on(Hls.Events.ERROR, (e, d) => window.stats.errors.push(d.details + (d.fatal ? ':fatal' : '')));
hls.loadSource(` + strconv.Quote(master) + `);
hls.attachMedia(document.getElementById('v'));
</script></body></html>`
	ctx := playerPage(t, page, map[string][]byte{"/hls.min.js": hlsjs})
	type stats struct {
		Switches []int    `json:"switches"`
		Errors   []string `json:"errors"`
		Time     float64  `json:"time"`
		Height   int      `json:"height"`
	}
	read := func() stats {
		tctx, c := context.WithTimeout(ctx, 10*time.Second)
		defer c()
		st, err := chromedp.Run(tctx, chromedp.Evaluate[stats](`Object.assign({time: document.getElementById('v').currentTime, height: document.getElementById('v').videoHeight}, window.stats)`))
		if err != nil {
			t.Fatalf("read player stats: %v", err)
		}
		return st
	}
	waitFor := func(what string, limit time.Duration, ok func(stats) bool) stats {
		var st stats
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			if st = read(); ok(st) {
				return st
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: %+v", what, st)
		return st
	}
	st := waitFor("playing the 640x360 rendition with the bandwidth free", 60*time.Second, func(st stats) bool {
		return st.Time > 2 && st.Height == 360
	})
	before := len(st.Switches)
	th.limited.Store(true)
	st = waitFor("switch to 320x180 with 80 kB/s", 90*time.Second, func(st stats) bool {
		return len(st.Switches) > before && st.Switches[len(st.Switches)-1] == 180
	})
	t.Logf("hls.js level heights switched to %v (throttled after %d switches), errors %v", st.Switches, before, st.Errors)
}
