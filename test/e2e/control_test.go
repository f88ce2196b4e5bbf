package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// HookServer records every callback body and answers as told.
type HookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	refuse map[string]bool // action -> refuse
}

func NewHookServer(t *testing.T) *HookServer {
	h := &HookServer{refuse: map[string]bool{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		h.mu.Lock()
		h.bodies = append(h.bodies, m)
		refuse := h.refuse[fmt.Sprint(m["action"])]
		h.mu.Unlock()
		if refuse {
			_, _ = io.WriteString(w, `{"code":403}`)
			return
		}
		_, _ = io.WriteString(w, `{"code":0}`)
	}))
	t.Cleanup(h.Close)
	return h
}

// Bodies returns the recorded bodies of one action.
func (h *HookServer) Bodies(action string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, b := range h.bodies {
		if b["action"] == action {
			out = append(out, b)
		}
	}
	return out
}

func (h *HookServer) Refuse(action string, on bool) {
	h.mu.Lock()
	h.refuse[action] = on
	h.mu.Unlock()
}

func TestPublishCallbacksAndRefusal(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	cfg := patternConfig()
	cfg.Extra = fmt.Sprintf(`vhost "__defaultVhost__" {
  hooks {
    on_publish   = [%q]
    on_unpublish = [%q]
    timeout      = "2s"
  }
}
`, hs.URL+"/api/v1/streams", hs.URL+"/api/v1/streams")
	hs.Refuse("on_publish", true)
	d := StartDaemon(t, cfg)
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 15*time.Second, "publish refused by the hook", func() error {
		w := d.writer(t)
		if len(hs.Bodies("on_publish")) < 2 || !strings.Contains(w.LastError, "forbidden") || w.Written != 0 {
			return fmt.Errorf("writer %+v, %d on_publish", w, len(hs.Bodies("on_publish")))
		}
		return nil
	})
	hs.Refuse("on_publish", false)
	Eventually(t, 15*time.Second, "publish accepted once the hook says 0", func() error {
		if w := d.writer(t); w.Written < 100 {
			return fmt.Errorf("%+v", w)
		}
		return nil
	})
	b := hs.Bodies("on_publish")[0]
	for k, want := range map[string]string{"vhost": "__defaultVhost__", "app": "live", "stream": "pattern", "ip": "127.0.0.1", "stream_url": "/live/pattern"} {
		if b[k] != want {
			t.Errorf("on_publish %s = %v, want %q (body %v)", k, b[k], want, b)
		}
	}
	for _, k := range []string{"server_id", "service_id", "client_id", "param", "tcUrl"} {
		if _, ok := b[k]; !ok {
			t.Errorf("on_publish lacks %s: %v", k, b)
		}
	}
	// on_unpublish comes when the writer dies.
	if err := syscall.Kill(ps["testwriter"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "on_unpublish", func() error {
		if len(hs.Bodies("on_unpublish")) == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	if u := hs.Bodies("on_unpublish")[0]; u["stream"] != "pattern" || u["stream_id"] == "" || u["stream_id"] == nil {
		t.Fatalf("on_unpublish body: %v", u)
	}
}

func TestSecurityDeniesPublishFromLoopback(t *testing.T) {
	t.Parallel()
	cfg := patternConfig()
	cfg.Extra = `vhost "__defaultVhost__" {
  security {
    rules = ["deny publish 127.0.0.0/8", "allow publish all"]
  }
}
`
	d := StartDaemon(t, cfg)
	waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 10*time.Second, "publish denied", func() error {
		w := d.writer(t)
		if !strings.Contains(w.LastError, "deny publish 127.0.0.0/8") || w.Written != 0 {
			return fmt.Errorf("%+v", w)
		}
		return nil
	})
}

func TestKickMetricsAndReload(t *testing.T) {
	t.Parallel()
	hs := NewHookServer(t)
	cfg := patternConfig()
	d := StartDaemon(t, cfg)
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 15*time.Second, "reader receives", func() error {
		r, err := d.reader()
		if err == nil && r.Received < 100 {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})

	// The reader is listed as a client; DELETE kicks it.
	var clients struct {
		Code    int `json:"code"`
		Clients []struct {
			ID     string `json:"id"`
			Type   string `json:"type"`
			Stream string `json:"stream"`
			Name   string `json:"name"`
		} `json:"clients"`
	}
	if err := d.GetJSON("/api/v1/clients/", &clients); err != nil {
		t.Fatal(err)
	}
	if len(clients.Clients) != 1 || clients.Clients[0].Type != "test-play" || clients.Clients[0].Stream == "" || clients.Clients[0].Name != "pattern" {
		t.Fatalf("clients: %+v", clients)
	}
	id := clients.Clients[0].ID
	req, _ := http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/"+id, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var kick struct{ Code int }
	_ = json.NewDecoder(resp.Body).Decode(&kick)
	resp.Body.Close()
	if kick.Code != 0 {
		t.Fatalf("kick answered code %d", kick.Code)
	}
	var again struct{ Code int }
	req, _ = http.NewRequest(http.MethodDelete, d.API+"/api/v1/clients/nosuchid", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&again)
	resp.Body.Close()
	if again.Code != 2049 {
		t.Fatalf("kick of an unknown client: code %d, want 2049", again.Code)
	}
	Eventually(t, 10*time.Second, "kicked reader comes back under a new id", func() error {
		var c2 struct {
			Clients []struct{ ID string } `json:"clients"`
		}
		if err := d.GetJSON("/api/v1/clients/", &c2); err != nil {
			return err
		}
		if len(c2.Clients) != 1 || c2.Clients[0].ID == id {
			return fmt.Errorf("%+v", c2)
		}
		return nil
	})

	// /metrics parses as Prometheus text and its counters move.
	scrape := func() map[string]float64 {
		resp, err := http.Get(d.API + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics do not parse: %v", err)
		}
		out := map[string]float64{}
		for name, f := range fams {
			for _, m := range f.Metric {
				key := name
				for _, l := range m.Label {
					key += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				switch {
				case m.Counter != nil:
					out[key] = m.Counter.GetValue()
				case m.Gauge != nil:
					out[key] = m.Gauge.GetValue()
				}
			}
		}
		return out
	}
	m1 := scrape()
	time.Sleep(500 * time.Millisecond)
	m2 := scrape()
	if m1["rill_streams"] != 1 || m2["rill_receive_bytes_total"] <= m1["rill_receive_bytes_total"] || m1["rill_plugin_up{plugin=testreader}"] != 1 {
		t.Fatalf("metrics: before %v after %v", m1, m2)
	}
	// Per-stream series, labelled vhost, app, stream.
	const st = "{app=live}{stream=pattern}{vhost=__defaultVhost__}" // labels in name order
	if m2["rill_stream_video_frames_total"+st] <= m1["rill_stream_video_frames_total"+st] ||
		m2["rill_stream_receive_bytes_total"+st] <= m1["rill_stream_receive_bytes_total"+st] ||
		m2["rill_stream_send_bytes_total"+st] <= m1["rill_stream_send_bytes_total"+st] ||
		m1["rill_stream_players"+st] != 1 || m1["rill_stream_video_fps"+st] <= 0 || m2["rill_stream_video_fps"+st] <= 0 {
		t.Fatalf("per-stream metrics: before %v after %v", m1, m2)
	}
	if _, ok := m1["rill_plugin_restarts_total{plugin=testwriter}"]; !ok {
		t.Fatalf("no restart counter: %v", m1)
	}
	if _, ok := m1["rill_core_process_resident_memory_bytes"]; !ok {
		t.Fatalf("no process memory: %v", m1)
	}

	// Reload: a broken config is refused with its position and the running
	// one stays; a good one adds a hook without disturbing the plugins.
	conf, _ := os.ReadFile(d.Conf)
	if err := os.WriteFile(d.Conf, append(conf, []byte("vhost \"__defaultVhost__\" {\n  hooks {\n    on_pubish = [\"http://x\"]\n  }\n}\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	var rr struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := d.GetJSON("/api/v1/raw?rpc=reload", &rr); err != nil {
		t.Fatal(err)
	}
	if rr.Code == 0 || !strings.Contains(rr.Msg, "conf.hcl:") || !strings.Contains(rr.Msg, "on_pubish") {
		t.Fatalf("broken reload answered %+v", rr)
	}
	good := fmt.Sprintf("vhost \"__defaultVhost__\" {\n  hooks {\n    on_publish = [%q]\n  }\n}\n", hs.URL)
	if err := os.WriteFile(d.Conf, append(conf, []byte(good)...), 0o644); err != nil {
		t.Fatal(err)
	}
	r0, _ := d.reader()
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 10*time.Second, "SIGHUP reload logged", func() error {
		if !strings.Contains(d.Log(), "config reloaded") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// The new hook sees the next publish: kill the writer to make one.
	if err := syscall.Kill(ps["testwriter"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "on_publish after reload", func() error {
		if len(hs.Bodies("on_publish")) == 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	ps2, _ := d.Plugins()
	r1, _ := d.reader()
	if ps2["testreader"].PID != ps["testreader"].PID || ps2["testreader"].Restarts != 0 || r1.Received <= r0.Received || r1.Corrupt != 0 {
		t.Fatalf("reader disturbed by the reload: %+v %+v -> %+v", ps["testreader"], r0, r1)
	}
}
