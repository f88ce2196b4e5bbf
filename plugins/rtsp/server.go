package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/plugins/internal/digestauth"
	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
)

// hookTimeout bounds the core's answers (on_connect, on_publish, on_play).
const hookTimeout = 10 * time.Second

// Server is the RTSP plugin: lal's rtsp.ServerCommandSession per
// connection, one publisher or player each (client types rtsp-publish and
// rtsp-play). Players read through the process's live tap.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger
	tap *live.Tap

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   map[string]*conn
	lalKeys map[string]*conn // lal's session keys -> connection, for lal's log lines
	streams map[string]*rtspStream
	lns     []net.Listener
	players int
	stopped bool

	nonces *digestauth.Nonces // the digest nonces, the same across reloads

	accepted  atomic.Uint64
	refused   atomic.Uint64
	malformed atomic.Uint64
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
)

func newServer() *Server {
	s := &Server{conns: map[string]*conn{}, lalKeys: map[string]*conn{}, streams: map[string]*rtspStream{}, log: hclog.NewNullLogger()}
	s.cfg.Store(&config{settings: defaultSettings(), vhosts: map[string]bool{}})
	s.nonces = digestauth.NewNonces()
	return s
}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:        "rtsp",
		Version:     "0.1.0",
		Description: "RTSP publish and play, RTP over TCP and UDP (SRS 7 rtsp_server)",
		Listeners:   []sdk.Listener{{Name: "rtsp", Network: "tcp", DefaultAddrs: []string{defaultAddr}}},
	}
}

// Configure implements sdk.Configurer.
func (s *Server) Configure(_ context.Context, cfg sdk.Config) error {
	c, err := parseConfig(cfg, s.nonces)
	if err != nil {
		return err
	}
	if !cfg.DryRun {
		s.cfg.Store(c)
	}
	return nil
}

var lalKeyRE = regexp.MustCompile(`\[([A-Z0-9]+)\]`)

// routeLalLog sends lal's log lines (naza's global logger writes to
// standard output, the go-plugin handshake channel, unless told not to)
// to the plugin's log, with the client id of the session they name.
func (s *Server) routeLalLog() {
	_ = nazalog.Init(func(o *nazalog.Option) {
		o.IsToStdout = false
		o.Filename = ""
		o.Level = nazalog.LevelWarn
		o.AssertBehavior = nazalog.AssertError
		o.HookBackendOutFn = func(level nazalog.Level, line []byte) {
			args := []any{"line", string(line)}
			if m := lalKeyRE.FindSubmatch(line); m != nil {
				s.mu.Lock()
				c := s.lalKeys[string(m[1])]
				s.mu.Unlock()
				if c != nil {
					if level >= nazalog.LevelError {
						c.lalError(string(line))
					}
					c.log.Debug("lal rtsp", args...)
					return
				}
			}
			s.log.Debug("lal rtsp", args...)
		}
	})
}

// Start implements sdk.Starter.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt, s.log = rt, rt.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tap = live.New(s.ctx, live.HostOpener(rt.Host), s.log)
	s.routeLalLog()
	lns := rt.Listeners("rtsp")
	if len(lns) == 0 {
		return errors.New("no rtsp listener: set listen in plugin \"rtsp\" {}")
	}
	s.mu.Lock()
	s.lns = lns
	s.mu.Unlock()
	for _, ln := range lns {
		s.wg.Add(1)
		go s.accept(ln)
		s.log.Info("rtsp listening", "addr", ln.Addr().String())
	}
	return nil
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("rtsp accept failed, listener stopped", "addr", ln.Addr().String(), "error", err)
			return
		}
		s.accepted.Add(1)
		c := newConn(s, nc)
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c.id] = c
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c.serve()
		}()
	}
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	for k, v := range s.lalKeys {
		if v == c {
			delete(s.lalKeys, k)
		}
	}
	s.mu.Unlock()
}

// Stop implements sdk.Stopper. The listeners are the core's; a past
// deadline stops the accept loops.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	cs := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	lns := s.lns
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	for _, ln := range lns {
		if tl, ok := ln.(*net.TCPListener); ok {
			_ = tl.SetDeadline(time.Now())
		}
	}
	for _, c := range cs {
		c.close("plugin stopping")
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.tap != nil {
			s.tap.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kick implements sdk.Kicker.
func (s *Server) Kick(_ context.Context, id string) bool {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	c.close("kicked by the api")
	return true
}

// Stats implements sdk.StatsReporter.
func (s *Server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	players, streams := s.players, len(s.streams)
	s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"connections":          uint64(len(cs)),
		"connections_accepted": s.accepted.Load(),
		"refused":              s.refused.Load(),
		"malformed":            s.malformed.Load(),
		"players":              uint64(players),
		"play_streams":         uint64(streams), // streams packetized for players
		"digest_nonces":        uint64(s.nonces.Tracked()),
	}}
	for _, c := range cs {
		if cs, ok := c.stat(); ok {
			st.Clients = append(st.Clients, cs)
		}
	}
	return st
}

// addPlayer counts a player within max_players.
func (s *Server) addPlayer() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.players >= s.cfg.Load().MaxPlayers {
		return false
	}
	s.players++
	return true
}

func (s *Server) removePlayer() {
	s.mu.Lock()
	s.players--
	s.mu.Unlock()
}
