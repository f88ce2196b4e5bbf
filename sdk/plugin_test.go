package sdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type settingsT struct {
	Rate     int      `json:"rate"`
	Fragment Duration `json:"fragment"`
	Inner    struct {
		On bool `json:"on"`
	} `json:"inner"`
}

func TestDecodeSettings(t *testing.T) {
	cases := []struct {
		name    string
		json    string
		wantKey string
		wantMsg string
	}{
		{"ok", `{"rate":5,"fragment":"2s","inner":{"on":true}}`, "", ""},
		{"empty", ``, "", ""},
		{"unknown", `{"rat":5}`, "rat", "unknown key"},
		{"type", `{"rate":"five"}`, "rate", "expected int"},
		{"nested type", `{"inner":{"on":3}}`, "inner.on", "expected bool"},
		{"bad duration", `{"fragment":"2 parsecs"}`, "", "bad duration"},
		{"negative duration", `{"fragment":"-1s"}`, "", "negative duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s settingsT
			err := Config{Settings: json.RawMessage(tc.json)}.DecodeSettings(&s)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want *ConfigError, got %v", err)
			}
			if strings.Join(ce.Key, ".") != tc.wantKey || !strings.Contains(ce.Msg, tc.wantMsg) {
				t.Fatalf("got key %v msg %q", ce.Key, ce.Msg)
			}
		})
	}
	var s settingsT
	if err := (Config{Settings: json.RawMessage(`{"rate":1,"fragment":1.5}`)}).DecodeSettings(&s); err != nil || s.Fragment.Std() != 1500*time.Millisecond {
		t.Fatalf("numeric duration: %v %v", err, s.Fragment)
	}
}

func TestDecodeBlockIsVhostRelative(t *testing.T) {
	v := VhostConfig{Name: "live.example.com", Vhost: VhostSettings{Blocks: map[string]json.RawMessage{"forward": json.RawMessage(`{"destinaton":["x"]}`)}}}
	var fwd struct {
		Destination []string `json:"destination"`
	}
	err := v.DecodeBlock("forward", &fwd)
	var ce *ConfigError
	if !errors.As(err, &ce) || !ce.VhostRelative || ce.Vhost != "live.example.com" || strings.Join(ce.Key, ".") != "forward.destinaton" {
		t.Fatalf("got %#v", err)
	}
	if !v.HasBlock("forward") || v.HasBlock("cluster") {
		t.Fatal("HasBlock")
	}
	if err := v.DecodeBlock("cluster", &fwd); err != nil {
		t.Fatalf("missing block: %v", err)
	}
	wp := problemsOf(errors.Join(err, errors.New("plain")))
	if len(wp) != 2 || !wp[0].VhostRelative || wp[1].Message != "plain" {
		t.Fatalf("problems: %+v", wp)
	}
}

func TestRejectSettingsOfPluginWithoutConfigurer(t *testing.T) {
	cfg := Config{Settings: json.RawMessage(`{"x":1}`), Vhosts: []VhostConfig{{Name: "v", Settings: json.RawMessage(`{"enabled":true,"y":2}`)}}}
	ps := problemsOf(rejectSettings(cfg))
	if len(ps) != 2 {
		t.Fatalf("problems: %+v", ps)
	}
}

func TestNewClientID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewClientID()
		if len(id) != 8 || strings.Trim(id, idAlphabet) != "" || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
