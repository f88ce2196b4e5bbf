package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
)

// Server is the SRT plugin. It binds its own UDP sockets (see settings.Bind
// for why the core does not bind them), accepts SRT callers whose stream id
// says publish or request (play), publishes MPEG-TS into the hub and muxes
// hub streams to MPEG-TS for players.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	// openSource is how a player reads a stream (through tap; see
	// source.go).
	openSource sourceOpener
	tap        *live.Tap

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	conns     map[string]*conn
	listeners []srt.Listener
	stopped   bool

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
	s := &Server{conns: map[string]*conn{}, log: hclog.NewNullLogger()}
	s.cfg.Store(&config{settings: defaultSettings(), vhosts: map[string]bool{}})
	s.openSource = s.subscribe
	return s
}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:        "srt",
		Version:     "0.1.0",
		Description: "SRT publish and play of MPEG-TS (SRS srt_server compatible)",
		// SRS serves SRT only in vhosts with srt { enabled on; }.
		Capabilities: []string{sdk.CapVhostOptIn},
		// No Listeners: the plugin binds settings.Bind itself.
	}
}

// Configure implements sdk.Configurer: all or nothing. The SRT options
// (latency, passphrase, ...) apply to connections accepted after a reload;
// bind changes need a restart of the plugin.
func (s *Server) Configure(_ context.Context, cfg sdk.Config) error {
	c, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	if !cfg.DryRun {
		if old := s.cfg.Load(); s.rt != nil && fmt.Sprint(old.Bind) != fmt.Sprint(c.Bind) {
			s.log.Warn("srt bind changes when the plugin restarts; the sockets stay where they are", "bind", old.Bind)
		}
		s.cfg.Store(c)
	}
	return nil
}

// srtConfig is gosrt's configuration for a listener from the settings.
func (c *config) srtConfig() srt.Config {
	sc := srt.DefaultConfig()
	if c.Latency != nil {
		sc.Latency = c.Latency.Std()
	}
	if c.RecvLatency != nil {
		sc.ReceiverLatency = c.RecvLatency.Std()
	}
	if c.PeerLatency != nil {
		sc.PeerLatency = c.PeerLatency.Std()
	}
	sc.PeerIdleTimeout = c.PeerIdleTimeout.Std()
	sc.PBKeylen = c.PBKeyLen
	if sc.PBKeylen == 0 {
		sc.PBKeylen = 16
	}
	if c.MSS != 0 {
		sc.MSS = uint32(c.MSS)
		// Whole TS packets that fit the MSS after the UDP and SRT headers.
		if p := (sc.MSS - srt.UDP_HEADER_SIZE - srt.SRT_HEADER_SIZE) / 188 * 188; p < sc.PayloadSize {
			sc.PayloadSize = max(p, 188)
		}
	}
	if c.TLPktDrop != nil {
		sc.TooLatePacketDrop = *c.TLPktDrop
	}
	if c.TSBPDMode != nil {
		sc.TSBPDMode = *c.TSBPDMode
	}
	if c.SendBuf > 0 {
		sc.SendBufferSize = uint32(c.SendBuf)
	}
	if c.RecvBuf > 0 {
		sc.ReceiverBufferSize = uint32(c.RecvBuf)
	}
	return sc
}

// Start implements sdk.Starter: bind every address, then accept.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt = rt
	s.log = rt.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tap = live.New(s.ctx, live.HostOpener(rt.Host), s.log)
	c := s.cfg.Load()
	var lns []srt.Listener
	for _, addr := range c.Bind {
		ln, err := srt.Listen("srt", addr, c.srtConfig())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("srt listen udp %s: %w", addr, err)
		}
		lns = append(lns, ln)
	}
	s.mu.Lock()
	s.listeners = lns
	s.mu.Unlock()
	for _, ln := range lns {
		s.wg.Add(1)
		go s.accept(ln)
		// The e2e tests read the bound port from this line.
		s.log.Info("srt listening", "addr", ln.Addr().String())
	}
	return nil
}

func (s *Server) accept(ln srt.Listener) {
	defer s.wg.Done()
	for {
		req, err := ln.Accept2()
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, srt.ErrListenerClosed) {
				s.log.Error("srt accept failed, listener stopped", "addr", ln.Addr().String(), "error", err)
			}
			return
		}
		s.accepted.Add(1)
		c := newConn(s, req)
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			req.Reject(srt.REJ_CLOSE)
			return
		}
		s.conns[c.id] = c
		s.mu.Unlock()
		// The handshake waits for the hooks in its own goroutine: the
		// caller repeats its conclusion request meanwhile, and gosrt drops
		// the repeats of a pending request.
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
	s.mu.Unlock()
}

// Stop implements sdk.Stopper: stop accepting, close every connection
// (publications end, players see their connection close), wait until ctx
// ends.
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
	for _, c := range conns {
		c.close("plugin stopping")
	}
	for _, ln := range lns {
		ln.Close()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		if s.tap != nil {
			s.tap.Wait() // the tap's read loops end with s.ctx
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
	s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"connections_accepted": s.accepted.Load(),
		"connections_rejected": s.rejected.Load(),
		"connections":          uint64(len(conns)),
	}}
	for _, c := range conns {
		if cs, ok := c.stat(); ok {
			st.Clients = append(st.Clients, cs)
		}
	}
	return st
}

// hookTimeout bounds the core's answer (on_connect, on_publish, on_play)
// while the caller waits in the handshake: libsrt callers give up after
// 3 seconds by default, so a slower answer refuses the caller.
const hookTimeout = 3 * time.Second
