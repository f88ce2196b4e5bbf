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
		{"bad duration", `{"fragment":"2 parsecs"}`, "fragment", "bad duration"},
		{"negative duration", `{"fragment":"-1s"}`, "fragment", "negative duration"},
		{"nested unknown", `{"inner":{"of":true}}`, "inner.of", "unknown key"},
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

// TestDecodeEveryProblemAtItsKey: every problem of a block comes back, each
// with the whole path of its own key, also for values that a type's
// UnmarshalJSON refuses (encoding/json names no key for those and stops at
// the first).
func TestDecodeEveryProblemAtItsKey(t *testing.T) {
	type engine struct {
		Rate Duration `json:"rate"`
	}
	type embedded struct {
		Window Duration `json:"window"`
	}
	type block struct {
		embedded
		Fragment Duration          `json:"fragment"`
		Count    int               `json:"count"`
		Inner    *settingsT        `json:"inner"`
		Engines  map[string]engine `json:"engines"`
		List     []engine          `json:"list"`
		Name     string            `json:"name"`
	}
	raw := `{"fragment":"banana","count":"x","window":"w","name":"ok",` +
		`"inner":{"fragment":"1 parsec","rat":1},"engines":{"sd":{"rate":"r"},"hd":{"rate":"1s"}},` +
		`"list":[{"rate":"1s"},{"rate":"q"}],"nope":1}`
	var b block
	err := Config{Settings: json.RawMessage(raw)}.DecodeSettings(&b)
	got := map[string]string{}
	for _, p := range problemsOf(err) {
		got[strings.Join(p.KeyPath, ".")] = p.Message
	}
	want := map[string]string{
		"fragment":        `bad duration "banana"`,
		"count":           "expected int, got string",
		"window":          `bad duration "w"`,
		"inner.fragment":  `bad duration "1 parsec"`,
		"inner.rat":       "unknown key",
		"engines.sd.rate": `bad duration "r"`,
		"list.1.rate":     `bad duration "q"`,
		"nope":            "unknown key",
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d: %v", len(got), len(want), got)
	}
	for k, m := range want {
		if !strings.Contains(got[k], m) {
			t.Errorf("key %s: got %q, want %q", k, got[k], m)
		}
	}
	// A valid document decodes as before.
	if err := (Config{Settings: json.RawMessage(`{"window":"3s","engines":{"sd":{"rate":"1s"}}}`)}).DecodeSettings(&b); err != nil || b.Window.Std() != 3*time.Second || b.Engines["sd"].Rate.Std() != time.Second {
		t.Fatalf("valid: %v %+v", err, b)
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
	v.Vhost.Blocks["play"] = json.RawMessage(`{"fragment":"x","rate":"y"}`)
	var pl settingsT
	ps := problemsOf(v.DecodeBlock("play", &pl))
	if len(ps) != 2 || !ps[0].VhostRelative || strings.Join(ps[0].KeyPath, ".") != "play.fragment" || strings.Join(ps[1].KeyPath, ".") != "play.rate" {
		t.Fatalf("play problems: %+v", ps)
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
