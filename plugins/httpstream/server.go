package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
)

// Server is the httpstream plugin: HTTP-FLV/TS/AAC/MP3 live streams, HLS
// playlists and segments, and static files on one HTTP listener.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	https  []*http.Server

	mu      sync.Mutex
	sources map[streamKey]*source
	tap     *live.Tap // this process's streams: HLS writers and HTTP players share them
	players map[string]*playerEntry
	hls     map[streamKey]*hlsStream
	dash    map[streamKey]*dashStream
	roots   map[string]*rootEntry
	// writing holds the temporary segment files (absolute paths) that
	// the HLS writers are writing: never stale.
	writing map[string]bool

	sessions sessions // HLS viewers with hls_ctx
	demand   demands  // streams wanted by HLS playlist requests
}

type playerEntry struct {
	p   *player
	key streamKey
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.StreamWatcher = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
)

func newServer() *Server {
	return &Server{
		log:     hclog.NewNullLogger(),
		sources: map[streamKey]*source{},
		players: map[string]*playerEntry{},
		hls:     map[streamKey]*hlsStream{},
		dash:    map[streamKey]*dashStream{},
		roots:   map[string]*rootEntry{},
		writing: map[string]bool{},
	}
}

func (s *Server) setWriting(path string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.writing[path] = true
	} else {
		delete(s.writing, path)
	}
}

func (s *Server) isWriting(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writing[path]
}

// Info implements sdk.Plugin. The plugin serves every vhost (HTTP-FLV is on
// by default, like SRS's http_remux); HLS files are written only for
// vhosts whose hls block says enabled = true.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:    "httpstream",
		Version: "0.1.0",
		// Its vhost block is SRS's hls { } (a config's old plugin "hls" { }
		// block is read as plugin "httpstream" by the core).
		VhostBlock:  "hls",
		Description: "HLS, HTTP-FLV, HTTP-TS, HTTP-AAC/MP3 and static files over HTTP",
		Listeners:   []sdk.Listener{{Name: "http", Network: "tcp", DefaultAddrs: []string{"0.0.0.0:8080"}}},
		// enabled in a vhost's hls block switches HLS files, not the plugin:
		// HTTP-FLV keeps serving (SRS's hls and http_remux are separate).
		Capabilities: []string{sdk.CapOwnEnabled},
	}
}

// Configure implements sdk.Configurer.
func (s *Server) Configure(_ context.Context, c sdk.Config) error {
	cfg, err := parseConfig(c)
	if err != nil || c.DryRun {
		return err
	}
	s.cfg.Store(cfg)
	// Stop HLS writers of vhosts that lost HLS on reload.
	s.mu.Lock()
	for k, h := range s.hls {
		if vc := cfg.Vhosts[k.Vhost]; vc == nil || !vc.HLS.Enabled {
			h.stopNow()
		}
	}
	for k, d := range s.dash {
		if vc := cfg.Vhosts[k.Vhost]; vc == nil || !vc.Dash.Enabled {
			d.stopNow()
		}
	}
	s.mu.Unlock()
	return nil
}

// Start implements sdk.Starter.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt, s.log = rt, rt.Logger
	if s.cfg.Load() == nil {
		cfg, err := parseConfig(sdk.Config{})
		if err != nil {
			return err
		}
		s.cfg.Store(cfg)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tap = live.New(s.ctx, live.HostOpener(rt.Host), s.log)
	cfg := s.cfg.Load()
	for _, ln := range rt.Listeners("http") {
		hs := &http.Server{
			Handler:           http.HandlerFunc(s.serveHTTP),
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
			BaseContext:       func(net.Listener) context.Context { return s.ctx },
		}
		s.https = append(s.https, hs)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server ended", "addr", ln.Addr().String(), "error", err)
			}
		}()
		s.log.Info("http server listening", "addr", ln.Addr().String())
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.expireSessions(s.ctx)
	}()
	return nil
}

// Stop implements sdk.Stopper.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	for _, hs := range s.https {
		_ = hs.Close()
	}
	s.cancel()
	s.mu.Lock()
	for _, e := range s.players {
		e.p.close("server stopping")
	}
	for _, h := range s.hls {
		h.stopNow()
	}
	for _, d := range s.dash {
		d.stopNow()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		s.tap.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("stop: %w", ctx.Err())
	}
	s.mu.Lock()
	for _, r := range s.roots {
		r.root.Close()
	}
	s.mu.Unlock()
	return nil
}

// StreamEvent implements sdk.StreamWatcher: a published stream of a vhost
// with HLS enabled gets an HLS writer.
func (s *Server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type != sdk.StreamPublished || s.ctx == nil {
		return
	}
	// A new publication has a new ring: the next reader subscribes anew.
	s.tap.Forget(ev.Stream)
	cfg := s.cfg.Load()
	vc := cfg.Vhosts[ev.Stream.Vhost]
	if vc == nil || !validApp(ev.Stream.App) || !validName(ev.Stream.Stream) {
		return
	}
	key := streamKey{Vhost: ev.Stream.Vhost, App: ev.Stream.App, Stream: ev.Stream.Stream}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	if vc.Dash.Enabled {
		d := s.dash[key]
		if d == nil {
			var err error
			if d, err = newDashStream(s, key, vc.Dash); err != nil {
				s.log.Error("dash disabled for stream", "stream", key.String(), "error", err)
			} else {
				s.dash[key] = d
			}
		}
		if d != nil {
			d.start(ev.Stream)
		}
	}
	if !vc.HLS.Enabled {
		return
	}
	h := s.hls[key]
	if h == nil {
		var err error
		if h, err = newHLSStream(s, key, vc.HLS); err != nil {
			s.log.Error("hls disabled for stream", "stream", key.String(), "error", err)
			return
		}
		s.hls[key] = h
	}
	h.publisher = ev.Publisher
	h.start(ev.Stream)
}

// Kick implements sdk.Kicker for streaming players.
func (s *Server) Kick(_ context.Context, id string) bool {
	s.mu.Lock()
	e := s.players[id]
	s.mu.Unlock()
	if e == nil {
		return s.kickSession(id)
	}
	e.p.close("kicked")
	return true
}

// Stats implements sdk.StatsReporter.
func (s *Server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{"sources": uint64(len(s.sources)), "hls_streams": uint64(len(s.hls))}}
	for id, e := range s.players {
		st.Clients = append(st.Clients, sdk.ClientStat{
			Client: sdk.ClientInfo{ID: id, IP: e.p.remote, Type: "flv-play"},
			Stream: e.key.ref(), Alive: time.Since(e.p.started), SendBytes: e.p.sink.Sent(), URL: e.p.url,
		})
	}
	st.Clients = append(st.Clients, s.sessionStats()...)
	return st
}

// source returns the running source of key, starting one if needed, once
// its stream is subscribed. The first player's param goes with the
// subscription: an on-demand source (an edge pull) passes it upstream,
// where the origin's hooks check its token.
func (s *Server) source(ctx context.Context, key streamKey, client sdk.ClientInfo, param string) (*source, error) {
	cfg := s.cfg.Load()
	s.mu.Lock()
	src := s.sources[key]
	if src == nil {
		src = newSource(s, key, cfg)
		s.sources[key] = src
		ref := key.ref()
		ref.Param = param
		src.rd = s.tap.Join(ref, s.liveOptions(cfg, key.Vhost, client, sdk.SubscribeOptions{Wait: cfg.PlayWait}), src)
	}
	st := src.rd.Stream()
	s.mu.Unlock()
	select {
	case <-st.Ready():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := st.Err(); err != nil {
		return nil, err
	}
	return src, nil
}

// liveOptions are the options of a stream of the tap: the first of its
// readers (HLS writer or HTTP source) opens it with them.
func (s *Server) liveOptions(cfg *config, vhost string, client sdk.ClientInfo, sub sdk.SubscribeOptions) live.Options {
	mw, gop := cfg.play(vhost)
	return live.Options{
		Client: client, Subscribe: sub, Pace: mw,
		GopCache: gop, GopMaxFrames: cfg.GopCacheMaxFrames,
	}
}

func (s *Server) removeSource(src *source) {
	s.mu.Lock()
	if s.sources[src.key] == src {
		delete(s.sources, src.key)
	}
	s.mu.Unlock()
}

func validApp(a string) bool {
	if a == "" || len(a) > 255 {
		return false
	}
	start := 0
	for i := 0; i <= len(a); i++ {
		if i == len(a) || a[i] == '/' {
			if !validName(a[start:i]) {
				return false
			}
			start = i + 1
		}
	}
	return true
}
