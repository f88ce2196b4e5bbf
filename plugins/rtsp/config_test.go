package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/plugins/internal/digestauth"
	"github.com/rill-media/rill/sdk"
)

func TestParseConfigAuth(t *testing.T) {
	vh := func(name, js string) sdk.VhostConfig {
		return sdk.VhostConfig{Name: name, Enabled: true, Settings: json.RawMessage(js)}
	}
	c, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{
		vh(defaultVhost, `{"auth":{"users":{"alice":"pw"},"play":false}}`),
		vh("open.example", `{"enabled":true}`),
	}}, digestauth.NewNonces())
	if err != nil {
		t.Fatal(err)
	}
	if a := c.authFor(defaultVhost, true); a == nil || a.Realm != "rill" || a.Users["alice"] != "pw" {
		t.Fatalf("publish auth %+v", a)
	}
	if c.authFor(defaultVhost, false) != nil || c.authFor("open.example", true) != nil {
		t.Fatal("auth where none is configured")
	}
	_, err = parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{
		vh(defaultVhost, `{"auth":{"realm":"a\"b","users":{"a:b":"pw","c":""},"nonce_ttl":"1s","x":1}}`),
	}}, digestauth.NewNonces())
	for _, want := range []string{"auth.x", "unknown key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want %q", err, want)
		}
	}
	_, err = parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{
		vh(defaultVhost, `{"auth":{"realm":"a\"b","users":{"a:b":"pw","c":""},"nonce_ttl":"1s"}}`),
	}}, digestauth.NewNonces())
	for _, want := range []string{"realm", `user name "a:b"`, `user "c" has an empty password`, "nonce_ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v: want %q", err, want)
		}
	}
	if _, err = parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{vh(defaultVhost, `{"auth":{}}`)}}, digestauth.NewNonces()); err == nil || !strings.Contains(err.Error(), "users") {
		t.Errorf("no users: %v", err)
	}
}

func TestWithUser(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "rtsp_user=al+ice",
		"token=1":                 "token=1&rtsp_user=al+ice",
		"rtsp_user=x&token=1&a":   "token=1&a&rtsp_user=al+ice",
		"token=1&rtsp_user&&b=%2": "token=1&b=%2&rtsp_user=al+ice",
	} {
		if got := withUser(in, "al ice"); got != want {
			t.Errorf("withUser(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseConfigMWLatency(t *testing.T) {
	c, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"mw_latency":"50ms"}`), Vhosts: []sdk.VhostConfig{
		{Name: "a", Enabled: true, Vhost: sdk.VhostSettings{Play: sdk.Play{MWLatency: 0, MinLatency: true}}},
		{Name: "b", Enabled: true},
	}}, digestauth.NewNonces())
	if err != nil {
		t.Fatal(err)
	}
	if c.mwLatency("a") != 0 || c.mwLatency("b") != 50*time.Millisecond || c.mwLatency("other") != 50*time.Millisecond {
		t.Fatalf("mw_latency a %s b %s", c.mwLatency("a"), c.mwLatency("b"))
	}
	if _, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"mw_latency":"6s"}`)}, digestauth.NewNonces()); err == nil {
		t.Fatal("mw_latency 6s accepted")
	}
}
