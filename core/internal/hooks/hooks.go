// Package hooks calls the HTTP callbacks of a vhost (SRS's http_hooks) with
// SRS's POST bodies and SRS's accept rule (see accept).
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrRefused is returned when a callback refuses (or fails to accept) a client.
var ErrRefused = errors.New("hooks: refused by callback")

// Events SRS knows.
const (
	OnConnect   = "on_connect"
	OnClose     = "on_close"
	OnPublish   = "on_publish"
	OnUnpublish = "on_unpublish"
	OnPlay      = "on_play"
	OnStop      = "on_stop"
	OnDvr       = "on_dvr"
	OnHls       = "on_hls"
	OnHlsNotify = "on_hls_notify"
)

// Config is a vhost's hooks block.
type Config struct {
	Enabled bool
	URLs    map[string][]string // by event
	Timeout time.Duration       // per request, default 30 s as SRS
	Retries int                 // extra attempts after a transport error or 5xx
}

// Caller sends callbacks. Blocking events (on_connect, on_publish, on_play)
// are called inline; the others go through ordered per-client queues so a
// slow hook server never blocks a plugin.
type Caller struct {
	ServerID  string
	ServiceID string
	Version   string
	Log       hclog.Logger

	client  *http.Client
	once    sync.Once
	queues  []chan job
	wg      sync.WaitGroup
	closeMu sync.Mutex
	closed  bool
}

type job struct {
	cfg   Config
	event string
	body  map[string]any
}

const asyncWorkers = 4

func (c *Caller) init() {
	c.once.Do(func() {
		c.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 60 * time.Second}}
		for i := 0; i < asyncWorkers; i++ {
			q := make(chan job, 1024)
			c.queues = append(c.queues, q)
			c.wg.Add(1)
			go c.worker(q)
		}
	})
}

func (c *Caller) worker(q chan job) {
	defer c.wg.Done()
	for j := range q {
		ctx, cancel := context.WithTimeout(context.Background(), j.cfg.timeout()*time.Duration(1+j.cfg.Retries))
		if err := c.callAll(ctx, j.cfg, j.event, j.body, false); err != nil {
			c.Log.Warn("callback failed", "event", j.event, "client_id", j.body["client_id"], "error", err)
		}
		cancel()
	}
}

func (cfg Config) timeout() time.Duration {
	if cfg.Timeout <= 0 {
		return 30 * time.Second
	}
	return cfg.Timeout
}

// Call runs the callbacks of event and waits for them: the first refusal
// stops the chain and is returned (wrapping ErrRefused). No URL: nil.
func (c *Caller) Call(ctx context.Context, cfg Config, event string, body map[string]any) error {
	if !cfg.Enabled || len(cfg.URLs[event]) == 0 {
		return nil
	}
	c.init()
	c.stamp(event, body)
	return c.callAll(ctx, cfg, event, body, true)
}

// Notify queues the callbacks of event; failures are logged.
func (c *Caller) Notify(cfg Config, event string, body map[string]any) {
	if !cfg.Enabled || len(cfg.URLs[event]) == 0 {
		return
	}
	c.init()
	c.stamp(event, body)
	id, _ := body["client_id"].(string)
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.queues[h.Sum32()%asyncWorkers] <- job{cfg: cfg, event: event, body: body}:
	default:
		c.Log.Warn("callback queue full, callback dropped", "event", event, "client_id", id)
	}
}

// Close waits for the queued callbacks (bounded by ctx).
func (c *Caller) Close(ctx context.Context) {
	c.init()
	c.closeMu.Lock()
	if !c.closed {
		c.closed = true
		for _, q := range c.queues {
			close(q)
		}
	}
	c.closeMu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (c *Caller) stamp(event string, body map[string]any) {
	body["server_id"] = c.ServerID
	body["service_id"] = c.ServiceID
	body["action"] = event
}

func (c *Caller) callAll(ctx context.Context, cfg Config, event string, body map[string]any, stopOnFail bool) error {
	var errs []error
	for _, u := range cfg.URLs[event] {
		var err error
		if event == OnHlsNotify {
			err = c.get(ctx, cfg, u, body)
		} else {
			err = c.post(ctx, cfg, u, body)
		}
		if err != nil {
			err = fmt.Errorf("%s %s: %w", event, u, err)
			if stopOnFail {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Caller) post(ctx context.Context, cfg Config, u string, body map[string]any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt <= cfg.Retries; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, cfg.timeout())
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(b))
		if err != nil {
			cancel()
			return fmt.Errorf("%w: bad url: %v", ErrRefused, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Rill/"+c.Version)
		resp, err := c.client.Do(req)
		if err != nil {
			cancel()
			last = fmt.Errorf("%w: %v", ErrRefused, err)
			continue
		}
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		cancel()
		if resp.StatusCode >= 500 && attempt < cfg.Retries {
			last = fmt.Errorf("%w: HTTP %d", ErrRefused, resp.StatusCode)
			continue
		}
		if rerr != nil {
			return fmt.Errorf("%w: read answer: %v", ErrRefused, rerr)
		}
		return accept(resp.StatusCode, data)
	}
	return last
}

// accept is SRS's rule: HTTP 200 or 201, and a body that is "0" or a JSON
// object whose code is 0.
func accept(status int, body []byte) error {
	if status != http.StatusOK && status != http.StatusCreated {
		return fmt.Errorf("%w: HTTP %d", ErrRefused, status)
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return fmt.Errorf("%w: empty answer", ErrRefused)
	}
	if string(b) == "0" {
		return nil
	}
	var v struct {
		Code json.RawMessage `json:"code"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w: answer is neither 0 nor JSON: %.80q", ErrRefused, b)
	}
	if v.Code == nil {
		return fmt.Errorf("%w: answer has no code: %.80q", ErrRefused, b)
	}
	var code int64
	if err := json.Unmarshal(v.Code, &code); err != nil || code != 0 {
		return fmt.Errorf("%w: code %s", ErrRefused, v.Code)
	}
	return nil
}

// get is on_hls_notify: a GET of a URL template, the answer ignored.
func (c *Caller) get(ctx context.Context, cfg Config, tmpl string, body map[string]any) error {
	u := tmpl
	for _, k := range []string{"server_id", "service_id", "app", "stream", "ts_url", "param"} {
		v, _ := body[k].(string)
		u = strings.ReplaceAll(u, "["+k+"]", url.QueryEscape(v))
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "Rill/"+c.Version)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}
