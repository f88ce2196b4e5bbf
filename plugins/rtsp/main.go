// Command rtsp is Rill's RTSP plugin (SRS 7's rtsp_server, on lal's
// pkg/rtsp): RTSP publish (ANNOUNCE/RECORD) into the hub and play
// (DESCRIBE/SETUP/PLAY) of any hub stream, RTP over interleaved TCP or UDP
// (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
