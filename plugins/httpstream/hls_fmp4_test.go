package main

import (
	"testing"
	"time"
)

func TestM4STemplate(t *testing.T) {
	for in, want := range map[string]string{
		"[app]/[stream]-[seq].ts": "[app]/[stream]-[seq].m4s",
		"[stream]-[seq]":          "[stream]-[seq].m4s",
		"[stream]/[seq].tsx":      "[stream]/[seq].tsx.m4s",
	} {
		if got := m4sTemplate(in); got != want {
			t.Errorf("m4sTemplate(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPlaylistFMP4: fMP4 segments raise the version to 7 and carry an
// EXT-X-MAP before the first segment and wherever the init changes or a
// discontinuity starts.
func TestPlaylistFMP4(t *testing.T) {
	h := &hlsStream{key: streamKey{App: "live", Stream: "s"}, m3u8Rel: "live/s.m3u8",
		cfg: hlsConfig{Fragment: time.Second, TDRatio: 1}}
	a := &initFile{rel: "live/s-init.mp4"}
	b := &initFile{rel: "live/s-init-1.mp4"}
	for i, s := range []*segment{
		{init: a}, {init: a}, {init: a, disc: true}, {init: b, disc: true}, {init: b},
	} {
		s.seq, s.rel, s.dur = uint64(i+4), "live/s-"+string(rune('4'+i))+".m4s", time.Second
		h.segs = append(h.segs, s)
	}
	got := string(h.playlist())
	want := `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA-SEQUENCE:4
#EXT-X-TARGETDURATION:1
#EXT-X-MAP:URI="s-init.mp4"
#EXTINF:1.000, no desc
s-4.m4s
#EXTINF:1.000, no desc
s-5.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="s-init.mp4"
#EXTINF:1.000, no desc
s-6.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="s-init-1.mp4"
#EXTINF:1.000, no desc
s-7.m4s
#EXTINF:1.000, no desc
s-8.m4s
`
	if got != want {
		t.Fatalf("playlist:\n%s\nwant:\n%s", got, want)
	}
	// MPEG-TS segments keep version 3 and no map.
	for _, s := range h.segs {
		s.init = nil
	}
	if got := string(h.playlist()); got[:len("#EXTM3U\n#EXT-X-VERSION:3\n")] != "#EXTM3U\n#EXT-X-VERSION:3\n" {
		t.Fatalf("ts playlist:\n%s", got)
	}
}
