package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// Client types, as the API and the callbacks show them.
const (
	typeUDP = "mpegts-udp-publish"
	typeFLV = "flv-post-publish"
)

// errMalformed marks an input cut because its bytes break the format.
var errMalformed = errors.New("malformed input")

// client is one publisher: a UDP sender or a POST request.
type client struct {
	s       *Server
	info    sdk.ClientInfo
	ref     sdk.StreamRef
	url     string
	log     hclog.Logger
	started time.Time
	// closer cuts the input (closes the HTTP connection; nil for UDP,
	// whose peer goroutine watches done).
	closer func()

	recvBytes atomic.Uint64
	kicked    atomic.Bool
	failed    atomic.Bool // begin failed: refused
	closeOnce sync.Once
	done      chan struct{}
	reason    atomic.Value // string

	mu        sync.Mutex
	pub       *sdk.Publication
	connected bool // ClientConnected succeeded: ClientClosed is due
}

func newClient(s *Server, typ, ip, remote string, ref sdk.StreamRef, url string, closer func()) *client {
	id := sdk.NewClientID()
	return &client{
		s: s, info: sdk.ClientInfo{ID: id, IP: ip, Type: typ}, ref: ref, url: url, closer: closer,
		log:     s.log.With("client_id", id, "remote_addr", remote, "type", typ),
		started: time.Now(), done: make(chan struct{}),
	}
}

// close ends the client once with reason.
func (c *client) close(reason string) {
	c.closeOnce.Do(func() {
		c.reason.Store(reason)
		close(c.done)
		if c.closer != nil {
			c.closer()
		}
	})
}

func (c *client) closedReason() string {
	r, _ := c.reason.Load().(string)
	return r
}

// begin registers the client, runs on_connect and claims the stream
// (security rules and on_publish run in the core).
func (c *client) begin() error {
	if err := c.s.addClient(c); err != nil {
		return err
	}
	if e, ok := c.s.cfg.Load().vhosts[c.ref.Vhost]; ok && !e {
		c.s.refused.Add(1)
		return fmt.Errorf("publish %s: %w: the caster is disabled in vhost %q", c.ref.Key(), sdk.ErrForbidden, c.ref.Vhost)
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, hookTimeout)
	defer cancel()
	err := c.s.rt.Host.ClientConnected(ctx, c.info, sdk.StreamRef{Vhost: c.ref.Vhost, App: c.ref.App, Param: c.ref.Param, TcURL: c.ref.TcURL})
	switch {
	case errors.Is(err, sdk.ErrForbidden):
		c.s.refused.Add(1)
		return fmt.Errorf("on_connect refused: %w", err)
	case err != nil:
		c.log.Debug("report client connected", "error", err)
	default:
		c.mu.Lock()
		c.connected = true
		c.mu.Unlock()
	}
	pub, err := c.s.rt.Host.Publish(ctx, c.info, c.ref)
	if err != nil {
		c.s.refused.Add(1)
		return err
	}
	c.mu.Lock()
	c.pub = pub
	c.mu.Unlock()
	select {
	case <-c.done: // kicked or stopping while the hooks ran
		return errors.New(c.closedReason())
	default:
	}
	c.s.published.Add(1)
	c.log.Info("publish started", "stream", c.ref.Key(), "param", c.ref.Param, "stream_id", pub.StreamID)
	return nil
}

// write puts one packet into the hub.
func (c *client) write(p media.Packet) error {
	c.mu.Lock()
	pub := c.pub
	c.mu.Unlock()
	if pub == nil {
		return errors.New("not publishing")
	}
	return pub.Write(p)
}

// finish logs why the client ended, ends the publication and reports the
// close (on_unpublish, on_close).
func (c *client) finish(err error) {
	defer c.s.removeClient(c)
	// The input already ended: record why without cutting the connection,
	// so that a POST still gets its response.
	c.closeOnce.Do(func() {
		c.reason.Store(reasonOf(err))
		close(c.done)
	})
	reason := c.closedReason()
	c.mu.Lock()
	pub, connected := c.pub, c.connected
	c.pub, c.connected = nil, false
	c.mu.Unlock()
	level := hclog.Info
	if errors.Is(err, errMalformed) {
		level = hclog.Warn
		c.s.malformed.Add(1)
	}
	if pub != nil {
		if err := pub.Close(); err != nil {
			c.log.Warn("unpublish", "stream", c.ref.Key(), "error", err)
		}
		c.log.Log(level, "publish stopped", "stream", c.ref.Key(), "reason", reason,
			"duration", time.Since(c.started).Round(time.Millisecond).String(), "recv_bytes", c.recvBytes.Load())
	} else {
		c.log.Warn("publish refused", "stream", c.ref.Key(), "reason", reason)
	}
	if connected {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.s.rt.Host.ClientClosed(ctx, c.info, c.ref, 0, c.recvBytes.Load()); err != nil {
			c.log.Debug("report client closed", "error", err)
		}
	}
}

func reasonOf(err error) string {
	if err == nil {
		return "closed by peer"
	}
	return err.Error()
}

// pubFailed reports whether the publish was refused.
func (c *client) pubFailed() bool { return c.failed.Load() }

// stat reports a publishing client; ok is false before the publish.
func (c *client) stat() (sdk.ClientStat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub == nil {
		return sdk.ClientStat{}, false
	}
	return sdk.ClientStat{
		Client: c.info, Stream: c.ref, Publish: true, Alive: time.Since(c.started),
		RecvBytes: c.recvBytes.Load(), URL: c.url,
	}, true
}
