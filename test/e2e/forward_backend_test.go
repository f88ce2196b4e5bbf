package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestRTMPForwardVariablesAndBackend: a forward destination URL with SRS
// #1342's variables, and SRS 5's forward backend (on_forward) answering more
// destinations per stream, both reach a second daemon; the backend gets
// SRS's body with the publisher's client id, the param and the same
// server_id/service_id as the on_publish callback.
func TestRTMPForwardVariablesAndBackend(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	dst, dstAddr := startRTMP(t, "", "")
	var mu sync.Mutex
	bodies := map[string]map[string]any{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if json.Unmarshal(raw, &body) != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		action, _ := body["action"].(string)
		mu.Lock()
		bodies[action] = body
		mu.Unlock()
		if action == "on_forward" {
			fmt.Fprintf(w, `{"code":0,"data":{"urls":["rtmp://%s/backend/[stream]","rtmp://%s/other/fixed"]}}`, dstAddr, dstAddr)
			return
		}
		_, _ = io.WriteString(w, `{"code":0}`)
	}))
	t.Cleanup(backend.Close)
	src, srcAddr := startRTMP(t, "", fmt.Sprintf(`
vhost "__defaultVhost__" {
  hooks {
    on_publish = [%q]
  }
  forward {
    destination = ["rtmp://%s/[app]/[stream]_copy?from=[param]"]
    backend     = %q
  }
}
`, backend.URL+"/api/v1/streams", dstAddr, backend.URL+"/api/v1/forward"))
	ffmpegPublish(t, "rtmp://"+srcAddr+"/live/fwd?token=abc", 40)
	waitPublished(t, src, "live", "fwd")
	for _, s := range [][2]string{{"live", "fwd_copy"}, {"backend", "fwd"}, {"other", "fixed"}} {
		waitPublished(t, dst, s[0], s[1])
	}
	p := ffprobe(t, "rtmp://"+dstAddr+"/backend/fwd", 3)
	if len(p.Packets) < 50 {
		t.Fatalf("forwarded stream from the backend's destination: %d packets", len(p.Packets))
	}
	var streams struct {
		Streams []struct {
			App, Name string
			Publish   struct {
				Cid string `json:"cid"`
			} `json:"publish"`
		} `json:"streams"`
	}
	// The destination got the publish param through [param].
	if !strings.Contains(dst.Log(), "stream=__defaultVhost__/live/fwd_copy") || !strings.Contains(dst.Log(), "param=?from=token=abc") {
		t.Errorf("the destination's publish of fwd_copy lacks param ?from=token=abc:\n%s", dst.Log())
	}
	if err := src.GetJSON("/api/v1/streams/", &streams); err != nil {
		t.Fatal(err)
	}
	cid := ""
	for _, s := range streams.Streams {
		if s.Name == "fwd" {
			cid = s.Publish.Cid
		}
	}
	mu.Lock()
	defer mu.Unlock()
	fw, pub := bodies["on_forward"], bodies["on_publish"]
	if fw == nil || pub == nil {
		t.Fatalf("backend calls: %v", bodies)
	}
	for k, want := range map[string]any{"vhost": "__defaultVhost__", "app": "live", "stream": "fwd", "param": "?token=abc", "ip": "127.0.0.1", "client_id": cid} {
		if fw[k] != want {
			t.Errorf("on_forward %s = %v, want %v (body %v)", k, fw[k], want, fw)
		}
	}
	for _, k := range []string{"server_id", "service_id", "client_id", "tcUrl"} {
		if fw[k] == nil || fw[k] == "" || fw[k] != pub[k] {
			t.Errorf("on_forward %s = %v, on_publish has %v", k, fw[k], pub[k])
		}
	}
}
