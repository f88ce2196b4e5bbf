package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

type dashMPD struct {
	Type                 string `xml:"type,attr"`
	AvailabilityStart    string `xml:"availabilityStartTime,attr"`
	MinimumUpdatePeriod  string `xml:"minimumUpdatePeriod,attr"`
	TimeShiftBufferDepth string `xml:"timeShiftBufferDepth,attr"`
	Periods              []struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			MimeType    string `xml:"mimeType,attr"`
			Reps        []struct {
				ID        string `xml:"id,attr"`
				Codecs    string `xml:"codecs,attr"`
				Bandwidth int    `xml:"bandwidth,attr"`
				Width     int    `xml:"width,attr"`
				Height    int    `xml:"height,attr"`
				Template  struct {
					Timescale   int    `xml:"timescale,attr"`
					Init        string `xml:"initialization,attr"`
					Media       string `xml:"media,attr"`
					StartNumber int    `xml:"startNumber,attr"`
					Timeline    []struct {
						T string `xml:"t,attr"`
						D int64  `xml:"d,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// TestHTTPDASH publishes H.264+AAC over RTMP to a vhost with SRS's dash
// block: the MPD is dynamic with a SegmentTemplate + SegmentTimeline per
// track, the init and media segments are fMP4, old segments leave the
// window and the disk, and ffprobe decodes both tracks through the MPD.
func TestHTTPDASH(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	dir := t.TempDir()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra: fmt.Sprintf("vhost \"__defaultVhost__\" {\n  dash {\n    enabled = true\n    dash_fragment = 2\n    dash_update_period = 2\n"+
			"    dash_timeshift = 6\n    dash_path = %q\n    dash_mpd_file = \"[app]/[stream].mpd\"\n  }\n}\n", dir),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/ds", 90)
	waitPublished(t, d, "live", "ds")
	base := "http://" + hlsAddr(t, d) + "/live/"
	var m dashMPD
	var raw string
	Eventually(t, 60*time.Second, "mpd slides past its first segments", func() error {
		code, hdr, body := httpGet(t, base+"ds.mpd")
		if code != 200 {
			return fmt.Errorf("%d %s", code, body)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/dash+xml" {
			return fmt.Errorf("content type %q", ct)
		}
		m = dashMPD{}
		if err := xml.Unmarshal([]byte(body), &m); err != nil {
			return fmt.Errorf("mpd: %v\n%s", err, body)
		}
		raw = body
		if len(m.Periods) != 1 || len(m.Periods[0].Sets) != 2 {
			return fmt.Errorf("want 1 period with 2 adaptation sets:\n%s", body)
		}
		if m.Periods[0].Sets[0].Reps[0].Template.StartNumber < 4 {
			return fmt.Errorf("start number %d", m.Periods[0].Sets[0].Reps[0].Template.StartNumber)
		}
		return nil
	})
	if m.Type != "dynamic" || m.AvailabilityStart == "" || m.MinimumUpdatePeriod != "PT2.000S" || m.TimeShiftBufferDepth != "PT6.000S" {
		t.Errorf("mpd attributes %+v", m)
	}
	sets := m.Periods[0].Sets
	v, a := sets[0].Reps[0], sets[1].Reps[0]
	if sets[0].ContentType != "video" || v.ID != "video" || !strings.HasPrefix(v.Codecs, "avc1.") || len(v.Codecs) != 11 || v.Width != 640 || v.Height != 360 || v.Bandwidth <= 1 {
		t.Errorf("video representation %+v", v)
	}
	if sets[1].ContentType != "audio" || a.Codecs != "mp4a.40.2" || a.Template.Timescale != 44100 || a.Bandwidth <= 1 {
		t.Errorf("audio representation %+v", a)
	}
	if v.Template.Timescale != 90000 || v.Template.Init != "ds/video-init.mp4" || v.Template.Media != "ds/video-$Number$.m4s" {
		t.Errorf("video template %+v", v.Template)
	}
	var total float64
	for _, s := range v.Template.Timeline {
		du := float64(s.D) / 90000
		total += du
		if du < 1.5 || du > 3.5 {
			t.Errorf("video segment of %.3fs, want about 2s (dash_fragment)\n%s", du, raw)
		}
	}
	if total > 8.5 {
		t.Errorf("timeline spans %.1fs, want about 6s (dash_timeshift)\n%s", total, raw)
	}
	code, _, init := httpGet(t, base+"ds/video-init.mp4")
	if code != 200 {
		t.Fatalf("video init: %d", code)
	}
	if tr, err := readFragmentedMP4([]byte(init)); err != nil || len(tr) != 1 {
		t.Fatalf("video init: %v %v", tr, err)
	}
	n := v.Template.StartNumber + len(v.Template.Timeline) - 1
	for _, f := range []string{fmt.Sprintf("ds/video-%d.m4s", n), fmt.Sprintf("ds/audio-%d.m4s", n)} {
		code, hdr, seg := httpGet(t, base+f)
		if code != 200 || hdr.Get("Content-Type") != "video/iso.segment" || len(seg) < 8 || seg[4:8] != "moof" {
			t.Fatalf("%s: %d %v %d bytes", f, code, hdr, len(seg))
		}
	}
	// dash_cleanup (default on): segments out of the window are deleted.
	if _, err := os.Stat(filepath.Join(dir, "live", "ds", "video-1.m4s")); !os.IsNotExist(err) {
		t.Errorf("segment 1 still on disk after leaving the window: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "live", "ds", fmt.Sprintf("video-%d.m4s", n))); err != nil {
		t.Errorf("listed segment missing: %v", err)
	}
	httpWantCodecs(t, "mpd", httpProbe(t, base+"ds.mpd", 4), "h264", "aac")
}

// dashJSVersion is the dash.js the DASH player test plays with: its
// dist/modern/umd/dash.all.min.js and LICENSE.md (BSD-3-Clause) from the
// npm package, kept in testdata so the test needs no network.
const dashJSVersion = "5.2.1"

// dashJS returns the vendored dash.all.min.js.
func dashJS(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "dashjs-"+dashJSVersion, "dash.all.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHTTPDASHDashJS plays the live MPD with dash.js in headless Chromium:
// the video's time must advance by 6 s; the live latency dash.js reports
// is logged.
func TestHTTPDASHDashJS(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "chromium")
	js := dashJS(t)
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra: fmt.Sprintf("vhost \"__defaultVhost__\" {\n  dash {\n    enabled = true\n    dash_fragment = 2\n    dash_update_period = 2\n"+
			"    dash_timeshift = 20\n    dash_path = %q\n  }\n}\n", t.TempDir()),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/dj", 120)
	waitPublished(t, d, "live", "dj")
	url := "http://" + hlsAddr(t, d) + "/live/dj.mpd"
	Eventually(t, 30*time.Second, "mpd with segments", func() error {
		code, _, body := httpGet(t, url)
		if code != 200 || strings.Count(body, "<S ") < 4 {
			return fmt.Errorf("%d: %.300s", code, body)
		}
		return nil
	})
	page := `<!doctype html><html><body><video id="v" muted autoplay playsinline></video>
<script src="/dash.all.min.js"></script><script>
window.stats = {errors: [], latency: 0};
const p = dashjs.MediaPlayer().create();
p.on(dashjs.MediaPlayer.events.ERROR, e => window.stats.errors.push(JSON.stringify(e.error || e).slice(0, 200)));
p.initialize(document.getElementById('v'), ` + strconv.Quote(url) + `, true);
setInterval(() => { window.stats.latency = p.getCurrentLiveLatency(); }, 250);
</script></body></html>`
	ctx := playerPage(t, page, map[string][]byte{"/dash.all.min.js": js})
	type stats struct {
		Errors  []string `json:"errors"`
		Latency float64  `json:"latency"`
		Time    float64  `json:"time"`
		Width   int      `json:"width"`
	}
	var st stats
	var first float64
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		tctx, c := context.WithTimeout(ctx, 10*time.Second)
		got, err := chromedp.Run(tctx, chromedp.Evaluate[stats](`Object.assign({time: document.getElementById('v').currentTime, width: document.getElementById('v').videoWidth}, window.stats)`))
		c()
		if err != nil {
			t.Fatalf("read player stats: %v", err)
		}
		st = got
		if first == 0 && st.Time > 0 {
			first = st.Time
		}
		if first > 0 && st.Time-first > 6 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if first == 0 || st.Time-first <= 6 {
		t.Fatalf("dash.js did not play 6 s: first %.2f now %.2f, errors %v", first, st.Time, st.Errors)
	}
	if st.Width != 640 {
		t.Errorf("video width %d, want 640", st.Width)
	}
	t.Logf("dash.js played %.1f s of 640x360, live latency %.2f s, errors %v", st.Time-first, st.Latency, st.Errors)
}
