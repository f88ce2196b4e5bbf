package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/core/internal/pluginhost"
	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

type fakeStreams []hub.StreamInfo

func (f fakeStreams) Streams() []hub.StreamInfo { return f }

type fakePlugins struct{}

func (fakePlugins) Statuses() []pluginhost.Status {
	return []pluginhost.Status{{Name: "rtmp", Version: "1.0.0", PID: 42, State: pluginhost.StateRunning}}
}
func (fakePlugins) Info(string) (wire.Info, bool)    { return wire.Info{}, false }
func (fakePlugins) Client(string) *wire.PluginClient { return nil }
func (fakePlugins) Names() []string                  { return []string{"rtmp"} }

func newTestServer() *Server {
	var streams fakeStreams
	for i := 0; i < 25; i++ {
		streams = append(streams, hub.StreamInfo{
			ID: "vid-" + string(rune('a'+i)), Ref: wire.StreamRef{Vhost: hub.DefaultVhost, App: "live", Stream: "s" + string(rune('a'+i))},
			Created: time.Now(), Active: i == 0, Publisher: &wire.ClientInfo{ID: "pub1"}, Ring: shm.Stats{BytesWritten: 1000}, HasRing: true,
		})
	}
	return &Server{
		ServerID: "vid-test", ServiceID: "svc", Version: "1.2.3", Started: time.Now(),
		Streams: streams, Plugins: fakePlugins{}, Vhosts: func() []string { return []string{hub.DefaultVhost, "live.example.com"} },
		Log: hclog.NewNullLogger(),
	}
}

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAPIShapes(t *testing.T) {
	s := newTestServer()
	h := s.Handler()
	cases := []struct {
		name   string
		path   string
		status int
		check  func(t *testing.T, body map[string]any, rec *httptest.ResponseRecorder)
	}{
		{"versions", "/api/v1/versions", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			d := b["data"].(map[string]any)
			if b["code"] != 0.0 || b["server"] != "vid-test" || d["major"] != 1.0 || d["revision"] != 3.0 {
				t.Fatalf("%v", b)
			}
			if _, ok := b["pid"].(string); !ok {
				t.Fatalf("pid must be a string, as SRS: %v", b["pid"])
			}
		}},
		{"list redirect", "/api/v1/streams", 302, nil},
		{"paging clamps count to 10", "/api/v1/streams/?start=0&count=3", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if n := len(b["streams"].([]any)); n != 10 {
				t.Fatalf("%d streams", n)
			}
		}},
		{"paging start", "/api/v1/streams/?start=20&count=10", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if n := len(b["streams"].([]any)); n != 5 {
				t.Fatalf("%d streams", n)
			}
		}},
		{"one stream", "/api/v1/streams/vid-a", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			st := b["stream"].(map[string]any)
			if st["url"] != "/live/sa" || st["publish"].(map[string]any)["cid"] != "pub1" || st["video"] != nil {
				t.Fatalf("%v", st)
			}
		}},
		{"stream not found", "/api/v1/streams/nope", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if b["code"] != 2048.0 || len(b) != 1 {
				t.Fatalf("%v", b)
			}
		}},
		{"vhost by name", "/api/v1/vhosts/live.example.com", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if b["vhost"].(map[string]any)["name"] != "live.example.com" {
				t.Fatalf("%v", b)
			}
		}},
		{"no vhost", "/api/v1/vhosts/nope", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if b["code"] != 2014.0 {
				t.Fatalf("%v", b)
			}
		}},
		{"plugins", "/api/v1/plugins/", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			p := b["plugins"].([]any)[0].(map[string]any)
			if p["name"] != "rtmp" || p["state"] != "running" || p["pid"] != 42.0 {
				t.Fatalf("%v", p)
			}
		}},
		{"summaries", "/api/v1/summaries", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			d := b["data"].(map[string]any)
			if d["ok"] != true || d["self"].(map[string]any)["mem_kbyte"].(float64) <= 0 {
				t.Fatalf("%v", d)
			}
		}},
		{"raw unknown rpc", "/api/v1/raw?rpc=nope", 200, func(t *testing.T, b map[string]any, _ *httptest.ResponseRecorder) {
			if b["code"] == 0.0 {
				t.Fatalf("%v", b)
			}
		}},
		{"console", "/console/", 200, func(t *testing.T, _ map[string]any, rec *httptest.ResponseRecorder) {
			if !strings.Contains(rec.Body.String(), "Rill console") {
				t.Fatal("console page not served")
			}
		}},
		{"console player bundled", "/console/vendor/mpegts.js", 200, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, h, tc.path, nil)
			if rec.Code != tc.status {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
			}
			if tc.check == nil {
				return
			}
			var body map[string]any
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("%v: %s", err, rec.Body.String())
				}
			}
			tc.check(t, body, rec)
		})
	}
}

func TestJSONPAndCORS(t *testing.T) {
	h := newTestServer().Handler()
	rec := get(t, h, "/api/v1/versions?callback=cb", nil)
	if b := rec.Body.String(); !strings.HasPrefix(b, "cb({") || !strings.HasSuffix(b, "})") {
		t.Fatalf("jsonp: %s", b)
	}
	rec = get(t, h, "/api/v1/versions?callback=alert(1)//", nil)
	if strings.HasPrefix(rec.Body.String(), "alert") {
		t.Fatal("unsafe callback names must not be echoed")
	}
	if get(t, h, "/api/v1/versions", nil).Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS only with an Origin header, as SRS")
	}
	if get(t, h, "/api/v1/versions", map[string]string{"Origin": "http://x"}).Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("CORS missing")
	}
}

func TestBasicAuth(t *testing.T) {
	s := newTestServer()
	s.Username, s.Password = "u", "p"
	h := s.Handler()
	if rec := get(t, h, "/api/v1/versions", nil); rec.Code != 401 {
		t.Fatalf("HTTP %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/versions", nil)
	req.SetBasicAuth("u", "p")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("HTTP %d", rec.Code)
	}
}
