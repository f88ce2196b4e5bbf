// Command rtmp is Rill's RTMP plugin: RTMP publish and play through the hub,
// as SRS serves them (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
