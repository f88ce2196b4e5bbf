package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rill-media/rill/sdk"
)

// settings is the plugin block: plugin "rtmp" { ... }.
type settings struct {
	// ChunkSize is the out chunk size (SRS chunk_size, default 60000).
	ChunkSize int `json:"chunk_size"`
	// HandshakeTimeout bounds the handshake and the commands up to publish
	// or play (slowloris, docs/THREATS.md row 7).
	HandshakeTimeout msDuration `json:"handshake_timeout"`
	// QueueBytes bounds the bytes queued for one player.
	QueueBytes int `json:"queue_bytes"`
	// PlayWait is how long a player waits for a publisher.
	PlayWait msDuration `json:"play_wait"`
	// SendBuffer sets SO_SNDBUF on player sockets (0: the kernel's
	// autotuning, up to net.ipv4.tcp_wmem's max, 4 MiB by default). A
	// smaller buffer holds less memory per stalled player and detects it
	// sooner, at the cost of throughput on long round trips.
	SendBuffer int `json:"send_buffer"`
	// EdgeIdle is how long an edge (or an origin-cluster origin) pulls on
	// after the last player of the stream left.
	EdgeIdle msDuration `json:"edge_idle"`
	// ClusterRegistry is the Redis URL (redis://host:port/db) of the
	// origin cluster's stream registry ("": none, coworkers only).
	ClusterRegistry string `json:"cluster_registry"`
	// ClusterRegistryTTL is the life of a registry key without heartbeat.
	ClusterRegistryTTL msDuration `json:"cluster_registry_ttl"`
	// ClusterAnnounce is the RTMP host:port this origin registers (default:
	// its first rtmp listener's address).
	ClusterAnnounce string `json:"cluster_announce"`
}

func defaultSettings() settings {
	return settings{
		ChunkSize:        60000,
		HandshakeTimeout: msDuration(10 * time.Second),
		QueueBytes:       32 << 20,
		PlayWait:         msDuration(10 * time.Second),
		EdgeIdle:         msDuration(5 * time.Second),

		ClusterRegistryTTL: msDuration(10 * time.Second),
	}
}

// vhostRTMP is the plugin's block in a vhost: vhost "x" { rtmp { ... } }.
type vhostRTMP struct {
	Enabled    *bool       `json:"enabled"`
	TCPNoDelay *bool       `json:"tcp_nodelay"`
	MinLatency *bool       `json:"min_latency"`
	MWLatency  *msDuration `json:"mw_latency"`
	// ClusterRedirect answers an RTMP player of a stream that a coworker
	// has with SRS's 302 redirect (bug #92) instead of pulling it.
	ClusterRedirect *bool `json:"cluster_redirect"`
}

// jitter modes (SRS time_jitter).
type jitterMode int

const (
	jitterFull jitterMode = iota
	jitterZero
	jitterOff
)

// vhostOptions is the resolved per-vhost behaviour.
type vhostOptions struct {
	GopCache          bool
	GopCacheMaxFrames int
	QueueLength       time.Duration
	Jitter            jitterMode
	MWLatency         time.Duration
	TCPNoDelay        bool
	FirstPktTimeout   time.Duration
	NormalTimeout     time.Duration
	// Forward lists the destinations of vhost forward {}: host:port (the
	// same app and stream there) or an rtmp:// URL with the variables
	// [vhost], [app], [stream] and [param] (SRS #1342).
	Forward []string
	// ForwardBackend is forward { backend }: an HTTP service asked at each
	// publish for more destinations (SRS 5's on_forward).
	ForwardBackend string
	// Origins is cluster { origin } of a vhost in mode "remote" (an edge).
	Origins []string
	// OriginCluster is cluster { origin_cluster }: a stream wanted here and
	// published on a coworker is pulled from it (SRS answers RTMP players
	// with a 302 redirect; Rill's pull-through serves every protocol).
	OriginCluster bool
	// TokenTraverse is cluster { token_traverse } of an edge: each client
	// is checked by an origin (its hooks see the client's param) before the
	// edge accepts it.
	TokenTraverse bool
	// UpstreamVhost is cluster { vhost } of an edge: the vhost it pulls
	// from and publishes to at the origin ("" : the stream's own).
	UpstreamVhost string
	// Redirect is rtmp { cluster_redirect } of an origin-cluster vhost.
	Redirect bool
	// Coworkers is cluster { coworkers }: the HTTP APIs (host:port) of the
	// other origins, asked over /api/v1/clusters.
	Coworkers []string
}

func defaultVhostOptions() vhostOptions {
	return vhostOptions{
		GopCache:          true,
		GopCacheMaxFrames: 2500,
		QueueLength:       30 * time.Second,
		MWLatency:         350 * time.Millisecond,
		FirstPktTimeout:   20 * time.Second,
		NormalTimeout:     5 * time.Second,
	}
}

// config is one generation of the plugin's configuration.
type config struct {
	settings
	vhosts map[string]vhostOptions
}

// vhost returns the options of a vhost, falling back to the default vhost
// as the hub does for unknown names.
func (c *config) vhost(name string) (string, vhostOptions) {
	if o, ok := c.vhosts[name]; ok {
		return name, o
	}
	if o, ok := c.vhosts[defaultVhost]; ok {
		return defaultVhost, o
	}
	return defaultVhost, defaultVhostOptions()
}

func parseConfig(cfg sdk.Config) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]vhostOptions{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	if c.ChunkSize < 128 || c.ChunkSize > 65536 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"chunk_size"}, Msg: "must be 128..65536"})
	}
	if c.QueueBytes < 64<<10 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"queue_bytes"}, Msg: "must be at least 65536"})
	}
	if c.SendBuffer < 0 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"send_buffer"}, Msg: "must not be negative"})
	}
	if c.ClusterRegistry != "" {
		if _, err := redis.ParseURL(c.ClusterRegistry); err != nil {
			errs = append(errs, &sdk.ConfigError{Key: []string{"cluster_registry"}, Msg: fmt.Sprintf("not a redis:// URL (redis://[user:password@]host:port/db): %v", err)})
		}
	}
	if time.Duration(c.ClusterRegistryTTL) < time.Second {
		errs = append(errs, &sdk.ConfigError{Key: []string{"cluster_registry_ttl"}, Msg: "must be at least 1s"})
	}
	if c.ClusterAnnounce != "" {
		if _, _, err := net.SplitHostPort(c.ClusterAnnounce); err != nil {
			errs = append(errs, &sdk.ConfigError{Key: []string{"cluster_announce"}, Msg: fmt.Sprintf("%q is not host:port", c.ClusterAnnounce)})
		}
	}
	if c.EdgeIdle < 0 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"edge_idle"}, Msg: "must not be negative"})
	}
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"handshake_timeout"}, Msg: "must be positive"})
	}
	for _, v := range cfg.Vhosts {
		o := defaultVhostOptions()
		o.GopCache = v.Vhost.GopCache
		var vr vhostRTMP
		if err := v.Decode(&vr); err != nil {
			errs = append(errs, err)
		}
		// play {} and publish {} come decoded by the SDK, the same for
		// every plugin; the rtmp block's own keys override them here.
		pb, pub := v.Vhost.Play, v.Vhost.Publish
		o.GopCache = pb.GopCache
		o.GopCacheMaxFrames = pb.GopCacheMaxFrames
		o.QueueLength = pb.QueueLength
		switch pb.TimeJitter {
		case "zero":
			o.Jitter = jitterZero
		case "off":
			o.Jitter = jitterOff
		default:
			o.Jitter = jitterFull
		}
		o.MWLatency, o.TCPNoDelay = pb.MWLatency, pb.TCPNoDelay
		if vr.MWLatency != nil {
			o.MWLatency = time.Duration(*vr.MWLatency)
			if o.MWLatency > 10*time.Second {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"mw_latency"}, Msg: "must be at most 10s"})
			}
		}
		if vr.TCPNoDelay != nil {
			o.TCPNoDelay = *vr.TCPNoDelay
		}
		if pb.MinLatency || (vr.MinLatency != nil && *vr.MinLatency) { // SRS min_latency: no merged writes
			o.MWLatency = 0
			o.TCPNoDelay = true
		}
		o.FirstPktTimeout, o.NormalTimeout = pub.FirstPktTimeout, pub.NormalTimeout
		var fwd forwardBlock
		if err := v.DecodeBlock("forward", &fwd); err != nil {
			errs = append(errs, err)
		}
		if fwd.Enabled == nil || *fwd.Enabled {
			for i, d := range fwd.Destination {
				if err := checkDestination(d); err != nil {
					errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"forward", "destination", strconv.Itoa(i)}, Msg: err.Error(), VhostRelative: true})
				}
			}
			o.Forward = fwd.Destination
			if fwd.Backend != "" {
				if u, err := url.Parse(fwd.Backend); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"forward", "backend"}, Msg: fmt.Sprintf("%q is not an http:// or https:// URL", fwd.Backend), VhostRelative: true})
				}
				o.ForwardBackend = fwd.Backend
			}
		}
		var cl clusterBlock
		if err := v.DecodeBlock("cluster", &cl); err != nil {
			errs = append(errs, err)
		}
		if cl.FollowClient != nil && *cl.FollowClient {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "follow_client"}, VhostRelative: true,
				Msg: "not supported: follow_client makes an edge pull over its player's protocol (HTTP-FLV for an HTTP-FLV player), and Rill's edge pulls over rtmp only (protocol = \"rtmp\"); set it to false or remove it"})
		}
		if cl.DebugSrsUpnode != nil && *cl.DebugSrsUpnode {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "debug_srs_upnode"}, VhostRelative: true,
				Msg: "not supported: Rill's edge connects to its origin with lal's client, which sends no SRS debug fields (srs_pid, srs_id) in its connect; set it to false or remove it"})
		}
		if cl.Mode != "remote" {
			for _, k := range []struct {
				key string
				set bool
			}{{"token_traverse", cl.TokenTraverse != nil && *cl.TokenTraverse}, {"vhost", cl.VhostName != nil}} {
				if k.set {
					errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", k.key}, VhostRelative: true, Msg: "applies to an edge only (mode remote)"})
				}
			}
		}
		o.TokenTraverse = cl.TokenTraverse != nil && *cl.TokenTraverse
		if cl.VhostName != nil {
			if *cl.VhostName == "" || strings.ContainsAny(*cl.VhostName, "/?&# ") {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "vhost"}, VhostRelative: true, Msg: fmt.Sprintf("%q is not a vhost name", *cl.VhostName)})
			}
			o.UpstreamVhost = *cl.VhostName
		}
		if cl.Protocol != nil && *cl.Protocol != "rtmp" {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "protocol"}, Msg: fmt.Sprintf("%q is not supported yet: an edge pulls over rtmp", *cl.Protocol), VhostRelative: true})
		}
		if cl.OriginCluster != nil && *cl.OriginCluster {
			if cl.Mode == "remote" {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "origin_cluster"}, Msg: "an edge (mode remote) cannot be an origin of an origin cluster", VhostRelative: true})
			}
			if len(cl.Coworkers) == 0 && c.ClusterRegistry == "" {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "coworkers"}, Msg: "origin_cluster needs at least one coworker (the host:port of another origin's HTTP API) or the plugin's cluster_registry", VhostRelative: true})
			}
			o.OriginCluster = true
		}
		for i, d := range cl.Coworkers {
			if _, _, err := net.SplitHostPort(d); err != nil {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "coworkers", strconv.Itoa(i)}, Msg: fmt.Sprintf("%q is not host:port (the HTTP API of another origin)", d), VhostRelative: true})
			}
		}
		o.Coworkers = cl.Coworkers
		if vr.ClusterRedirect != nil && *vr.ClusterRedirect {
			if !o.OriginCluster {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster_redirect"}, Msg: "needs cluster { origin_cluster = true } in the vhost"})
			}
			o.Redirect = true
		}
		switch cl.Mode {
		case "", "local":
		case "remote":
			if len(cl.Origin) == 0 {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "origin"}, Msg: "mode remote needs at least one origin", VhostRelative: true})
			}
			for i, d := range cl.Origin {
				if _, _, err := net.SplitHostPort(d); err != nil {
					errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "origin", strconv.Itoa(i)}, Msg: fmt.Sprintf("%q is not host:port", d), VhostRelative: true})
				}
			}
			o.Origins = cl.Origin
		default:
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "mode"}, Msg: fmt.Sprintf("%q is not local or remote", cl.Mode), VhostRelative: true})
		}
		c.vhosts[v.Name] = o
	}
	return c, errors.Join(errs...)
}

// msDuration is SRS's duration: a Go duration string or a number of
// milliseconds (decoded by the SDK, as the shared play/publish blocks are).
type msDuration = sdk.Milliseconds
