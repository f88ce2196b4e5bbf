// Command caster is Rill's stream caster plugin: SRS's stream_caster kinds
// that are push-only inputs, MPEG-TS over UDP (mpegts_over_udp) and FLV
// over HTTP POST (flv), each published into the hub (see server.go).
package main

import "github.com/rill-media/rill/sdk"

func main() { sdk.Serve(newServer()) }
