package main

import (
	"encoding/json"
	"errors"
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
