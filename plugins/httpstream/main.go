// Command httpstream is Rill's HTTP delivery plugin (binary
// bin/plugins/httpstream, plugin "httpstream" { }, formerly named hls;
// default listener 0.0.0.0:8080): every stream of the hub as HTTP-FLV,
// HTTP-TS, HTTP-AAC and HTTP-MP3 live streams, HLS playlists and MPEG-TS
// segments for vhosts with hls { enabled = true }, and static files, with
// SRS's URLs and knobs.
package main

import (
	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/sdk"
)

func main() {
	// lal logs through naza's global logger, which writes to stdout, the
	// go-plugin handshake channel: silence it.
	_ = nazalog.Init(func(o *nazalog.Option) {
		o.IsToStdout = false
		o.Level = nazalog.LevelLogNothing
	})
	sdk.Serve(newServer())
}
