package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
