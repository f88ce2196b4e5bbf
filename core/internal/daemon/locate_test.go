package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/pluginhost"
	"github.com/rill-media/rill/sdk/wire"
)

const locateConf = `plugin "rtmp" {
  listen     = ["127.0.0.1:0"]
  chunk_sise = 4096
}
vhost "live.example.com" {
  hls {
    enabled  = true
    fragment = "banana"
  }
  cluster {
    mode      = "local"
    coworkers = ["127.0.0.1:9091"]
  }
  exec {
    transcode {
      engine "sd" {
        vcodec = "libx265x"
      }
    }
  }
}
`

// TestLocatePlugInProblemsAtTheirKeys: a problem a plugin reports is
// printed at its own key's line and column, for plugin blocks, a plugin's
// block in a vhost, nested keys and shared vhost blocks; a key the file
// lacks falls back to its nearest enclosing key; problems come in the
// file's order, and errors joined with them are kept.
func TestLocatePluginProblemsAtTheirKeys(t *testing.T) {
	cfg, err := config.Parse("conf.hcl", []byte(locateConf), []string{"hls", "rtmp", "exec"})
	if err != nil {
		t.Fatal(err)
	}
	prob := func(plugin, vhost string, rel bool, key ...string) pluginhost.Problem {
		return pluginhost.Problem{Plugin: plugin, ConfigProblem: wire.ConfigProblem{Vhost: vhost, KeyPath: key, Message: "bad", VhostRelative: rel}}
	}
	pe := &pluginhost.ProblemsError{Problems: []pluginhost.Problem{
		prob("rtmp", "live.example.com", true, "cluster", "coworkers"),
		prob("hls", "live.example.com", false, "fragment"),
		prob("rtmp", "", false, "chunk_sise"),
		prob("exec", "live.example.com", false, "transcode", "engine", "sd", "vcodec"),
		prob("hls", "live.example.com", false, "window"), // not in the file
		prob("rtmp", "live.example.com", true, "cluster", "coworkers", "0"),
		prob("hls", "live.example.com", true, "cluster", "coworkers"), // the same shared-block problem from another plugin
	}}
	other := errors.New("plugin dvr: launch: no such file")
	got := locate(cfg, nil, errors.Join(pe, other)).Error()
	want := []string{
		`conf.hcl:3:3: plugin "rtmp" key "chunk_sise": bad`,
		`conf.hcl:6:3: vhost "live.example.com" block "hls" key "window": bad`,
		`conf.hcl:8:5: vhost "live.example.com" block "hls" key "fragment": bad`,
		`conf.hcl:12:5: vhost "live.example.com" (checked by plugin "rtmp") key "cluster.coworkers": bad`,
		`conf.hcl:12:18: vhost "live.example.com" (checked by plugin "rtmp") key "cluster.coworkers.0": bad`,
		`conf.hcl:17:9: vhost "live.example.com" block "exec" key "transcode.engine.sd.vcodec": bad`,
		`plugin dvr: launch: no such file`,
	}
	if lines := strings.Split(got, "\n"); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if locate(cfg, nil, nil) != nil {
		t.Fatal("locate(nil) is not nil")
	}
	if e := locate(cfg, nil, other); e != other {
		t.Fatalf("a plain error changed: %v", e)
	}
}
