package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/media/flv"
)

// forwardBlock is SRS's vhost forward {} section.
type forwardBlock struct {
	Enabled     *bool    `json:"enabled"`
	Destination []string `json:"destination"`
	Backend     string   `json:"backend"`
}

func init() {
	// lal's client sessions log through naza's global logger, which writes
	// to standard output: the go-plugin handshake channel of this process.
	_ = nazalog.Init(func(o *nazalog.Option) {
		o.IsToStdout = false
		o.Filename = ""
		o.Level = nazalog.LevelLogNothing
		o.AssertBehavior = nazalog.AssertError
	})
}

// forwarders runs one forwarder per published stream of a vhost with
// forward destinations.
type forwarders struct {
	mu   sync.Mutex
	byID map[string]context.CancelFunc // by stream key
}

var _ sdk.StreamWatcher = (*Server)(nil)

// StreamEvent implements sdk.StreamWatcher: start forwarding a stream of a
// vhost with forward destinations when it is published.
func (s *Server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if s.rt == nil {
		return
	}
	_, opts := s.cfg.Load().vhost(ev.Stream.Vhost)
	if ev.Type == sdk.StreamWanted || ev.Type == sdk.StreamUnwanted {
		if len(opts.Origins) > 0 {
			s.edgeEvent(ev, opts.Origins)
		}
		return
	}
	if ev.Type != sdk.StreamPublished {
		return
	}
	// Each destination is a list of addresses tried in turn: one for a
	// forward destination, all origins for a publish to an edge (it goes on
	// to the first reachable origin, as SRS does).
	var dests [][]string
	for _, d := range opts.Forward {
		dests = append(dests, []string{d})
	}
	if len(opts.Origins) > 0 && !s.edge.isPulled(ev.Stream.Key()) {
		dests = append(dests, opts.Origins)
	}
	if len(dests) == 0 {
		return
	}
	key := ev.Stream.Key() + "#" + ev.StreamID
	s.fwd.mu.Lock()
	if s.fwd.byID == nil {
		s.fwd.byID = map[string]context.CancelFunc{}
	}
	if _, ok := s.fwd.byID[key]; ok {
		s.fwd.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.fwd.byID[key] = cancel
	s.fwd.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.fwd.mu.Lock()
			delete(s.fwd.byID, key)
			s.fwd.mu.Unlock()
			cancel()
		}()
		s.forward(ctx, ev.Stream, dests)
	}()
}

// forward reads the stream once and pushes it to every destination.
func (s *Server) forward(ctx context.Context, ref sdk.StreamRef, dests [][]string) {
	log := s.log.With("stream", ref.Key())
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in rtmp forward", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "rtmp-forward"}
	sub, err := s.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: 5 * time.Second, Internal: true})
	if err != nil {
		log.Warn("forward: subscribe failed", "error", err)
		return
	}
	defer sub.Close()
	pushers := make([]*pusher, 0, len(dests))
	var names []string
	for _, addrs := range dests {
		p := &pusher{log: log.With("destination", strings.Join(addrs, "|"))}
		for _, a := range addrs {
			url := "rtmp://" + a + "/" + ref.App + "/" + ref.Stream
			if ref.Vhost != defaultVhost {
				url += "?vhost=" + ref.Vhost
			}
			p.urls = append(p.urls, url)
		}
		pushers = append(pushers, p)
		names = append(names, strings.Join(addrs, "|"))
		defer p.close()
	}
	log.Info("forward started", "destinations", strings.Join(names, ","))
	for {
		pkt, err := sub.Read(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Warn("forward: read failed", "error", err)
			}
			log.Info("forward stopped")
			return
		}
		for _, p := range pushers {
			p.write(pkt)
		}
	}
}

// pusher pushes to one destination with lal's PushSession, reconnecting
// with backoff; after a reconnect it resends the codec configs and waits
// for a keyframe.
type pusher struct {
	urls []string // tried in turn
	next int
	log  interface {
		Warn(string, ...any)
		Info(string, ...any)
	}
	sess  *lalrtmp.PushSession
	retry time.Time
	delay time.Duration
	// last configs, resent after a reconnect
	meta, vseq, aseq *base.RtmpMsg
	waitKey          bool
	buf              []byte
}

func (p *pusher) close() {
	if p.sess != nil {
		_ = p.sess.Dispose()
		p.sess = nil
	}
}

func (p *pusher) write(pkt media.Packet) {
	if pkt.DTS < 0 {
		return
	}
	var (
		body []byte
		typ  uint8
		ts   uint32
		err  error
	)
	if pkt.Kind == media.KindData {
		body, typ, ts = flv.AppendSetDataFrame(nil, pkt.Payload), flv.TagScript, 0
	} else {
		body, typ, ts, err = flv.AppendTag(nil, pkt)
		if err != nil {
			return
		}
	}
	if ts == maxTimestamp24 {
		// lal writes 0xffffff without the extended timestamp field
		// that the spec requires; move it by a millisecond.
		ts--
	}
	csid := lalrtmp.CsidVideo
	switch pkt.Kind {
	case media.KindAudio:
		csid = lalrtmp.CsidAudio
	case media.KindData:
		csid = lalrtmp.CsidAmf
	}
	msg := base.RtmpMsg{Header: base.RtmpHeader{Csid: csid, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: lalrtmp.Msid1, TimestampAbs: ts}, Payload: body}
	switch {
	case pkt.Kind == media.KindData:
		p.meta = &msg
	case pkt.IsConfig() && pkt.Kind == media.KindVideo:
		p.vseq = &msg
	case pkt.IsConfig():
		p.aseq = &msg
	}
	if p.sess == nil {
		if time.Now().Before(p.retry) || !p.connect() {
			return
		}
	}
	if p.waitKey && pkt.Kind == media.KindVideo && !pkt.IsConfig() {
		if !pkt.IsKey() {
			return
		}
		p.waitKey = false
	}
	if err := p.sess.WriteMsg(msg); err != nil {
		p.log.Warn("forward: write failed, reconnecting", "error", err)
		p.fail()
	}
}

func (p *pusher) connect() bool {
	sess := lalrtmp.NewPushSession(func(o *lalrtmp.PushSessionOption) {
		o.PushTimeoutMs = 5000
		o.WriteAvTimeoutMs = 10000
	})
	url := p.urls[p.next%len(p.urls)]
	if err := sess.Push(url); err != nil {
		_ = sess.Dispose()
		p.next++
		delay := time.Duration(0)
		if p.next%len(p.urls) == 0 {
			delay = p.nextDelay() // tried them all: back off
		}
		p.log.Warn("forward: connect failed", "url", url, "error", err, "retry_in", delay.String())
		p.retry = time.Now().Add(delay)
		return false
	}
	p.log.Info("forward connected", "url", url)
	p.sess, p.delay, p.waitKey = sess, 0, true
	for _, m := range []*base.RtmpMsg{p.meta, p.vseq, p.aseq} {
		if m != nil {
			if err := sess.WriteMsg(*m); err != nil {
				p.fail()
				return false
			}
		}
	}
	return true
}

func (p *pusher) nextDelay() time.Duration {
	p.delay = min(max(p.delay*2, 500*time.Millisecond), 10*time.Second)
	return p.delay
}

func (p *pusher) fail() {
	p.close()
	p.retry = time.Now().Add(p.nextDelay())
}
