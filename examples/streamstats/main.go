// Command streamstats is an example of a third-party Rill plugin, built in
// its own module against github.com/rill-media/rill/sdk alone.
//
// It reads every stream published on the vhosts that enable it, counts
// what flows (packets, bytes, key frames, frame rate, codecs, timestamps)
// and serves the counts as JSON on the API port:
//
//	GET /api/v1/streamstats/            every stream it reads
//	GET /api/v1/streamstats/live/x      one stream of the default vhost
//
// The operator installs the binary as <plugin_dir>/streamstats and writes:
//
//	plugin "streamstats" {
//	  window = "5s"                  # the frame-rate window (default 5s)
//	}
//	vhost "__defaultVhost__" {
//	  streamstats { enabled = true } # opt in per vhost
//	}
//
// docs/plugins.md in the Rill repository walks through it line by line.
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(New()) }
