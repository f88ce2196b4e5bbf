package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type hlsPlaylist struct {
	Raw       string
	Target    int
	Seq       int
	Durations []float64
	URIs      []string
	Discont   int
}

func parsePlaylist(t *testing.T, s string) hlsPlaylist {
	t.Helper()
	p := hlsPlaylist{Raw: s, Target: -1, Seq: -1}
	if !strings.HasPrefix(s, "#EXTM3U\n") {
		t.Fatalf("not a playlist: %q", s)
	}
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			p.Target, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			p.Seq, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(line, "#EXTINF:"):
			v := strings.TrimPrefix(line, "#EXTINF:")
			v, _, _ = strings.Cut(v, ",")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("EXTINF %q: %v", line, err)
			}
			p.Durations = append(p.Durations, f)
		case line == "#EXT-X-DISCONTINUITY":
			p.Discont++
		case line != "" && !strings.HasPrefix(line, "#"):
			p.URIs = append(p.URIs, line)
		}
	}
	if p.Target < 0 || p.Seq < 0 || len(p.Durations) != len(p.URIs) {
		t.Fatalf("bad playlist:\n%s", s)
	}
	return p
}

// waitPlaylist polls url until cond accepts the playlist.
func waitPlaylist(t *testing.T, url string, timeout time.Duration, what string, cond func(hlsPlaylist) error) hlsPlaylist {
	t.Helper()
	var p hlsPlaylist
	Eventually(t, timeout, what, func() error {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", resp.Status, b)
		}
		p = parsePlaylist(t, string(b))
		return cond(p)
	})
	return p
}

// TestHTTPHLSLive publishes H.264+AAC on a vhost with hls enabled and reads
// the playlist over several segments.
func TestHTTPHLSLive(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	dir := t.TempDir()
	d := StartDaemon(t, httpConfig(file, "hls", "  loop = true", "",
		fmt.Sprintf("    enabled = true\n    fragment = \"1s\"\n    window = \"4s\"\n    path = %q", dir)))
	addr := hlsAddr(t, d)
	url := "http://" + addr + "/live/hls.m3u8"
	first := waitPlaylist(t, url, 30*time.Second, "first segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 2 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	p := waitPlaylist(t, url, 40*time.Second, "window slides", func(p hlsPlaylist) error {
		if p.Seq < first.Seq+5 {
			return fmt.Errorf("media sequence %d", p.Seq)
		}
		return nil
	})
	var total float64
	for i, du := range p.Durations {
		total += du
		if du < 0.5 || du > 2.5 {
			t.Errorf("segment %d lasts %.3fs, want about 1s (fragment)\n%s", i, du, p.Raw)
		}
		if int(du+0.999) > p.Target {
			t.Errorf("segment %d (%.3fs) longer than the target duration %d", i, du, p.Target)
		}
	}
	if p.Target < 1 || p.Target > 2 {
		t.Errorf("target duration %d, want 1 (fragment 1s, td_ratio 1)", p.Target)
	}
	if total > 5.0 || len(p.URIs) < 3 {
		t.Errorf("window holds %d segments, %.3fs, want about 4s\n%s", len(p.URIs), total, p.Raw)
	}
	if p.URIs[0] != fmt.Sprintf("hls-%d.ts", p.Seq) {
		t.Errorf("first segment %q for media sequence %d", p.URIs[0], p.Seq)
	}
	// Segments are served and start with a TS sync byte.
	code, hdr, body := httpGet(t, "http://"+addr+"/live/"+p.URIs[len(p.URIs)-1])
	if code != 200 || hdr.Get("Content-Type") != "video/MP2T" || len(body) < 188 || body[0] != 0x47 {
		t.Fatalf("segment: %d %v %d bytes", code, hdr, len(body))
	}
	// Expired segments are deleted from the disk.
	if _, err := os.Stat(filepath.Join(dir, "live", "hls-0.ts")); !os.IsNotExist(err) {
		t.Errorf("expired segment hls-0.ts still on disk: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "live", p.URIs[0])); err != nil {
		t.Errorf("listed segment missing: %v", err)
	}
	// The stream decodes through the playlist.
	httpWantCodecs(t, "m3u8", httpProbe(t, url, 3), "h264", "aac")
	Eventually(t, 5*time.Second, "on_hls events reach the core", func() error {
		if !httpLogContains(d, "on_hls") {
			return fmt.Errorf("no on_hls in the daemon log")
		}
		return nil
	})
}

// TestHTTPHLSRepublishAndDispose publishes twice: the second publication
// continues the playlist after an EXT-X-DISCONTINUITY; after dispose the
// files are gone.
func TestHTTPHLSRepublishAndDispose(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 4)
	dir := t.TempDir()
	d := StartDaemon(t, httpConfig(file, "re", "  sessions = 2\n  gap = \"2s\"", "",
		fmt.Sprintf("    enabled = true\n    fragment = \"1s\"\n    window = \"60s\"\n    dispose = \"4s\"\n    path = %q", dir)))
	addr := hlsAddr(t, d)
	url := "http://" + addr + "/live/re.m3u8"
	p := waitPlaylist(t, url, 40*time.Second, "discontinuity after republish", func(p hlsPlaylist) error {
		if p.Discont != 1 {
			return fmt.Errorf("%d discontinuities", p.Discont)
		}
		if !strings.Contains(p.Raw, "#EXT-X-DISCONTINUITY\n#EXTINF") {
			return fmt.Errorf("discontinuity not before a segment")
		}
		return nil
	})
	if p.Seq != 0 {
		t.Fatalf("media sequence %d, want 0 with a 60s window", p.Seq)
	}
	for i, u := range p.URIs {
		if u != fmt.Sprintf("re-%d.ts", i) {
			t.Fatalf("segment %d is %q: sequence numbers must continue across the republish\n%s", i, u, p.Raw)
		}
	}
	m3u8 := filepath.Join(dir, "live", "re.m3u8")
	Eventually(t, 40*time.Second, "files disposed after unpublish", func() error {
		left, _ := filepath.Glob(filepath.Join(dir, "live", "*"))
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
	_ = m3u8
}

// TestHTTPHLSAudioOnly: an AAC-only stream is segmented on audio.
func TestHTTPHLSAudioOnly(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "audio", 10)
	dir := t.TempDir()
	d := StartDaemon(t, httpConfig(file, "radio", "  loop = true", "",
		fmt.Sprintf("    enabled = true\n    fragment = \"1s\"\n    window = \"5s\"\n    path = %q", dir)))
	addr := hlsAddr(t, d)
	url := "http://" + addr + "/live/radio.m3u8"
	p := waitPlaylist(t, url, 30*time.Second, "audio segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	for i, du := range p.Durations {
		if du < 0.8 || du > 1.5 {
			t.Errorf("audio segment %d lasts %.3fs, want about 1s\n%s", i, du, p.Raw)
		}
	}
	httpWantCodecs(t, "audio m3u8", httpProbe(t, url, 3), "aac")
}

// rawGet sends a request line as is (no client-side path cleaning).
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 400, err.Error() // the server refused to parse it
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

// TestHTTPStaticTraversal: static files are served from dir and nothing
// outside it is reachable.
func TestHTTPStaticTraversal(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	www := filepath.Join(base, "www")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(www, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(www, "index.html"), []byte("hello index"), 0o644))
	must(os.WriteFile(filepath.Join(www, "sub", "a.txt"), []byte("file a"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret.txt"), []byte("TOP SECRET"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret.m3u8"), []byte("#EXTM3U SECRET"), 0o644))
	must(os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(www, "link.txt")))
	d := StartDaemon(t, Config{Plugins: []string{"httpstream"}, Blocks: map[string]string{"httpstream": fmt.Sprintf("  listen = [\"127.0.0.1:0\"]\n  dir = %q", www)}})
	addr := hlsAddr(t, d)

	if code, body := rawGet(t, addr, "/"); code != 200 || body != "hello index" {
		t.Fatalf("index: %d %q", code, body)
	}
	if code, body := rawGet(t, addr, "/sub/a.txt"); code != 200 || body != "file a" {
		t.Fatalf("sub/a.txt: %d %q", code, body)
	}
	for _, target := range []string{
		"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
		"/sub/..%2f..%2fsecret.txt", "/%2E%2E%2Fsecret.txt", "/..\\secret.txt", "/sub/..%5c..%5csecret.txt",
		"/secret.txt%00.html", "//secret.txt", "/" + filepath.Join(base, "secret.txt"), "/link.txt",
		"/../secret.m3u8", "/live/%2e%2e/%2e%2e/secret.m3u8", "/sub/%2e%2e%2f%2e%2e%2fsecret.m3u8",
	} {
		code, body := rawGet(t, addr, target)
		if strings.Contains(body, "SECRET") {
			t.Errorf("GET %s leaked the secret: %d %q", target, code, body)
		}
		if code != 403 && code != 404 && code != 400 {
			t.Errorf("GET %s: %d, want 403/404", target, code)
		}
	}
}

// TestHTTPHLSContinuesAfterPluginKill kills the httpstream plugin while a stream
// is published: the restarted plugin continues the playlist it left on
// disk (its segments kept, the media sequence going on, the new segments
// behind an EXT-X-DISCONTINUITY) and removes the stream's stale .tmp
// files, not another stream's.
func TestHTTPHLSContinuesAfterPluginKill(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	dir := t.TempDir()
	d := StartDaemon(t, httpConfig(file, "rs", "  loop = true", "",
		fmt.Sprintf("    enabled = true\n    fragment = \"1s\"\n    window = \"20s\"\n    path = %q", dir)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	addr := hlsAddr(t, d)
	url := "http://" + addr + "/live/rs.m3u8"
	m3u8 := filepath.Join(dir, "live", "rs.m3u8")
	before := waitPlaylist(t, url, 30*time.Second, "first segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 3 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	// Stale temporary files: one of this stream (as a crash leaves), one
	// of another stream that must stay.
	stale, foreign := filepath.Join(dir, "live", "rs-0.ts.tmp"), filepath.Join(dir, "live", "other-1.ts.tmp")
	for _, f := range []string{stale, foreign} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := d.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	pid := ps["httpstream"].PID
	b, err := os.ReadFile(m3u8)
	if err != nil {
		t.Fatal(err)
	}
	last := parsePlaylist(t, string(b))
	lastSeq := last.Seq + len(last.URIs) - 1
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill httpstream plugin %d: %v", pid, err)
	}
	Eventually(t, 30*time.Second, "httpstream plugin restarted", func() error {
		ps, err := d.Plugins()
		if err != nil {
			return err
		}
		if p := ps["httpstream"]; p.State != "running" || p.PID == 0 || p.PID == pid {
			return fmt.Errorf("httpstream plugin: %+v", p)
		}
		return nil
	})
	p := waitPlaylist(t, url, 40*time.Second, "playlist continued after the restart", func(p hlsPlaylist) error {
		if !strings.Contains(p.Raw, "#EXT-X-DISCONTINUITY\n") {
			return fmt.Errorf("no discontinuity yet:\n%s", p.Raw)
		}
		return nil
	})
	if p.Seq < before.Seq || p.Seq > lastSeq {
		t.Fatalf("media sequence %d after the restart, want the old segments kept (%d..%d)\n%s", p.Seq, before.Seq, lastSeq, p.Raw)
	}
	for i, u := range p.URIs {
		if u != fmt.Sprintf("rs-%d.ts", p.Seq+i) {
			t.Fatalf("segment %d is %q: the numbering must go on across the restart\n%s", i, u, p.Raw)
		}
	}
	// The discontinuity is before the first segment of the new process,
	// which comes after the last one of the killed process.
	lines := strings.Split(p.Raw, "\n")
	for i, l := range lines {
		if l != "#EXT-X-DISCONTINUITY" {
			continue
		}
		if i+2 >= len(lines) || !strings.HasPrefix(lines[i+1], "#EXTINF:") {
			t.Fatalf("discontinuity not before a segment\n%s", p.Raw)
		}
		var seq int
		if _, err := fmt.Sscanf(lines[i+2], "rs-%d.ts", &seq); err != nil || seq <= lastSeq {
			t.Fatalf("discontinuity before %q, want a segment after rs-%d.ts\n%s", lines[i+2], lastSeq, p.Raw)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale %s still on disk: %v", stale, err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("another stream's temporary file was removed: %v", err)
	}
	// Only the segment being written is a .tmp of this stream: read the
	// playlist, then the directory.
	Eventually(t, 10*time.Second, "no stale .tmp of the stream", func() error {
		b, err := os.ReadFile(m3u8)
		if err != nil {
			return err
		}
		cur := parsePlaylist(t, string(b))
		next := cur.Seq + len(cur.URIs)
		tmps, _ := filepath.Glob(filepath.Join(dir, "live", "rs*.tmp"))
		for _, f := range tmps {
			var seq int
			if _, err := fmt.Sscanf(filepath.Base(f), "rs-%d.ts.tmp", &seq); err != nil || seq < next {
				return fmt.Errorf("%s on disk (playlist ends before %d)", filepath.Base(f), next)
			}
		}
		return nil
	})
	if !httpLogContains(d, "hls playlist continued") {
		t.Errorf("no \"hls playlist continued\" in the log")
	}
}
