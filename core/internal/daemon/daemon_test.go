package daemon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/sdk/wire"
)

const enableConf = `plugin "rtmp" {
  listen       = ["127.0.0.1:0"]
  listen_admin = ["127.0.0.1:0"]
  chunk_size   = 4096
}
plugin "web" {}
plugin "dvr" {}
plugin "own" {}
vhost "off.example.com" {
  enabled = false
}
vhost "a.example.com" {
  hls {
    enabled = false
  }
  dvr {
    enabled = false
  }
  own {
    enabled = false
  }
}
vhost "b.example.com" {
  rtmp {
    enabled = true
  }
  play {
    mw_latency = "100ms"
  }
}
`

var enableInfos = map[string]wire.Info{
	"rtmp": {Name: "rtmp", Listeners: []wire.Listener{{Name: "rtmp", Network: "tcp"}, {Name: "admin", Network: "tcp"}}},
	"web":  {Name: "web", VhostBlock: "hls"},
	"dvr":  {Name: "dvr", Capabilities: []string{wire.CapVhostOptIn, wire.CapOwnEnabled}},
	"own":  {Name: "own", Capabilities: []string{wire.CapOwnEnabled}},
}

func parseEnableConf(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("conf.hcl", []byte(enableConf), []string{"rtmp", "hls", "dvr", "own"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPluginEnabledIn is the one rule deciding which plugins serve a vhost:
// never in a disabled vhost; a plugin's enabled key decides; an opt-in
// plugin serves only vhosts with its block; a plugin that reads enabled
// itself is handed every vhost it may serve; a plugin whose vhost block has
// another name (web reads SRS's hls { }) is switched by that block.
func TestPluginEnabledIn(t *testing.T) {
	cfg := parseEnableConf(t)
	want := map[string]map[string]bool{
		"off.example.com":   {"rtmp": false, "web": false, "dvr": false, "own": false},
		"a.example.com":     {"rtmp": true, "web": false, "dvr": true, "own": true},
		"b.example.com":     {"rtmp": true, "web": true, "dvr": false, "own": true},
		config.DefaultVhost: {"rtmp": true, "web": true, "dvr": false, "own": true},
	}
	for vn, plugins := range want {
		v := cfg.Vhosts[vn]
		if v == nil {
			t.Fatalf("vhost %s not parsed", vn)
		}
		for pn, on := range plugins {
			if got := pluginEnabledIn(v, pn, enableInfos[pn]); got != on {
				t.Errorf("vhost %s plugin %s: enabled %v, want %v", vn, pn, got, on)
			}
		}
	}
}

// TestPolicyAndSpecsAgree: the hub's policy (who gets stream events) and
// what each plugin is told at Configure come from the same rule.
func TestPolicyAndSpecsAgree(t *testing.T) {
	cfg := parseEnableConf(t)
	pol := policyOf(cfg, enableInfos)
	specs, err := specsOf(cfg, enableInfos)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != len(enableInfos) {
		t.Fatalf("%d specs for %d plugins", len(specs), len(enableInfos))
	}
	for _, sp := range specs {
		if len(sp.Vhosts) != len(cfg.Vhosts) {
			t.Errorf("plugin %s told of %d vhosts, want %d", sp.Name, len(sp.Vhosts), len(cfg.Vhosts))
		}
		for _, vc := range sp.Vhosts {
			if on := pol.Vhosts[vc.Name].Plugins[sp.Name]; on != vc.Enabled {
				t.Errorf("vhost %s plugin %s: policy %v, configure %v", vc.Name, sp.Name, on, vc.Enabled)
			}
		}
	}
}

// TestSpecsOf: a plugin's first listener comes from listen, the others
// from listen_<name>, which leave its settings; every plugin gets the
// shared vhost blocks alike.
func TestSpecsOf(t *testing.T) {
	cfg := parseEnableConf(t)
	specs, err := specsOf(cfg, enableInfos)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for i, sp := range specs {
		byName[sp.Name] = i
	}
	rtmp := specs[byName["rtmp"]]
	if strings.Join(rtmp.Listen["rtmp"], ",") != "127.0.0.1:0" || strings.Join(rtmp.Listen["admin"], ",") != "127.0.0.1:0" {
		t.Errorf("listeners %v", rtmp.Listen)
	}
	var settings map[string]any
	if err := json.Unmarshal(rtmp.Settings, &settings); err != nil {
		t.Fatal(err)
	}
	if _, ok := settings["listen_admin"]; ok || settings["chunk_size"] != float64(4096) {
		t.Errorf("rtmp settings %v: want chunk_size and no listen_admin", settings)
	}
	for _, sp := range specs {
		for _, vc := range sp.Vhosts {
			if vc.Name != "b.example.com" {
				continue
			}
			var vj struct {
				Blocks map[string]map[string]any `json:"blocks"`
			}
			if err := json.Unmarshal(vc.VhostJSON, &vj); err != nil {
				t.Fatal(err)
			}
			if vj.Blocks["play"]["mw_latency"] != "100ms" {
				t.Errorf("plugin %s: shared blocks %v, want play.mw_latency", sp.Name, vj.Blocks)
			}
		}
	}
}

const controlConf = `vhost "__defaultVhost__" {
  hooks {
    on_publish = ["http://127.0.0.1:8085/api/v1/streams"]
    on_play    = "http://127.0.0.1:8085/api/v1/sessions"
    timeout    = "2s"
  }
  security {
    rules = ["allow publish 127.0.0.1", "deny play all"]
  }
}
vhost "bad.example.com" {
  hooks {
    on_publish = ["ftp://x"]
    on_bogus   = ["http://x"]
  }
  security {
    rules = ["allow publish 127.0.0.1", "permit all"]
  }
}
`

// TestParseControl: hooks and security blocks are read per vhost, and
// each problem names the file, line, vhost and key.
func TestParseControl(t *testing.T) {
	cfg, err := config.Parse("conf.hcl", []byte(controlConf), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := parseControl(cfg)
	if err == nil {
		t.Fatal("bad vhost accepted")
	}
	for _, w := range []string{
		`conf.hcl:13:5: vhost "bad.example.com" key "hooks.on_publish": want http:// or https:// URLs`,
		`conf.hcl:14:5: vhost "bad.example.com" key "hooks.on_bogus": unknown key`,
		`vhost "bad.example.com" key "security.rules.[1]"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("problems %q lack %q", err, w)
		}
	}
	def := out[config.DefaultVhost]
	if !def.hooks.Enabled || def.hooks.Timeout.String() != "2s" || len(def.hooks.URLs["on_publish"]) != 1 || len(def.hooks.URLs["on_play"]) != 1 {
		t.Errorf("default vhost hooks %+v", def.hooks)
	}
	if !def.security.Enabled || len(def.security.Rules) != 2 {
		t.Errorf("default vhost security %+v", def.security)
	}
}

// TestCallbackBody is SRS's callback body: stream_url without the default
// vhost, the client's address without its port, stream_id when known.
func TestCallbackBody(t *testing.T) {
	c := wire.ClientInfo{ID: "c1", IP: "127.0.0.1:5000", PageURL: "http://p"}
	s := wire.StreamRef{Vhost: hub.DefaultVhost, App: "live", Stream: "x", Param: "?token=1", TcURL: "rtmp://h/live"}
	b := body(c, s, "vid-1")
	if b["stream_url"] != "/live/x" || b["ip"] != "127.0.0.1" || b["stream_id"] != "vid-1" || b["param"] != "?token=1" || b["tcUrl"] != "rtmp://h/live" {
		t.Errorf("body %v", b)
	}
	s.Vhost = "v.example.com"
	if b := body(c, s, ""); b["stream_url"] != "v.example.com/live/x" || b["stream_id"] != nil {
		t.Errorf("body of another vhost %v", b)
	}
}
