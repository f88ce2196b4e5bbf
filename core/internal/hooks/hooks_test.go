package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestAccept(t *testing.T) {
	cases := []struct {
		status int
		body   string
		ok     bool
	}{
		{200, "0", true},
		{200, " 0\n", true},
		{201, `{"code":0}`, true},
		{200, `{"code":0,"data":{}}`, true},
		{200, `{"code":1}`, false},
		{200, `{"msg":"ok"}`, false},
		{200, ``, false},
		{200, `ok`, false},
		{204, `0`, false},
		{403, `{"code":0}`, false},
		{500, `0`, false},
		{200, `{"code":"0"}`, false},
	}
	for _, tc := range cases {
		err := accept(tc.status, []byte(tc.body))
		if tc.ok != (err == nil) {
			t.Errorf("%d %q: %v", tc.status, tc.body, err)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%d %q: not ErrRefused: %v", tc.status, tc.body, err)
		}
	}
}

type recorder struct {
	mu     sync.Mutex
	bodies []map[string]any
	answer string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	r.mu.Lock()
	r.bodies = append(r.bodies, m)
	ans := r.answer
	r.mu.Unlock()
	if req.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(400)
		return
	}
	_, _ = io.WriteString(w, ans)
}

func TestCallChainAndNotify(t *testing.T) {
	ok := &recorder{answer: `{"code":0}`}
	no := &recorder{answer: `{"code":403}`}
	s1, s2 := httptest.NewServer(ok), httptest.NewServer(no)
	defer s1.Close()
	defer s2.Close()
	c := &Caller{ServerID: "vid-test", ServiceID: "svc", Version: "0.1.0", Log: hclog.NewNullLogger()}
	defer c.Close(context.Background())

	cfg := Config{Enabled: true, URLs: map[string][]string{OnPublish: {s1.URL, s1.URL}}, Timeout: 2 * time.Second}
	if err := c.Call(context.Background(), cfg, OnPublish, map[string]any{"client_id": "abc", "app": "live"}); err != nil {
		t.Fatal(err)
	}
	if len(ok.bodies) != 2 || ok.bodies[0]["action"] != "on_publish" || ok.bodies[0]["server_id"] != "vid-test" || ok.bodies[0]["app"] != "live" {
		t.Fatalf("bodies: %v", ok.bodies)
	}
	cfg.URLs[OnPublish] = []string{s2.URL, s1.URL}
	err := c.Call(context.Background(), cfg, OnPublish, map[string]any{"client_id": "abc"})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("refusal: %v", err)
	}
	if len(ok.bodies) != 2 {
		t.Fatal("the first failure stops the chain")
	}
	cfg.URLs[OnStop] = []string{s1.URL}
	c.Notify(cfg, OnStop, map[string]any{"client_id": "abc"})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ok.mu.Lock()
		n := len(ok.bodies)
		ok.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ok.mu.Lock()
	defer ok.mu.Unlock()
	if len(ok.bodies) != 3 || ok.bodies[2]["action"] != "on_stop" {
		t.Fatalf("notify: %v", ok.bodies)
	}
	if err := c.Call(context.Background(), Config{Enabled: false, URLs: cfg.URLs}, OnPublish, map[string]any{}); err != nil {
		t.Fatalf("disabled hooks: %v", err)
	}
}

func TestRetriesAndTimeout(t *testing.T) {
	var mu sync.Mutex
	n := 0
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k < 3 {
			w.WriteHeader(503)
			return
		}
		_, _ = io.WriteString(w, "0")
	}))
	defer s.Close()
	c := &Caller{Log: hclog.NewNullLogger()}
	defer c.Close(context.Background())
	cfg := Config{Enabled: true, URLs: map[string][]string{OnPlay: {s.URL}}, Timeout: time.Second, Retries: 2}
	if err := c.Call(context.Background(), cfg, OnPlay, map[string]any{}); err != nil {
		t.Fatalf("third attempt should pass: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	defer slow.Close()
	cfg = Config{Enabled: true, URLs: map[string][]string{OnPlay: {slow.URL}}, Timeout: 200 * time.Millisecond}
	if err := c.Call(context.Background(), cfg, OnPlay, map[string]any{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("timeout must refuse: %v", err)
	}
}

// FuzzAccept: a callback's answer is untrusted input (an HTTP hook server
// of the operator's, or anything answering on that URL): never panic, and
// accept only "0" or a JSON object whose code is the integer 0.
func FuzzAccept(f *testing.F) {
	for _, s := range []string{"0", `{"code":0}`, `{"code":1}`, `{"code":"0"}`, `{"data":{}}`, "", "{", `{"code":0.0}`, `{"code":-0}`, "\x00"} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := accept(status, body)
		if err == nil {
			var v struct {
				Code *int64 `json:"code"`
			}
			trimmed := strings.TrimSpace(string(body))
			if (status != 200 && status != 201) || (trimmed != "0" && (json.Unmarshal(body, &v) != nil || v.Code == nil || *v.Code != 0)) {
				t.Fatalf("accepted status %d body %q", status, body)
			}
		}
	})
}
