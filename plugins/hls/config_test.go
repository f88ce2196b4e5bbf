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
