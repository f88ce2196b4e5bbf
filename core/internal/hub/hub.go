// Package hub is the core's stream registry: which streams exist, who
// publishes them, who plays them, and the shared-memory ring of each.
package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

// forgetAfter is how long an unpublished stream stays listed.
var forgetAfter = 5 * time.Minute

// DefaultVhost is SRS's name of the vhost that takes every unknown host name.
const DefaultVhost = wire.DefaultVhost

// Hub errors. They wrap the wire sentinels so plugins can errors.Is them.
var (
	ErrStreamBusy = wire.ErrStreamBusy
	ErrBadName    = wire.ErrInvalid
	ErrNoStream   = wire.ErrNotFound
	ErrTimeout    = wire.ErrTimeout
	ErrClosed     = wire.ErrUnavailable
	ErrForbidden  = wire.ErrForbidden
)

// VhostPolicy is what the hub needs to know of one vhost.
type VhostPolicy struct {
	GopCache bool
	Ring     shm.Options
	// Plugins maps plugin name to whether it is enabled in this vhost. A
	// plugin not enabled in a vhost can neither publish nor subscribe there
	// and is not told about its streams.
	Plugins map[string]bool
}

// Policy is the part of the config the hub applies; replaced on reload.
type Policy struct {
	Vhosts map[string]*VhostPolicy
}

// Gate decides whether a client may publish or play (security rules and
// callbacks). A nil Gate allows everything.
type Gate interface {
	// streamID is the stream's API id (SRS's stream_id of on_publish).
	AllowPublish(ctx context.Context, client wire.ClientInfo, stream wire.StreamRef, streamID string) error
	// Unpublished is told when an allowed publisher's stream ends.
	Unpublished(client wire.ClientInfo, stream wire.StreamRef, streamID string)
}

// Notifier receives stream events for the plugins of a vhost.
type Notifier func(ev wire.StreamEvent)

// Hub is the stream registry. Its methods are safe for concurrent use.
type Hub struct {
	inst   *Instance
	log    hclog.Logger
	notify Notifier
	gate   Gate

	policy atomic.Pointer[Policy]

	mu      sync.Mutex
	closed  bool
	streams map[string]*Stream // by vhost/app/stream
	pubs    map[string]*Stream // by publication id
	subs    map[string]*sub    // by subscription id
	seq     uint64
}

// Stream is one vhost/app/stream, published or waiting for a publisher.
type Stream struct {
	ID        string
	Ref       wire.StreamRef
	Created   time.Time
	publisher *publisher
	subs      map[string]*sub
	ready     chan struct{} // closed when a publisher arrives; replaced after unpublish
	waiters   int           // subscribers waiting for a publisher
	wanted    bool          // a StreamWanted was sent and no StreamUnwanted since
	// rewant: a StreamUnwanted was sent while the stream was published (an
	// on-demand source lingers before it stops); the next player wants it
	// again, so its source goes on.
	rewant   bool
	gen      int
	lastRing *shm.Segment // kept after unpublish for final stats until removed
	lastPub  *publisher   // the last publisher, after unpublish (hooks of late segments name it)
}

type publisher struct {
	id      string
	plugin  string
	client  wire.ClientInfo
	ref     wire.StreamRef
	seg     *shm.Segment
	started time.Time
}

type sub struct {
	id       string
	plugin   string
	client   wire.ClientInfo
	stream   *Stream
	internal bool
	started  time.Time
}

// New returns a hub that keeps its rings in inst's directory. notify is
// called (without locks held) for every publish and unpublish.
func New(inst *Instance, policy *Policy, log hclog.Logger, notify Notifier) *Hub {
	h := &Hub{
		inst: inst, log: log, notify: notify,
		streams: map[string]*Stream{}, pubs: map[string]*Stream{}, subs: map[string]*sub{},
	}
	h.SetPolicy(policy)
	return h
}

// SetGate installs the publish/play gate (security, callbacks).
func (h *Hub) SetGate(g Gate) { h.mu.Lock(); h.gate = g; h.mu.Unlock() }

// SetPolicy replaces the vhost policy (on reload).
func (h *Hub) SetPolicy(p *Policy) {
	if p == nil || p.Vhosts == nil {
		p = &Policy{Vhosts: map[string]*VhostPolicy{}}
	}
	h.policy.Store(p)
}

// Policy returns the current policy.
func (h *Hub) Policy() *Policy { return h.policy.Load() }

// Names are checked by the one rule of sdk/wire (ident.go).
var validName, validApp = wire.ValidName, wire.ValidApp

// Resolve checks a stream's names and maps its vhost as SRS does.
func (h *Hub) Resolve(ref wire.StreamRef) (wire.StreamRef, error) {
	r, _, err := h.resolve("", ref)
	return r, err
}

// resolve checks names and maps the vhost as SRS does: unknown host names
// fall back to the default vhost.
func (h *Hub) resolve(plugin string, ref wire.StreamRef) (wire.StreamRef, *VhostPolicy, error) {
	if !validApp(ref.App) {
		return ref, nil, wire.Errorf(ErrBadName, "bad app name %q", ref.App)
	}
	if !validName(ref.Stream) {
		return ref, nil, wire.Errorf(ErrBadName, "bad stream name %q", ref.Stream)
	}
	pol := h.policy.Load()
	vp, ok := pol.Vhosts[ref.Vhost]
	if !ok {
		ref.Vhost = DefaultVhost
		vp, ok = pol.Vhosts[DefaultVhost]
		if !ok {
			return ref, nil, wire.Errorf(ErrNoStream, "no vhost for %q and no %s", ref.Vhost, DefaultVhost)
		}
	}
	if plugin != "" && !vp.Plugins[plugin] {
		return ref, nil, wire.Errorf(ErrForbidden, "plugin %q is not enabled in vhost %q", plugin, ref.Vhost)
	}
	return ref, vp, nil
}

func (h *Hub) newID(prefix string) string {
	h.seq++
	var b [5]byte
	_, _ = rand.Read(b[:])
	const alpha = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := make([]byte, len(b))
	for i := range b {
		out[i] = alpha[int(b[i])%len(alpha)]
	}
	return fmt.Sprintf("%s%s%d", prefix, out, h.seq)
}

func (h *Hub) streamLocked(ref wire.StreamRef) *Stream {
	key := ref.Key()
	s := h.streams[key]
	if s == nil {
		s = &Stream{ID: h.newID("vid-"), Ref: ref, Created: time.Now(), subs: map[string]*sub{}, ready: make(chan struct{})}
		h.streams[key] = s
	}
	return s
}

// Publish claims a stream for a client of plugin and creates its ring.
func (h *Hub) Publish(ctx context.Context, plugin string, req wire.PublishRequest) (wire.Publication, error) {
	ref, vp, err := h.resolve(plugin, req.Stream)
	if err != nil {
		return wire.Publication{}, err
	}
	h.mu.Lock()
	gate := h.gate
	if h.closed {
		h.mu.Unlock()
		return wire.Publication{}, wire.Errorf(ErrClosed, "hub is shutting down")
	}
	// The stream is listed before the gate runs, so on_publish carries its
	// id as in SRS (whose statistics know the stream before the hook); a
	// refused first publish leaves nothing behind.
	cand := h.streamLocked(ref)
	h.mu.Unlock()
	if gate != nil {
		if err := gate.AllowPublish(ctx, req.Client, ref, cand.ID); err != nil {
			h.mu.Lock()
			h.gcLocked(cand)
			h.mu.Unlock()
			return wire.Publication{}, err
		}
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return wire.Publication{}, wire.Errorf(ErrClosed, "hub is shutting down")
	}
	s := h.streams[ref.Key()]
	if s == nil {
		// Forgotten while the gate ran (nobody else held it): keep the id
		// on_publish was told.
		s = cand
		h.streams[ref.Key()] = s
	}
	if p := s.publisher; p != nil {
		h.mu.Unlock()
		return wire.Publication{}, wire.Errorf(ErrStreamBusy, "stream %s is already published by client %s (%s)", ref.Key(), p.client.ID, p.plugin)
	}
	s.gen++
	path := h.inst.Path(fmt.Sprintf("s%d-%d", h.seq+1, s.gen))
	h.seq++
	seg, err := shm.Create(path, vp.Ring)
	if err == nil {
		if err = h.inst.shareFile(path); err != nil {
			seg.Close()
			os.Remove(path)
		}
	}
	if err != nil {
		h.mu.Unlock()
		return wire.Publication{}, fmt.Errorf("create ring for %s: %w", ref.Key(), err)
	}
	if old := s.lastRing; old != nil {
		h.removeSegment(old)
		s.lastRing = nil
	}
	p := &publisher{id: h.newID("pub-"), plugin: plugin, client: req.Client, ref: ref, seg: seg, started: time.Now()}
	p.ref.Param, p.ref.TcURL = req.Stream.Param, req.Stream.TcURL
	s.publisher = p
	h.pubs[p.id] = s
	close(s.ready)
	ev := wire.StreamEvent{Type: wire.StreamPublished, Stream: p.ref, StreamID: s.ID, Ring: seg.Path, Publisher: p.client}
	h.mu.Unlock()
	h.log.Info("stream published", "stream", ref.Key(), "stream_id", s.ID, "client_id", req.Client.ID, "plugin", plugin, "ring", seg.Path)
	if h.notify != nil {
		h.notify(ev)
	}
	return wire.Publication{Ring: seg.Path, StreamID: s.ID, PublicationID: p.id}, nil
}

// Unpublish ends a publication: the ring is marked ended (readers see end
// of stream) and removed once the readers had time to drain it.
func (h *Hub) Unpublish(plugin, pubID string) error {
	h.mu.Lock()
	s, ok := h.pubs[pubID]
	if !ok || s.publisher == nil || s.publisher.id != pubID {
		h.mu.Unlock()
		return wire.Errorf(ErrNoStream, "no publication %q", pubID)
	}
	if s.publisher.plugin != plugin {
		h.mu.Unlock()
		return wire.Errorf(ErrForbidden, "publication %q belongs to plugin %q", pubID, s.publisher.plugin)
	}
	ev := h.unpublishLocked(s, "unpublished")
	h.mu.Unlock()
	if h.notify != nil {
		h.notify(ev)
	}
	return nil
}

func (h *Hub) unpublishLocked(s *Stream, why string) wire.StreamEvent {
	p := s.publisher
	delete(h.pubs, p.id)
	s.publisher = nil
	s.rewant = false // the next player waits, and that wants the stream
	s.lastPub = p
	s.ready = make(chan struct{})
	p.seg.Ring.End()
	s.lastRing = p.seg
	seg := p.seg
	// Readers that already mapped the ring keep reading after the file is
	// unlinked; the delay covers subscribers between answer and mmap.
	time.AfterFunc(3*time.Second, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if s.lastRing == seg {
			s.lastRing = nil
			h.removeSegment(seg)
		}
	})
	// An unpublished stream stays listed (as in SRS) for a while, then is
	// forgotten if nobody republished, plays or waits for it: a flood of
	// one-off stream names cannot grow the registry without bound.
	gen := s.gen
	time.AfterFunc(forgetAfter, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if s.gen == gen && s.publisher == nil && len(s.subs) == 0 && s.waiters == 0 && h.streams[s.Ref.Key()] == s {
			if s.lastRing != nil {
				h.removeSegment(s.lastRing)
				s.lastRing = nil
			}
			delete(h.streams, s.Ref.Key())
		}
	})
	h.log.Info("stream unpublished", "stream", s.Ref.Key(), "stream_id", s.ID, "client_id", p.client.ID, "plugin", p.plugin, "reason", why)
	if h.gate != nil {
		h.gate.Unpublished(p.client, p.ref, s.ID)
	}
	return wire.StreamEvent{Type: wire.StreamUnpublished, Stream: p.ref, StreamID: s.ID, Ring: seg.Path, Publisher: p.client}
}

func (h *Hub) removeSegment(seg *shm.Segment) {
	if err := seg.Close(); err != nil {
		h.log.Warn("close ring", "ring", seg.Path, "error", err)
	}
	if err := removeFile(seg.Path); err != nil {
		h.log.Warn("remove ring", "ring", seg.Path, "error", err)
	}
}

// Subscribe returns the ring of a stream, waiting up to req.Wait for a
// publisher when there is none yet.
func (h *Hub) Subscribe(ctx context.Context, plugin string, req wire.SubscribeRequest) (wire.Subscription, error) {
	ref, vp, err := h.resolve(plugin, req.Stream)
	if err != nil {
		return wire.Subscription{}, err
	}
	// Players are authorized one by one by their plugin (ClientEvent play);
	// a subscription is the plugin's one reader of the stream.
	deadline := time.NewTimer(req.Wait)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return wire.Subscription{}, wire.Errorf(ErrClosed, "hub is shutting down")
		}
		s := h.streamLocked(ref)
		if p := s.publisher; p != nil {
			sb := &sub{id: h.newID("sub-"), plugin: plugin, client: req.Client, stream: s, internal: req.Internal, started: time.Now()}
			s.subs[sb.id] = sb
			h.subs[sb.id] = sb
			var rewantEv *wire.StreamEvent
			if s.rewant && !req.Internal {
				s.rewant, s.wanted = false, true
				rewantEv = &wire.StreamEvent{Type: wire.StreamWanted, Stream: ref, StreamID: s.ID}
				rewantEv.Stream.Param, rewantEv.Stream.TcURL = req.Stream.Param, req.Stream.TcURL
			}
			h.mu.Unlock()
			h.emit(rewantEv)
			h.log.Debug("stream subscribed", "stream", ref.Key(), "client_id", req.Client.ID, "plugin", plugin)
			return wire.Subscription{Ring: p.seg.Path, StreamID: s.ID, SubscriptionID: sb.id, GopCache: vp.GopCache, Vhost: ref.Vhost}, nil
		}
		ready := s.ready
		s.waiters++
		var wantEv *wire.StreamEvent
		if req.Wait > 0 && !s.wanted && !req.Internal {
			s.wanted = true
			wantEv = &wire.StreamEvent{Type: wire.StreamWanted, Stream: ref, StreamID: s.ID}
			wantEv.Stream.Param, wantEv.Stream.TcURL = req.Stream.Param, req.Stream.TcURL
		}
		h.mu.Unlock()
		if wantEv != nil {
			h.emit(wantEv)
		}
		giveUp := func(err error) (wire.Subscription, error) {
			h.mu.Lock()
			s.waiters--
			ev := h.unwantedLocked(s)
			h.gcLocked(s)
			h.mu.Unlock()
			h.emit(ev)
			return wire.Subscription{}, err
		}
		if req.Wait <= 0 {
			return giveUp(wire.Errorf(ErrNoStream, "stream %s is not published", ref.Key()))
		}
		select {
		case <-ready:
			h.mu.Lock()
			s.waiters--
			h.mu.Unlock()
		case <-deadline.C:
			return giveUp(wire.Errorf(ErrTimeout, "stream %s not published within %s", ref.Key(), req.Wait))
		case <-ctx.Done():
			return giveUp(wire.Errorf(ErrTimeout, "stream %s: %v", ref.Key(), ctx.Err()))
		}
	}
}

// Unsubscribe releases a subscription.
func (h *Hub) Unsubscribe(plugin, subID string) error {
	h.mu.Lock()
	sb, ok := h.subs[subID]
	if !ok {
		h.mu.Unlock()
		return wire.Errorf(ErrNoStream, "no subscription %q", subID)
	}
	if sb.plugin != plugin {
		h.mu.Unlock()
		return wire.Errorf(ErrForbidden, "subscription %q belongs to plugin %q", subID, sb.plugin)
	}
	ev := h.dropSubLocked(sb)
	h.mu.Unlock()
	h.emit(ev)
	return nil
}

func (h *Hub) dropSubLocked(sb *sub) *wire.StreamEvent {
	delete(h.subs, sb.id)
	delete(sb.stream.subs, sb.id)
	ev := h.unwantedLocked(sb.stream)
	h.gcLocked(sb.stream)
	return ev
}

// unwantedLocked returns the StreamUnwanted event due when the last player
// of a wanted stream is gone, or nil.
func (h *Hub) unwantedLocked(s *Stream) *wire.StreamEvent {
	if !s.wanted || s.waiters > 0 {
		return nil
	}
	for _, sb := range s.subs {
		if !sb.internal {
			return nil
		}
	}
	s.wanted = false
	s.rewant = s.publisher != nil
	return &wire.StreamEvent{Type: wire.StreamUnwanted, Stream: s.Ref, StreamID: s.ID}
}

func (h *Hub) emit(ev *wire.StreamEvent) {
	if ev != nil && h.notify != nil {
		h.notify(*ev)
	}
}

// gcLocked forgets a stream nobody publishes, plays or waits for, once its
// last ring is gone.
func (h *Hub) gcLocked(s *Stream) {
	if s.publisher == nil && len(s.subs) == 0 && s.lastRing == nil && s.gen == 0 && s.waiters == 0 && h.streams[s.Ref.Key()] == s {
		delete(h.streams, s.Ref.Key())
	}
}

// PluginGone ends everything a dead plugin process held: its publications
// (readers see end of stream) and its subscriptions.
func (h *Hub) PluginGone(plugin string) {
	h.mu.Lock()
	var evs []wire.StreamEvent
	for _, s := range h.streams {
		if s.publisher != nil && s.publisher.plugin == plugin {
			evs = append(evs, h.unpublishLocked(s, "plugin "+plugin+" exited"))
		}
	}
	for _, sb := range h.subs {
		if sb.plugin == plugin {
			if ev := h.dropSubLocked(sb); ev != nil {
				evs = append(evs, *ev)
			}
		}
	}
	h.mu.Unlock()
	for _, ev := range evs {
		if h.notify != nil {
			h.notify(ev)
		}
	}
}

// Live returns the streams that have a publisher now (to replay
// StreamPublished events to a restarted plugin).
func (h *Hub) Live() []wire.StreamEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []wire.StreamEvent
	for _, s := range h.streams {
		if p := s.publisher; p != nil {
			out = append(out, wire.StreamEvent{Type: wire.StreamPublished, Stream: p.ref, StreamID: s.ID, Ring: p.seg.Path, Publisher: p.client})
		}
	}
	return out
}

// StreamInfo is a snapshot of one stream for the API.
type StreamInfo struct {
	ID        string
	Ref       wire.StreamRef
	Created   time.Time
	Active    bool
	Publisher *wire.ClientInfo
	// LastPublisher is the current publisher or, once unpublished, the
	// last one (nil if never published).
	LastPublisher *wire.ClientInfo
	Plugin        string
	Published     time.Time
	Clients       int // players (internal consumers excluded)
	Ring          shm.Stats
	HasRing       bool
}

// Streams returns a snapshot of every known stream, sorted by creation.
func (h *Hub) Streams() []StreamInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]StreamInfo, 0, len(h.streams))
	for _, s := range h.streams {
		si := StreamInfo{ID: s.ID, Ref: s.Ref, Created: s.Created}
		for _, sb := range s.subs {
			if !sb.internal {
				si.Clients++
			}
		}
		if p := s.publisher; p != nil {
			c := p.client
			si.Active, si.Publisher, si.Plugin, si.Published = true, &c, p.plugin, p.started
			si.Ref.Param, si.Ref.TcURL = p.ref.Param, p.ref.TcURL
			si.Ring, si.HasRing = p.seg.Ring.Stats(), true
			si.LastPublisher = &c
		} else {
			if s.lastRing != nil {
				si.Ring, si.HasRing = s.lastRing.Ring.Stats(), true
			}
			if p := s.lastPub; p != nil {
				c := p.client
				si.LastPublisher = &c
				si.Ref.Param, si.Ref.TcURL = p.ref.Param, p.ref.TcURL
			}
		}
		out = append(out, si)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// Close ends every stream and removes every ring.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	var segs []*shm.Segment
	for _, s := range h.streams {
		if p := s.publisher; p != nil {
			p.seg.Ring.End()
			segs = append(segs, p.seg)
			s.publisher = nil
		} else {
			close(s.ready) // wake subscribers waiting for a publisher
		}
		if s.lastRing != nil {
			segs = append(segs, s.lastRing)
			s.lastRing = nil
		}
	}
	h.streams, h.pubs, h.subs = map[string]*Stream{}, map[string]*Stream{}, map[string]*sub{}
	h.mu.Unlock()
	for _, seg := range segs {
		h.removeSegment(seg)
	}
}

func removeFile(path string) error {
	err := os.Remove(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// WithRing calls fn with the ring of a published stream while the hub
// guarantees it stays mapped; fn must be quick and must not keep the ring.
// It reports whether the stream is published.
func (h *Hub) WithRing(streamID string, fn func(r *shm.Ring)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.streams {
		if s.ID == streamID && s.publisher != nil {
			fn(s.publisher.seg.Ring)
			return true
		}
	}
	return false
}
