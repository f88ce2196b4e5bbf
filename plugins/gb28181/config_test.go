package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rill-media/rill/sdk"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, settings, wantErr string
	}{
		{"defaults", `{}`, ""},
		{"range", `{"rtp_port_min":30000,"rtp_port_max":30010}`, ""},
		{"tcp passive alias", `{"transport":"tcp_passive"}`, ""},
		{"tcp active", `{"transport":"tcp_active"}`, ""},
		{"bad transport", `{"transport":"sctp"}`, "transport"},
		{"inverted range", `{"rtp_port_min":30010,"rtp_port_max":30000}`, "rtp_port_min"},
		{"half range", `{"rtp_port_min":30000}`, "rtp_port_min"},
		{"short media timeout", `{"media_timeout":"10ms"}`, "media_timeout"},
		{"reorder window", `{"reorder_packets":0}`, "reorder_packets"},
		{"negative idle", `{"idle_timeout":"-1s"}`, "idle_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(sdk.Config{Settings: json.RawMessage(tc.settings)})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "tcp passive alias" && c.Transport != "tcp" {
					t.Fatalf("transport %q", c.Transport)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one about %s", err, tc.wantErr)
			}
		})
	}
}
