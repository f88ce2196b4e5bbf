package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

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
}

func defaultSettings() settings {
	return settings{
		ChunkSize:        60000,
		HandshakeTimeout: msDuration(10 * time.Second),
		QueueBytes:       32 << 20,
		PlayWait:         msDuration(10 * time.Second),
	}
}

// vhostRTMP is the plugin's block in a vhost: vhost "x" { rtmp { ... } }.
type vhostRTMP struct {
	Enabled    *bool       `json:"enabled"`
	TCPNoDelay *bool       `json:"tcp_nodelay"`
	MinLatency *bool       `json:"min_latency"`
	MWLatency  *msDuration `json:"mw_latency"`
}

// playBlock is SRS's vhost play {} section (shared with other players such
// as HTTP-FLV, so every SRS key is accepted).
type playBlock struct {
	GopCache             *bool        `json:"gop_cache"`
	GopCacheMaxFrames    *int         `json:"gop_cache_max_frames"`
	QueueLength          *secDuration `json:"queue_length"`
	TimeJitter           *string      `json:"time_jitter"`
	MixCorrect           *bool        `json:"mix_correct"`
	ATC                  *bool        `json:"atc"`
	ATCAuto              *bool        `json:"atc_auto"`
	MWLatency            *msDuration  `json:"mw_latency"`
	MWMsgs               *int         `json:"mw_msgs"`
	SendMinInterval      *float64     `json:"send_min_interval"`
	ReduceSequenceHeader *bool        `json:"reduce_sequence_header"`
	TCPNoDelay           *bool        `json:"tcp_nodelay"`
	MinLatency           *bool        `json:"min_latency"`
}

// publishBlock is SRS's vhost publish {} section.
type publishBlock struct {
	FirstPktTimeout *msDuration `json:"firstpkt_timeout"`
	NormalTimeout   *msDuration `json:"normal_timeout"`
	MR              *bool       `json:"mr"`
	MRLatency       *msDuration `json:"mr_latency"`
	ParseSPS        *bool       `json:"parse_sps"`
	TryAnnexbFirst  *bool       `json:"try_annexb_first"`
	KickoffForIdle  *msDuration `json:"kickoff_for_idle"`
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
	// Forward lists the host:port destinations of vhost forward {}.
	Forward []string
	// Origins is cluster { origin } of a vhost in mode "remote" (an edge).
	Origins []string
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
		var pb playBlock
		if err := v.DecodeBlock("play", &pb); err != nil {
			errs = append(errs, err)
		}
		var pub publishBlock
		if err := v.DecodeBlock("publish", &pub); err != nil {
			errs = append(errs, err)
		}
		if pb.GopCache != nil {
			o.GopCache = *pb.GopCache
		}
		if pb.GopCacheMaxFrames != nil {
			if *pb.GopCacheMaxFrames < 0 {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"play", "gop_cache_max_frames"}, Msg: "must not be negative", VhostRelative: true})
			}
			o.GopCacheMaxFrames = *pb.GopCacheMaxFrames
		}
		if pb.QueueLength != nil {
			o.QueueLength = time.Duration(*pb.QueueLength)
		}
		if pb.TimeJitter != nil {
			switch strings.ToLower(*pb.TimeJitter) {
			case "full":
				o.Jitter = jitterFull
			case "zero":
				o.Jitter = jitterZero
			case "off":
				o.Jitter = jitterOff
			default:
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"play", "time_jitter"}, Msg: fmt.Sprintf("%q is not full, zero or off", *pb.TimeJitter), VhostRelative: true})
			}
		}
		if pb.MWLatency != nil {
			o.MWLatency = time.Duration(*pb.MWLatency)
		}
		if vr.MWLatency != nil {
			o.MWLatency = time.Duration(*vr.MWLatency)
		}
		if o.MWLatency > 10*time.Second {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"play", "mw_latency"}, Msg: "must be at most 10s", VhostRelative: true})
		}
		for _, b := range []*bool{pb.TCPNoDelay, vr.TCPNoDelay} {
			if b != nil {
				o.TCPNoDelay = *b
			}
		}
		for _, b := range []*bool{pb.MinLatency, vr.MinLatency} {
			if b != nil && *b { // SRS min_latency: no merged writes
				o.MWLatency = 0
				o.TCPNoDelay = true
			}
		}
		var fwd forwardBlock
		if err := v.DecodeBlock("forward", &fwd); err != nil {
			errs = append(errs, err)
		}
		if fwd.Enabled == nil || *fwd.Enabled {
			for i, d := range fwd.Destination {
				if _, _, err := net.SplitHostPort(d); err != nil {
					errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"forward", "destination", strconv.Itoa(i)}, Msg: fmt.Sprintf("%q is not host:port", d), VhostRelative: true})
				}
			}
			o.Forward = fwd.Destination
		}
		if len(fwd.Backend) > 0 {
			errs = append(errs, unsupported(v.Name, "forward", "backend", "destinations from an HTTP backend are not implemented (list them in destination)"))
		}
		var cl clusterBlock
		if err := v.DecodeBlock("cluster", &cl); err != nil {
			errs = append(errs, err)
		}
		for _, u := range []struct {
			key string
			raw json.RawMessage
		}{
			{"token_traverse", cl.TokenTraverse}, {"vhost", cl.VhostName}, {"debug_srs_upnode", cl.DebugSrsUpnode},
			{"coworkers", cl.Coworkers}, {"origin_cluster", cl.OriginCluster}, {"follow_client", cl.FollowClient},
		} {
			if len(u.raw) > 0 {
				errs = append(errs, unsupported(v.Name, "cluster", u.key, "Rill does not implement origin clusters and scale-out"))
			}
		}
		if cl.Protocol != nil && *cl.Protocol != "rtmp" {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"cluster", "protocol"}, Msg: fmt.Sprintf("%q is not supported yet: an edge pulls over rtmp", *cl.Protocol), VhostRelative: true})
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
		if pub.FirstPktTimeout != nil {
			o.FirstPktTimeout = time.Duration(*pub.FirstPktTimeout)
		}
		if pub.NormalTimeout != nil {
			o.NormalTimeout = time.Duration(*pub.NormalTimeout)
		}
		c.vhosts[v.Name] = o
	}
	return c, errors.Join(errs...)
}

// unsupported refuses a key of SRS's that Rill does not implement yet
// (origin clusters, scale-out): refused, not ignored, so that nobody runs a
// config believing it does what it says.
func unsupported(vhost, block, key, why string) *sdk.ConfigError {
	return &sdk.ConfigError{Vhost: vhost, Key: []string{block, key}, VhostRelative: true,
		Msg: "not supported yet: " + why + "; remove the key"}
}

// msDuration decodes a Go duration string ("350ms", "2s") or a number of
// milliseconds, SRS's unit for mw_latency and the publish timeouts.
type msDuration time.Duration

func (d *msDuration) UnmarshalJSON(b []byte) error {
	v, err := parseDuration(b, time.Millisecond)
	*d = msDuration(v)
	return err
}

// secDuration is msDuration with a number meaning seconds (SRS queue_length).
type secDuration time.Duration

func (d *secDuration) UnmarshalJSON(b []byte) error {
	v, err := parseDuration(b, time.Second)
	*d = secDuration(v)
	return err
}

func parseDuration(b []byte, unit time.Duration) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
			return time.Duration(f * float64(unit)), nil
		}
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return 0, &sdk.ConfigError{Msg: fmt.Sprintf("bad duration %q", s)}
		}
		return v, nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || f < 0 {
		return 0, &sdk.ConfigError{Msg: fmt.Sprintf("bad duration %s", b)}
	}
	return time.Duration(f * float64(unit)), nil
}
