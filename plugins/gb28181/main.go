// Command gb28181 is Rill's GB28181 plugin: cameras register over SIP and
// push MPEG-PS over RTP into the hub (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
