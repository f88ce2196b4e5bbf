package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// forwardBlock is SRS's vhost forward {} section: static destinations
// and a backend asked for more at each publish.
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

// forwarders runs one forwarder per published stream that has forward
// destinations (or, on an edge, the origins a publish goes on to). It
// remembers the streams the core announced, so that a reload can start,
// change and stop the forwards of streams already live, as SRS does.
type forwarders struct {
	mu sync.Mutex
	// live holds the published streams of the plugin's vhosts, by stream
	// key: what a reload reconciles.
	live map[string]liveStream
	// byKey holds the running forwarders, by stream key.
	byKey map[string]*forwarder
	// run is the forwarder's body, (*Server).forward; tests replace it.
	run func(ctx context.Context, f *forwarder)
}

// liveStream is a published stream as the core announced it.
type liveStream struct {
	ref sdk.StreamRef
	id  string         // the publication's stream id
	pub sdk.ClientInfo // its publisher, for forward { backend }
}

// forwarder is the forward of one publication. Its destinations change
// under a reload without touching the ones that stay.
type forwarder struct {
	ref    sdk.StreamRef
	id     string
	cancel context.CancelFunc

	pub     sdk.ClientInfo
	backend string // forward { backend } of the vhost when started

	mu      sync.Mutex
	dests   [][]string    // wanted now by the config; guarded by mu
	extra   [][]string    // what the backend answered; guarded by mu
	changed chan struct{} // a send (cap 1) says dests changed
}

// setExtra sets the destinations the backend answered.
func (f *forwarder) setExtra(dests [][]string) {
	f.mu.Lock()
	f.extra = dests
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// setDests sets the destinations the forwarder must push to.
func (f *forwarder) setDests(dests [][]string) {
	f.mu.Lock()
	f.dests = dests
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// wanted returns the destinations the forwarder must push to.
func (f *forwarder) wanted() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(append([][]string(nil), f.dests...), f.extra...)
}

var _ sdk.StreamWatcher = (*Server)(nil)

// StreamEvent implements sdk.StreamWatcher: start forwarding a stream of a
// vhost with forward destinations when it is published.
func (s *Server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	if s.ctx == nil {
		return // not started
	}
	if ev.Type == sdk.StreamWanted || ev.Type == sdk.StreamUnwanted {
		switch _, opts := s.cfg.Load().vhost(ev.Stream.Vhost); {
		case len(opts.Origins) > 0:
			s.edgeEvent(ev, func(ctx context.Context, ref sdk.StreamRef) { s.pull(ctx, ref, opts.Origins, opts.UpstreamVhost) })
		case opts.OriginCluster:
			s.edgeEvent(ev, func(ctx context.Context, ref sdk.StreamRef) { s.clusterPull(ctx, ref, opts.Coworkers) })
		}
		return
	}
	if ev.Type == sdk.StreamPublished || ev.Type == sdk.StreamUnpublished {
		s.registryEvent(ev)
	}
	key := ev.Stream.Key()
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	if s.fwd.live == nil {
		s.fwd.live, s.fwd.byKey = map[string]liveStream{}, map[string]*forwarder{}
	}
	switch ev.Type {
	case sdk.StreamPublished:
		s.fwd.live[key] = liveStream{ref: ev.Stream, id: ev.StreamID, pub: ev.Publisher}
	case sdk.StreamUnpublished:
		if l, ok := s.fwd.live[key]; ok && (ev.StreamID == "" || l.id == ev.StreamID) {
			delete(s.fwd.live, key)
		}
	default:
		return
	}
	s.reconcileForwardLocked(key)
}

// reconcileForwards applies the current config to the forwards of every
// live stream: after a reload, new destinations start, removed ones stop
// and unchanged ones go on untouched.
func (s *Server) reconcileForwards() {
	if s.ctx == nil {
		return
	}
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	keys := map[string]bool{}
	for k := range s.fwd.live {
		keys[k] = true
	}
	for k := range s.fwd.byKey {
		keys[k] = true
	}
	for k := range keys {
		s.reconcileForwardLocked(k)
	}
}

// forwardDests lists where a publication of ref goes, each destination a
// list of addresses tried in turn: one for a forward destination, all
// origins for a publish to an edge (it goes on to the first reachable
// origin, as SRS does).
func (s *Server) forwardDests(ref sdk.StreamRef) [][]string {
	_, opts := s.cfg.Load().vhost(ref.Vhost)
	if opts.OriginCluster && s.edge.isPulled(ref.Key()) {
		return nil // a coworker's stream: the coworker forwards it
	}
	var dests [][]string
	for _, d := range opts.Forward {
		dests = append(dests, []string{d})
	}
	if len(opts.Origins) > 0 && !s.edge.isPulled(ref.Key()) {
		up := opts.Origins
		if opts.UpstreamVhost != "" { // cluster { vhost }: that vhost at the origin
			up = make([]string, len(opts.Origins))
			for i, o := range opts.Origins {
				up[i] = "rtmp://" + o + "/[app]/[stream]?vhost=" + opts.UpstreamVhost
			}
		}
		dests = append(dests, up)
	}
	return dests
}

// reconcileForwardLocked makes the forward of stream key match the config:
// started when a live stream has destinations, given the new list when it
// runs, stopped when the stream or its destinations are gone. s.fwd.mu is
// held.
func (s *Server) reconcileForwardLocked(key string) {
	l, live := s.fwd.live[key]
	f := s.fwd.byKey[key]
	var dests [][]string
	backend := ""
	if live {
		dests = s.forwardDests(l.ref)
		_, opts := s.cfg.Load().vhost(l.ref.Vhost)
		backend = opts.ForwardBackend
	}
	wanted := len(dests) > 0 || backend != ""
	if f != nil && (!wanted || f.id != l.id || f.backend != backend) {
		f.cancel() // its goroutine forgets it
		delete(s.fwd.byKey, key)
		f = nil
	}
	if !wanted || s.ctx.Err() != nil {
		return
	}
	if f != nil {
		f.setDests(dests)
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	f = &forwarder{ref: l.ref, id: l.id, pub: l.pub, backend: backend, cancel: cancel, changed: make(chan struct{}, 1)}
	f.setDests(dests)
	s.fwd.byKey[key] = f
	run := s.fwd.run
	if run == nil {
		run = s.forward
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run(ctx, f)
		s.fwd.mu.Lock()
		if s.fwd.byKey[key] == f {
			delete(s.fwd.byKey, key)
			// The stream ended under the forwarder (end of stream before
			// the core's unpublish event): a reload must not start it
			// again on a publication that is gone.
			if ctx.Err() == nil && s.fwd.live[key].id == f.id {
				delete(s.fwd.live, key)
			}
		}
		s.fwd.mu.Unlock()
		cancel()
	}()
}

// forward reads the stream once and pushes it to every destination the
// forwarder wants, following changes of that list until ctx ends or the
// stream does.
func (s *Server) forward(ctx context.Context, f *forwarder) {
	ref := f.ref
	log := s.log.With("stream", ref.Key())
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in rtmp forward", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if f.backend != "" {
		// SRS 5's on_forward: the backend names more destinations for
		// this publication, asked once before the first packet.
		urls, err := s.askBackend(ctx, f.backend, f.pub, ref)
		if err != nil {
			log.Warn("forward backend answer refused", "backend", f.backend, "client_id", f.pub.ID, "error", err, "usable", len(urls))
		}
		var extra [][]string
		for _, u := range urls {
			extra = append(extra, []string{u})
		}
		if len(urls) > 0 {
			log.Info("forward backend answered", "backend", f.backend, "client_id", f.pub.ID, "urls", strings.Join(urls, " "))
		}
		f.setExtra(extra)
	}
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "rtmp-forward"}
	sub, err := s.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: 5 * time.Second, Internal: true})
	if err != nil {
		log.Warn("forward: subscribe failed", "error", err)
		return
	}
	defer sub.Close()
	ps := &pushers{ref: ref, log: log, byID: map[string]*pusher{}}
	defer ps.closeAll()
	for {
		select {
		case <-f.changed:
			ps.apply(f.wanted())
		default:
		}
		pkt, err := sub.Read(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Warn("forward: read failed", "error", err)
			}
			return
		}
		ps.write(pkt)
	}
}

// pushers is the set of destinations of one forward, keyed by their
// addresses, and the stream's last codec configs, which a destination
// added mid-stream (by a reload) is sent first. Only the forward's
// goroutine uses it.
type pushers struct {
	ref  sdk.StreamRef
	log  hclog.Logger
	byID map[string]*pusher
	hdr  seqHeaders
}

// seqHeaders are the last metadata and sequence headers of a stream.
type seqHeaders struct {
	meta, vseq, aseq *base.RtmpMsg
}

// destID names a destination (its addresses, tried in turn).
func destID(addrs []string) string { return strings.Join(addrs, "|") }

// apply makes the set match want: destinations no longer wanted are
// disconnected, new ones added (they connect on the next packet), the
// others left as they are. It returns the ids added and removed.
func (ps *pushers) apply(want [][]string) (added, removed []string) {
	keep := map[string]bool{}
	for _, addrs := range want {
		id := destID(addrs)
		keep[id] = true
		if _, ok := ps.byID[id]; ok {
			continue
		}
		p := &pusher{log: ps.log.With("destination", id), hdr: &ps.hdr}
		for _, a := range addrs {
			url, err := destinationURL(a, ps.ref)
			if err != nil {
				ps.log.Warn("forward destination refused", "destination", a, "error", err)
				continue
			}
			p.urls = append(p.urls, url)
		}
		if len(p.urls) == 0 {
			continue
		}
		ps.byID[id] = p
		added = append(added, id)
		ps.log.Info("forward started", "destination", id)
	}
	for id, p := range ps.byID {
		if !keep[id] {
			p.close()
			delete(ps.byID, id)
			removed = append(removed, id)
			ps.log.Info("forward stopped", "destination", id)
		}
	}
	sort.Strings(removed)
	return added, removed
}

func (ps *pushers) closeAll() {
	for id, p := range ps.byID {
		p.close()
		ps.log.Info("forward stopped", "destination", id)
	}
	ps.byID = map[string]*pusher{}
}

// write sends pkt to every destination.
func (ps *pushers) write(pkt media.Packet) {
	msg, ok := rtmpMsgOf(pkt)
	if !ok {
		return
	}
	switch {
	case pkt.Kind == media.KindData:
		ps.hdr.meta = &msg
	case pkt.IsConfig() && pkt.Kind == media.KindVideo:
		ps.hdr.vseq = &msg
	case pkt.IsConfig():
		ps.hdr.aseq = &msg
	}
	for _, p := range ps.byID {
		p.write(pkt, msg)
	}
}

// rtmpMsgOf converts a packet to the RTMP message a destination gets.
func rtmpMsgOf(pkt media.Packet) (base.RtmpMsg, bool) {
	if pkt.DTS < 0 {
		return base.RtmpMsg{}, false
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
			return base.RtmpMsg{}, false
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
	return base.RtmpMsg{Header: base.RtmpHeader{Csid: csid, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: lalrtmp.Msid1, TimestampAbs: ts}, Payload: body}, true
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
	// hdr holds the stream's last configs, sent after every connect.
	hdr     *seqHeaders
	waitKey bool
}

func (p *pusher) close() {
	if p.sess != nil {
		_ = p.sess.Dispose()
		p.sess = nil
	}
}

func (p *pusher) write(pkt media.Packet, msg base.RtmpMsg) {
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
	for _, m := range []*base.RtmpMsg{p.hdr.meta, p.hdr.vseq, p.hdr.aseq} {
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
