package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rill-media/rill/sdk"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name, settings, wantErr string
	}{
		{"defaults", `{}`, ""},
		{"fixed udp output with a vhost", `{"output":"rtmp://live.example.com/app/s"}`, ""},
		{"udp output with a template", `{"output":"rtmp://127.0.0.1/[app]/[stream]"}`, `"output"`},
		{"udp output not rtmp", `{"output":"srt://127.0.0.1/live/s"}`, `"output"`},
		{"flv output without stream", `{"flv_output":"rtmp://127.0.0.1/live"}`, `"flv_output"`},
		{"tiny publish timeout", `{"publish_timeout":"1ms"}`, `"publish_timeout"`},
		{"no udp peers", `{"max_udp_peers":0}`, `"max_udp_peers"`},
		{"huge tags", `{"max_tag_size":33554432}`, `"max_tag_size"`},
		{"unknown key", `{"listen_udp":["x"]}`, `listen_udp`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(sdk.Config{Settings: json.RawMessage(tc.settings), Vhosts: []sdk.VhostConfig{{Name: defaultVhost, Enabled: true}}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				o, _ := parseOutput(c.Output)
				if ref := c.ref(o, ""); ref.Vhost != defaultVhost || ref.App == "" {
					t.Errorf("ref %+v", ref)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestRefParam(t *testing.T) {
	c := &config{vhosts: map[string]bool{defaultVhost: true, "v.com": true}}
	o, _ := parseOutput("rtmp://v.com/[app]/[stream]?k=1")
	o, err := o.resolve("live", "x")
	if err != nil {
		t.Fatal(err)
	}
	ref := c.ref(o, "token=abc")
	if ref.Vhost != "v.com" || ref.App != "live" || ref.Stream != "x" || ref.Param != "?k=1&token=abc" || ref.TcURL != "rtmp://v.com/live" {
		t.Errorf("ref %+v", ref)
	}
	o2, _ := parseOutput("rtmp://unknown.com/live/s")
	if ref := c.ref(o2, ""); ref.Vhost != defaultVhost {
		t.Errorf("unknown vhost: %+v", ref)
	}
}
