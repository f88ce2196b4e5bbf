package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawAPI sends method path to the API and returns the status and body.
func rawAPI(t *testing.T, d *Daemon, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, d.API+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// apiShape GETs path, wants HTTP 200 and SRS's shape, and returns the body decoded.
func apiShape(t *testing.T, d *Daemon, path, srs string) map[string]any {
	t.Helper()
	code, b := rawAPI(t, d, http.MethodGet, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %.300s", path, code, b)
	}
	checkSRSShape(t, "GET "+path, srs, b)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

func num(v any) float64 { f, _ := v.(float64); return f }

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// hookBody returns the first recorded body of action matching keep.
func hookBody(t *testing.T, hs *HookServer, action string, keep func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	Eventually(t, 30*time.Second, action+" callback", func() error {
		for _, b := range hs.Bodies(action) {
			if keep == nil || keep(b) {
				found = b
				return nil
			}
		}
		return fmt.Errorf("%d %s bodies, none matching", len(hs.Bodies(action)), action)
	})
	return found
}

// hookJSON is a recorded callback body as JSON again (the recorder decoded
// it; numbers keep their literal form through float64 for these values).
func hookJSON(t *testing.T, b map[string]any) []byte {
	t.Helper()
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSRSCompatAPIAndCallbacks runs one scenario (an ffmpeg publisher with a
// token, an RTMP and an HTTP-FLV player, HLS on, every callback hooked)
// and compares each API answer and callback body with SRS 7's key paths
// and JSON kinds, and the values SRS derives from the scenario.
func TestSRSCompatAPIAndCallbacks(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	hs := NewHookServer(t)
	var vb strings.Builder
	vb.WriteString("vhost \"__defaultVhost__\" {\n  hls {\n    enabled  = true\n    fragment = \"2s\"\n    window   = \"20s\"\n    path     = \"hlsroot\"\n  }\n  hooks {\n")
	for _, ev := range []string{"on_connect", "on_close", "on_publish", "on_unpublish", "on_play", "on_stop", "on_hls"} {
		fmt.Fprintf(&vb, "    %s = [%q]\n", ev, hs.URL+"/hook")
	}
	vb.WriteString("    timeout = \"5s\"\n  }\n}\n")
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks:  map[string]string{"rtmp": `  listen = ["127.0.0.1:0"]`, "httpstream": `  listen = ["127.0.0.1:0"]`},
		Extra:   vb.String(),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	rtmpAddr, httpAddr := ps["rtmp"].Listeners[0].Addr, ps["httpstream"].Listeners[0].Addr

	pub := ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/compat?token=abc", 90)
	onPublish := hookBody(t, hs, "on_publish", nil)
	// Wait for media through a player, not through the API: the first API
	// answers below are the first the daemon computes rates for.
	player := newGoPlayer(t, "rtmp://"+rtmpAddr+"/live/compat?who=rtmp")
	Eventually(t, 30*time.Second, "RTMP player receives video", func() error {
		if n := player.video.Load(); n < 50 {
			return fmt.Errorf("%d video messages", n)
		}
		return nil
	})
	flvCtx, flvCancel := context.WithCancel(context.Background())
	t.Cleanup(flvCancel)
	flvReq, _ := http.NewRequestWithContext(flvCtx, http.MethodGet, "http://"+httpAddr+"/live/compat.flv?who=flv", nil)
	flvResp, err := http.DefaultClient.Do(flvReq)
	if err != nil {
		t.Fatalf("HTTP-FLV play: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, flvResp.Body); flvResp.Body.Close() }()
	hookBody(t, hs, "on_play", func(b map[string]any) bool { return b["param"] == "?who=flv" })
	// on_play is called before the HTTP-FLV player is counted: wait for
	// the plugin to log it started, which it does once the player is in its
	// client list (not through the API: the polls below are the first the
	// daemon computes rates for).
	Eventually(t, 10*time.Second, "HTTP-FLV player started", func() error {
		for _, l := range strings.Split(d.Log(), "\n") {
			if strings.Contains(l, "player started") && strings.Contains(l, "format=flv") {
				return nil
			}
		}
		return errors.New("not yet")
	})

	var streamID, pubID, playerID string
	t.Run("clients first poll", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/clients/", srsClients)
		for _, c := range m["clients"].([]any) {
			c := obj(c)
			kb := obj(c["kbps"])
			switch c["type"] {
			case "fmle-publish", "flash-publish":
				pubID = fmt.Sprint(c["id"])
				// A publisher's rate is what it sends (recv_30s), known at the first poll.
				if num(kb["recv_30s"]) <= 0 || c["publish"] != true {
					t.Errorf("publisher %v: want recv_30s > 0 at the first poll", c)
				}
			case "rtmp-play":
				playerID = fmt.Sprint(c["id"])
				if num(kb["send_30s"]) <= 0 || c["publish"] != false {
					t.Errorf("RTMP player %v: want send_30s > 0 at the first poll", c)
				}
			}
		}
		if pubID != fmt.Sprint(onPublish["client_id"]) || playerID == "" {
			t.Fatalf("publisher %q (on_publish %v), player %q in %v", pubID, onPublish["client_id"], playerID, m["clients"])
		}
		one := apiShape(t, d, "/api/v1/clients/"+pubID, srsOneClient)
		if obj(one["client"])["id"] != pubID {
			t.Errorf("one client: %v", one)
		}
	})
	t.Run("streams first poll", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/streams/", srsStreams)
		list := m["streams"].([]any)
		if len(list) != 1 {
			t.Fatalf("streams: %v", list)
		}
		st := obj(list[0])
		streamID = fmt.Sprint(st["id"])
		if num(obj(st["kbps"])["recv_30s"]) <= 0 {
			t.Errorf("stream recv_30s is 0 at the first poll: %v", st)
		}
		// SRS counts every client of the stream, its publisher included.
		if num(st["clients"]) < 3 || obj(st["publish"])["cid"] != pubID {
			t.Errorf("stream clients/publisher: %v", st)
		}
		if onPublish["stream_id"] != streamID {
			t.Errorf("on_publish stream_id %v, API stream id %s", onPublish["stream_id"], streamID)
		}
		one := apiShape(t, d, "/api/v1/streams/"+streamID, srsOneStream)
		if obj(one["stream"])["id"] != streamID {
			t.Errorf("one stream: %v", one)
		}
	})
	t.Run("vhosts", func(t *testing.T) {
		_, cb := rawAPI(t, d, http.MethodGet, "/api/v1/clients/")
		var cl struct {
			Clients []struct {
				Vhost     string `json:"vhost"`
				SendBytes uint64 `json:"send_bytes"`
			} `json:"clients"`
		}
		if err := json.Unmarshal(cb, &cl); err != nil {
			t.Fatal(err)
		}
		m := apiShape(t, d, "/api/v1/vhosts/", srsVhosts)
		list := m["vhosts"].([]any)
		if len(list) != 1 {
			t.Fatalf("vhosts: %v", list)
		}
		v := obj(list[0])
		n := 0
		for _, c := range cl.Clients {
			if c.Vhost == v["id"] {
				n++
			}
		}
		if num(v["clients"]) < 3 || num(v["clients"]) < float64(n)-1 || num(v["clients"]) > float64(n)+1 || num(v["streams"]) != 1 {
			t.Errorf("vhost counts %v, %d clients listed", v, n)
		}
		if num(v["recv_bytes"]) <= 0 || num(v["send_bytes"]) <= 0 || num(obj(v["kbps"])["recv_30s"]) <= 0 || num(obj(v["kbps"])["send_30s"]) <= 0 {
			t.Errorf("vhost bytes and rates from its streams: %v", v)
		}
		if h := obj(v["hls"]); h["enabled"] != true || h["fragment"] != 2.0 {
			t.Errorf("vhost hls: %v", h)
		}
		one := apiShape(t, d, "/api/v1/vhosts/"+fmt.Sprint(v["id"]), srsOneVhost)
		if obj(one["vhost"])["name"] != "__defaultVhost__" {
			t.Errorf("one vhost: %v", one)
		}
	})
	t.Run("root", func(t *testing.T) { apiShape(t, d, "/", srsRoot) })
	t.Run("api", func(t *testing.T) { apiShape(t, d, "/api/", srsAPI) })
	t.Run("v1", func(t *testing.T) { apiShape(t, d, "/api/v1/", srsV1) })
	t.Run("versions", func(t *testing.T) { apiShape(t, d, "/api/v1/versions", srsVersions) })
	t.Run("summaries", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/summaries", srsSummaries)
		sys := obj(obj(m["data"])["system"])
		if num(sys["srs_recv_bytes"]) <= 0 || num(sys["srs_send_bytes"]) <= 0 || num(sys["conn_srs"]) < 3 {
			t.Errorf("summaries system: %v", sys)
		}
	})
	t.Run("rusages", func(t *testing.T) { apiShape(t, d, "/api/v1/rusages", srsRusages) })
	t.Run("self_proc_stats", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/self_proc_stats", srsSelfProcStats)
		if c, _ := obj(m["data"])["comm"].(string); !strings.HasPrefix(c, "(") {
			t.Errorf("comm %q: SRS keeps the parentheses", c)
		}
	})
	t.Run("system_proc_stats", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/system_proc_stats", srsSystemProcStats)
		if num(obj(m["data"])["idle"]) <= 0 || num(obj(m["data"])["user"]) <= 0 {
			t.Errorf("cpu counters not read: %v", m["data"])
		}
	})
	t.Run("meminfos", func(t *testing.T) { apiShape(t, d, "/api/v1/meminfos", srsMeminfos) })
	t.Run("authors", func(t *testing.T) { apiShape(t, d, "/api/v1/authors", srsAuthors) })
	t.Run("features", func(t *testing.T) { apiShape(t, d, "/api/v1/features", srsFeatures) })
	t.Run("tests requests", func(t *testing.T) {
		m := apiShape(t, d, "/api/v1/tests/requests?x=1", srsTestsRequests)
		if dd := obj(m["data"]); dd["path"] != "/api/v1/tests/requests" || dd["uri"] != "/api/v1/tests/requests?x=1" {
			t.Errorf("tests/requests data: %v", dd)
		}
	})
	t.Run("requests is the v1 index", func(t *testing.T) {
		// SRS routes no /api/v1/requests: its /api/v1/ handler answers.
		apiShape(t, d, "/api/v1/requests", srsV1)
	})
	t.Run("tests errors", func(t *testing.T) {
		code, b := rawAPI(t, d, http.MethodGet, "/api/v1/tests/errors")
		if code != http.StatusOK || strings.TrimSpace(string(b)) != srsTestsErrors {
			t.Errorf("HTTP %d %s, want %s", code, b, srsTestsErrors)
		}
		code, _ = rawAPI(t, d, http.MethodGet, "/api/v1/tests/redirects")
		if code != http.StatusMovedPermanently {
			t.Errorf("tests/redirects: HTTP %d, want 301", code)
		}
	})
	t.Run("favicon", func(t *testing.T) {
		for _, p := range []string{"/favicon.ico", "/console/favicon.svg"} {
			code, b := rawAPI(t, d, http.MethodGet, p)
			if code != http.StatusOK || !strings.Contains(string(b), "<svg") {
				t.Errorf("GET %s: HTTP %d %.100s", p, code, b)
			}
		}
	})

	// Callbacks so far.
	t.Run("on_connect", func(t *testing.T) {
		b := hookBody(t, hs, "on_connect", func(b map[string]any) bool { return b["client_id"] == onPublish["client_id"] })
		checkSRSShape(t, "on_connect", srsOnConnect, hookJSON(t, b))
		// SRS sends on_connect once the stream is named: its token is there.
		if b["stream"] != "compat" || b["param"] != "?token=abc" || !strings.HasPrefix(fmt.Sprint(b["tcUrl"]), "rtmp://") {
			t.Errorf("on_connect %v", b)
		}
	})
	t.Run("on_publish", func(t *testing.T) {
		checkSRSShape(t, "on_publish", srsOnPublish, hookJSON(t, onPublish))
		if onPublish["param"] != "?token=abc" || onPublish["stream_url"] != "/live/compat" {
			t.Errorf("on_publish %v", onPublish)
		}
	})
	t.Run("on_play", func(t *testing.T) {
		rtmpPlay := hookBody(t, hs, "on_play", func(b map[string]any) bool { return b["client_id"] == playerID })
		checkSRSShape(t, "on_play rtmp", srsOnPlay, hookJSON(t, rtmpPlay))
		if rtmpPlay["param"] != "?who=rtmp" || rtmpPlay["stream_id"] != streamID {
			t.Errorf("RTMP on_play %v", rtmpPlay)
		}
		flvPlay := hookBody(t, hs, "on_play", func(b map[string]any) bool { return b["param"] == "?who=flv" })
		checkSRSShape(t, "on_play flv", srsOnPlay, hookJSON(t, flvPlay))
	})
	t.Run("on_hls", func(t *testing.T) {
		b := hookBody(t, hs, "on_hls", nil)
		checkSRSShape(t, "on_hls", srsOnHls, hookJSON(t, b))
		// SRS's HLS muxer runs for the publisher: its client id, tcUrl, param.
		for _, k := range []string{"client_id", "ip", "tcUrl", "param", "stream_id"} {
			if b[k] != onPublish[k] {
				t.Errorf("on_hls %s = %v, on_publish has %v", k, b[k], onPublish[k])
			}
		}
	})

	// DELETE kicks the RTMP player: SRS's envelope, then on_stop and on_close.
	t.Run("kick", func(t *testing.T) {
		code, b := rawAPI(t, d, http.MethodDelete, "/api/v1/clients/"+playerID)
		if code != http.StatusOK {
			t.Fatalf("DELETE: HTTP %d %s", code, b)
		}
		checkSRSShape(t, "DELETE /api/v1/clients/{id}", srsKick, b)
		stop := hookBody(t, hs, "on_stop", func(b map[string]any) bool { return b["client_id"] == playerID })
		checkSRSShape(t, "on_stop", srsOnStop, hookJSON(t, stop))
		closed := hookBody(t, hs, "on_close", func(b map[string]any) bool { return b["client_id"] == playerID })
		checkSRSShape(t, "on_close", srsOnClose, hookJSON(t, closed))
		if num(closed["send_bytes"]) <= 0 {
			t.Errorf("on_close %v", closed)
		}
	})
	t.Run("on_unpublish", func(t *testing.T) {
		_ = pub.Process.Kill()
		b := hookBody(t, hs, "on_unpublish", nil)
		checkSRSShape(t, "on_unpublish", srsOnUnpublish, hookJSON(t, b))
		if b["client_id"] != onPublish["client_id"] || b["stream_id"] != streamID || b["param"] != "?token=abc" {
			t.Errorf("on_unpublish %v vs on_publish %v", b, onPublish)
		}
	})
}
