package main

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/rill-media/rill/sdk"
)

// problems returns the problems parseConfig finds in a default vhost with
// the given shared blocks (JSON by block name), as "key: message".
func problems(t *testing.T, blocks map[string]string) []string {
	t.Helper()
	b := map[string]json.RawMessage{}
	for k, v := range blocks {
		b[k] = json.RawMessage(v)
	}
	vc := sdk.VhostConfig{Name: defaultVhost, Enabled: true, Vhost: sdk.VhostSettings{GopCache: true, Blocks: b}}
	shared := vc.ResolveShared() // as the SDK does before Configure
	_, err := parseConfig(sdk.Config{Vhosts: []sdk.VhostConfig{vc}})
	err = errors.Join(shared, err)
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *sdk.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("not a *sdk.ConfigError: %v", err)
		}
		if !ce.VhostRelative || ce.Vhost != defaultVhost {
			t.Fatalf("problem not located in the vhost: %+v", ce)
		}
		out = append(out, strings.Join(ce.Key, ".")+": "+ce.Msg)
	}
	if err != nil {
		walk(err)
	}
	return out
}

// TestScaleOutKeysRefused: SRS cluster and forward keys that Rill does not
// implement are refused at their key, not accepted and ignored (#19).
func TestScaleOutKeysRefused(t *testing.T) {
	cases := []struct {
		name   string
		blocks map[string]string
		want   []string // keys refused as not supported; nil: accepted
	}{
		{"edge", map[string]string{"cluster": `{"mode":"remote","origin":["127.0.0.1:1935"],"protocol":"rtmp"}`}, nil},
		{"forward", map[string]string{"forward": `{"enabled":true,"destination":["127.0.0.1:1936"]}`}, nil},
		{"coworkers", map[string]string{"cluster": `{"mode":"local","origin_cluster":true,"coworkers":["127.0.0.1:9091"]}`}, nil},
		{"edge extras", map[string]string{"cluster": `{"mode":"remote","origin":["127.0.0.1:1935"],"token_traverse":true,"vhost":"x","debug_srs_upnode":false,"follow_client":false}`}, nil},
		{"follow_client and debug_srs_upnode on", map[string]string{"cluster": `{"mode":"remote","origin":["127.0.0.1:1935"],"debug_srs_upnode":true,"follow_client":true}`},
			[]string{"cluster.debug_srs_upnode", "cluster.follow_client"}},
		{"protocol", map[string]string{"cluster": `{"mode":"remote","origin":["127.0.0.1:1935"],"protocol":"flv"}`}, []string{"cluster.protocol"}},
		{"backend", map[string]string{"forward": `{"backend":"http://127.0.0.1:8085/api/v1/forward"}`}, nil},
		{"variables", map[string]string{"forward": `{"destination":["rtmp://127.0.0.1:1936/[app]/[stream]?k=[param]&v=[vhost]"]}`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := problems(t, tc.blocks)
			if len(ps) != len(tc.want) {
				t.Fatalf("problems %q, want one for each of %q", ps, tc.want)
			}
			got := map[string]bool{}
			for _, p := range ps {
				key, msg, _ := strings.Cut(p, ": ")
				if !strings.Contains(msg, "not supported") {
					t.Errorf("%s: message %q does not say it is not supported", key, msg)
				}
				got[key] = true
			}
			for _, k := range tc.want {
				if !got[k] {
					t.Errorf("%s not refused: %q", k, ps)
				}
			}
		})
	}
}

// Origin-cluster keys are checked at their key.
func TestOriginClusterKeysChecked(t *testing.T) {
	for _, tc := range []struct{ block, key, msg string }{
		{`{"origin_cluster":true}`, "cluster.coworkers", "needs at least one coworker"},
		{`{"origin_cluster":true,"coworkers":["nohostport"]}`, "cluster.coworkers.0", "is not host:port"},
		{`{"mode":"remote","origin":["127.0.0.1:1935"],"origin_cluster":true,"coworkers":["127.0.0.1:1985"]}`, "cluster.origin_cluster", "an edge (mode remote) cannot be"},
		{`{"token_traverse":true}`, "cluster.token_traverse", "applies to an edge only"},
		{`{"vhost":"up.example.com"}`, "cluster.vhost", "applies to an edge only"},
		{`{"mode":"remote","origin":["127.0.0.1:1935"],"vhost":"a/b"}`, "cluster.vhost", "is not a vhost name"},
	} {
		ps := problems(t, map[string]string{"cluster": tc.block})
		if len(ps) != 1 || !strings.HasPrefix(ps[0], tc.key+": ") || !strings.Contains(ps[0], tc.msg) {
			t.Errorf("%s: problems %q, want %s: ...%s...", tc.block, ps, tc.key, tc.msg)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	for _, tc := range []struct {
		ref   sdk.StreamRef
		vhost string
		want  string
	}{
		{sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "s"}, "", "rtmp://o:1935/live/s"},
		{sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "s", Param: "?token=abc&x=1"}, "", "rtmp://o:1935/live/s?token=abc&x=1"},
		{sdk.StreamRef{Vhost: "v.example.com", App: "live", Stream: "s", Param: "?vhost=v.example.com&token=abc"}, "", "rtmp://o:1935/live/s?vhost=v.example.com&token=abc"},
		{sdk.StreamRef{Vhost: "v.example.com", App: "live", Stream: "s", Param: "?token=abc"}, "up.example.com", "rtmp://o:1935/live/s?vhost=up.example.com&token=abc"},
	} {
		if got := upstreamURL("o:1935", tc.ref, tc.vhost); got != tc.want {
			t.Errorf("%+v %q: %q, want %q", tc.ref, tc.vhost, got, tc.want)
		}
	}
}

func TestParseClusterAnswer(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string // "" : an error
	}{
		{200, `{"code":0,"data":{"query":{},"origin":{"ip":"10.0.0.2","port":1935,"vhost":"__defaultVhost__","api":"10.0.0.2:1985","routers":["10.0.0.2:1985"]}}}`, "10.0.0.2:1935"},
		{200, `{"code":0,"data":{"query":{},"origin":{"ip":"::1","port":19350}}}`, "[::1]:19350"},
		{200, `{"code":0,"data":{"query":{},"origin":null}}`, ""},
		{200, `{"code":0,"data":{"origin":{"ip":"","port":1935}}}`, ""},
		{200, `{"code":0,"data":{"origin":{"ip":"x","port":70000}}}`, ""},
		{200, `{"code":2048}`, ""},
		{404, `{}`, ""},
		{200, `not json`, ""},
	} {
		got, err := parseClusterAnswer("c:1", tc.status, []byte(tc.body))
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%d %s: %q %v, want %q", tc.status, tc.body, got, err, tc.want)
		}
	}
}

func FuzzParseClusterAnswer(f *testing.F) {
	f.Add(`{"code":0,"data":{"origin":{"ip":"10.0.0.2","port":1935}}}`)
	f.Add(`{"code":0,"data":{"origin":null}}`)
	f.Fuzz(func(t *testing.T, body string) {
		addr, err := parseClusterAnswer("c:1", 200, []byte(body))
		if err == nil {
			if _, _, e := net.SplitHostPort(addr); e != nil {
				t.Fatalf("answer %q gave %q, not host:port", body, addr)
			}
		}
	})
}

// Forward destinations and the backend are checked at their key.
func TestForwardKeysChecked(t *testing.T) {
	for _, tc := range []struct{ block, key, msg string }{
		{`{"destination":["no-port"]}`, "forward.destination.0", "neither host:port nor an rtmp:// URL"},
		{`{"destination":["http://x/a/b"]}`, "forward.destination.0", "not an rtmp://"},
		{`{"destination":["rtmp://x/[app]/[strem]"]}`, "forward.destination.0", "unknown variable [strem]"},
		{`{"destination":["rtmp://x/onlyapp"]}`, "forward.destination.0", "needs an app and a stream"},
		{`{"backend":"127.0.0.1:8085/api"}`, "forward.backend", "not an http:// or https:// URL"},
	} {
		ps := problems(t, map[string]string{"forward": tc.block})
		if len(ps) != 1 || !strings.HasPrefix(ps[0], tc.key+": ") || !strings.Contains(ps[0], tc.msg) {
			t.Errorf("%s: problems %q, want %s: ...%s...", tc.block, ps, tc.key, tc.msg)
		}
	}
}

func TestDestinationURL(t *testing.T) {
	ref := sdk.StreamRef{Vhost: "v.example.com", App: "live", Stream: "cam", Param: "?token=abc&x=1"}
	for _, tc := range []struct{ dest, want string }{
		{"127.0.0.1:1936", "rtmp://127.0.0.1:1936/live/cam?vhost=v.example.com"},
		{"rtmp://10.0.0.1/[app]/[stream]?k=[param]", "rtmp://10.0.0.1:1935/live/cam?k=token=abc&x=1"},
		{"rtmp://10.0.0.1:19350/[vhost]/[app]_[stream]", "rtmp://10.0.0.1:19350/v.example.com/live_cam"},
	} {
		got, err := destinationURL(tc.dest, ref)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.dest, got, err, tc.want)
		}
	}
	def := sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "cam"}
	if got, _ := destinationURL("127.0.0.1:1936", def); got != "rtmp://127.0.0.1:1936/live/cam" {
		t.Errorf("default vhost: %q", got)
	}
}
