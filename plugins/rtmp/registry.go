package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/redis/go-redis/v9"

	"github.com/rill-media/rill/sdk"
)

// The Redis stream registry (optional; cluster_registry in the plugin
// block): each origin writes, for every stream a publisher of its own
// feeds in an origin-cluster vhost, the key rill:origin:<vhost>/<app>/<stream>
// = its RTMP address, with a TTL it refreshes (a heartbeat) while the
// stream is live, as SRS 7's proxy keeps its stream -> origin map. An
// origin asked for a stream it lacks reads the key: origins find each
// other without a static coworkers list, and a dead origin's streams
// expire with its last heartbeat.

const registryPrefix = "rill:origin:"

// unregisterScript deletes a stream's key only if it still names us (a
// republish elsewhere may have taken it).
var unregisterScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// registry is the process's connection to the Redis registry.
type registry struct {
	rdb  *redis.Client
	ttl  time.Duration
	self string // our RTMP address, as other origins reach it
	log  hclog.Logger
}

func registryKey(ref sdk.StreamRef) string { return registryPrefix + ref.Key() }

// newRegistry connects to the registry of cfg (nil: none configured).
// self is what this origin announces: cluster_announce, else the first
// rtmp listener's address when its host is an address others can reach.
func newRegistry(cfg *config, lns []net.Listener, log hclog.Logger) (*registry, error) {
	if cfg.ClusterRegistry == "" {
		return nil, nil
	}
	opt, err := redis.ParseURL(cfg.ClusterRegistry)
	if err != nil {
		return nil, fmt.Errorf("cluster_registry: %w", err) // the URL may hold a password: not echoed
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	self := cfg.ClusterAnnounce
	if self == "" && len(lns) > 0 {
		addr := lns[0].Addr().(*net.TCPAddr)
		if addr.IP.IsUnspecified() {
			return nil, fmt.Errorf("cluster_registry: the rtmp listener %s is on every address: set cluster_announce to the host:port other origins reach this one at", addr)
		}
		self = addr.String()
	}
	return &registry{rdb: redis.NewClient(opt), ttl: time.Duration(cfg.ClusterRegistryTTL), self: self, log: log.With("registry", opt.Addr)}, nil
}

// lookup returns the RTMP address of the origin the registry names for
// ref, or an error (none, only ourselves, or Redis failed).
func (r *registry) lookup(ctx context.Context, ref sdk.StreamRef) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterAskTimeout)
	defer cancel()
	v, err := r.rdb.Get(ctx, registryKey(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("registry: no origin for %s", ref.Key())
	}
	if err != nil {
		return "", fmt.Errorf("registry: get %s: %w", ref.Key(), err)
	}
	if v == r.self {
		return "", fmt.Errorf("registry: %s names this origin", ref.Key())
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return "", fmt.Errorf("registry: %s names %q, not host:port", ref.Key(), v)
	}
	return v, nil
}

// register writes (or refreshes) the key of a stream of ours.
func (r *registry) register(ctx context.Context, ref sdk.StreamRef) error {
	ctx, cancel := context.WithTimeout(ctx, clusterAskTimeout)
	defer cancel()
	if err := r.rdb.Set(ctx, registryKey(ref), r.self, r.ttl).Err(); err != nil {
		return fmt.Errorf("registry: set %s: %w", ref.Key(), err)
	}
	return nil
}

// unregister deletes the key of a stream that ended here, if it names us.
func (r *registry) unregister(ctx context.Context, ref sdk.StreamRef) error {
	ctx, cancel := context.WithTimeout(ctx, clusterAskTimeout)
	defer cancel()
	if err := unregisterScript.Run(ctx, r.rdb, []string{registryKey(ref)}, r.self).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("registry: delete %s: %w", ref.Key(), err)
	}
	return nil
}

// registered lists the live streams this origin registers: those of
// origin-cluster vhosts that a publisher of ours (not a relay) feeds.
func (s *Server) registered() []sdk.StreamRef {
	cfg := s.cfg.Load()
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	var out []sdk.StreamRef
	for _, l := range s.fwd.live {
		if _, o := cfg.vhost(l.ref.Vhost); o.OriginCluster && !relayClient(l.pub.Type) {
			out = append(out, l.ref)
		}
	}
	return out
}

func relayClient(typ string) bool { return typ == clusterClientType || typ == "rtmp-edge" }

// heartbeat refreshes the registry keys of our streams every ttl/3 until
// ctx ends, and deletes them then (a clean stop; a crash leaves them to
// expire).
func (s *Server) heartbeat(ctx context.Context, r *registry) {
	defer s.wg.Done()
	t := time.NewTicker(max(r.ttl/3, 100*time.Millisecond))
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			bg, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			for _, ref := range s.registered() {
				_ = r.unregister(bg, ref)
			}
			cancel()
			_ = r.rdb.Close()
			return
		case <-t.C:
		}
		var errs []error
		for _, ref := range s.registered() {
			if err := r.register(ctx, ref); err != nil {
				errs = append(errs, err)
			}
		}
		switch err := errors.Join(errs...); {
		case err != nil && !failing:
			r.log.Warn("registry heartbeat failed: other origins will not find our streams once their keys expire", "error", err)
			failing = true
		case err == nil && failing:
			r.log.Info("registry heartbeat works again")
			failing = false
		}
	}
}

// registryEvent registers or unregisters a stream at once when the core
// announces its publish or unpublish (the heartbeat catches up otherwise).
func (s *Server) registryEvent(ev sdk.StreamEvent) {
	r := s.reg
	if r == nil {
		return
	}
	if _, o := s.cfg.Load().vhost(ev.Stream.Vhost); !o.OriginCluster || relayClient(ev.Publisher.Type) {
		return
	}
	ref := ev.Stream
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if ev.Type == sdk.StreamPublished {
			err = r.register(s.ctx, ref)
		} else {
			err = r.unregister(s.ctx, ref)
		}
		if err != nil {
			r.log.Warn("registry update failed", "stream", ref.Key(), "error", err)
		}
	}()
}
