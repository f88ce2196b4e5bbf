package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/ringpkt"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

// Ring config slots: the latest codec configs and metadata are kept in the
// ring header so a new subscriber gets them before its first packet.
const (
	slotMetadata = 0
	slotVideo    = 1
	slotAudio    = 2
)

// Media flags travel in the ring record's flags above shm's own bits.
const mediaFlagShift = ringpkt.FlagShift

// Host is the plugin's connection to the core: publish and subscribe streams,
// report clients and events. It is safe for concurrent use.
type Host struct {
	rpc    wire.Host
	plugin string
	shmDir string
	inst   string
	log    hclog.Logger

	bellOnce sync.Once
	bell     *shm.Bell
	bellErr  error
}

func newHost(rpc wire.Host, plugin, shmDir, inst string, log hclog.Logger) *Host {
	return &Host{rpc: rpc, plugin: plugin, shmDir: shmDir, inst: inst, log: log}
}

func (h *Host) close() {
	if h.bell != nil {
		_ = h.bell.Close()
	}
}

// processBell returns the one doorbell of this process, shared by every
// subscription (one doorbell per reader process: see sdk/shm).
func (h *Host) processBell() (*shm.Bell, error) {
	h.bellOnce.Do(func() {
		name := fmt.Sprintf("rill-%s-bell-%d", h.inst, os.Getpid())
		h.bell, h.bellErr = shm.OpenBell(h.shmDir, name)
		// Plugins running as other users share the rings through a group
		// the core names: writers of other users must ring this bell.
		if g := os.Getenv(wire.EnvShmGID); g != "" && h.bellErr == nil {
			gid, err := strconv.Atoi(g)
			if err == nil {
				err = h.bell.ShareWithGroup(gid)
			}
			if err != nil {
				h.bell.Close()
				h.bell, h.bellErr = nil, fmt.Errorf("%s=%q: %w", wire.EnvShmGID, g, err)
			}
		}
	})
	return h.bell, h.bellErr
}

func (h *Host) checkRing(path string) error {
	if filepath.Dir(path) != filepath.Clean(h.shmDir) {
		return fmt.Errorf("core answered with ring %q outside %q", path, h.shmDir)
	}
	return nil
}

// Publish claims stream for client and returns a Publication to write
// packets into. It fails with ErrStreamBusy when the stream already has a
// publisher and ErrForbidden when security rules or a callback refuse it.
func (h *Host) Publish(ctx context.Context, client ClientInfo, stream StreamRef) (*Publication, error) {
	client.Plugin = h.plugin
	p, err := h.rpc.Publish(ctx, wire.PublishRequest{Client: client.wire(), Stream: stream.wire()})
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", stream.Key(), err)
	}
	if err := h.checkRing(p.Ring); err != nil {
		_ = h.rpc.Unpublish(context.Background(), p.PublicationID)
		return nil, fmt.Errorf("publish %s: %w", stream.Key(), err)
	}
	seg, err := shm.Open(p.Ring, true)
	if err != nil {
		_ = h.rpc.Unpublish(context.Background(), p.PublicationID)
		return nil, fmt.Errorf("publish %s: open ring: %w", stream.Key(), err)
	}
	pub := &Publication{host: h, id: p.PublicationID, StreamID: p.StreamID, Stream: stream, seg: seg, w: shm.NewWriter(seg.Ring), done: make(chan struct{})}
	go pub.heartbeat()
	return pub, nil
}

// SubscribeOptions tune a subscription.
type SubscribeOptions struct {
	// Wait is how long to wait for a publisher when the stream has none yet.
	Wait time.Duration
	// Internal marks a plugin's own consumer (an HLS muxer, a recorder)
	// rather than a player: it is not counted as a client of the stream.
	Internal bool
	// Live starts at the live edge even when the vhost has gop_cache on.
	Live bool
}

// Subscribe returns a Subscription that reads stream's packets. One
// subscription per stream per process is enough: fan packets out in-process.
func (h *Host) Subscribe(ctx context.Context, client ClientInfo, stream StreamRef, opts SubscribeOptions) (*Subscription, error) {
	client.Plugin = h.plugin
	s, err := h.rpc.Subscribe(ctx, wire.SubscribeRequest{Client: client.wire(), Stream: stream.wire(), Wait: opts.Wait, Internal: opts.Internal})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", stream.Key(), err)
	}
	fail := func(err error) (*Subscription, error) {
		_ = h.rpc.Unsubscribe(context.Background(), s.SubscriptionID)
		return nil, fmt.Errorf("subscribe %s: %w", stream.Key(), err)
	}
	if err := h.checkRing(s.Ring); err != nil {
		return fail(err)
	}
	bell, err := h.processBell()
	if err != nil {
		return fail(fmt.Errorf("open doorbell: %w", err))
	}
	seg, err := shm.Open(s.Ring, false)
	if err != nil {
		return fail(fmt.Errorf("open ring: %w", err))
	}
	mode := shm.StartGOP
	if !s.GopCache || opts.Live {
		mode = shm.StartLive
	}
	rd := shm.NewReader(seg.Ring, mode)
	if err := rd.UseBell(bell); err != nil {
		h.log.Warn("ring reader table full, waiting without the process doorbell", "stream", stream.Key(), "error", err)
	}
	if s.Vhost != "" {
		stream.Vhost = s.Vhost
	}
	sub := &Subscription{host: h, id: s.SubscriptionID, StreamID: s.StreamID, Stream: stream, seg: seg, rd: rd}
	for _, rec := range rd.Configs() {
		sub.pending = append(sub.pending, recordToPacket(rec).Clone())
	}
	return sub, nil
}

// Play asks the core whether client may play stream, and reports that it
// starts: the core applies the vhost's security rules and its on_play
// callbacks. Call it for every player before serving it (a plugin reads a
// stream once with Subscribe and fans it out; Play is per player). An error
// (errors.Is ErrForbidden) means refuse the player.
func (h *Host) Play(ctx context.Context, client ClientInfo, stream StreamRef) error {
	client.Plugin = h.plugin
	return h.rpc.ClientEvent(ctx, wire.ClientEvent{Type: wire.ClientPlay, Client: client.wire(), Stream: stream.wire()})
}

// PlayStopped reports that a player allowed by Play stopped (on_stop).
func (h *Host) PlayStopped(ctx context.Context, client ClientInfo, stream StreamRef) error {
	client.Plugin = h.plugin
	return h.rpc.ClientEvent(ctx, wire.ClientEvent{Type: wire.ClientStop, Client: client.wire(), Stream: stream.wire()})
}

// ClientConnected reports a new connection (for the API and on_connect).
// An error (errors.Is ErrForbidden) means an on_connect callback refused it.
func (h *Host) ClientConnected(ctx context.Context, client ClientInfo, stream StreamRef) error {
	client.Plugin = h.plugin
	return h.rpc.ClientEvent(ctx, wire.ClientEvent{Type: wire.ClientConnect, Client: client.wire(), Stream: stream.wire()})
}

// ClientClosed reports a closed connection with its byte counts (on_close).
func (h *Host) ClientClosed(ctx context.Context, client ClientInfo, stream StreamRef, sendBytes, recvBytes uint64) error {
	client.Plugin = h.plugin
	return h.rpc.ClientEvent(ctx, wire.ClientEvent{Type: wire.ClientClose, Client: client.wire(), Stream: stream.wire(), SendBytes: sendBytes, RecvBytes: recvBytes})
}

// Notify reports a plugin event that the core turns into callbacks, such as
// "on_hls" or "on_dvr" with their fields.
func (h *Host) Notify(ctx context.Context, event string, client ClientInfo, stream StreamRef, fields map[string]string) error {
	client.Plugin = h.plugin
	return h.rpc.Notify(ctx, wire.Notification{Event: event, Client: client.wire(), Stream: stream.wire(), Fields: fields})
}

// Publication is a claimed stream. Write is for one goroutine at a time.
type Publication struct {
	StreamID string
	Stream   StreamRef

	host     *Host
	id       string
	seg      *shm.Segment
	w        *shm.Writer
	mu       sync.Mutex
	sawVideo bool
	closed   bool
	done     chan struct{}
}

// Write appends p to the stream. It never blocks on readers. Codec configs
// (FlagConfig) and AMF0 metadata are also kept for new subscribers.
func (p *Publication) Write(pkt media.Packet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("write %s: publication closed", p.Stream.Key())
	}
	if p.seg.Ring.Ended() {
		return fmt.Errorf("write %s: %w: stream ended by the core", p.Stream.Key(), io.ErrClosedPipe)
	}
	m := packetMeta(pkt)
	switch {
	case pkt.Kind == media.KindVideo:
		if !p.sawVideo && !pkt.IsConfig() {
			p.sawVideo = true
		}
		if pkt.IsKey() && !pkt.IsConfig() {
			m.Flags |= shm.FlagSync
		}
	case pkt.Kind == media.KindAudio && !p.sawVideo && !pkt.IsConfig():
		// Audio-only so far: any audio frame is a good place to start.
		m.Flags |= shm.FlagSync
	}
	if slot, ok := configSlot(pkt); ok {
		if err := p.w.SetConfig(slot, m, pkt.Payload); err != nil {
			return fmt.Errorf("write %s: config: %w", p.Stream.Key(), err)
		}
	}
	if err := p.w.Write(m, pkt.Payload); err != nil {
		return fmt.Errorf("write %s: %w", p.Stream.Key(), err)
	}
	return nil
}

func (p *Publication) heartbeat() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			p.mu.Lock()
			if !p.closed {
				p.w.Heartbeat()
			}
			p.mu.Unlock()
		}
	}
}

// Close unpublishes the stream: subscribers see end-of-stream. Idempotent.
func (p *Publication) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.seg.Ring.End()
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.host.rpc.Unpublish(ctx, p.id)
	if cerr := p.seg.Close(); err == nil {
		err = cerr
	}
	return err
}

// Subscription reads one stream. Read is for one goroutine at a time.
type Subscription struct {
	StreamID string
	Stream   StreamRef

	host    *Host
	id      string
	seg     *shm.Segment
	rd      *shm.Reader
	pending []media.Packet
	buf     []byte
	once    sync.Once
}

// ErrWriterGone is returned by Read when the publisher's process died
// without ending the stream.
var ErrWriterGone = shm.ErrWriterGone

// Read returns the next packet, blocking until one arrives or ctx ends. The
// first packets are the stream's current metadata and codec configs. The
// payload is valid until the next Read (Clone it to keep it). At the end of
// the stream Read returns io.EOF.
func (s *Subscription) Read(ctx context.Context) (media.Packet, error) {
	if len(s.pending) > 0 {
		p := s.pending[0]
		s.pending = s.pending[1:]
		return p, nil
	}
	for {
		rec, err := s.rd.Next(s.buf)
		switch {
		case err == nil:
			s.buf = rec.Payload[:cap(rec.Payload)]
			return recordToPacket(rec), nil
		case errors.Is(err, shm.ErrEmpty):
			if err := s.rd.Wait(ctx); err != nil {
				if errors.Is(err, shm.ErrEnded) {
					continue
				}
				return media.Packet{}, fmt.Errorf("read %s: %w", s.Stream.Key(), err)
			}
		case errors.Is(err, shm.ErrEnded):
			return media.Packet{}, io.EOF
		default:
			return media.Packet{}, fmt.Errorf("read %s: %w", s.Stream.Key(), err)
		}
	}
}

// TryRead returns the next packet if the ring has one, without waiting: ok
// is false when there is nothing new. At the end of the stream it returns
// io.EOF; if the writer died without ending it, an error. A reader that
// serves its clients in batches (merged writes) drains the ring with
// TryRead once per batch instead of being woken for every packet, which
// spares the writer a system call and this process a wake-up per packet.
// The packet's payload is valid until the next read.
func (s *Subscription) TryRead() (p media.Packet, ok bool, err error) {
	if len(s.pending) > 0 {
		p := s.pending[0]
		s.pending = s.pending[1:]
		return p, true, nil
	}
	rec, err := s.rd.Next(s.buf)
	switch {
	case err == nil:
		s.buf = rec.Payload[:cap(rec.Payload)]
		return recordToPacket(rec), true, nil
	case errors.Is(err, shm.ErrEmpty):
		if s.rd.WriterGone() {
			return media.Packet{}, false, fmt.Errorf("read %s: %w", s.Stream.Key(), shm.ErrWriterGone)
		}
		return media.Packet{}, false, nil
	case errors.Is(err, shm.ErrEnded):
		return media.Packet{}, false, io.EOF
	}
	return media.Packet{}, false, fmt.Errorf("read %s: %w", s.Stream.Key(), err)
}

// Dropped is the number of packets this reader lost by falling behind.
func (s *Subscription) Dropped() uint64 { return s.rd.Dropped() }

// Close releases the subscription. Idempotent.
func (s *Subscription) Close() error {
	var err error
	s.once.Do(func() {
		_ = s.rd.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.host.rpc.Unsubscribe(ctx, s.id)
		if cerr := s.seg.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

func configSlot(p media.Packet) (int, bool) {
	switch {
	case p.Kind == media.KindData:
		return slotMetadata, true
	case p.Kind == media.KindVideo && p.IsConfig():
		return slotVideo, true
	case p.Kind == media.KindAudio && p.IsConfig():
		return slotAudio, true
	}
	return 0, false
}

func packetMeta(p media.Packet) shm.Meta { return ringpkt.Meta(p) }

func recordToPacket(r shm.Record) media.Packet { return ringpkt.Packet(r) }

// RingConfigs returns the codec configs and metadata kept in a ring's
// header, as packets (copies).
func RingConfigs(r *shm.Ring) []media.Packet { return ringpkt.Configs(r) }
