package api

import (
	"net/http"

	"github.com/rill-media/rill/core/internal/console"
)

// SRS's index answers (SrsGoApiRoot, SrsGoApiApi and SrsGoApiV1 in
// trunk/src/app/srs_app_http_api.cpp): "/" lists the roots, "/api/" the
// versions, "/api/v1/" every v1 resource and the tests. As with SRS's mux,
// a path under "/api/v1/" or "/api/" that no resource owns answers its
// index.

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		s.pluginRoute(w, r)
		return
	}
	e := s.envelope(codeOK)
	e["urls"] = map[string]any{
		"api":     "the api root",
		"rtc":     map[string]any{"v1": map[string]string{"play": "Play stream", "publish": "Publish stream", "nack": "Simulate the NACK"}},
		"console": "the web console of rill",
		"metrics": "prometheus metrics of rill",
	}
	s.write(w, r, e)
}

func (s *Server) apiIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/" && s.routeOwner(r.URL.Path) != "" {
		s.pluginRoute(w, r)
		return
	}
	e := s.envelope(codeOK)
	e["urls"] = map[string]string{"v1": "the api version 1.0"}
	s.write(w, r, e)
}

func (s *Server) v1Index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/" && s.routeOwner(r.URL.Path) != "" {
		s.pluginRoute(w, r) // e.g. /api/v1/dvr served by the dvr plugin
		return
	}
	e := s.envelope(codeOK)
	e["urls"] = map[string]string{
		"versions":          "the version of rill",
		"summaries":         "the summary(pid, argv, pwd, cpu, mem) of rill",
		"rusages":           "the rusage of rill",
		"self_proc_stats":   "the self process stats",
		"system_proc_stats": "the system process stats",
		"meminfos":          "the meminfo of system",
		"authors":           "the license, copyright, authors and contributors",
		"features":          "the supported features of rill",
		"requests":          "the request itself, for http debug",
		"vhosts":            "manage all vhosts or specified vhost",
		"streams":           "manage all streams or specified stream",
		"clients":           "manage all clients or specified client, default query top 10 clients",
		"raw":               "raw api for rill, supports rpc=reload and the dvr controls",
		"clusters":          "origin cluster server API",
		"perf":              "System performance stat (not served by rill)",
		"tcmalloc":          "tcmalloc api with params ?page=summary|api (not served by rill)",
		"plugins":           "the plugin processes: name, version, pid, state, restarts",
	}
	e["tests"] = map[string]string{
		"requests":  "show the request info",
		"errors":    "always return an error 100",
		"redirects": "always redirect to /api/v1/test/errors",
		"[vhost]":   "http vhost for http://error.srs.com:1985/api/v1/tests/errors",
	}
	s.write(w, r, e)
}

// testErrors is SRS's /api/v1/tests/errors: always code 100.
func (s *Server) testErrors(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, 100)
}

// testRedirects is SRS's /api/v1/tests/redirects: 301 to the errors test.
func (s *Server) testRedirects(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/api/v1/tests/errors", http.StatusMovedPermanently)
}

// favicon serves the console's icon at the root, where browsers look.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) {
	console.Favicon(w, r)
}
