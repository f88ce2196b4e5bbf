package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// readFLVTags reads an HTTP-FLV body until it has wantVideo video tags or
// the context ends, and returns the tags.
func readFLVTags(ctx context.Context, t *testing.T, url string, wantVideo int) []rtmpMsg {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(resp.Body, hdr); err != nil || string(hdr[:3]) != "FLV" {
		t.Fatalf("flv header % x: %v", hdr, err)
	}
	var tags []rtmpMsg
	video := 0
	th := make([]byte, 11)
	for video < wantVideo {
		if _, err := io.ReadFull(resp.Body, th); err != nil {
			t.Fatalf("flv tag header after %d tags (%d video): %v", len(tags), video, err)
		}
		n := int(th[1])<<16 | int(th[2])<<8 | int(th[3])
		ts := uint32(th[4])<<16 | uint32(th[5])<<8 | uint32(th[6]) | uint32(th[7])<<24
		body := make([]byte, n+4)
		if _, err := io.ReadFull(resp.Body, body); err != nil {
			t.Fatalf("flv tag body: %v", err)
		}
		if prev := binary.BigEndian.Uint32(body[n:]); prev != uint32(n+11) {
			t.Fatalf("flv previous tag size %d, want %d", prev, n+11)
		}
		tags = append(tags, rtmpMsg{typ: th[0], ts: ts, body: body[:n]})
		if th[0] == flv.TagVideo {
			video++
		}
	}
	return tags
}

var mapRE = regexp.MustCompile(`(?m)^#EXT-X-MAP:URI="([^"]+)"$`)

// TestHEVCHTTP publishes H.265+AAC over Enhanced RTMP from Go and plays it
// back as HTTP-FLV (Enhanced FLV, read with flv.FromTag) and as HLS with
// fMP4 segments (EXT-X-MAP, .m4s), decoded by FFmpeg; a republish with
// another codec configuration adds a discontinuity and a new init segment.
func TestHEVCHTTP(t *testing.T) {
	t.Parallel()
	needTool(t, "ffprobe")
	c := loadClip(t, "hevc", "")
	c2 := loadClip(t, "hevc", "352x288")
	dir := t.TempDir()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra:   fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"30s\"\n    path = %q\n  }\n}\n", dir),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	rtmpURL := "rtmp://" + ps["rtmp"].Listeners[0].Addr + "/live/hevc"
	base := "http://" + hlsAddr(t, d) + "/live/hevc"

	stop := make(chan struct{})
	defer close(stop)
	done := make(chan error, 1)
	go func() {
		_, err := publishClip(t, c, rtmpURL, 4, stop)
		done <- err
	}()
	waitPublished(t, d, "live", "hevc")

	t.Run("flv", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		tags := readFLVTags(ctx, t, base+".flv", 40)
		var video []rtmpMsg
		audio := 0
		for i, m := range tags {
			switch m.typ {
			case flv.TagVideo:
				video = append(video, m)
			case flv.TagAudio:
				p, err := flv.FromTag(m.typ, m.ts, m.body)
				if err != nil || p.Codec != media.CodecAAC {
					t.Fatalf("audio tag %d: %v %v", i, p.Codec, err)
				}
				audio++
			}
		}
		n := checkVideoTags(t, "http-flv", c, video)
		if audio == 0 {
			t.Errorf("no audio tags among %d", len(tags))
		}
		t.Logf("http-flv: %d hevc frames, %d audio tags", n, audio)
	})

	t.Run("hls", func(t *testing.T) {
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
		if len(maps) != 1 || maps[0][1] != "hevc-init.mp4" {
			t.Fatalf("EXT-X-MAP %v, want one hevc-init.mp4:\n%s", maps, p.Raw)
		}
		for i, u := range p.URIs {
			if u != fmt.Sprintf("hevc-%d.m4s", p.Seq+i) {
				t.Fatalf("segment %d is %q:\n%s", i, u, p.Raw)
			}
			if du := p.Durations[i]; du < 0.5 || du > 2.5 {
				t.Errorf("segment %d lasts %.3fs, want about 1s (fragment)\n%s", i, du, p.Raw)
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
		entries := map[string]*mp4Track{}
		for _, tr := range tracks {
			entries[tr.entry] = tr
		}
		if entries["hvc1"] == nil || !bytes.Equal(entries["hvc1"].config, c.vconfig.Payload) {
			t.Fatalf("init segment: no hvc1 with the source's hvcC: %v", entries)
		}
		if entries["mp4a"] == nil || !bytes.Equal(entries["mp4a"].config, c.aconfig.Payload) {
			t.Fatalf("init segment: no mp4a with the source's AudioSpecificConfig")
		}
		// Every segment is moof+mdat fragments whose first video sample is
		// a key frame of the clip.
		for _, u := range p.URIs {
			code, hdr, seg := httpGet(t, "http://"+hlsAddr(t, d)+"/live/"+u)
			if code != 200 || hdr.Get("Content-Type") != "video/iso.segment" || !strings.HasPrefix(seg[4:], "moof") {
				t.Fatalf("segment %s: %d %v %q", u, code, hdr, seg[:min(len(seg), 8)])
			}
			st, err := readFragmentedMP4([]byte(init + seg))
			if err != nil {
				t.Fatalf("segment %s: %v", u, err)
			}
			var vs []mp4Sample
			for _, tr := range st {
				if tr.entry == "hvc1" {
					vs = tr.samples
				}
			}
			if len(vs) == 0 || !vs[0].key {
				t.Fatalf("segment %s: %d video samples, first key: %v", u, len(vs), len(vs) > 0 && vs[0].key)
			}
			found := false
			for _, f := range c.video {
				if f.IsKey() && bytes.Equal(f.Payload, vs[0].data) {
					found = true
				}
			}
			if !found {
				t.Fatalf("segment %s starts with a frame that is not a key frame of the clip", u)
			}
		}
		httpWantCodecs(t, "fmp4 m3u8", httpProbe(t, base+".m3u8", 3), "hevc", "aac")
		// FFmpeg decodes 3 s of the playlist from its first segment, with
		// any decoding error fatal.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// -m3u8_hold_counters: give up when the playlist stops growing
		// (the publisher may have finished on a loaded machine) instead of
		// waiting for segments that will not come.
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-xerror", "-live_start_index", "0",
			"-m3u8_hold_counters", "20", "-i", base+".m3u8", "-t", "3", "-map", "0:v", "-f", "framemd5", "-")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ffmpeg decode of the playlist: %v\n%s", err, stderr.String())
		}
		frames := 0
		for _, l := range strings.Split(string(out), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				frames++
			}
		}
		if frames < 50 {
			t.Fatalf("decoded %d hevc frames in 3 s of the playlist, want about 75", frames)
		}
		t.Logf("hls: %d fmp4 segments listed, %d hevc frames decoded by ffmpeg", len(p.URIs), frames)
	})

	t.Run("republish", func(t *testing.T) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("first publisher: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Fatal("first publisher did not end")
		}
		if _, err := publishClip(t, c2, rtmpURL, 1, stop); err != nil {
			t.Fatalf("second publisher: %v", err)
		}
		p := waitPlaylist(t, base+".m3u8", 30*time.Second, "new init after a discontinuity", func(p hlsPlaylist) error {
			if p.Discont < 1 || len(mapRE.FindAllString(p.Raw, -1)) < 2 {
				return fmt.Errorf("%d discontinuities", p.Discont)
			}
			return nil
		})
		if !strings.Contains(p.Raw, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"hevc-init-1.mp4\"\n#EXTINF") {
			t.Fatalf("no discontinuity and new map before the republished segments:\n%s", p.Raw)
		}
		t.Logf("playlist after the republish:\n%s", p.Raw)
		_, _, init := httpGet(t, base+"-init-1.mp4")
		tracks, err := readFragmentedMP4([]byte(init))
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, tr := range tracks {
			ok = ok || (tr.entry == "hvc1" && bytes.Equal(tr.config, c2.vconfig.Payload))
		}
		if !ok {
			t.Fatalf("the new init segment does not carry the republished hvcC")
		}
	})
}
