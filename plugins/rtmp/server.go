package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
)

// Server is the RTMP plugin: it accepts RTMP connections on the listeners
// the core bound, publishes into the hub and fans each played stream out
// from one ring reader to all of its players.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	conns     map[string]*conn
	fanouts   map[string]*fanout
	tap       *live.Tap // the streams this process reads
	listeners []net.Listener
	stopped   bool

	fwd  forwarders
	edge edges
	reg  *registry // the Redis stream registry; nil: none

	accepted atomic.Uint64
	rejected atomic.Uint64
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
)

func newServer() *Server {
	s := &Server{conns: map[string]*conn{}, fanouts: map[string]*fanout{}, log: hclog.NewNullLogger()}
	s.cfg.Store(&config{settings: defaultSettings(), vhosts: map[string]vhostOptions{}})
	return s
}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:        "rtmp",
		Version:     "0.1.0",
		Description: "RTMP publish and play (SRS compatible)",
		// An edge vhost (cluster mode remote) pulls from its origin when a
		// player wants a stream nobody publishes.
		Capabilities: []string{sdk.CapOnDemandSource},
		Listeners:    []sdk.Listener{{Name: "rtmp", Network: "tcp", DefaultAddrs: []string{"0.0.0.0:1935"}}},
	}
}

// Configure implements sdk.Configurer: all or nothing.
func (s *Server) Configure(_ context.Context, cfg sdk.Config) error {
	c, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	if !cfg.DryRun {
		s.cfg.Store(c)
		// A reload applies to the forwards of streams already live.
		s.reconcileForwards()
	}
	return nil
}

// Start implements sdk.Starter.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt = rt
	s.log = rt.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.Lock()
	s.tap = live.New(s.ctx, live.HostOpener(rt.Host), s.log)
	s.mu.Unlock()
	lns := rt.Listeners("rtmp")
	if len(lns) == 0 {
		return errors.New("no rtmp listener: set listen in plugin \"rtmp\" {}")
	}
	reg, err := newRegistry(s.cfg.Load(), lns, s.log)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listeners = lns
	s.mu.Unlock()
	if reg != nil {
		s.reg = reg
		s.wg.Add(1)
		go s.heartbeat(s.ctx, reg)
		s.log.Info("origin cluster registry", "redis", reg.rdb.Options().Addr, "announce", reg.self, "ttl", reg.ttl.String())
	}
	for _, ln := range lns {
		s.wg.Add(1)
		go s.accept(ln)
		s.log.Info("rtmp listening", "addr", ln.Addr().String())
	}
	return nil
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "addr", ln.Addr().String(), "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			s.log.Error("accept failed, listener stopped", "addr", ln.Addr().String(), "error", err)
			return
		}
		backoff = 0
		s.accepted.Add(1)
		c := newConn(s, nc)
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			nc.Close()
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

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// Stop implements sdk.Stopper: stop accepting, close every connection
// (publications end, players get end of stream), wait until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	lns := s.listeners
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	for _, ln := range lns {
		ln.Close() // our duplicate; the core keeps its socket
	}
	for _, c := range conns {
		c.close("plugin stopping")
	}
	done := make(chan struct{})
	s.mu.Lock()
	tap := s.tap
	s.mu.Unlock()
	go func() {
		s.wg.Wait()
		if tap != nil {
			tap.Wait()
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

// liveTap returns the process's tap (made by Start); the caller holds s.mu.
func (s *Server) liveTap() *live.Tap { return s.tap }

// Kick implements sdk.Kicker.
func (s *Server) Kick(_ context.Context, clientID string) bool {
	s.mu.Lock()
	c := s.conns[clientID]
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
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	nFanouts := len(s.fanouts)
	s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"connections_accepted": s.accepted.Load(),
		"connections_rejected": s.rejected.Load(),
		"connections":          uint64(len(conns)),
		"played_streams":       uint64(nFanouts),
	}}
	for _, c := range conns {
		st.Clients = append(st.Clients, c.stat())
	}
	return st
}
