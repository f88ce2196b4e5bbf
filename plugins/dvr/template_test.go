package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
)

func TestTemplateRender(t *testing.T) {
	at := time.Date(2024, 3, 7, 9, 5, 4, 7_000_000, time.Local)
	for _, tc := range []struct {
		tmpl, vhost, app, stream, want, format string
	}{
		{defaultPath, defaultVhost, "live", "s1", "./objs/nginx/html/live/s1." + itoa(at.UnixMilli()) + ".flv", formatFLV},
		{"/rec/[vhost]/[app]/[stream]-[2006][01][02]-[15][04][05].[999].mp4", "a.example.com", "live", "cam", "/rec/a.example.com/live/cam-20240307-090504.007.mp4", formatMP4},
		{"/rec/[app]/[stream].FLV", defaultVhost, "live/sub", "x", "/rec/live/sub/x.FLV", formatFLV},
		{"[stream].mp4", defaultVhost, "live", "x~1", "x~1.mp4", formatMP4},
		{"/rec/[unknown]/[stream].flv", defaultVhost, "live", "x", "/rec/[unknown]/x.flv", formatFLV},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			tp, err := parseTemplate(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if tp.format != tc.format {
				t.Errorf("format %s, want %s", tp.format, tc.format)
			}
			got, err := tp.render(tc.vhost, tc.app, tc.stream, at)
			if err != nil || got != tc.want {
				t.Errorf("render = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestTemplateRejects(t *testing.T) {
	for _, bad := range []string{"", "/rec/[stream]", "/rec/[stream].ts", "/rec/x.flv\x00.flv"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("parseTemplate(%q) accepted", bad)
		}
	}
	tp, err := parseTemplate("/rec/[app]/[stream].flv")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ vhost, app, stream string }{
		{defaultVhost, "..", "x"}, {defaultVhost, "live", ".."}, {defaultVhost, "live", "../../etc/passwd"},
		{defaultVhost, "/abs", "x"}, {defaultVhost, "live/../..", "x"}, {defaultVhost, "live", "a/b"},
		{defaultVhost, "live", "a\\b"}, {defaultVhost, "live", "%2e%2e"}, {defaultVhost, "live", "x\x00"},
		{defaultVhost, "live", ""}, {defaultVhost, "live", strings.Repeat("a", 200)}, {"../v", "live", "x"},
		{defaultVhost, "live", ".hidden"},
	} {
		if p, err := tp.render(n.vhost, n.app, n.stream, time.Now()); !errors.Is(err, errTraversal) {
			t.Errorf("render(%q, %q, %q) = %q, %v; want errTraversal", n.vhost, n.app, n.stream, p, err)
		}
	}
}

// FuzzTemplateRender: whatever the names (they come from the network) and
// the template, a rendered path stays under the template's root.
func FuzzTemplateRender(f *testing.F) {
	f.Add("/rec/[vhost]/[app]/[stream].[timestamp].flv", defaultVhost, "live", "s")
	f.Add("./objs/[app]/[stream].mp4", "v", "live/sub", "..")
	f.Add("[app][stream].flv", "v", "..", "x")
	f.Fuzz(func(t *testing.T, tmpl, vhost, app, stream string) {
		tp, err := parseTemplate(tmpl)
		if err != nil {
			return
		}
		p, err := tp.render(vhost, app, stream, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		rel, err := filepath.Rel(tp.root, filepath.Clean(p))
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%q with %q %q %q renders %q outside %q", tmpl, vhost, app, stream, p, tp.root)
		}
	})
}

func vhostCfg(t *testing.T, enabled bool, block string) (*vhostConfig, error) {
	t.Helper()
	return parseVhost(sdk.VhostConfig{Name: defaultVhost, Enabled: enabled, Settings: json.RawMessage(block)})
}

func TestParseVhost(t *testing.T) {
	v, err := vhostCfg(t, true, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if v.plan != planSession || v.duration != 30*time.Second || !v.waitKeyframe || v.jitter != jitterFull || v.path.raw != defaultPath || !v.records("live", "x") {
		t.Errorf("defaults %+v", v)
	}
	v, err = vhostCfg(t, false, `{"enabled":false,"plan":"segment","duration":"10s","wait_keyframe":false,"time_jitter":"zero","path":"/r/[stream].mp4"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !v.configured || v.auto || v.records("live", "x") || v.plan != planSegment || v.duration != 10*time.Second || v.waitKeyframe || v.path.format != formatMP4 {
		t.Errorf("enabled = false: %+v", v)
	}
	v, err = vhostCfg(t, true, `{"apply":["live/a","live/sub/b"]}`)
	if err != nil {
		t.Fatal(err)
	}
	if !v.records("live", "a") || !v.records("live/sub", "b") || v.records("live", "b") {
		t.Errorf("apply list: %+v", v.apply)
	}
	if v, _ := vhostCfg(t, true, `{"apply":[]}`); v == nil || v.records("live", "a") || !v.configured {
		t.Errorf("apply = []: %+v", v)
	}
	if v, _ := vhostCfg(t, false, `{}`); v == nil || v.configured {
		t.Errorf("no dvr block: %+v", v)
	}
	for _, bad := range []string{
		`{"plan":"daily"}`, `{"time_jitter":"some"}`, `{"duration":"1ms"}`, `{"duration":"x"}`,
		`{"path":"/r/x.avi"}`, `{"apply":"none"}`, `{"apply":["../x"]}`, `{"apply":["nostream"]}`,
		`{"unknown":1}`, `{"enabled":"yes"}`,
	} {
		_, err := vhostCfg(t, true, bad)
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a *sdk.ConfigError", bad, err)
		}
	}
}

func TestJitter(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for _, tc := range []struct {
		mode string
		in   []int
		want []int
	}{
		{jitterFull, []int{5000, 5040, 5020, 5080, 9000, 9040, 100}, []int{0, 40, 20, 80, 90, 130, 140}},
		{jitterZero, []int{5000, 5040, 5020, 9000, 100}, []int{0, 40, 40, 4000, 4000}}, // one kind: raised to stay monotonic
		{jitterOff, []int{5000, 5040, 100}, []int{5000, 5040, 5040}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			j := newJitter(tc.mode)
			for i, in := range tc.in {
				kind := 1 + i%2 // alternate video and audio, each monotonic on its own
				if tc.mode != jitterFull {
					kind = 1
				}
				dts, pts := j.correct(kind, ms(in), ms(in+80))
				if dts != ms(tc.want[i]) {
					t.Errorf("packet %d (%dms): dts %v, want %v", i, in, dts, ms(tc.want[i]))
				}
				if pts-dts != ms(80) {
					t.Errorf("packet %d: composition time %v, want 80ms", i, pts-dts)
				}
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
