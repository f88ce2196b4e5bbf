package sdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func vhostWith(blocks map[string]string, gop bool) VhostConfig {
	b := map[string]json.RawMessage{}
	for k, v := range blocks {
		b[k] = json.RawMessage(v)
	}
	return VhostConfig{Name: DefaultVhost, Enabled: true, Vhost: VhostSettings{GopCache: gop, Blocks: b}}
}

func TestSharedBlocksDefaults(t *testing.T) {
	v := vhostWith(nil, true)
	if err := v.ResolveShared(); err != nil {
		t.Fatal(err)
	}
	p, pub := v.Vhost.Play, v.Vhost.Publish
	if !p.GopCache || p.MWLatency != 350*time.Millisecond || p.QueueLength != 30*time.Second || p.TimeJitter != "full" || p.TCPNoDelay || len(p.Set) != 0 {
		t.Errorf("play defaults %+v", p)
	}
	if pub.FirstPktTimeout != 20*time.Second || pub.NormalTimeout != 5*time.Second || !pub.ParseSPS {
		t.Errorf("publish defaults %+v", pub)
	}
	v = vhostWith(nil, false)
	_ = v.ResolveShared()
	if v.Vhost.Play.GopCache {
		t.Error("the vhost's gop_cache = false not applied")
	}
}

// TestSharedBlocksSRSUnits: numbers are SRS's units (mw_latency and the
// publish timeouts in ms, queue_length in s); min_latency turns merged
// writes off and TCP_NODELAY on.
func TestSharedBlocksSRSUnits(t *testing.T) {
	v := vhostWith(map[string]string{
		"play":    `{"mw_latency": 100, "queue_length": 10, "time_jitter": "ZERO", "gop_cache": false}`,
		"publish": `{"firstpkt_timeout": 2000, "normal_timeout": "1s"}`,
	}, true)
	if err := v.ResolveShared(); err != nil {
		t.Fatal(err)
	}
	p, pub := v.Vhost.Play, v.Vhost.Publish
	if p.MWLatency != 100*time.Millisecond || p.QueueLength != 10*time.Second || p.TimeJitter != "zero" || p.GopCache || !p.Set["mw_latency"] || p.Set["atc"] {
		t.Errorf("play %+v", p)
	}
	if pub.FirstPktTimeout != 2*time.Second || pub.NormalTimeout != time.Second {
		t.Errorf("publish %+v", pub)
	}
	v = vhostWith(map[string]string{"play": `{"mw_latency": "500ms", "min_latency": true}`}, true)
	if err := v.ResolveShared(); err != nil {
		t.Fatal(err)
	}
	if v.Vhost.Play.MWLatency != 0 || !v.Vhost.Play.TCPNoDelay {
		t.Errorf("min_latency: %+v", v.Vhost.Play)
	}
}

func TestSharedBlocksProblems(t *testing.T) {
	v := vhostWith(map[string]string{
		"play":    `{"time_jitter": "some", "mw_latency": "11s", "gop_cache_max_frames": -1, "bogus": 1}`,
		"publish": `{"normal_timeout": "soon"}`,
	}, true)
	err := v.ResolveShared()
	var got []string
	for _, p := range problemsOf(err) {
		if !p.VhostRelative || p.Vhost != DefaultVhost {
			t.Errorf("problem not in the vhost: %+v", p)
		}
		got = append(got, strings.Join(p.KeyPath, "."))
	}
	want := "play.bogus,play.gop_cache_max_frames,play.mw_latency,play.time_jitter,publish.normal_timeout"
	if strings.Join(sorted(got), ",") != want {
		t.Errorf("problems at %v, want %s (%v)", got, want, err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("not ConfigErrors: %v", err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
