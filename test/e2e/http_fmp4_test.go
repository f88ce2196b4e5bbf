package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHTTPHLSFMP4H264 turns on hls_use_fmp4 for an H.264+AAC stream: the
// playlist is version 7 with an EXT-X-MAP init segment and .m4s segments
// (TS stays the default: TestHTTPHLSLive), and FFmpeg decodes both tracks
// through it.
func TestHTTPHLSFMP4H264(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	dir := t.TempDir()
	d := StartDaemon(t, httpConfig(file, "f4", "  loop = true", "",
		fmt.Sprintf("    enabled = true\n    hls_use_fmp4 = true\n    fragment = \"1s\"\n    window = \"6s\"\n    path = %q", dir)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	base := "http://" + hlsAddr(t, d) + "/live/f4"
	p := waitPlaylist(t, base+".m3u8", 30*time.Second, "fmp4 segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	if !strings.Contains(p.Raw, "#EXT-X-VERSION:7\n") {
		t.Errorf("playlist without EXT-X-VERSION:7:\n%s", p.Raw)
	}
	maps := mapRE.FindAllStringSubmatch(p.Raw, -1)
	if len(maps) != 1 || maps[0][1] != "f4-init.mp4" {
		t.Fatalf("EXT-X-MAP %v, want one f4-init.mp4:\n%s", maps, p.Raw)
	}
	for i, u := range p.URIs {
		if u != fmt.Sprintf("f4-%d.m4s", p.Seq+i) {
			t.Fatalf("segment %d is %q:\n%s", i, u, p.Raw)
		}
	}
	code, hdr, init := httpGet(t, base+"-init.mp4")
	if code != 200 || hdr.Get("Content-Type") != "video/mp4" {
		t.Fatalf("init segment: %d %v", code, hdr)
	}
	tracks, err := readFragmentedMP4([]byte(init))
	if err != nil {
		t.Fatalf("init segment: %v", err)
	}
	if len(tracks) != 2 || tracks[1] == nil || tracks[2] == nil || tracks[1].entry != "avc1" || tracks[2].entry != "mp4a" {
		t.Errorf("init tracks %+v, want 1 avc1 and 2 mp4a", tracks)
	}
	code, hdr, seg := httpGet(t, base+fmt.Sprintf("-%d.m4s", p.Seq))
	if code != 200 || hdr.Get("Content-Type") != "video/iso.segment" || len(seg) < 8 || (seg[4:8] != "moof" && seg[4:8] != "styp") {
		t.Fatalf("media segment: %d %v %d bytes", code, hdr, len(seg))
	}
	httpWantCodecs(t, "fmp4 m3u8", httpProbe(t, base+".m3u8", 3), "h264", "aac")
}
