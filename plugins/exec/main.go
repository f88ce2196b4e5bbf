// Command exec is Rill's plugin for external programs, as SRS's ingest,
// transcode and exec (nginx-rtmp's exec_publish) do: it pulls files, URLs
// and devices into Rill through FFmpeg, transcodes published streams into
// new ones, and runs programs while a stream is published. Every child runs
// in its own process group, dies with the plugin, is restarted with backoff
// while it is needed and is killed, group and all, when it is not.
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
