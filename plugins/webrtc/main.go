// Command webrtc is Rill's WebRTC plugin: WHIP/WHEP and SRS's /rtc/v1 API
// on the core's API port, media on one UDP port shared by every session
// (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
