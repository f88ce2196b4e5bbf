package pluginhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestPluginLogWholeNumbers feeds a plugin-style JSON log line through the
// same steps go-plugin's client takes (decode into map[string]interface{},
// then Named(...).Info(msg, kv...) on ClientConfig.Logger) and checks that
// counts print as integers, not as float64 ("5.06e+06").
func TestPluginLogWholeNumbers(t *testing.T) {
	var buf bytes.Buffer
	core := hclog.New(&hclog.LoggerOptions{Name: "core", Output: &buf, Level: hclog.Trace})
	l := newPluginLogger(core.Named("dvr"))

	line := `{"@level":"info","@message":"segment written","@module":"dvr","bytes":5060000,"frames":123456789,"ratio":0.5,"duration":"18.398s"}`
	var raw map[string]interface{}
	if err := json.Unmarshal([]byte(line), &raw); err != nil {
		t.Fatal(err)
	}
	msg := raw["@message"].(string)
	var kv []interface{}
	for _, k := range []string{"bytes", "frames", "ratio", "duration"} {
		kv = append(kv, k, raw[k])
	}
	l.Named("dvr").Info(msg, kv...)

	out := buf.String()
	for _, want := range []string{"bytes=5060000", "frames=123456789", "ratio=0.5", "duration=18.398s", "core.dvr.dvr"} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "e+") {
		t.Errorf("log line %q has a float exponent", out)
	}
}

func TestWholeNumbersLeavesKeysAndFractions(t *testing.T) {
	in := []interface{}{"n", float64(3), "f", 1.25, "s", "x", "big", 1e300}
	out := wholeNumbers(in)
	if out[1] != int64(3) || out[3] != 1.25 || out[5] != "x" || out[7] != 1e300 {
		t.Fatalf("wholeNumbers(%v) = %v", in, out)
	}
	if in[1] != float64(3) {
		t.Fatalf("input modified: %v", in)
	}
}
