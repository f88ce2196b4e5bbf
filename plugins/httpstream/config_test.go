package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
)

func TestHTTPServerLimits(t *testing.T) {
	c, err := parseConfig(sdk.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadHeaderTimeout != 10*time.Second || c.IdleTimeout != 60*time.Second || c.MaxHeaderBytes != 32<<10 {
		t.Fatalf("defaults: read_header_timeout %s, idle_timeout %s, max_header_bytes %d", c.ReadHeaderTimeout, c.IdleTimeout, c.MaxHeaderBytes)
	}
	c, err = parseConfig(sdk.Config{Settings: json.RawMessage(`{"idle_timeout":"1s"}`)})
	if err != nil || c.IdleTimeout != time.Second {
		t.Fatalf("idle_timeout 1s: %v %+v", err, c)
	}
	if _, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"idle_timeout":"-1s"}`)}); err == nil {
		t.Error("idle_timeout -1s accepted")
	}
	for _, tt := range []struct{ settings, key string }{
		{`{"idle_timeout":"0s"}`, "idle_timeout"},
		{`{"read_header_timeout":"0s"}`, "read_header_timeout"},
		{`{"max_header_bytes":100}`, "max_header_bytes"},
	} {
		_, err := parseConfig(sdk.Config{Settings: json.RawMessage(tt.settings)})
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) || len(ce.Key) != 1 || ce.Key[0] != tt.key {
			t.Errorf("%s: want a ConfigError on %s, got %v", tt.settings, tt.key, err)
		}
	}
}

// TestVhostPlayMergedWrites: HTTP streaming players of a vhost use its
// play {} mw_latency (or min_latency), as RTMP players do; elsewhere the
// plugin's mw_latency setting.
func TestVhostPlayMergedWrites(t *testing.T) {
	vhost := func(name, play string) sdk.VhostConfig {
		v := sdk.VhostConfig{Name: name, Enabled: true, Vhost: sdk.VhostSettings{GopCache: true, Blocks: map[string]json.RawMessage{}}}
		if play != "" {
			v.Vhost.Blocks["play"] = json.RawMessage(play)
		}
		if err := v.ResolveShared(); err != nil {
			t.Fatal(err)
		}
		return v
	}
	c, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"mw_latency":"200ms"}`), Vhosts: []sdk.VhostConfig{
		vhost(defaultVhost, ""),
		vhost("fast.example.com", `{"mw_latency": 50}`),
		vhost("min.example.com", `{"min_latency": true, "gop_cache": false}`),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vhost string
		mw    time.Duration
		gop   bool
	}{
		{defaultVhost, 200 * time.Millisecond, true},
		{"fast.example.com", 50 * time.Millisecond, true},
		{"min.example.com", 0, false},
		{"unknown.example.com", 200 * time.Millisecond, true}, // the default vhost's
	} {
		if mw, gop := c.play(tc.vhost); mw != tc.mw || gop != tc.gop {
			t.Errorf("vhost %s: mw_latency %v gop %v, want %v %v", tc.vhost, mw, gop, tc.mw, tc.gop)
		}
	}
}

// TestLLDashVariantsConfig: the hls block's hls_use_fmp4, ll_hls,
// part_target and variants, and the vhost's dash block, with their
// defaults and the key named by each refusal.
func TestLLDashVariantsConfig(t *testing.T) {
	vhost := func(hls, dash string) sdk.VhostConfig {
		v := sdk.VhostConfig{Name: defaultVhost, Enabled: true, Settings: json.RawMessage(hls),
			Vhost: sdk.VhostSettings{Blocks: map[string]json.RawMessage{}}}
		if dash != "" {
			v.Vhost.Blocks["dash"] = json.RawMessage(dash)
		}
		return v
	}
	vc, err := parseVhost(vhost(`{"enabled":true,"hls_use_fmp4":true,"ll_hls":true,"fragment":"1s","variants":["[stream]","[stream]_sd"]}`,
		`{"enabled":true,"dash_fragment":2,"dash_window_size":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := vc.HLS; !h.UseFMP4 || !h.LLHLS || h.PartTarget != 500*time.Millisecond || len(h.Variants) != 2 {
		t.Errorf("hls %+v", h)
	}
	if d := vc.Dash; !d.Enabled || d.Fragment != 2*time.Second || d.Window != 10*time.Second || d.UpdatePeriod != 10*time.Second ||
		!d.Cleanup || d.MPDFile != "[app]/[stream].mpd" {
		t.Errorf("dash %+v", d)
	}
	vc, err = parseVhost(vhost(`{}`, `{"enabled":true}`))
	if err != nil || vc.HLS.UseFMP4 || vc.HLS.LLHLS || vc.Dash.Window != 300*time.Second || vc.Dash.Fragment != 10*time.Second {
		t.Errorf("defaults: %v %+v", err, vc)
	}
	for _, c := range []struct{ hls, dash, key string }{
		{`{"part_target":"100ms"}`, "", "part_target"},
		{`{"part_target":"2s"}`, "", "part_target"},
		{`{"ll_hls":true,"fragment":"100ms","window":"1s","part_target":"200ms"}`, "", "fragment"},
		{`{"use_fmp4":true,"hls_use_fmp4":false}`, "", "hls_use_fmp4"},
		{`{"ll_hls_byterange":true}`, "", "ll_hls_byterange"},
		{`{"variants":["a/b"]}`, "", "variants"},
		{`{"variants":["[seq]"]}`, "", "variants"},
		{`{"variants":[""]}`, "", "variants"},
		{`{}`, `{"dash_fragment":0.1}`, "dash.dash_fragment"},
		{`{}`, `{"dash_timeshift":30,"dash_window_size":3}`, "dash.dash_window_size"},
		{`{}`, `{"dash_fragment":10,"dash_timeshift":5}`, "dash.dash_timeshift"},
		{`{}`, `{"dash_mpd_file":"../x.mpd"}`, "dash.dash_mpd_file"},
		{`{}`, `{"dash_mpd_file":"[app]/[stream].m3u8"}`, "dash.dash_mpd_file"},
		{`{}`, `{"dash_bogus":1}`, "dash.dash_bogus"},
	} {
		_, err := parseVhost(vhost(c.hls, c.dash))
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) || strings.Join(ce.Key, ".") != c.key {
			t.Errorf("%s %s: want a ConfigError on %s, got %v", c.hls, c.dash, c.key, err)
		}
	}
}
