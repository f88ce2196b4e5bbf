package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// session is one invited channel: a SIP dialog and the media it sends,
// published as one stream.
type session struct {
	s        *Server
	dev      *device
	channel  string
	ssrc     uint32
	clientID string
	info     sdk.ClientInfo
	ref      sdk.StreamRef
	log      hclog.Logger
	started  time.Time
	callID   string
	bye      func(context.Context) error

	mu     sync.Mutex // feeds the demuxer: one media source at a time
	dmx    *demux
	audio  *audioTranscode // G.711 -> AAC between dmx and pub (audio.go)
	pub    atomic.Pointer[sdk.Publication]
	recv   atomic.Uint64
	closed atomic.Bool
	conn   net.Conn // TCP media, closed with the session
}

// startInvite invites one channel of d unless it already streams.
func (s *Server) startInvite(d *device, channel string) {
	s.mu.Lock()
	for _, x := range s.sessions {
		if x.dev == d && x.channel == channel {
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	cfg := s.cfg.Load()
	ssrc := s.newSSRC()
	cid := sdk.NewClientID()
	ss := &session{s: s, dev: d, channel: channel, ssrc: ssrc, clientID: cid, started: time.Now(),
		ref:  sdk.StreamRef{Vhost: cfg.Vhost, App: cfg.app, Stream: cfg.streamName(d.id, channel)},
		info: sdk.ClientInfo{ID: cid, Type: "gb28181-publish", IP: hostOf(d.addr)},
		log:  d.log.With("client_id", cid, "channel_id", channel, "ssrc", ssrc)}
	ss.audio = newAudioTranscode(ss.write, ss.log)
	ss.dmx = newDemux(ss.audio.write)
	s.mu.Lock()
	s.sessions[ssrc] = ss
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := ss.invite(cfg); err != nil {
			ss.close(fmt.Sprintf("invite failed: %v", err), false)
		}
	}()
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func (ss *session) sdp(cfg *config) []byte {
	port := 0
	proto := "RTP/AVP"
	extra := ""
	if cfg.Transport == "tcp" {
		proto = "TCP/RTP/AVP"
		extra = "a=setup:passive\r\na=connection:new\r\n"
		if lns := ss.s.rt.Listeners("media"); len(lns) > 0 {
			port = lns[0].Addr().(*net.TCPAddr).Port
		}
	} else if pcs := ss.s.rt.PacketConns("media_udp"); len(pcs) > 0 {
		port = pcs[0].LocalAddr().(*net.UDPAddr).Port
	}
	return fmt.Appendf(nil, "v=0\r\no=%s 0 0 IN IP4 %s\r\ns=Play\r\nc=IN IP4 %s\r\nt=0 0\r\nm=video %d %s 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n%sy=%010d\r\n",
		cfg.ServerID, cfg.Candidate, cfg.Candidate, port, proto, extra, ss.ssrc)
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
	ss.log.Info("channel invited", "stream", ss.ref.Key(), "transport", cfg.Transport)
	return nil
}

// feed gives the session one RTP packet.
func (ss *session) feed(b []byte) {
	if ss.closed.Load() {
		return
	}
	ss.recv.Add(uint64(len(b)))
	ss.mu.Lock()
	err := ss.dmx.FeedRTP(b)
	ss.mu.Unlock()
	if err != nil {
		ss.close(fmt.Sprintf("bad media: %v", err), true)
	}
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
		ss.pub.Store(np)
		pub = np
		ss.log.Info("publish started", "stream", ss.ref.Key(), "codec", p.Codec.String())
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
	ss.mu.Unlock()
	if c != nil {
		c.Close()
	}
	ss.audio.Close()
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
			s.serveMediaTCP(nc)
		}()
	}
}

// serveMediaTCP reads RTP over TCP framed as RFC 4571 (a 16-bit length
// before each packet); the first packet's SSRC names the session.
func (s *Server) serveMediaTCP(nc net.Conn) {
	defer nc.Close()
	log := s.log.With("remote_addr", nc.RemoteAddr().String())
	r := bufio.NewReaderSize(nc, 64<<10)
	buf := make([]byte, 65536)
	var ss *session
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
		}
		if ss.closed.Load() {
			return
		}
		ss.feed(buf[:n])
	}
}
