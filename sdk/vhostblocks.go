package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SRS's vhost play {} and publish {} sections belong to no single plugin:
// every player (RTMP, HTTP-FLV, WebRTC, SRT, ...) and every publisher reads
// them. The SDK decodes and resolves them once per configuration, with
// SRS's defaults, into VhostSettings.Play and VhostSettings.Publish, so
// that every plugin applies the same values. Problems in them are reported
// once per plugin process with the key's path (the core prints each once).

// Play is a vhost's play {} section, resolved.
type Play struct {
	// GopCache is play.gop_cache, else the vhost's gop_cache (default on).
	GopCache bool
	// GopCacheMaxFrames bounds the cached GOP (default 2500; 0 unbounded).
	GopCacheMaxFrames int
	// QueueLength bounds what a player may have queued, in media time
	// (SRS queue_length, seconds; default 30 s).
	QueueLength time.Duration
	// TimeJitter is "full" (default), "zero" or "off".
	TimeJitter string
	// MWLatency is the merged-write window (SRS mw_latency, milliseconds;
	// default 350 ms); 0 with MinLatency.
	MWLatency time.Duration
	// TCPNoDelay sets TCP_NODELAY on players' sockets (on with MinLatency).
	TCPNoDelay bool
	// MinLatency is SRS's min_latency: no merged writes, TCP_NODELAY.
	MinLatency bool
	// MixCorrect, ATC, ATCAuto, MWMsgs, SendMinInterval and
	// ReduceSequenceHeader are SRS's keys of the same names.
	MixCorrect, ATC, ATCAuto bool
	MWMsgs                   int
	SendMinInterval          float64
	ReduceSequenceHeader     bool
	// Set lists the keys the file gives (a plugin with a setting of its
	// own for the same thing lets the vhost's win only when set).
	Set map[string]bool
}

// Publish is a vhost's publish {} section, resolved.
type Publish struct {
	// FirstPktTimeout and NormalTimeout end a publisher that sends no
	// media for that long (first packet, then between packets; SRS
	// milliseconds; defaults 20 s and 5 s).
	FirstPktTimeout, NormalTimeout time.Duration
	// MR, MRLatency, ParseSPS, TryAnnexbFirst and KickoffForIdle are SRS's
	// keys of the same names.
	MR             bool
	MRLatency      time.Duration
	ParseSPS       bool
	TryAnnexbFirst bool
	KickoffForIdle time.Duration
	Set            map[string]bool
}

// DefaultPlay and DefaultPublish are SRS's defaults (trunk/conf/full.conf).
func DefaultPlay() Play {
	return Play{GopCache: true, GopCacheMaxFrames: 2500, QueueLength: 30 * time.Second, TimeJitter: "full",
		MWLatency: 350 * time.Millisecond, MWMsgs: 8, Set: map[string]bool{}}
}

// DefaultPublish returns SRS's publish defaults.
func DefaultPublish() Publish {
	return Publish{FirstPktTimeout: 20 * time.Second, NormalTimeout: 5 * time.Second, MRLatency: 350 * time.Millisecond,
		ParseSPS: true, TryAnnexbFirst: true, Set: map[string]bool{}}
}

type playBlock struct {
	GopCache             *bool         `json:"gop_cache"`
	GopCacheMaxFrames    *int          `json:"gop_cache_max_frames"`
	QueueLength          *srsDur       `json:"queue_length"`
	TimeJitter           *string       `json:"time_jitter"`
	MixCorrect           *bool         `json:"mix_correct"`
	ATC                  *bool         `json:"atc"`
	ATCAuto              *bool         `json:"atc_auto"`
	MWLatency            *Milliseconds `json:"mw_latency"`
	MWMsgs               *int          `json:"mw_msgs"`
	SendMinInterval      *float64      `json:"send_min_interval"`
	ReduceSequenceHeader *bool         `json:"reduce_sequence_header"`
	TCPNoDelay           *bool         `json:"tcp_nodelay"`
	MinLatency           *bool         `json:"min_latency"`
}

type publishBlock struct {
	FirstPktTimeout *Milliseconds `json:"firstpkt_timeout"`
	NormalTimeout   *Milliseconds `json:"normal_timeout"`
	MR              *bool         `json:"mr"`
	MRLatency       *Milliseconds `json:"mr_latency"`
	ParseSPS        *bool         `json:"parse_sps"`
	TryAnnexbFirst  *bool         `json:"try_annexb_first"`
	KickoffForIdle  *Milliseconds `json:"kickoff_for_idle"`
}

// ResolveShared decodes the vhost's play and publish blocks into
// v.Vhost.Play and v.Vhost.Publish. The SDK calls it before Configure; a
// plugin's unit test that builds a VhostConfig by hand calls it too.
func (v *VhostConfig) ResolveShared() error {
	var errs []error
	bad := func(block, key, format string, args ...any) {
		errs = append(errs, &ConfigError{Vhost: v.Name, Key: []string{block, key}, VhostRelative: true, Msg: fmt.Sprintf(format, args...)})
	}
	p := DefaultPlay()
	p.GopCache = v.Vhost.GopCache
	var pb playBlock
	if err := v.DecodeBlock("play", &pb); err != nil {
		errs = append(errs, err)
	}
	setKeys(v.Vhost.Blocks["play"], p.Set)
	if pb.GopCache != nil {
		p.GopCache = *pb.GopCache
	}
	if pb.GopCacheMaxFrames != nil {
		if *pb.GopCacheMaxFrames < 0 {
			bad("play", "gop_cache_max_frames", "must not be negative")
		}
		p.GopCacheMaxFrames = *pb.GopCacheMaxFrames
	}
	if pb.QueueLength != nil {
		p.QueueLength = time.Duration(*pb.QueueLength)
	}
	if pb.TimeJitter != nil {
		switch j := strings.ToLower(*pb.TimeJitter); j {
		case "full", "zero", "off":
			p.TimeJitter = j
		default:
			bad("play", "time_jitter", "%q is not full, zero or off", *pb.TimeJitter)
		}
	}
	if pb.MWLatency != nil {
		p.MWLatency = time.Duration(*pb.MWLatency)
		if p.MWLatency > 10*time.Second {
			bad("play", "mw_latency", "must be at most 10s")
		}
	}
	if pb.MWMsgs != nil {
		p.MWMsgs = *pb.MWMsgs
	}
	if pb.SendMinInterval != nil {
		p.SendMinInterval = *pb.SendMinInterval
	}
	for _, b := range []struct {
		src *bool
		dst *bool
	}{{pb.MixCorrect, &p.MixCorrect}, {pb.ATC, &p.ATC}, {pb.ATCAuto, &p.ATCAuto}, {pb.ReduceSequenceHeader, &p.ReduceSequenceHeader}, {pb.TCPNoDelay, &p.TCPNoDelay}, {pb.MinLatency, &p.MinLatency}} {
		if b.src != nil {
			*b.dst = *b.src
		}
	}
	if p.MinLatency {
		p.MWLatency, p.TCPNoDelay = 0, true
	}
	v.Vhost.Play = p

	pub := DefaultPublish()
	var ub publishBlock
	if err := v.DecodeBlock("publish", &ub); err != nil {
		errs = append(errs, err)
	}
	setKeys(v.Vhost.Blocks["publish"], pub.Set)
	for _, d := range []struct {
		src *Milliseconds
		dst *time.Duration
	}{{ub.FirstPktTimeout, &pub.FirstPktTimeout}, {ub.NormalTimeout, &pub.NormalTimeout}, {ub.MRLatency, &pub.MRLatency}, {ub.KickoffForIdle, &pub.KickoffForIdle}} {
		if d.src != nil {
			*d.dst = time.Duration(*d.src)
		}
	}
	for _, b := range []struct {
		src *bool
		dst *bool
	}{{ub.MR, &pub.MR}, {ub.ParseSPS, &pub.ParseSPS}, {ub.TryAnnexbFirst, &pub.TryAnnexbFirst}} {
		if b.src != nil {
			*b.dst = *b.src
		}
	}
	v.Vhost.Publish = pub
	return errors.Join(errs...)
}

func setKeys(raw json.RawMessage, set map[string]bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) == nil {
		for k := range m {
			set[k] = true
		}
	}
}

// Milliseconds is a config duration in SRS's style: a Go duration string
// ("350ms", "2s") or a number of milliseconds (SRS's unit for mw_latency
// and the publish timeouts).
type Milliseconds time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Milliseconds) UnmarshalJSON(b []byte) error {
	v, err := srsDuration(b, time.Millisecond)
	*d = Milliseconds(v)
	return err
}

// Std returns d as a time.Duration.
func (d Milliseconds) Std() time.Duration { return time.Duration(d) }

// srsDur is msDur with a number meaning seconds (SRS queue_length).
type srsDur time.Duration

func (d *srsDur) UnmarshalJSON(b []byte) error {
	v, err := srsDuration(b, time.Second)
	*d = srsDur(v)
	return err
}

func srsDuration(b []byte, unit time.Duration) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
			return time.Duration(f * float64(unit)), nil
		}
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return 0, &ConfigError{Msg: fmt.Sprintf("bad duration %q", s)}
		}
		return v, nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || f < 0 {
		return 0, &ConfigError{Msg: fmt.Sprintf("bad duration %s", b)}
	}
	return time.Duration(f * float64(unit)), nil
}
