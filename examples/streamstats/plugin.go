package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// settings is the plugin "streamstats" { } block.
type settings struct {
	// Window is how far back the frame rate is counted.
	Window sdk.Duration `json:"window"`
}

// vhostSettings is the streamstats { } block inside a vhost: enabled only
// (the core reads it; the plugin declares vhost-opt-in).
type vhostSettings struct {
	Enabled *bool `json:"enabled"`
}

// Plugin is the streamstats plugin.
type Plugin struct {
	rt *sdk.Runtime

	mu      sync.Mutex
	cfg     settings
	vhosts  map[string]bool    // vhost -> enabled
	streams map[string]*stream // StreamRef.Key() -> what is read
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New returns the plugin with its default settings.
func New() *Plugin {
	return &Plugin{cfg: settings{Window: sdk.Duration(5 * time.Second)}, vhosts: map[string]bool{}, streams: map[string]*stream{}}
}

// The interfaces the plugin implements; the SDK finds them by assertion.
var (
	_ sdk.Configurer    = (*Plugin)(nil)
	_ sdk.Starter       = (*Plugin)(nil)
	_ sdk.Stopper       = (*Plugin)(nil)
	_ sdk.StreamWatcher = (*Plugin)(nil)
	_ http.Handler      = (*Plugin)(nil)
)

// Info names the plugin (= binary = config block), its API routes, and
// that a vhost serves it only when it has a streamstats { } block.
func (p *Plugin) Info() sdk.Info {
	return sdk.Info{
		Name: "streamstats", Version: "1.0.0",
		Description:  "counts packets, bytes, key frames and frame rate of each stream",
		Capabilities: []string{sdk.CapVhostOptIn},
		HTTPRoutes:   []string{"/api/v1/streamstats/"},
	}
}

// Configure validates the settings; a dry run (the core checks every
// plugin before applying anything) changes nothing.
func (p *Plugin) Configure(_ context.Context, cfg sdk.Config) error {
	s := settings{Window: sdk.Duration(5 * time.Second)}
	var errs []error
	if err := cfg.DecodeSettings(&s); err != nil {
		errs = append(errs, err)
	} else if w := time.Duration(s.Window); w < time.Second || w > 5*time.Minute {
		errs = append(errs, &sdk.ConfigError{Key: []string{"window"}, Msg: fmt.Sprintf("must be between 1s and 5m, got %s", w)})
	}
	vhosts := map[string]bool{}
	for _, v := range cfg.Vhosts {
		var vs vhostSettings
		if err := v.Decode(&vs); err != nil {
			errs = append(errs, err)
		}
		vhosts[v.Name] = v.Enabled
	}
	if err := errors.Join(errs...); err != nil || cfg.DryRun {
		return err
	}
	p.mu.Lock()
	p.cfg, p.vhosts = s, vhosts
	p.mu.Unlock()
	return nil
}

// Start keeps the runtime: Host for Subscribe, Logger for logs.
func (p *Plugin) Start(_ context.Context, rt *sdk.Runtime) error {
	p.rt = rt
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return nil
}

// Stop ends every reader and waits for them.
func (p *Plugin) Stop(context.Context) error {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	return nil
}

// StreamEvent starts a reader when a stream of an enabled vhost is
// published; the reader ends by itself when the publisher goes.
func (p *Plugin) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type != sdk.StreamPublished {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.vhosts[ev.Stream.Vhost] || p.ctx == nil {
		return
	}
	key := ev.Stream.Key()
	if old, ok := p.streams[key]; ok && old.running() {
		return
	}
	st := newStream(ev.Stream, time.Duration(p.cfg.Window))
	p.streams[key] = st
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.read(st)
	}()
}

// read subscribes to one stream and counts every packet until the stream
// ends. One subscription per stream per process: a plugin with many
// clients of a stream reads it once and fans out itself.
func (p *Plugin) read(st *stream) {
	defer st.stop()
	client := sdk.ClientInfo{ID: sdk.NewClientID(), Type: "streamstats"}
	log := p.rt.Logger.With("client_id", client.ID, "stream", st.ref.Key())
	sub, err := p.rt.Host.Subscribe(p.ctx, client, st.ref, sdk.SubscribeOptions{Internal: true, Wait: 5 * time.Second})
	if err != nil {
		log.Warn("cannot read the stream", "error", err)
		return
	}
	defer sub.Close()
	log.Info("reading stream", "stream_id", sub.StreamID)
	for {
		pkt, err := sub.Read(p.ctx)
		if err != nil {
			log.Info("stream read ended", "reason", err, "packets", st.snapshot().Packets)
			return
		}
		st.count(pkt, time.Now())
	}
}

// ServeHTTP answers GET /api/v1/streamstats/[app/stream][?vhost=].
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/streamstats"), "/")
	p.mu.Lock()
	var out []Snapshot
	for _, st := range p.streams {
		out = append(out, st.snapshot())
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	w.Header().Set("Content-Type", "application/json")
	if rest == "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "streams": out})
		return
	}
	vhost := r.URL.Query().Get("vhost")
	if vhost == "" {
		vhost = sdk.DefaultVhost
	}
	app, name, ok := strings.Cut(rest, "/")
	if !ok {
		http.Error(w, `want /api/v1/streamstats/APP/STREAM`, http.StatusBadRequest)
		return
	}
	key := sdk.StreamRef{Vhost: vhost, App: app, Stream: name}.Key()
	for _, s := range out {
		if s.Key == key {
			_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "stream": s})
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 404, "error": "no such stream: " + key})
}

// kindName is how the JSON names a packet kind.
func kindName(k media.Kind) string { return strings.ToLower(k.String()) }
