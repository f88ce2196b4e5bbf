package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/hashicorp/go-hclog"
	"github.com/icholy/digest"

	"github.com/rill-media/rill/plugins/internal/digestauth"
	"github.com/rill-media/rill/sdk"
)

// Server is the GB28181 plugin: a SIP registrar for cameras (REGISTER with
// digest auth, keepalive, Catalog) that INVITEs their channels and
// publishes the PS/RTP they send into the hub.
type Server struct {
	cfg atomic.Pointer[config]
	rt  *sdk.Runtime
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ua     *sipgo.UserAgent
	sipSrv *sipgo.Server
	client *sipgo.Client
	dc     *sipgo.DialogClientCache

	mu       sync.Mutex
	devices  map[string]*device
	sessions map[uint32]*session // by SSRC
	lns      []net.Listener
	pcs      []net.PacketConn
	ssrcSeq  uint32
	sn       int
	pool     *portPool // the rtp_port range, nil without one

	nonces *digestauth.Nonces // REGISTER's digest nonces

	registers atomic.Uint64
	refused   atomic.Uint64
}

var (
	_ sdk.Configurer    = (*Server)(nil)
	_ sdk.Starter       = (*Server)(nil)
	_ sdk.Stopper       = (*Server)(nil)
	_ sdk.Kicker        = (*Server)(nil)
	_ sdk.StatsReporter = (*Server)(nil)
	_ sdk.StreamWatcher = (*Server)(nil)
	_ http.Handler      = (*Server)(nil)
)

func newServer() *Server {
	s := &Server{devices: map[string]*device{}, sessions: map[uint32]*session{}, log: hclog.NewNullLogger(), nonces: digestauth.NewNonces()}
	c := &config{settings: defaultSettings(), app: "live", stream: "[deviceid]_[channelid]"}
	s.cfg.Store(c)
	return s
}

// Info implements sdk.Plugin.
func (s *Server) Info() sdk.Info {
	return sdk.Info{
		Name:         "gb28181",
		Version:      "0.1.0",
		Description:  "GB28181 cameras: SIP registrar and PS/RTP ingest (SRS compatible)",
		Capabilities: []string{sdk.CapOnDemandSource},
		Listeners: []sdk.Listener{
			{Name: "sip", Network: "tcp", DefaultAddrs: []string{"0.0.0.0:5060"}},
			{Name: "sip_udp", Network: "udp", DefaultAddrs: []string{"0.0.0.0:5060"}},
			{Name: "media", Network: "tcp", DefaultAddrs: []string{"0.0.0.0:9000"}},
			{Name: "media_udp", Network: "udp", DefaultAddrs: []string{"0.0.0.0:9000"}},
		},
		HTTPRoutes: []string{"/api/v1/gb28181/", "/gb/v1/publish"},
	}
}

// Configure implements sdk.Configurer.
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
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cfg := s.cfg.Load()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("rill"), sipgo.WithUserAgentHostname(cfg.Candidate))
	if err != nil {
		return fmt.Errorf("sip user agent: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s.ua = ua
	if s.sipSrv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(quiet)); err != nil {
		return fmt.Errorf("sip server: %w", err)
	}
	if s.client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(quiet)); err != nil {
		return fmt.Errorf("sip client: %w", err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{User: cfg.ServerID, Host: cfg.Candidate}}
	for _, pc := range rt.PacketConns("sip_udp") {
		contact.Address.Port = pc.LocalAddr().(*net.UDPAddr).Port
		break
	}
	s.dc = sipgo.NewDialogClientCache(s.client, contact)
	s.sipSrv.OnRegister(s.onRegister)
	s.sipSrv.OnMessage(s.onMessage)
	s.sipSrv.OnBye(s.onBye)
	s.sipSrv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	s.sipSrv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 405, "Method Not Allowed", nil))
	})
	for _, pc := range rt.PacketConns("sip_udp") {
		s.goServe("sip udp", pc.LocalAddr(), func() error { return s.sipSrv.ServeUDP(pc) })
	}
	for _, ln := range rt.Listeners("sip") {
		s.goServe("sip tcp", ln.Addr(), func() error { return s.sipSrv.ServeTCP(ln) })
	}
	for _, ln := range rt.Listeners("media") {
		s.lns = append(s.lns, ln)
		s.wg.Add(1)
		go s.acceptMedia(ln)
		s.log.Info("gb28181 media listening", "addr", ln.Addr().String(), "network", "tcp")
	}
	for _, pc := range rt.PacketConns("media_udp") {
		s.pcs = append(s.pcs, pc)
		s.wg.Add(1)
		go s.readMediaUDP(pc)
		s.log.Info("gb28181 media listening", "addr", pc.LocalAddr().String(), "network", "udp")
	}
	s.wg.Add(1)
	go s.expireLoop()
	return nil
}

func (s *Server) goServe(what string, addr net.Addr, serve func() error) {
	s.log.Info("gb28181 sip listening", "addr", addr.String(), "transport", what)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil && s.ctx.Err() == nil {
			s.log.Error("sip listener stopped", "addr", addr.String(), "error", err)
		}
	}()
}

// Stop implements sdk.Stopper.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.mu.Lock()
	devs := make([]*device, 0, len(s.devices))
	for _, d := range s.devices {
		devs = append(devs, d)
	}
	s.mu.Unlock()
	for _, d := range devs {
		s.dropDevice(d, "plugin stopping")
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	for _, pc := range s.pcs {
		pc.Close()
	}
	if s.sipSrv != nil {
		s.sipSrv.Close()
	}
	if s.ua != nil {
		s.ua.Close()
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

// ---- registrar ----

// device is a registered camera or NVR.
type device struct {
	id        string
	clientID  string
	addr      string // where its SIP requests come from
	transport string
	log       hclog.Logger
	since     time.Time

	mu        sync.Mutex
	lastAlive time.Time
	online    bool
	channels  map[string]*channel
}

type channel struct {
	ID     string `json:"device_id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Stream string `json:"stream"`
}

func userOf(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	cfg := s.cfg.Load()
	id := userOf(req)
	log := s.log.With("remote_addr", req.Source(), "device_id", id)
	if !idRE.MatchString(id) {
		s.refused.Add(1)
		log.Warn("register refused: bad device id")
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	if _, need := cfg.password(id); need {
		// Digest (RFC 2617) with the nonces of plugins/internal/digestauth:
		// stateless (an HMAC of their time), expiring, and remembered once
		// used, so a captured REGISTER cannot be replayed (with qop=auth
		// each use must bring a larger nonce count; without, a nonce
		// authenticates once).
		chk := s.nonces.Checker(digestauth.Options{Realm: cfg.Realm, Password: cfg.password, QOP: cfg.DigestQOP})
		challenge := func(stale bool) {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", chk.Challenges("", stale)[0]))
			_ = tx.Respond(res)
		}
		h := req.GetHeader("Authorization")
		if h == nil {
			challenge(false)
			return
		}
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil || cred.Username != id {
			s.refused.Add(1)
			log.Warn("register refused: bad authorization header")
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			return
		}
		// A device that ignores the qop offered answers in RFC 2069 form,
		// accepted too; the digest-uri is the device's own.
		switch _, res, err := chk.Check(h.Value(), "REGISTER", "", ""); res {
		case digestauth.OK:
		case digestauth.Missing:
			challenge(false)
			return
		case digestauth.Stale: // ours, expired: RFC 2617 stale, the device retries
			log.Debug("register: stale nonce, challenged again")
			challenge(true)
			return
		case digestauth.Replayed:
			s.refused.Add(1)
			log.Warn("register refused: nonce replayed", "nc", cred.Nc)
			challenge(true)
			return
		default:
			s.refused.Add(1)
			log.Warn("register refused: wrong credentials", "error", err)
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
			return
		}
	}
	expires := 3600
	if e := req.GetHeader("Expires"); e != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(e.Value())); err == nil {
			expires = v
		}
	}
	if expires == 0 {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		s.mu.Lock()
		d := s.devices[id]
		s.mu.Unlock()
		if d != nil {
			s.dropDevice(d, "unregistered")
		}
		return
	}
	s.mu.Lock()
	d := s.devices[id]
	if d == nil && len(s.devices) >= cfg.MaxDevices {
		s.mu.Unlock()
		s.refused.Add(1)
		log.Warn("register refused: too many devices", "max_devices", cfg.MaxDevices)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
		return
	}
	fresh := d == nil || d.addr != req.Source()
	if d == nil {
		cid := sdk.NewClientID()
		d = &device{id: id, clientID: cid, since: time.Now(), channels: map[string]*channel{},
			log: s.log.With("client_id", cid, "device_id", id, "remote_addr", req.Source())}
		s.devices[id] = d
	}
	d.mu.Lock()
	d.addr, d.transport = req.Source(), strings.ToLower(req.Transport())
	d.lastAlive, d.online = time.Now(), true
	d.mu.Unlock()
	s.mu.Unlock()
	s.registers.Add(1)
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(sip.NewHeader("Date", time.Now().Format("2006-01-02T15:04:05")))
	_ = tx.Respond(res)
	if fresh {
		d.log.Info("device registered", "transport", d.transport)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.queryCatalog(d)
		}()
	}
}

func (s *Server) deviceURI(d *device, user string) sip.Uri {
	d.mu.Lock()
	addr := d.addr
	tr := d.transport
	d.mu.Unlock()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	u := sip.Uri{User: user, Host: host, Port: p}
	if tr == "tcp" {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", "tcp")
	}
	return u
}

func (s *Server) fromHeader() *sip.FromHeader {
	cfg := s.cfg.Load()
	params := sip.NewParams()
	params.Add("tag", sip.GenerateTagN(10))
	return &sip.FromHeader{Address: sip.Uri{User: cfg.ServerID, Host: cfg.Realm}, Params: params}
}

func (s *Server) queryCatalog(d *device) {
	s.mu.Lock()
	s.sn++
	sn := s.sn
	s.mu.Unlock()
	req := sip.NewRequest(sip.MESSAGE, s.deviceURI(d, d.id))
	req.AppendHeader(s.fromHeader())
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(catalogQuery(sn, d.id))
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		d.log.Warn("catalog query failed", "error", err)
		return
	}
	if res.StatusCode != 200 {
		d.log.Warn("catalog query refused", "status", res.StatusCode)
	}
}

func (s *Server) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	id := userOf(req)
	s.mu.Lock()
	d := s.devices[id]
	s.mu.Unlock()
	if d == nil {
		s.log.Warn("message from an unregistered device refused", "remote_addr", req.Source(), "device_id", id)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	m, err := parseMANSCDP(req.Body())
	if err != nil {
		d.log.Warn("bad manscdp message", "error", err)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	d.mu.Lock()
	d.lastAlive, d.online = time.Now(), true
	d.mu.Unlock()
	switch m.CmdType {
	case "Keepalive":
		d.log.Trace("keepalive")
	case "Catalog":
		cfg := s.cfg.Load()
		var fresh []string
		d.mu.Lock()
		for _, it := range m.Items {
			ch := d.channels[it.DeviceID]
			if ch == nil {
				if len(d.channels) >= 4096 {
					break
				}
				ch = &channel{ID: it.DeviceID, Stream: cfg.app + "/" + cfg.streamName(d.id, it.DeviceID)}
				d.channels[it.DeviceID] = ch
				fresh = append(fresh, it.DeviceID)
			}
			ch.Name, ch.Status = it.Name, it.Status
		}
		d.mu.Unlock()
		d.log.Info("catalog", "channels", len(m.Items))
		if cfg.AutoInvite && cfg.enabled {
			for _, c := range fresh {
				s.startInvite(d, c, false)
			}
		}
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dc.ReadBye(req, tx); err != nil { // it answers 200 for a dialog it knows
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	callID := ""
	if c := req.CallID(); c != nil {
		callID = c.Value()
	}
	s.mu.Lock()
	var found *session
	for _, ss := range s.sessions {
		if ss.callID == callID {
			found = ss
		}
	}
	s.mu.Unlock()
	if found != nil {
		found.close("bye from the device", false)
	}
}

func (s *Server) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		limit := s.cfg.Load().KeepaliveTimeout.Std()
		s.mu.Lock()
		var dead []*device
		for _, d := range s.devices {
			d.mu.Lock()
			if time.Since(d.lastAlive) > limit {
				dead = append(dead, d)
			}
			d.mu.Unlock()
		}
		s.mu.Unlock()
		for _, d := range dead {
			s.dropDevice(d, fmt.Sprintf("no keepalive for %s", limit))
		}
		cfg := s.cfg.Load()
		s.expireSessions(limit, cfg.MediaTimeout.Std(), cfg.IdleTimeout.Std())
	}
}

// expireSessions ends the sessions whose media stopped or never decoded:
// nothing at all within keepalive_timeout of the invite (SRS publish {
// firstpkt_timeout }), nothing decodable within media_timeout of the first
// packet (junk PS), no packet or no frame for media_timeout while
// publishing, and on-demand channels with no player for idle_timeout.
func (s *Server) expireSessions(first, media, idle time.Duration) {
	now := time.Now()
	type due struct {
		ss  *session
		why string
	}
	var stale []due
	s.mu.Lock()
	for _, x := range s.sessions {
		fp := x.firstPkt.Load()
		switch {
		case x.pub.Load() == nil && fp == 0 && now.Sub(x.started) > first:
			stale = append(stale, due{x, fmt.Sprintf("no media within %s", first)})
		case x.pub.Load() == nil && fp != 0 && now.Sub(time.Unix(0, fp)) > media:
			stale = append(stale, due{x, fmt.Sprintf("no decodable media within %s (received %d bytes)", media, x.recv.Load())})
		case x.pub.Load() != nil && now.Sub(time.Unix(0, x.lastPkt.Load())) > media:
			stale = append(stale, due{x, fmt.Sprintf("no media for %s", media)})
		case x.pub.Load() != nil && now.Sub(time.Unix(0, x.lastFrame.Load())) > media:
			stale = append(stale, due{x, fmt.Sprintf("no decodable media for %s (received %d bytes)", media, x.recv.Load())})
		case x.onDemand && idle > 0 && x.idleSince.Load() != 0 && now.Sub(time.Unix(0, x.idleSince.Load())) > idle:
			stale = append(stale, due{x, fmt.Sprintf("no players for %s", idle)})
		}
	}
	s.mu.Unlock()
	for _, x := range stale {
		x.ss.close(x.why, true)
	}
}

// dropDevice forgets a device and ends its streams.
func (s *Server) dropDevice(d *device, why string) {
	s.mu.Lock()
	if s.devices[d.id] == d {
		delete(s.devices, d.id)
	}
	var ss []*session
	for _, x := range s.sessions {
		if x.dev == d {
			ss = append(ss, x)
		}
	}
	s.mu.Unlock()
	for _, x := range ss {
		x.close(why, true)
	}
	d.mu.Lock()
	d.online = false
	d.mu.Unlock()
	d.log.Info("device gone", "reason", why)
}

// ---- API ----

// ServeHTTP serves GET /api/v1/gb28181/devices (devices, their channels
// and status) and SRS 6's POST /gb/v1/publish/ (publishapi.go).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.TrimSuffix(r.URL.Path, "/") == "/gb/v1/publish" {
		s.servePublish(w, r)
		return
	}
	if strings.TrimSuffix(r.URL.Path, "/") != "/api/v1/gb28181/devices" {
		http.Error(w, `{"code":404,"error":"not found"}`, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, `{"code":405,"error":"method not allowed"}`, http.StatusMethodNotAllowed)
		return
	}
	type devJSON struct {
		ID        string     `json:"device_id"`
		ClientID  string     `json:"client_id"`
		Addr      string     `json:"remote_addr"`
		Transport string     `json:"transport"`
		Status    string     `json:"status"`
		LastAlive time.Time  `json:"last_keepalive"`
		Channels  []*channel `json:"channels"`
	}
	type extJSON struct {
		ID        string `json:"id"`
		ClientID  string `json:"client_id"`
		SSRC      uint32 `json:"ssrc"`
		Stream    string `json:"stream"`
		Transport string `json:"transport"`
		Port      int    `json:"port"`
		Status    string `json:"status"`
	}
	s.mu.Lock()
	live := map[string]bool{}
	ext := []extJSON{}
	for _, ss := range s.sessions {
		if ss.dev != nil {
			live[ss.dev.id+"/"+ss.channel] = ss.pub.Load() != nil
			continue
		}
		st := "waiting"
		if ss.pub.Load() != nil {
			st = "streaming"
		}
		ext = append(ext, extJSON{ID: ss.channel, ClientID: ss.clientID, SSRC: ss.ssrc, Stream: ss.ref.App + "/" + ss.ref.Stream, Transport: ss.mode, Port: ss.port, Status: st})
	}
	out := []devJSON{}
	for _, d := range s.devices {
		d.mu.Lock()
		j := devJSON{ID: d.id, ClientID: d.clientID, Addr: d.addr, Transport: d.transport, Status: "offline", LastAlive: d.lastAlive, Channels: []*channel{}}
		if d.online {
			j.Status = "online"
		}
		for _, c := range d.channels {
			cc := *c
			if live[d.id+"/"+c.ID] {
				cc.Status = "streaming"
			}
			j.Channels = append(j.Channels, &cc)
		}
		d.mu.Unlock()
		out = append(out, j)
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "devices": out, "publish_sessions": ext})
}

// Kick implements sdk.Kicker: a device's client id drops the device, a
// stream's ends the stream.
func (s *Server) Kick(_ context.Context, clientID string) bool {
	s.mu.Lock()
	var d *device
	var ss *session
	for _, x := range s.devices {
		if x.clientID == clientID {
			d = x
		}
	}
	for _, x := range s.sessions {
		if x.clientID == clientID {
			ss = x
		}
	}
	s.mu.Unlock()
	switch {
	case ss != nil:
		ss.close("kicked by the api", true)
	case d != nil:
		s.dropDevice(d, "kicked by the api")
	default:
		return false
	}
	return true
}

// Stats implements sdk.StatsReporter.
func (s *Server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"devices": uint64(len(s.devices)), "sessions": uint64(len(s.sessions)),
		"registers": s.registers.Load(), "registers_refused": s.refused.Load(),
	}}
	st.Counters["digest_nonces"] = uint64(s.nonces.Tracked())
	if s.pool != nil {
		st.Counters["rtp_ports_in_use"] = uint64(s.pool.inUse())
	}
	for _, ss := range s.sessions {
		if ss.pub.Load() == nil {
			continue
		}
		st.Clients = append(st.Clients, sdk.ClientStat{Client: ss.info, Stream: ss.ref, Publish: true,
			Alive: time.Since(ss.started), RecvBytes: ss.recv.Load(), URL: ss.ref.Key()})
	}
	return st
}

// StreamEvent implements sdk.StreamWatcher: a player wants a channel's
// stream nobody publishes, so invite the channel; the last player of a
// channel invited on demand left, so start its idle_timeout (a player
// coming back, StreamWanted again, stops it).
func (s *Server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if ev.Type != sdk.StreamWanted && ev.Type != sdk.StreamUnwanted {
		return
	}
	cfg := s.cfg.Load()
	if !cfg.enabled || ev.Stream.Vhost != cfg.Vhost || ev.Stream.App != cfg.app {
		return
	}
	if ev.Type == sdk.StreamUnwanted {
		s.mu.Lock()
		for _, x := range s.sessions {
			if x.onDemand && x.ref.Stream == ev.Stream.Stream && x.ref.App == ev.Stream.App {
				x.idleSince.Store(time.Now().UnixNano())
				x.log.Info("no players left", "stream", x.ref.Key(), "idle_timeout", cfg.IdleTimeout.Std().String())
			}
		}
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	var dev *device
	var ch string
	for _, d := range s.devices {
		d.mu.Lock()
		for id := range d.channels {
			if cfg.streamName(d.id, id) == ev.Stream.Stream {
				dev, ch = d, id
			}
		}
		d.mu.Unlock()
	}
	s.mu.Unlock()
	if dev != nil {
		s.startInvite(dev, ch, true)
	}
}

func (s *Server) newSSRC() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		s.ssrcSeq = (s.ssrcSeq + 1) % 10000
		// GB/T 28181 §9.2.1: 0 = live, then 5 digits of the realm, then a
		// 4-digit sequence; as a 32-bit number it must stay below 2^32.
		v := uint32(s.ssrcSeq) + 100000000
		if _, ok := s.sessions[v]; !ok {
			return v
		}
	}
}

var errNoSession = errors.New("gb28181: no session for ssrc")

// portPool is the pool of the configured rtp_port range (nil when there
// is none); a reload that changes the range makes a new pool, and each
// session gives its port back to the pool it came from.
func (s *Server) portPool(cfg *config) *portPool {
	if cfg.RTPPortMin == 0 {
		return nil
	}
	host := "0.0.0.0"
	if pcs := s.rt.PacketConns("media_udp"); len(pcs) > 0 {
		host = pcs[0].LocalAddr().(*net.UDPAddr).IP.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pool; p == nil || p.min != cfg.RTPPortMin || p.max != cfg.RTPPortMax || p.host != host {
		s.pool = newPortPool(host, cfg.RTPPortMin, cfg.RTPPortMax)
	}
	return s.pool
}

func ssrcOf(b []byte) (uint32, bool) {
	if len(b) < 12 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[8:12]), true
}
