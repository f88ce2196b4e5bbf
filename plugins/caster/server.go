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

	"github.com/rill-media/rill/sdk"
)

// Listener names: the first is configured with `listen`, the second with
// `listen_mpegts_udp` (the core's rule: listen_<name> after the first).
const (
	listenerFLV = "flv"
	listenerUDP = "mpegts_udp"
)

// hookTimeout bounds the core's answer to on_connect and on_publish.
const hookTimeout = 10 * time.Second

// Server is the caster plugin: MPEG-TS over UDP and FLV over HTTP POST
// publishers, each a client of the hub (types mpegts-udp-publish and
// flv-post-publish) with hooks, security rules and kick.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	clients map[string]*client
	udps    []*udpInput
	https   []*http.Server
	stopped bool

	published atomic.Uint64
	refused   atomic.Uint64
	malformed atomic.Uint64
	dropped   atomic.Uint64 // UDP datagrams dropped (peer cap, cooldown, full queue)
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
)

func newServer() *Server {
	s := &Server{clients: map[string]*client{}, log: hclog.NewNullLogger()}
	s.cfg.Store(&config{settings: defaultSettings(), vhosts: map[string]bool{}})
	return s
}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:        "caster",
		Version:     "0.1.0",
		Description: "stream casters: MPEG-TS over UDP and FLV over HTTP POST (SRS stream_caster)",
		Listeners: []sdk.Listener{
			{Name: listenerFLV, Network: "tcp", DefaultAddrs: []string{defaultFLVAddr}},
			{Name: listenerUDP, Network: "udp", DefaultAddrs: []string{defaultUDPAddr}},
		},
	}
}

// Configure implements sdk.Configurer: all or nothing; new values apply
// to publishers that start after a reload.
func (s *Server) Configure(_ context.Context, cfg sdk.Config) error {
	c, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	if !cfg.DryRun {
		s.cfg.Store(c)
	}
	return nil
}

// Start implements sdk.Starter: serve every socket the core bound.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt, s.log = rt, rt.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	lns, pcs := rt.Listeners(listenerFLV), rt.PacketConns(listenerUDP)
	if len(lns) == 0 && len(pcs) == 0 {
		return errors.New("caster has no socket: set listen (FLV over HTTP POST) or listen_mpegts_udp in plugin \"caster\" {}")
	}
	for _, ln := range lns {
		srv := s.newHTTPServer()
		s.mu.Lock()
		s.https = append(s.https, srv)
		s.mu.Unlock()
		s.wg.Add(1)
		go func(ln net.Listener) {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && s.ctx.Err() == nil {
				s.log.Error("flv caster listener stopped", "addr", ln.Addr().String(), "error", err)
			}
		}(ln)
		s.log.Info("flv caster listening", "addr", ln.Addr().String(), "network", "tcp")
	}
	for _, pc := range pcs {
		u := newUDPInput(s, pc)
		s.mu.Lock()
		s.udps = append(s.udps, u)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			u.run()
		}()
		s.log.Info("mpegts caster listening", "addr", pc.LocalAddr().String(), "network", "udp")
	}
	return nil
}

// Stop implements sdk.Stopper: end every publisher, stop serving (the core
// keeps the sockets), wait until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	cs := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		cs = append(cs, c)
	}
	https, udps := s.https, s.udps
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	for _, c := range cs {
		c.close("plugin stopping")
	}
	for _, srv := range https {
		_ = srv.Close()
	}
	for _, u := range udps {
		u.stop()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
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
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		return false
	}
	c.kicked.Store(true)
	c.close("kicked by the api")
	return true
}

// Stats implements sdk.StatsReporter.
func (s *Server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	cs := make([]*client, 0, len(s.clients))
	for _, c := range s.clients {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"publishers":  uint64(len(cs)),
		"published":   s.published.Load(),
		"refused":     s.refused.Load(),
		"malformed":   s.malformed.Load(),
		"udp_dropped": s.dropped.Load(),
	}}
	for _, c := range cs {
		if cs, ok := c.stat(); ok {
			st.Clients = append(st.Clients, cs)
		}
	}
	return st
}

func (s *Server) addClient(c *client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("plugin stopping")
	}
	s.clients[c.info.ID] = c
	return nil
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.clients, c.info.ID)
	s.mu.Unlock()
}
