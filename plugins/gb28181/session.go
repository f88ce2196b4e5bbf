package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// session is one invited channel (or, with dev nil, one stream an
// external SIP server announced through POST /gb/v1/publish/): a SIP
// dialog and the media it sends, published as one stream.
type session struct {
	s        *Server
	dev      *device // nil for an external session
	channel  string
	ssrc     uint32
	clientID string
	info     sdk.ClientInfo
	ref      sdk.StreamRef
	log      hclog.Logger
	started  time.Time
	callID   string
	bye      func(context.Context) error
	mode     string // "udp", "tcp" (passive) or "tcp_active"
	port     int    // the media port offered to the device
	onDemand bool   // invited for a player: sent BYE when no player is left

	// pc is the session's own UDP port from the rtp_port range (nil on
	// the shared port), given back to pool when the session ends.
	pc   net.PacketConn
	pool *portPool

	mu     sync.Mutex // feeds the demuxer: one media source at a time
	dmx    *demux
	audio  *audioTranscode // G.711 -> AAC between dmx and pub (audio.go)
	tick   *time.Timer     // releases packets held behind a gap when no more come
	pub    atomic.Pointer[sdk.Publication]
	recv   atomic.Uint64
	closed atomic.Bool
	conn   net.Conn // TCP media, closed with the session

	firstPkt  atomic.Int64 // unix ns of the first media packet, 0 before
	lastPkt   atomic.Int64 // unix ns of the last media packet
	lastFrame atomic.Int64 // unix ns of the last decoded frame (or the publish)
	idleSince atomic.Int64 // unix ns the last player left, 0 while one plays
}

// startInvite invites one channel of d unless it already streams.
func (s *Server) startInvite(d *device, channel string, onDemand bool) {
	s.mu.Lock()
	for _, x := range s.sessions {
		if x.dev == d && x.channel == channel {
			if onDemand {
				x.idleSince.Store(0) // a player is back
			}
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	cfg := s.cfg.Load()
	ss := s.newSession(cfg, d, channel, cfg.streamName(d.id, channel), s.newSSRC(), cfg.Transport)
	ss.onDemand = onDemand
	if err := ss.openMedia(cfg); err != nil {
		ss.log.Warn("invite not sent", "stream", ss.ref.Key(), "error", err)
		return
	}
	if !s.addSession(ss) {
		ss.releaseMedia()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := ss.invite(cfg); err != nil {
			ss.close(fmt.Sprintf("invite failed: %v", err), false)
		}
	}()
}

// newSession makes a session for one stream; d is nil for an external one.
func (s *Server) newSession(cfg *config, d *device, channel, stream string, ssrc uint32, mode string) *session {
	cid := sdk.NewClientID()
	ss := &session{s: s, dev: d, channel: channel, ssrc: ssrc, clientID: cid, started: time.Now(), mode: mode,
		ref:  sdk.StreamRef{Vhost: cfg.Vhost, App: cfg.app, Stream: stream},
		info: sdk.ClientInfo{ID: cid, Type: "gb28181-publish"}}
	if d != nil {
		ss.info.IP = hostOf(d.addr)
		ss.log = d.log.With("client_id", cid, "channel_id", channel, "ssrc", ssrc)
	} else {
		ss.log = s.log.With("client_id", cid, "stream_id", channel, "ssrc", ssrc)
	}
	ss.audio = newAudioTranscode(ss.write, ss.log)
	ss.dmx = newDemux(ss.audio.write)
	ss.dmx.setReorder(cfg.ReorderPackets, cfg.ReorderWait.Std())
	return ss
}

// addSession registers ss under its SSRC; false when the SSRC is taken.
func (s *Server) addSession(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ss.ssrc]; ok {
		return false
	}
	s.sessions[ss.ssrc] = ss
	return true
}

// openMedia picks the port the session's media comes to: its own UDP port
// when a range is configured, else the shared UDP port or the TCP port.
func (ss *session) openMedia(cfg *config) error {
	s := ss.s
	switch ss.mode {
	case "tcp", "tcp_active":
		if lns := s.rt.Listeners("media"); len(lns) > 0 {
			ss.port = lns[0].Addr().(*net.TCPAddr).Port
		}
		if ss.mode == "tcp" && ss.port == 0 {
			return fmt.Errorf("transport tcp needs a listen_media address")
		}
		return nil
	}
	if pool := s.portPool(cfg); pool != nil {
		pc, port, err := pool.take()
		if err == nil {
			ss.pc, ss.pool, ss.port = pc, pool, port
			s.wg.Add(1)
			go ss.readOwnUDP(pc)
			return nil
		}
		if len(s.rt.PacketConns("media_udp")) == 0 {
			return err
		}
		ss.log.Warn("rtp port range exhausted: using the shared udp port", "error", err)
	}
	pcs := s.rt.PacketConns("media_udp")
	if len(pcs) == 0 {
		return fmt.Errorf("transport udp needs listen_media_udp or rtp_port_min/rtp_port_max")
	}
	ss.port = pcs[0].LocalAddr().(*net.UDPAddr).Port
	return nil
}

// releaseMedia gives the session's own UDP port back and frees its audio
// transcoder.
func (ss *session) releaseMedia() {
	if ss.pc != nil {
		ss.pool.give(ss.pc, ss.port)
	}
	ss.audio.Close()
}

// readOwnUDP reads the session's own UDP port; packets of another SSRC are
// dropped (and counted), as on the shared port.
func (ss *session) readOwnUDP(pc net.PacketConn) {
	defer ss.s.wg.Done()
	buf := make([]byte, 65536)
	var foreign uint64
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed with the session
		}
		ssrc, ok := ssrcOf(buf[:n])
		if !ok || ssrc != ss.ssrc {
			if foreign++; foreign == 1 || foreign%1000 == 0 {
				ss.log.Warn("rtp of another ssrc dropped", "got_ssrc", ssrc, "remote_addr", from.String(), "dropped", foreign)
			}
			continue
		}
		ss.feed(buf[:n])
	}
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func (ss *session) sdp(cfg *config) []byte {
	proto, extra := "RTP/AVP", ""
	switch ss.mode {
	case "tcp":
		proto, extra = "TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"
	case "tcp_active":
		proto, extra = "TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"
	}
	return fmt.Appendf(nil, "v=0\r\no=%s 0 0 IN IP4 %s\r\ns=Play\r\nc=IN IP4 %s\r\nt=0 0\r\nm=video %d %s 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n%sy=%010d\r\n",
		cfg.ServerID, cfg.Candidate, cfg.Candidate, ss.port, proto, extra, ss.ssrc)
}

// answerAddr is the media address of the device's SDP answer (c= and the
// port of m=video), where the server connects in TCP active mode. GB28181
// SDP carries y= and f= lines that RFC 4566 parsers refuse, so the two
// lines needed are read by hand; a media-level c= wins over the session's.
func answerAddr(body []byte) (string, error) {
	var host string
	port := -1
	inVideo := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "m="):
			f := strings.Fields(line[2:])
			inVideo = len(f) >= 2 && f[0] == "video" && port < 0
			if inVideo {
				p, err := strconv.Atoi(f[1])
				if err != nil || p <= 0 || p > 65535 {
					return "", fmt.Errorf("sdp answer: bad media port in %q", line)
				}
				port = p
			}
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) == 3 && (host == "" || inVideo) {
				host = f[2]
			}
		}
	}
	if port < 0 {
		return "", fmt.Errorf("sdp answer: no m=video line")
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("sdp answer: no c= address (got %q)", host)
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

func (ss *session) invite(cfg *config) error {
	s := ss.s
	req := sip.NewRequest(sip.INVITE, s.deviceURI(ss.dev, ss.channel))
	req.AppendHeader(s.fromHeader())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Subject", fmt.Sprintf("%s:%010d,%s:0", ss.channel, ss.ssrc, cfg.ServerID)))
	req.SetBody(ss.sdp(cfg))
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	dlg, err := s.dc.WriteInvite(ctx, req)
	if err != nil {
		return err
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		dlg.Close()
		return err
	}
	// In-dialog requests (ACK, BYE) go where the INVITE went, the address
	// the device registered from, not to its Contact: cameras behind NAT
	// and over SIP/TCP are only reachable there (SRS does the same).
	if res := dlg.InviteResponse; res != nil {
		if c := res.Contact(); c != nil {
			c.Address.Host, c.Address.Port = req.Recipient.Host, req.Recipient.Port
			c.Address.UriParams = req.Recipient.UriParams
		}
	}
	if err := dlg.Ack(ctx); err != nil {
		dlg.Close()
		return fmt.Errorf("ack: %w", err)
	}
	s.mu.Lock() // callID and bye are read under s.mu (onBye, close)
	if c := req.CallID(); c != nil {
		ss.callID = c.Value()
	}
	ss.bye = func(ctx context.Context) error {
		defer dlg.Close()
		return dlg.Bye(ctx)
	}
	s.mu.Unlock()
	if ss.closed.Load() { // closed while the INVITE was in flight
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = ss.bye(ctx)
		return nil
	}
	ss.log.Info("channel invited", "stream", ss.ref.Key(), "transport", ss.mode, "media_port", ss.port)
	if ss.mode == "tcp_active" {
		addr, err := answerAddr(dlg.InviteResponse.Body())
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ss.dialMedia(addr)
		}()
	}
	return nil
}

// dialMedia connects to the device's media port (TCP active) and reads
// RTP over it; the device may need a moment to listen, so it retries for
// a few seconds.
func (ss *session) dialMedia(addr string) {
	var nc net.Conn
	var err error
	for i := 0; i < 20 && !ss.closed.Load(); i++ {
		d := net.Dialer{Timeout: 2 * time.Second}
		if nc, err = d.DialContext(ss.s.ctx, "tcp", addr); err == nil {
			break
		}
		select {
		case <-ss.s.ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	if nc == nil {
		if err == nil {
			return // closed meanwhile
		}
		ss.close(fmt.Sprintf("tcp active: connect to the device's media port %s: %v", addr, err), true)
		return
	}
	ss.log.Info("tcp active media connected", "remote_addr", addr)
	ss.s.serveMediaTCP(nc, ss)
}

// feed gives the session one RTP packet.
func (ss *session) feed(b []byte) {
	if ss.closed.Load() {
		return
	}
	ss.recv.Add(uint64(len(b)))
	now := time.Now().UnixNano()
	ss.firstPkt.CompareAndSwap(0, now)
	ss.lastPkt.Store(now)
	ss.mu.Lock()
	err := ss.dmx.FeedRTP(b)
	ss.armTick()
	ss.mu.Unlock()
	if err != nil {
		ss.close(fmt.Sprintf("bad media: %v", err), true)
	}
}

// armTick (under ss.mu) makes sure packets held behind a gap are released
// after the reorder wait even if no packet follows (a pause, the end of a
// burst).
func (ss *session) armTick() {
	if ss.tick != nil || !ss.dmx.Pending() || ss.closed.Load() {
		return
	}
	ss.tick = time.AfterFunc(ss.dmx.ro.wait+time.Millisecond, func() {
		ss.mu.Lock()
		ss.tick = nil
		var err error
		if !ss.closed.Load() {
			err = ss.dmx.Tick(time.Now())
			ss.armTick()
		}
		ss.mu.Unlock()
		if err != nil {
			ss.close(fmt.Sprintf("bad media: %v", err), true)
		}
	})
}

// write publishes on the first packet the demuxer produces.
func (ss *session) write(p media.Packet) error {
	pub := ss.pub.Load()
	if pub == nil {
		ctx, cancel := context.WithTimeout(ss.s.ctx, 10*time.Second)
		np, err := ss.s.rt.Host.Publish(ctx, ss.info, ss.ref)
		cancel()
		if err != nil {
			return fmt.Errorf("publish %s: %w", ss.ref.Key(), err)
		}
		ss.lastFrame.Store(time.Now().UnixNano()) // before pub: expireSessions reads both
		ss.pub.Store(np)
		pub = np
		ss.log.Info("publish started", "stream", ss.ref.Key(), "codec", p.Codec.String())
	}
	if p.Kind == media.KindVideo || p.Kind == media.KindAudio {
		ss.lastFrame.Store(time.Now().UnixNano())
	}
	return pub.Write(p)
}

// close ends the session: the stream ends, the dialog is closed (BYE when
// sendBye), the TCP media connection is closed. Idempotent.
func (ss *session) close(why string, sendBye bool) {
	if !ss.closed.CompareAndSwap(false, true) {
		return
	}
	s := ss.s
	s.mu.Lock()
	if s.sessions[ss.ssrc] == ss {
		delete(s.sessions, ss.ssrc)
	}
	bye := ss.bye
	s.mu.Unlock()
	ss.mu.Lock()
	c := ss.conn
	if ss.tick != nil {
		ss.tick.Stop()
		ss.tick = nil
	}
	ss.mu.Unlock()
	if c != nil {
		c.Close()
	}
	ss.releaseMedia()
	if pub := ss.pub.Load(); pub != nil {
		_ = pub.Close()
		ss.log.Info("publish stopped", "stream", ss.ref.Key(), "reason", why)
	} else {
		ss.log.Info("session ended", "stream", ss.ref.Key(), "reason", why)
	}
	if sendBye && bye != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = bye(ctx)
		}()
	}
}

func (s *Server) session(ssrc uint32) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[ssrc]
}

func (s *Server) readMediaUDP(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("media udp read failed", "addr", pc.LocalAddr().String(), "error", err)
			}
			return
		}
		ssrc, ok := ssrcOf(buf[:n])
		if !ok {
			continue
		}
		ss := s.session(ssrc)
		if ss == nil {
			s.log.Trace("rtp for an unknown ssrc dropped", "ssrc", ssrc, "remote_addr", from.String())
			continue
		}
		ss.feed(buf[:n])
	}
}

func (s *Server) acceptMedia(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.log.Warn("media accept failed", "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveMediaTCP(nc, nil)
		}()
	}
}

// serveMediaTCP reads RTP over TCP framed as RFC 4571 (a 16-bit length
// before each packet). A passive connection (ss nil) is named by the SSRC
// of its first packet; an active one belongs to ss.
func (s *Server) serveMediaTCP(nc net.Conn, ss *session) {
	defer nc.Close()
	log := s.log.With("remote_addr", nc.RemoteAddr().String())
	r := bufio.NewReaderSize(nc, 64<<10)
	buf := make([]byte, 65536)
	if ss != nil {
		ss.mu.Lock()
		ss.conn = nc
		ss.mu.Unlock()
		if ss.closed.Load() {
			return
		}
	}
	for {
		_ = nc.SetReadDeadline(time.Now().Add(s.cfg.Load().KeepaliveTimeout.Std()))
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			if ss != nil {
				ss.close("media connection closed: "+err.Error(), true)
			}
			return
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			if ss != nil {
				ss.close("media connection closed: "+err.Error(), true)
			}
			return
		}
		if ss == nil {
			ssrc, ok := ssrcOf(buf[:n])
			if ss = s.session(ssrc); !ok || ss == nil {
				log.Warn("tcp media for an unknown ssrc closed", "ssrc", strconv.FormatUint(uint64(ssrc), 10))
				return
			}
			ss.mu.Lock()
			ss.conn = nc
			ss.mu.Unlock()
		} else if ssrc, ok := ssrcOf(buf[:n]); !ok || ssrc != ss.ssrc {
			ss.close(fmt.Sprintf("tcp media: rtp of ssrc %d on the connection of ssrc %d", ssrc, ss.ssrc), true)
			return
		}
		if ss.closed.Load() {
			return
		}
		ss.feed(buf[:n])
	}
}
