// Package console serves the web console at /console/ on the API port: the
// plugins, vhosts, streams and clients, live, with kick buttons and a
// player for each stream (HTTP-FLV through mpegts.js, HLS through hls.js,
// WebRTC through the WHEP page whep.html; mpegts.js and hls.js are bundled
// from npm by `make console-vendor` and embedded here), and whip.html, a
// WHIP publisher page for the browser's camera.
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the console under prefix (e.g. "/console/").
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(prefix, http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// Favicon serves the console's icon (an SVG) for /favicon.ico, where
// browsers look when a page names none.
func Favicon(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := assets.ReadFile("assets/favicon.svg")
	if err != nil {
		http.Error(w, "404 not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "max-age=86400")
	_, _ = w.Write(b)
}
