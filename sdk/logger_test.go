package sdk

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestDurationLoggerJSON checks the plugin's JSON log output carries a
// time.Duration as its String() form, not as nanoseconds (1.8398e+10 once
// the core decoded it).
func TestDurationLoggerJSON(t *testing.T) {
	var buf bytes.Buffer
	l := newDurationLogger(hclog.New(&hclog.LoggerOptions{Name: "dvr", Output: &buf, JSONFormat: true}))
	l.With("client_id", "c1").Named("rec").Info("segment written", "bytes", 5060000, "duration", 18398*time.Millisecond)
	l.With("uptime", 2*time.Second).Info("tick")
	out := buf.String()
	for _, want := range []string{`"duration":"18.398s"`, `"bytes":5060000`, `"client_id":"c1"`, `"uptime":"2s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %s", out, want)
		}
	}
	if strings.Contains(out, "18398000000") {
		t.Errorf("duration logged as nanoseconds: %q", out)
	}
}
