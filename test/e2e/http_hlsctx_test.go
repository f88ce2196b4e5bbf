package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestHLSViewerSessions checks SRS's hls_ctx sessions: a master playlist
// first, then a playlist whose URIs carry the session id; the session is an
// hls-play client with on_play (stream name.m3u8) and ends with on_stop when
// the viewer goes quiet; a kicked session is refused.
func TestHLSViewerSessions(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	hs := NewHookServer(t)
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra: fmt.Sprintf(`vhost "__defaultVhost__" {
  hls {
    enabled  = true
    hls_ctx  = true
    fragment = "1s"
    window   = "4s"
    path     = "hlsroot"
  }
  hooks {
    on_play = [%q]
    on_stop = [%q]
  }
}
`, hs.URL, hs.URL),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/viewers", 90)
	waitPublished(t, d, "live", "viewers")
	base := "http://" + ps["httpstream"].Listeners[0].Addr + "/live/"
	get := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var master string
	Eventually(t, 30*time.Second, "master playlist", func() error {
		code, body := get(base + "viewers.m3u8?token=t1")
		if code != 200 || !strings.Contains(body, "#EXT-X-STREAM-INF:BANDWIDTH=1") {
			return fmt.Errorf("HTTP %d %q", code, body)
		}
		master = body
		return nil
	})
	m := regexp.MustCompile(`viewers\.m3u8\?(\S*hls_ctx=([a-z0-9]+)\S*)`).FindStringSubmatch(master)
	if m == nil {
		t.Fatalf("master playlist without a session: %q", master)
	}
	child, id := base+"viewers.m3u8?"+m[1], m[2]
	if !strings.Contains(m[1], "token=t1") {
		t.Fatalf("the session URL drops the original query: %q", m[1])
	}
	var playlist string
	Eventually(t, 20*time.Second, "session playlist with segments", func() error {
		code, body := get(child)
		if code != 200 || !strings.Contains(body, ".ts?hls_ctx="+id) {
			return fmt.Errorf("HTTP %d %q", code, body)
		}
		playlist = body
		return nil
	})
	seg := regexp.MustCompile(`(?m)^(\S+\.ts\?hls_ctx=\S+)$`).FindStringSubmatch(playlist)
	if seg == nil {
		t.Fatalf("no segment in %q", playlist)
	}
	if code, body := get(base + seg[1]); code != 200 || len(body) == 0 {
		t.Fatalf("segment: HTTP %d, %d bytes", code, len(body))
	}
	plays := hs.Bodies("on_play")
	if len(plays) != 1 || plays[0]["client_id"] != id || plays[0]["stream"] != "viewers.m3u8" {
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
		if c.ID == id && c.Type == "hls-play" && c.SendBytes > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("hls session %s not listed as an hls-play client: %+v", id, clients.Clients)
	}
	// Quiet viewer: the session times out (2 x window, at least 10 s).
	Eventually(t, 30*time.Second, "on_stop after the session times out", func() error {
		for _, b := range hs.Bodies("on_stop") {
			if b["client_id"] == id {
				return nil
			}
		}
		return fmt.Errorf("no on_stop yet")
	})

	// A second session, kicked through the API, is refused afterwards.
	_, master2 := get(base + "viewers.m3u8")
	m2 := regexp.MustCompile(`viewers\.m3u8\?(\S*hls_ctx=([a-z0-9]+)\S*)`).FindStringSubmatch(master2)
	if m2 == nil {
		t.Fatalf("master: %q", master2)
	}
	if code, _ := get(base + "viewers.m3u8?" + m2[1]); code != 200 {
		t.Fatalf("second session: HTTP %d", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+m2[2], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := get(base + "viewers.m3u8?" + m2[1]); code != http.StatusForbidden {
		t.Fatalf("kicked session: HTTP %d, want 403", code)
	}
	// A viewer refused by on_play gets 403.
	hs.Refuse("on_play", true)
	_, master3 := get(base + "viewers.m3u8")
	m3 := regexp.MustCompile(`viewers\.m3u8\?(\S*hls_ctx=([a-z0-9]+)\S*)`).FindStringSubmatch(master3)
	if code, _ := get(base + "viewers.m3u8?" + m3[1]); code != http.StatusForbidden {
		t.Fatalf("viewer refused by on_play: HTTP %d, want 403", code)
	}
}
