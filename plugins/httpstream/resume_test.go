package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestParseMediaPlaylist(t *testing.T) {
	pl, err := parseMediaPlaylist([]byte(`#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-TARGETDURATION:2
#EXT-X-MAP:URI="s-init.mp4"
#EXTINF:2.000, no desc
s-41.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="s-init-1.mp4"
#EXTINF:1.960, no desc
s-42.m4s
#EXTINF:2.040, no desc
s-43.m4s
#EXT-X-DISCONTINUITY
#EXTINF:1.500, no desc
s-44.ts
`))
	if err != nil {
		t.Fatal(err)
	}
	want := diskPlaylist{seq: 41, discSeq: 3, segs: []diskSegment{
		{uri: "s-41.m4s", dur: 2 * time.Second, mapURI: "s-init.mp4"},
		{uri: "s-42.m4s", dur: 1960 * time.Millisecond, disc: true, mapURI: "s-init-1.mp4"},
		{uri: "s-43.m4s", dur: 2040 * time.Millisecond, mapURI: "s-init-1.mp4"},
		{uri: "s-44.ts", dur: 1500 * time.Millisecond, disc: true},
	}}
	if pl.seq != want.seq || pl.discSeq != want.discSeq || !slices.Equal(pl.segs, want.segs) {
		t.Fatalf("got %+v\nwant %+v", pl, want)
	}
	for name, bad := range map[string]string{
		"empty":           "",
		"no header":       "#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:1,\na.ts\n",
		"bad sequence":    "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n",
		"negative":        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n",
		"uri without inf": "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\na.ts\n",
		"bad duration":    "#EXTM3U\n#EXTINF:abc,\na.ts\n",
		"bad map":         "#EXTM3U\n#EXT-X-MAP:BYTERANGE=1\n",
	} {
		if _, err := parseMediaPlaylist([]byte(bad)); err == nil {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
}

func testHLSConfig(dir string) hlsConfig {
	return hlsConfig{
		Enabled: true, Fragment: time.Second, Window: 4 * time.Second, TDRatio: 1, AOFRatio: 2.1,
		WaitKeyframe: true, Cleanup: true, Dispose: 120 * time.Second, Path: dir,
		M3U8File: "[app]/[stream].m3u8", TSFile: "[app]/[stream]-[seq].ts",
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func newTestHLS(t *testing.T, srv *Server, cfg hlsConfig) *hlsStream {
	t.Helper()
	h, err := newHLSStream(srv, streamKey{Vhost: defaultVhost, App: "live", Stream: "s"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.root.Close() })
	return h
}

func segSeqs(segs []*segment) []uint64 {
	var out []uint64
	for _, s := range segs {
		out = append(out, s.seq)
	}
	return out
}

// TestResumeAfterRestart: a new process's writer continues the playlist an
// earlier one left: same segments, the sequence after the last one, a
// discontinuity before the first new segment, the discontinuity sequence
// counted on, expired files still cleaned up, and the stream's stale
// temporary files removed (not another stream's, not a file being written).
func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"live/s.m3u8": "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-TARGETDURATION:1\n" +
			"#EXTINF:1.000, no desc\ns-5.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.000, no desc\ns-6.ts\n#EXTINF:1.000, no desc\ns-7.ts\n",
		"live/s-3.ts": "x", "live/s-4.ts": "x", "live/s-5.ts": "x", "live/s-6.ts": "x", "live/s-7.ts": "x",
		// Stale: the segment and playlist being written when the process died.
		"live/s-8.ts.tmp": "x", "live/s.m3u8.tmp": "x", "live/s-init-2.mp4.tmp": "x", "live/s-1.m4s.tmp": "x",
		// Not this stream's, or being written now.
		"live/s1-8.ts.tmp": "x", "live/s-a-8.ts.tmp": "x", "live/other-8.ts.tmp": "x", "live/s-9.ts.tmp": "x",
		"live/s-8.ts.tmpx": "x", "other/s-8.ts.tmp": "x",
	})
	srv := newServer()
	srv.setWriting(filepath.Join(dir, "live", "s-9.ts.tmp"), true)
	h := newTestHLS(t, srv, testHLSConfig(dir))
	h.resume()

	if h.seq != 8 || h.discSeq != 1 || !slices.Equal(segSeqs(h.segs), []uint64{5, 6, 7}) || !slices.Equal(segSeqs(h.expired), []uint64{3, 4}) {
		t.Fatalf("next seq %d, discontinuity sequence %d, segments %v, expired %v", h.seq, h.discSeq, segSeqs(h.segs), segSeqs(h.expired))
	}
	if h.segs[0].disc || !h.segs[1].disc || h.segs[2].disc || h.segs[1].rel != filepath.Join("live", "s-6.ts") || h.segs[1].dur != time.Second {
		t.Fatalf("segments %+v %+v %+v", *h.segs[0], *h.segs[1], *h.segs[2])
	}
	want := []string{
		"live/other-8.ts.tmp", "live/s-3.ts", "live/s-4.ts", "live/s-5.ts", "live/s-6.ts", "live/s-7.ts", "live/s-8.ts.tmpx",
		"live/s-9.ts.tmp", "live/s-a-8.ts.tmp", "live/s.m3u8", "live/s1-8.ts.tmp", "other/s-8.ts.tmp",
	}
	if got := listFiles(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files after resume:\n%v\nwant\n%v", got, want)
	}

	// The next segments: after a discontinuity, numbered on; the window
	// (4 s) slides, and the discontinuity of s-6 leaving counts.
	h.disc = true // as run sets it
	for i := range 4 {
		seq := h.seq
		h.seq++
		rel := filepath.Join("live", "s-"+itoa(seq)+".ts")
		writeFiles(t, dir, map[string]string{filepath.ToSlash(rel): "x"})
		h.appendSegment(&segment{seq: seq, rel: rel, dur: time.Second, disc: i == 0})
	}
	got := string(h.playlist())
	wantPL := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXT-X-TARGETDURATION:1\n" +
		"#EXT-X-DISCONTINUITY\n#EXTINF:1.000, no desc\ns-8.ts\n#EXTINF:1.000, no desc\ns-9.ts\n" +
		"#EXTINF:1.000, no desc\ns-10.ts\n#EXTINF:1.000, no desc\ns-11.ts\n"
	if got != wantPL {
		t.Fatalf("playlist:\n%s\nwant\n%s", got, wantPL)
	}
	for _, gone := range []string{"live/s-3.ts", "live/s-4.ts", "live/s-5.ts"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("expired %s still on disk: %v", gone, err)
		}
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestResumeRoundTrip: what playlist writes, resume reads back, with fMP4
// init segments; a new init does not take the name of one in use.
func TestResumeRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := testHLSConfig(dir)
	cfg.Window = time.Minute
	h := newTestHLS(t, newServer(), cfg)
	a := &initFile{rel: filepath.Join("live", "s-init.mp4"), data: []byte("init a")}
	b := &initFile{rel: filepath.Join("live", "s-init-1.mp4"), data: []byte("init b")}
	h.inits = []*initFile{a, b}
	for i, s := range []*segment{
		{init: a}, {init: a}, {init: b, disc: true}, {init: b}, {disc: true},
	} {
		s.seq = uint64(12 + i)
		ext := ".m4s"
		if s.init == nil {
			ext = ".ts"
		}
		s.rel, s.dur = filepath.Join("live", "s-"+itoa(s.seq)+ext), time.Duration(900+50*i)*time.Millisecond
		h.segs = append(h.segs, s)
		writeFiles(t, dir, map[string]string{filepath.ToSlash(s.rel): "x"})
	}
	h.discSeq = 7
	for _, f := range h.inits {
		writeFiles(t, dir, map[string]string{filepath.ToSlash(f.rel): string(f.data)})
	}
	if err := h.writePlaylist(); err != nil {
		t.Fatal(err)
	}

	r := newTestHLS(t, newServer(), cfg)
	r.resume()
	if r.seq != 17 || r.discSeq != 7 || len(r.segs) != len(h.segs) {
		t.Fatalf("next seq %d, discontinuity sequence %d, %d segments", r.seq, r.discSeq, len(r.segs))
	}
	for i, s := range r.segs {
		o := h.segs[i]
		if s.seq != o.seq || s.rel != o.rel || s.dur != o.dur || s.disc != o.disc || (s.init == nil) != (o.init == nil) ||
			(s.init != nil && (s.init.rel != o.init.rel || string(s.init.data) != string(o.init.data))) {
			t.Fatalf("segment %d: %+v, want %+v", i, *s, *o)
		}
	}
	if len(r.inits) != 2 || r.initRel() != filepath.Join("live", "s-init-2.mp4") {
		t.Fatalf("%d inits, next init %s", len(r.inits), r.initRel())
	}
	if got, want := string(r.playlist()), string(h.playlist()); got != want {
		t.Fatalf("playlist read back:\n%s\nwant\n%s", got, want)
	}
}

// TestResumeMissingFiles: segments before one whose file is gone leave the
// playlist (their discontinuities counted); the numbering goes on.
func TestResumeMissingFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"live/s.m3u8": "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:1\n" +
			"#EXT-X-DISCONTINUITY\n#EXTINF:1.000, no desc\ns-5.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.000, no desc\ns-6.ts\n" +
			"#EXTINF:1.000, no desc\ns-7.ts\n#EXTINF:1.000, no desc\n../../outside.ts\n#EXTINF:1.000, no desc\ns-9.ts\n",
		"live/s-5.ts": "x", "live/s-7.ts": "x", "live/s-9.ts": "x",
	})
	h := newTestHLS(t, newServer(), testHLSConfig(dir))
	h.resume()
	if h.seq != 10 || h.discSeq != 2 || !slices.Equal(segSeqs(h.segs), []uint64{9}) {
		t.Fatalf("next seq %d, discontinuity sequence %d, segments %v", h.seq, h.discSeq, segSeqs(h.segs))
	}
}

// TestResumeStaleOrBroken: files older than dispose are removed as dispose
// would have, a playlist that does not parse is not continued; either way
// the stream's temporary files go.
func TestResumeStaleOrBroken(t *testing.T) {
	t.Run("older than dispose", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"live/s.m3u8": "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.000, no desc\ns-5.ts\n",
			"live/s-4.ts": "x", "live/s-5.ts": "x", "live/s-6.ts.tmp": "x", "live/other.m3u8": "x",
		})
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "live", "s.m3u8"), old, old); err != nil {
			t.Fatal(err)
		}
		h := newTestHLS(t, newServer(), testHLSConfig(dir))
		h.resume()
		if h.seq != 6 || len(h.segs) != 0 || len(h.expired) != 0 {
			t.Fatalf("next seq %d, segments %v, expired %v", h.seq, segSeqs(h.segs), segSeqs(h.expired))
		}
		if got := listFiles(t, dir); !slices.Equal(got, []string{"live/other.m3u8"}) {
			t.Fatalf("files left: %v", got)
		}
	})
	t.Run("broken playlist", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"live/s.m3u8": "<html>", "live/s-6.ts.tmp": "x"})
		h := newTestHLS(t, newServer(), testHLSConfig(dir))
		h.resume()
		if h.seq != 0 || len(h.segs) != 0 {
			t.Fatalf("next seq %d, segments %v", h.seq, segSeqs(h.segs))
		}
		if got := listFiles(t, dir); !slices.Equal(got, []string{"live/s.m3u8"}) {
			t.Fatalf("files left: %v", got)
		}
	})
}

func TestTemplateRE(t *testing.T) {
	h := &hlsStream{key: streamKey{Vhost: "v.example", App: "live/sub", Stream: "s.1"}}
	for _, tc := range []struct {
		tpl   string
		match []string
		miss  []string
	}{
		{"[app]/[stream]-[seq].ts", []string{"live/sub/s.1-0.ts", "live/sub/s.1-123.ts"}, []string{"live/sub/sx1-1.ts", "live/sub/s.1-a.ts", "live/s.1-1.ts", "live/sub/s.1-1-2.ts"}},
		{"[vhost]/[app]/[2006][01][02]/[stream]-[timestamp]-[duration].ts", []string{"v.example/live/sub/20261203/s.1-1764000000000-2000.ts"}, []string{"w.example/live/sub/20261203/s.1-1-2.ts"}},
		{"./[app]//[stream]-[x]-[seq].ts", []string{"live/sub/s.1-[x]-5.ts"}, []string{"live/sub/s.1-x-5.ts"}},
	} {
		re := regexp.MustCompile("^" + h.templateRE(tc.tpl) + "$")
		for _, m := range tc.match {
			if !re.MatchString(m) {
				t.Errorf("%s: %q not matched by %s", tc.tpl, m, re)
			}
		}
		for _, m := range tc.miss {
			if re.MatchString(m) {
				t.Errorf("%s: %q matched by %s", tc.tpl, m, re)
			}
		}
	}
}
