package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v3"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
)

// Server is the WebRTC plugin. Every session's ICE, DTLS and SRTP run over
// the one UDP socket the core bound (pion's ICE UDP mux, SRS's
// rtc_server.listen); signalling comes through the core's API port.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mux ice.UDPMux
	// tcpMux carries ICE-TCP (RFC 6544 passive candidates) on the TCP
	// listener the core bound, same port number as UDP; nil when
	// listen_rtc_tcp is not set.
	tcpMux ice.TCPMux
	// src opens the hub streams players read (a subscription per player
	// for now; see source.go).
	src sourceOpener
	tap *live.Tap

	mu       sync.Mutex
	sessions map[string]*session
	stopped  bool

	published atomic.Uint64
	played    atomic.Uint64
	rejected  atomic.Uint64
	trickled  atomic.Uint64 // candidates added by PATCH
	restarts  atomic.Uint64 // ICE restarts by PATCH

	pliForwarded atomic.Uint64 // viewers' keyframe requests sent to a publisher
	pliLimited   atomic.Uint64 // ... and those the rate limit dropped
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
)

func newServer() *Server {
	s := &Server{sessions: map[string]*session{}, log: hclog.NewNullLogger()}
	s.cfg.Store(&config{settings: defaultSettings(), vhosts: map[string]vhostOptions{}})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// apiRoutes are served on the core's API port (SRS serves /rtc/v1/ on 1985).
var apiRoutes = []string{"/rtc/v1/"}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:        "webrtc",
		Version:     "0.1.0",
		Description: "WebRTC publish and play: WHIP, WHEP and SRS's /rtc/v1 API",
		Listeners: []sdk.Listener{
			{Name: "rtc", Network: "udp", DefaultAddrs: []string{"0.0.0.0:8000"}},
			// ICE-TCP is off unless listen_rtc_tcp is set (SRS: rtc_server
			// tcp { enabled off; }); give it the UDP listener's port.
			{Name: "rtc_tcp", Network: "tcp"},
		},
		HTTPRoutes: apiRoutes,
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
	}
	return nil
}

// Start implements sdk.Starter.
func (s *Server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt, s.log = rt, rt.Logger
	pcs := rt.PacketConns("rtc")
	if len(pcs) == 0 {
		return errors.New("no rtc udp listener: set listen in plugin \"webrtc\" {}")
	}
	var muxes []ice.UDPMux
	for _, pc := range pcs {
		muxes = append(muxes, webrtc.NewICEUDPMux(nil, pc))
		s.log.Info("webrtc media listening", "addr", pc.LocalAddr().String(), "network", "udp")
	}
	if len(muxes) == 1 {
		s.mux = muxes[0]
	} else {
		s.mux = ice.NewMultiUDPMuxDefault(muxes...)
	}
	var udpPorts []int
	for _, pc := range pcs {
		if a, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			udpPorts = append(udpPorts, a.Port)
		}
	}
	var tcpMuxes []ice.TCPMux
	for _, ln := range rt.Listeners("rtc_tcp") {
		tcpMuxes = append(tcpMuxes, webrtc.NewICETCPMux(nil, ln, 64))
		s.log.Info("webrtc media listening", "addr", ln.Addr().String(), "network", "tcp")
		if a, ok := ln.Addr().(*net.TCPAddr); ok && !slices.Contains(udpPorts, a.Port) {
			s.log.Warn("ice-tcp listener port differs from every udp port: clients expect both on one port number (SRS rtc_server.listen)",
				"addr", ln.Addr().String(), "udp_ports", fmt.Sprint(udpPorts))
		}
	}
	switch len(tcpMuxes) {
	case 0:
	case 1:
		s.tcpMux = tcpMuxes[0]
	default:
		s.tcpMux = ice.NewMultiTCPMuxDefault(tcpMuxes...)
	}
	s.tap = live.New(s.ctx, live.HostOpener(rt.Host), s.log)
	s.src = tapSource{tap: s.tap, log: s.log}
	return nil
}

// newAPI builds the pion API of one session: the shared UDP mux, the
// candidate addresses, the codecs and interceptors the vhost wants.
func (s *Server) newAPI(cands []string, opts vhostOptions, stats *nackStats) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.SetICEUDPMux(s.mux)
	nets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		nets = append(nets, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(nets)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	if len(cands) > 0 {
		se.SetNAT1To1IPs(cands, webrtc.ICECandidateTypeHost)
	}
	// We answer as the DTLS server: the peer's ServerKeyExchange parsing
	// (the client side of pion/dtls) is never reached (docs/THREATS.md row 16).
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, err
	}
	// A peer that never finishes DTLS is cut (docs/THREATS.md row 19).
	hs := opts.StunTimeout
	se.SetDTLSConnectContextMaker(func() (context.Context, func()) {
		return context.WithTimeout(context.Background(), hs)
	})
	se.SetICETimeouts(opts.StunTimeout/3, opts.StunTimeout, 2*time.Second)
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, err
	}
	if err := registerPassthrough(me); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if opts.NACK {
		// pion's generator for a publisher's tracks; our bounded responder
		// (nack.go) for what we send, in the place ConfigureNack puts pion's.
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
		ir.Add(&nackResponderFactory{stats: stats})
		ir.Add(gen)
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if opts.TWCC {
		if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// registerCodecs offers H.264 (packetization-mode 1, the browsers'
// profiles) and Opus.
func registerCodecs(me *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for i, fmtp := range []string{
		"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
		"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032",
		"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
	} {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: fb},
			PayloadType:        webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio)
}

func (s *Server) addSession(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || len(s.sessions) >= s.cfg.Load().MaxSessions {
		return false
	}
	s.sessions[ss.id] = ss
	return true
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	s.mu.Unlock()
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) allSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}

// Stop implements sdk.Stopper: end every session, wait until ctx ends.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	for _, ss := range s.allSessions() {
		ss.close("plugin stopping")
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
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.mux != nil {
		_ = s.mux.Close() // closes our duplicate; the core keeps its socket
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
	return nil
}

// Kick implements sdk.Kicker.
func (s *Server) Kick(_ context.Context, clientID string) bool {
	ss := s.session(clientID)
	if ss == nil {
		return false
	}
	ss.close("kicked by the api")
	return true
}

// Stats implements sdk.StatsReporter.
func (s *Server) Stats(context.Context) sdk.Stats {
	sess := s.allSessions()
	st := sdk.Stats{Counters: map[string]uint64{
		"sessions":           uint64(len(sess)),
		"sessions_published": s.published.Load(),
		"sessions_played":    s.played.Load(),
		"sessions_rejected":  s.rejected.Load(),
		"trickle_candidates": s.trickled.Load(),
		"ice_restarts":       s.restarts.Load(),
		"pli_forwarded":      s.pliForwarded.Load(),
		"pli_rate_limited":   s.pliLimited.Load(),
		// goroutines lets a leak check see the process settle back.
		"goroutines": uint64(runtime.NumGoroutine()),
	}}
	for _, ss := range sess {
		st.Clients = append(st.Clients, ss.stat())
	}
	return st
}

// remoteIP is the host part of an HTTP request's RemoteAddr.
func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
