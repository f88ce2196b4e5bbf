// Command webrtc is Rill's WebRTC plugin: WHIP/WHEP and SRS's /rtc/v1 API
// on the core's API port, media on one UDP port shared by every session
// (see server.go).
package main

import (
	"net/http"
	_ "net/http/pprof" // served only when RILL_WEBRTC_PPROF names an address
	"os"

	"github.com/rill-media/rill/sdk"
)

func main() {
	// RILL_WEBRTC_PPROF=127.0.0.1:6061 in the daemon's environment (the
	// plugin inherits it) serves Go's profiler on that address, for
	// profiling the fan-out under load; unset, nothing listens.
	if addr := os.Getenv("RILL_WEBRTC_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	sdk.Serve(newServer())
}
