package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

const defaultVhost = sdk.DefaultVhost

// settings is the plugin block: plugin "httpstream" { ... } (or, in an older
// file, plugin "hls" { ... }).
type settings struct {
	// Dir is the static file root (SRS http_server.dir); "" serves no
	// static files.
	Dir string `json:"dir"`
	// MWLatency is the merged-write window of streaming players (SRS
	// mw_latency); 0 writes every packet as it comes.
	MWLatency sdk.Duration `json:"mw_latency"`
	// QueueDuration and QueueBytes bound what a player may have queued
	// and not yet written; beyond either it is dropped.
	QueueDuration sdk.Duration `json:"queue_duration"`
	QueueBytes    int64        `json:"queue_bytes"`
	// PlayWait is how long a player of a stream nobody publishes waits
	// for a publisher before a 404.
	PlayWait sdk.Duration `json:"play_wait"`
	// CORSOrigin is sent as Access-Control-Allow-Origin on streaming and
	// HLS responses; "" sends no CORS headers.
	CORSOrigin *string `json:"cors_origin"`
	// GopCacheMaxFrames caps the in-process GOP cache (SRS
	// gop_cache_max_frames).
	GopCacheMaxFrames int `json:"gop_cache_max_frames"`
	// FLVLegacyHEVC writes H.265 over HTTP-FLV with codec id 12 instead
	// of Enhanced RTMP tags.
	FLVLegacyHEVC bool `json:"flv_hevc_legacy"`
	// ReadHeaderTimeout bounds how long a request's headers may take
	// (slowloris); IdleTimeout how long a keep-alive connection may wait
	// for its next request before it is closed; MaxHeaderBytes the size
	// of a request's headers.
	ReadHeaderTimeout sdk.Duration `json:"read_header_timeout"`
	IdleTimeout       sdk.Duration `json:"idle_timeout"`
	MaxHeaderBytes    int          `json:"max_header_bytes"`
}

// vhostSettings is the plugin's block in a vhost: vhost "x" { hls { ... } }.
// HLS files are written only with enabled = true; HTTP-FLV/TS/AAC/MP3 are
// served unless http_remux = false. (The core reads enabled = false as
// "plugin off for this vhost", which also stops HTTP streaming.)
type vhostSettings struct {
	Enabled      *bool        `json:"enabled"`
	HTTPRemux    *bool        `json:"http_remux"`
	Fragment     sdk.Duration `json:"fragment"`
	Window       sdk.Duration `json:"window"`
	TDRatio      float64      `json:"td_ratio"`
	AOFRatio     float64      `json:"aof_ratio"`
	WaitKeyframe *bool        `json:"wait_keyframe"`
	Cleanup      *bool        `json:"cleanup"`
	Dispose      sdk.Duration `json:"dispose"`
	Path         string       `json:"path"`
	M3U8File     string       `json:"m3u8_file"`
	TSFile       string       `json:"ts_file"`
	EntryPrefix  string       `json:"entry_prefix"`
	HLSCtx       *bool        `json:"hls_ctx"`
	// UseFMP4 (SRS's hls_use_fmp4, also read as use_fmp4) writes fMP4
	// segments for every codec instead of MPEG-TS.
	UseFMP4    *bool `json:"use_fmp4"`
	HLSUseFMP4 *bool `json:"hls_use_fmp4"`
	// LLHLS serves Low-Latency HLS from memory (llhls.go), with partial
	// segments of about PartTarget.
	LLHLS      *bool        `json:"ll_hls"`
	PartTarget sdk.Duration `json:"part_target"`
	// LLByteRange lists parts as byte ranges of their segment.
	LLByteRange *bool `json:"ll_hls_byterange"`
	// Variants names the renditions of a stream (templates of stream
	// names with [stream], [app], [vhost]) that /[app]/[stream]_master.m3u8
	// groups in a master playlist (variants.go).
	Variants []string `json:"variants"`
}

// hlsConfig is a vhost's resolved HLS configuration.
type hlsConfig struct {
	Enabled      bool
	Fragment     time.Duration
	Window       time.Duration
	TDRatio      float64
	AOFRatio     float64
	WaitKeyframe bool
	Cleanup      bool
	Dispose      time.Duration
	Path         string // absolute
	M3U8File     string
	TSFile       string
	EntryPrefix  string
	HLSCtx       bool
	// UseFMP4 makes every stream's segments fMP4 (H.265 streams always
	// are); MPEG-TS stays the default, as in SRS.
	UseFMP4 bool
	// LLHLS keeps the segments in memory as partial segments of about
	// PartTarget and serves the low-latency playlist (implies fMP4).
	LLHLS      bool
	PartTarget time.Duration
	// LLByteRange lists the parts as byte ranges of their segment's URI
	// (EXT-X-PART BYTERANGE, EXT-X-PRELOAD-HINT BYTERANGE-START) instead
	// of URIs of their own (llrange.go).
	LLByteRange bool
	// Variants are the rendition stream name templates of a master
	// playlist.
	Variants []string
}

type vhostConfig struct {
	Name      string
	HTTPRemux bool
	HLS       hlsConfig
	Dash      dashConfig
	// MWLatency and GopCache are the vhost's play {} mw_latency (or
	// min_latency) and gop_cache, as every plugin reads them; the plugin's
	// own mw_latency setting applies where play {} does not set it.
	MWLatency time.Duration
	GopCache  bool
}

// play returns the merged-write window and whether a GOP is cached for
// players of vhost (falling back to the default vhost, as the hub does).
func (c *config) play(vhost string) (time.Duration, bool) {
	v := c.Vhosts[vhost]
	if v == nil {
		v = c.Vhosts[defaultVhost]
	}
	if v == nil {
		return c.MWLatency, c.GopCacheMaxFrames > 0
	}
	return v.MWLatency, v.GopCache && c.GopCacheMaxFrames > 0
}

// config is the whole plugin configuration, swapped atomically on reload.
type config struct {
	Dir               string
	MWLatency         time.Duration
	QueueDuration     time.Duration
	QueueBytes        int64
	PlayWait          time.Duration
	CORSOrigin        string
	GopCacheMaxFrames int
	FLVLegacyHEVC     bool
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	Vhosts            map[string]*vhostConfig
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func cerr(vhost string, key, msg string) error {
	return &sdk.ConfigError{Vhost: vhost, Key: []string{key}, Msg: msg}
}

// parseConfig validates everything and returns the resolved configuration.
func parseConfig(cfg sdk.Config) (*config, error) {
	s := settings{
		MWLatency:         sdk.Duration(350 * time.Millisecond),
		QueueDuration:     sdk.Duration(10 * time.Second),
		QueueBytes:        16 << 20,
		PlayWait:          sdk.Duration(5 * time.Second),
		GopCacheMaxFrames: 2500,
		ReadHeaderTimeout: sdk.Duration(10 * time.Second),
		IdleTimeout:       sdk.Duration(60 * time.Second),
		MaxHeaderBytes:    32 << 10,
	}
	if err := cfg.DecodeSettings(&s); err != nil {
		return nil, err
	}
	c := &config{
		MWLatency: s.MWLatency.Std(), QueueDuration: s.QueueDuration.Std(), QueueBytes: s.QueueBytes,
		PlayWait: s.PlayWait.Std(), CORSOrigin: "*", GopCacheMaxFrames: s.GopCacheMaxFrames,
		FLVLegacyHEVC: s.FLVLegacyHEVC, ReadHeaderTimeout: s.ReadHeaderTimeout.Std(), IdleTimeout: s.IdleTimeout.Std(),
		MaxHeaderBytes: s.MaxHeaderBytes, Vhosts: map[string]*vhostConfig{},
	}
	if s.CORSOrigin != nil {
		c.CORSOrigin = *s.CORSOrigin
		if strings.ContainsAny(c.CORSOrigin, "\r\n") {
			return nil, cerr("", "cors_origin", "must be one line")
		}
	}
	switch {
	case c.MWLatency > 5*time.Second:
		return nil, cerr("", "mw_latency", "must be at most 5s")
	case c.QueueDuration < time.Second:
		return nil, cerr("", "queue_duration", "must be at least 1s")
	case c.QueueBytes < 64<<10:
		return nil, cerr("", "queue_bytes", "must be at least 65536")
	case c.PlayWait > 60*time.Second:
		return nil, cerr("", "play_wait", "must be at most 60s")
	case c.GopCacheMaxFrames < 0:
		return nil, cerr("", "gop_cache_max_frames", "must not be negative")
	case c.ReadHeaderTimeout <= 0:
		return nil, cerr("", "read_header_timeout", "must be positive")
	case c.IdleTimeout <= 0:
		// 0 would keep idle keep-alive connections open forever.
		return nil, cerr("", "idle_timeout", "must be positive")
	case c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20:
		return nil, cerr("", "max_header_bytes", "must be 1024..1048576")
	}
	if s.Dir != "" {
		abs, err := filepath.Abs(s.Dir)
		if err != nil {
			return nil, cerr("", "dir", err.Error())
		}
		c.Dir = abs
	}
	for _, v := range cfg.Vhosts {
		if !v.Enabled {
			continue
		}
		vc, err := parseVhost(v)
		if err != nil {
			return nil, err
		}
		vc.MWLatency, vc.GopCache = c.MWLatency, v.Vhost.Play.GopCache
		if pl := v.Vhost.Play; pl.Set["mw_latency"] || pl.MinLatency {
			vc.MWLatency = pl.MWLatency
		}
		c.Vhosts[v.Name] = vc
	}
	return c, nil
}

func parseVhost(v sdk.VhostConfig) (*vhostConfig, error) {
	s := vhostSettings{
		Fragment: sdk.Duration(10 * time.Second), Window: sdk.Duration(60 * time.Second),
		TDRatio: 1.0, AOFRatio: 2.1, Dispose: sdk.Duration(120 * time.Second), PartTarget: sdk.Duration(500 * time.Millisecond),
		Path: "./objs/nginx/html", M3U8File: "[app]/[stream].m3u8", TSFile: "[app]/[stream]-[seq].ts",
	}
	if err := v.Decode(&s); err != nil {
		return nil, err
	}
	h := hlsConfig{
		Enabled: boolOr(s.Enabled, false), Fragment: s.Fragment.Std(), Window: s.Window.Std(),
		TDRatio: s.TDRatio, AOFRatio: s.AOFRatio, WaitKeyframe: boolOr(s.WaitKeyframe, true),
		Cleanup: boolOr(s.Cleanup, true), Dispose: s.Dispose.Std(), M3U8File: s.M3U8File, TSFile: s.TSFile,
		EntryPrefix: s.EntryPrefix, HLSCtx: boolOr(s.HLSCtx, false),
		UseFMP4: boolOr(s.UseFMP4, boolOr(s.HLSUseFMP4, false)),
		LLHLS:   boolOr(s.LLHLS, false), PartTarget: s.PartTarget.Std(), Variants: s.Variants,
		LLByteRange: boolOr(s.LLByteRange, false),
	}
	if len(h.Variants) > 16 {
		return nil, cerr(v.Name, "variants", "at most 16 renditions")
	}
	for _, tpl := range h.Variants {
		if err := checkVariant(tpl); err != nil {
			return nil, cerr(v.Name, "variants", fmt.Sprintf("%q: %v", tpl, err))
		}
	}
	if s.UseFMP4 != nil && s.HLSUseFMP4 != nil && *s.UseFMP4 != *s.HLSUseFMP4 {
		return nil, cerr(v.Name, "hls_use_fmp4", "contradicts use_fmp4 (set one of them)")
	}
	switch {
	case h.Fragment < 100*time.Millisecond || h.Fragment > 10*time.Minute:
		return nil, cerr(v.Name, "fragment", "must be 100ms..10m")
	case h.Window < h.Fragment:
		return nil, cerr(v.Name, "window", "must be at least fragment")
	case h.TDRatio < 1 || h.TDRatio > 10 || math.IsNaN(h.TDRatio):
		return nil, cerr(v.Name, "td_ratio", "must be 1..10")
	case h.AOFRatio < 1 || h.AOFRatio > 10 || math.IsNaN(h.AOFRatio):
		return nil, cerr(v.Name, "aof_ratio", "must be 1..10")
	case h.PartTarget < 200*time.Millisecond || h.PartTarget > time.Second:
		return nil, cerr(v.Name, "part_target", "must be 200ms..1s")
	case h.LLByteRange && !h.LLHLS:
		return nil, cerr(v.Name, "ll_hls_byterange", "needs ll_hls = true")
	case h.LLHLS && h.Fragment < h.PartTarget:
		return nil, cerr(v.Name, "fragment", "must be at least part_target with ll_hls")
	case strings.ContainsAny(h.EntryPrefix, "\r\n"):
		return nil, cerr(v.Name, "entry_prefix", "must be one line")
	}
	for key, tpl := range map[string]string{"m3u8_file": h.M3U8File, "ts_file": h.TSFile} {
		if err := checkTemplate(tpl); err != nil {
			return nil, cerr(v.Name, key, err.Error())
		}
	}
	if !strings.Contains(h.TSFile, "[seq]") && !strings.Contains(h.TSFile, "[timestamp]") && !strings.Contains(h.TSFile, "[999]") {
		return nil, cerr(v.Name, "ts_file", "must contain [seq], [timestamp] or [999] so segment names differ")
	}
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return nil, cerr(v.Name, "path", err.Error())
	}
	h.Path = abs
	dash, err := parseDash(v)
	if err != nil {
		return nil, err
	}
	return &vhostConfig{Name: v.Name, HTTPRemux: boolOr(s.HTTPRemux, true), HLS: h, Dash: dash}, nil
}
