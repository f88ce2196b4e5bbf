package main

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rill-media/rill/sdk"
)

// vhostCfg is a vhost as the core passes it: the exec block as JSON.
func vhostCfg(name string, block string) sdk.VhostConfig {
	return sdk.VhostConfig{Name: name, Enabled: true, Settings: json.RawMessage(block)}
}

func TestParseIngestAndTranscode(t *testing.T) {
	cfg := sdk.Config{
		Settings: json.RawMessage(`{"ffmpeg":"/bin/true","rtmp":"127.0.0.1:19350"}`),
		Vhosts: []sdk.VhostConfig{vhostCfg("__defaultVhost__", `{
			"publish": ["touch /tmp/[stream].marker"],
			"ingest": {
				"cam": {"input":"file","url":"./a.mp4"},
				"enc": {"input":"device","iformat":"lavfi","url":"testsrc2","stream":"synthetic",
					"engine":{"vcodec":"libx264","vbitrate":800,"vpreset":"veryfast","acodec":"an"}},
				"off": {"enabled":false,"input":"file","url":"x"}
			},
			"transcode": {"apply":["live/*"], "engine": {
				"sd": {"vcodec":"libx264","vwidth":320,"vheight":180,"vfps":25,"vprofile":"baseline","vparams":["-g","50"],
					"acodec":"aac","abitrate":64,"asample_rate":44100,"achannels":2},
				"off": {"enabled":false}
			}}
		}`)},
	}
	c, err := parseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := c.vhosts["__defaultVhost__"]
	if len(v.ingests) != 2 {
		t.Fatalf("ingests %+v", v.ingests)
	}
	want := map[string][]string{
		"ingest/__defaultVhost__/cam": {"/bin/true", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i", "./a.mp4",
			"-c", "copy", "-f", "flv", "rtmp://127.0.0.1:19350/live/cam?vhost=__defaultVhost__"},
		"ingest/__defaultVhost__/enc": {"/bin/true", "-hide_banner", "-nostdin", "-loglevel", "warning", "-f", "lavfi", "-i", "testsrc2",
			"-c:v", "libx264", "-b:v", "800k", "-preset", "veryfast", "-an", "-f", "flv", "rtmp://127.0.0.1:19350/live/synthetic?vhost=__defaultVhost__"},
	}
	for _, sp := range v.ingests {
		if !reflect.DeepEqual(sp.argv, want[sp.key]) {
			t.Errorf("%s:\n got %q\nwant %q", sp.key, sp.argv, want[sp.key])
		}
	}
	if len(v.transcode.engines) != 1 {
		t.Fatalf("engines %+v", v.transcode.engines)
	}
	ref := sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "cam", Param: "?vhost=__defaultVhost__"}
	sp, err := c.transcodeSpec(v.transcode, v.transcode.engines[0], ref)
	if err != nil {
		t.Fatal(err)
	}
	wantT := []string{"/bin/true", "-hide_banner", "-nostdin", "-loglevel", "warning", "-i", "rtmp://127.0.0.1:19350/live/cam?vhost=__defaultVhost__",
		"-c:v", "libx264", "-r", "25", "-vf", "scale=320:180", "-profile:v", "baseline", "-g", "50",
		"-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2",
		"-f", "flv", "rtmp://127.0.0.1:19350/live/cam_sd?vhost=__defaultVhost__&rill_transcode=sd"}
	if !reflect.DeepEqual(sp.argv, wantT) {
		t.Errorf("transcode:\n got %q\nwant %q", sp.argv, wantT)
	}
	ps, err := c.publishSpec(v, v.publish[0], ref)
	if err != nil || !reflect.DeepEqual(ps.argv, []string{"touch", "/tmp/cam.marker"}) {
		t.Errorf("publish: %q %v", ps.argv, err)
	}
	if ps.respawn != respawnOnFailure {
		t.Errorf("publish respawn %v", ps.respawn)
	}
}

func TestTranscodeNeverRetriggers(t *testing.T) {
	tc := &transcodeConfig{apply: []string{"live/*"}, engines: []engineConfig{{name: "sd"}, {name: "hd"}}}
	tests := []struct {
		ref  sdk.StreamRef
		want bool
	}{
		{sdk.StreamRef{App: "live", Stream: "cam"}, true},
		{sdk.StreamRef{App: "live", Stream: "cam", Param: "?vhost=v&rill_transcode=sd"}, false},
		{sdk.StreamRef{App: "live", Stream: "cam_sd"}, false},
		{sdk.StreamRef{App: "live", Stream: "cam_hd"}, false},
		{sdk.StreamRef{App: "other", Stream: "cam"}, false},
	}
	for _, tt := range tests {
		if got := tc.transcodes(tt.ref); got != tt.want {
			t.Errorf("%+v: %v, want %v", tt.ref, got, tt.want)
		}
	}
	var none *transcodeConfig
	if none.transcodes(sdk.StreamRef{App: "live", Stream: "x"}) {
		t.Error("nil transcode transcodes")
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		block    string
		key      string
	}{
		{"bad rtmp", `{"rtmp":"nowhere"}`, `{}`, "rtmp"},
		{"wildcard rtmp", `{"rtmp":"0.0.0.0:1935"}`, `{}`, "rtmp"},
		{"unknown plugin key", `{"ffmpg":"x"}`, `{}`, "ffmpg"},
		{"missing ffmpeg", `{"ffmpeg":"/nonexistent/ffmpeg"}`, `{"ingest":{"a":{"input":"file","url":"x"}}}`, "ffmpeg"},
		{"unknown vhost key", `{}`, `{"pubish":[]}`, "pubish"},
		{"bad input", `{"ffmpeg":"/bin/true"}`, `{"ingest":{"a":{"input":"tape","url":"x"}}}`, "ingest.a.input"},
		{"no url", `{"ffmpeg":"/bin/true"}`, `{"ingest":{"a":{"input":"file"}}}`, "ingest.a.url"},
		{"option url", `{"ffmpeg":"/bin/true"}`, `{"ingest":{"a":{"input":"file","url":"-y"}}}`, "ingest.a.url"},
		{"device without format", `{"ffmpeg":"/bin/true"}`, `{"ingest":{"a":{"input":"device","url":"/dev/video0"}}}`, "ingest.a.iformat"},
		{"bad ingest stream", `{"ffmpeg":"/bin/true"}`, `{"ingest":{"a":{"input":"file","url":"x","stream":"a b"}}}`, "ingest.a.stream"},
		{"bad vcodec", `{"ffmpeg":"/bin/true"}`, `{"transcode":{"engine":{"sd":{"vcodec":"x;y"}}}}`, "transcode.engine.sd.vcodec"},
		{"negative width", `{"ffmpeg":"/bin/true"}`, `{"transcode":{"engine":{"sd":{"vwidth":-1}}}}`, "transcode.engine.sd.vwidth"},
		{"bad engine name", `{"ffmpeg":"/bin/true"}`, `{"transcode":{"engine":{"s d":{}}}}`, "transcode.engine.s d"},
		{"bad apply", `{"ffmpeg":"/bin/true"}`, `{"transcode":{"apply":["live"],"engine":{"sd":{}}}}`, "transcode.apply.0"},
		{"unterminated", `{}`, `{"publish":["echo 'x"]}`, "publish.0"},
		{"placeholder program", `{}`, `{"publish":["[stream] x"]}`, "publish.0"},
		{"bad respawn", `{}`, `{"respawn":"sometimes"}`, "respawn"},
		{"bad output", `{"ffmpeg":"/bin/true"}`, `{"transcode":{"engine":{"sd":{"output":"a b"}}}}`, "transcode.engine.sd.output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(sdk.Config{Settings: json.RawMessage(tt.settings), Vhosts: []sdk.VhostConfig{vhostCfg("v", tt.block)}})
			if err == nil {
				t.Fatal("accepted")
			}
			var keys []string
			var walk func(error)
			walk = func(err error) {
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					for _, e := range j.Unwrap() {
						walk(e)
					}
					return
				}
				var ce *sdk.ConfigError
				if errors.As(err, &ce) {
					keys = append(keys, strings.Join(ce.Key, "."))
				}
			}
			walk(err)
			for _, k := range keys {
				if k == tt.key {
					return
				}
			}
			t.Fatalf("error %v names keys %q, want %q", err, keys, tt.key)
		})
	}
}

func TestDisabledVhostHasNoChildren(t *testing.T) {
	cfg := sdk.Config{Vhosts: []sdk.VhostConfig{
		{Name: "a", Enabled: false, Settings: json.RawMessage(`{"publish":["x"]}`)},
		vhostCfg("b", `{"enabled":false,"publish":["x"]}`),
	}}
	c, err := parseConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.vhosts) != 0 {
		t.Fatalf("vhosts %+v", c.vhosts)
	}
}

func TestPublishRejectsUnsafeStream(t *testing.T) {
	c, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{vhostCfg("v", `{"publish":["touch /tmp/[stream]"]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	v := c.vhosts["v"]
	for _, s := range []string{"../../etc/x", "..", "a b", "$(id)", "a\nb"} {
		if sp, err := c.publishSpec(v, v.publish[0], sdk.StreamRef{Vhost: "v", App: "live", Stream: s}); !errors.Is(err, errUnsafeValue) {
			t.Errorf("stream %q: %q %v", s, sp.argv, err)
		}
	}
	// A name may start with '-' ("/tmp/-rf" is a path), an argument may not.
	c, err = parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{vhostCfg("v", `{"publish":["rm [stream]"]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	v = c.vhosts["v"]
	if sp, err := c.publishSpec(v, v.publish[0], sdk.StreamRef{Vhost: "v", App: "live", Stream: "-rf"}); !errors.Is(err, errUnsafeValue) {
		t.Errorf("stream -rf: %q %v", sp.argv, err)
	}
}
