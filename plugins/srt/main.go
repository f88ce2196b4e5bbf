// Command srt is Rill's SRT plugin: MPEG-TS over SRT published into the hub
// and played from it, as SRS's srt_server serves it (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
