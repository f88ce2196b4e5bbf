package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
)

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{
		{Name: defaultVhost, Enabled: true, Settings: json.RawMessage(`{"enabled":true}`)},
		{Name: "off.example", Enabled: false, Settings: json.RawMessage(`{"enabled":false}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bind) != 1 || c.Bind[0] != "0.0.0.0:10080" || c.DefaultApp != "live" || c.PeerIdleTimeout.Std() != 10*time.Second {
		t.Fatalf("defaults %+v", c.settings)
	}
	sc := c.srtConfig()
	if sc.PeerIdleTimeout != 10*time.Second || sc.Passphrase != "" {
		t.Fatalf("srt config %+v", sc)
	}
	for name, want := range map[string]struct {
		vhost string
		on    bool
	}{
		"":            {defaultVhost, true},
		"other":       {defaultVhost, true},
		"off.example": {"off.example", false},
	} {
		if v, on := c.vhost(name); v != want.vhost || on != want.on {
			t.Errorf("vhost(%q) = %q %v, want %q %v", name, v, on, want.vhost, want.on)
		}
	}
}

func TestConfigSettings(t *testing.T) {
	c, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"bind":["127.0.0.1:9000"],"latency":"300ms","peerlatency":"50ms",
		"peer_idle_timeout":"3s","passphrase":"0123456789","pbkeylen":32,"mss":1400,"tlpktdrop":false,"default_app":"srt"}`)})
	if err != nil {
		t.Fatal(err)
	}
	sc := c.srtConfig()
	if sc.Latency != 300*time.Millisecond || sc.PeerLatency != 50*time.Millisecond || sc.PeerIdleTimeout != 3*time.Second ||
		sc.PBKeylen != 32 || sc.MSS != 1400 || sc.PayloadSize != 1316 || sc.TooLatePacketDrop || c.Passphrase != "0123456789" || c.DefaultApp != "srt" {
		t.Fatalf("srt config %+v from %+v", sc, c.settings)
	}
	// Unset per-direction latencies follow latency, as gosrt applies it.
	if err := sc.Validate(); err != nil {
		t.Fatalf("gosrt refuses the config: %v", err)
	}
}

func TestConfigRefuses(t *testing.T) {
	for _, tc := range []struct{ settings, key string }{
		{`{"bind":[]}`, "bind"},
		{`{"bind":["nope"]}`, "bind.0"},
		{`{"latency":"70s"}`, "latency"},
		{`{"peer_idle_timeout":"10ms"}`, "peer_idle_timeout"},
		{`{"passphrase":"short"}`, "passphrase"},
		{`{"pbkeylen":20}`, "pbkeylen"},
		{`{"mss":20}`, "mss"},
		{`{"default_app":""}`, "default_app"},
		{`{"no_such_key":1}`, "no_such_key"},
	} {
		_, err := parseConfig(sdk.Config{Settings: json.RawMessage(tc.settings)})
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) || strings.Join(ce.Key, ".") != tc.key {
			t.Errorf("%s: %v, want a problem at %q", tc.settings, err, tc.key)
		}
	}
	// gosrt's own check: a payload of one TS packet does not fit 200 bytes.
	if _, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"mss":200}`)}); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("mss 200: %v", err)
	}
	_, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{{Name: "v", Enabled: true, Settings: json.RawMessage(`{"srt_to_rtmp":false}`)}}})
	var ce *sdk.ConfigError
	if !errors.As(err, &ce) || ce.Vhost != "v" {
		t.Errorf("srt_to_rtmp off: %v", err)
	}
}

func TestConfigVhostSecurity(t *testing.T) {
	c, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"passphrase":"plugin-secret","pbkeylen":16}`), Vhosts: []sdk.VhostConfig{
		{Name: defaultVhost, Enabled: true, Settings: json.RawMessage(`{"enabled":true}`)},
		{Name: "strict", Enabled: true, Settings: json.RawMessage(`{"enabled":true,"passphrase":"vhost-secret-1","pbkeylen":32}`)},
		{Name: "open", Enabled: true, Settings: json.RawMessage(`{"enabled":true,"passphrase":""}`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for vhost, want := range map[string]security{
		defaultVhost: {"plugin-secret", 16},
		"strict":     {"vhost-secret-1", 32},
		"open":       {"", 16},
	} {
		if got := c.security(vhost); got != want {
			t.Errorf("%s: %+v, want %+v", vhost, got, want)
		}
	}
	for _, s := range []string{`{"pbkeylen":20}`, `{"passphrase":"short"}`} {
		_, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{{Name: "v", Enabled: true, Settings: json.RawMessage(s)}}})
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) || ce.Vhost != "v" {
			t.Errorf("%s: %v, want a problem in vhost v", s, err)
		}
	}
}
