// Package api serves the core's HTTP API on :1985 with SRS's paths and JSON
// shapes (those of SRS 7: /api/v1/versions, summaries, streams, clients, ...), plus /api/v1/plugins.
package api

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/core/internal/console"
	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/core/internal/pluginhost"
	"github.com/rill-media/rill/sdk/wire"
)

// SRS error codes used in API answers (trunk/src/kernel/srs_kernel_error.hpp).
const (
	codeOK             = 0
	codeNoVhost        = 2014
	codeStreamNotFound = 2048
	codeClientNotFound = 2049
	codeNotFound       = 1031 // no such API
	codeReloadFailed   = 1065 // the new config was rejected
	codeRawDisabled    = 1061 // ERROR_SYSTEM_CONFIG_RAW_DISABLED
)

// Streams is what the API reads of the hub.
type Streams interface {
	Streams() []hub.StreamInfo
}

// Plugins is what the API reads of the plugin host.
type Plugins interface {
	Statuses() []pluginhost.Status
	Info(name string) (wire.Info, bool)
	Client(name string) *wire.PluginClient
	Names() []string
}

// CodecInfo describes a stream's codecs for the API (nil = unknown).
type CodecInfo struct {
	Video map[string]any
	Audio map[string]any
}

// Server is the HTTP API.
type Server struct {
	ServerID  string
	ServiceID string
	Version   string // "1.0.0"
	Started   time.Time
	Streams   Streams
	Plugins   Plugins
	Vhosts    func() []string
	VhostInfo func(name string) VhostInfo       // optional: every vhost enabled, no HLS
	Codecs    func(si hub.StreamInfo) CodecInfo // optional
	Reload    func() error                      // applies the config file again
	// Username and Password turn on basic auth for every route.
	Username, Password string
	// HTTPS says the API is also served over TLS (reported in features).
	HTTPS bool
	Log   hclog.Logger

	proc    procSampler
	kbps    kbpsTracker
	clients clientCache
	handler http.Handler
	once    sync.Once
	srv     *http.Server
	tlsSrv  *http.Server
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler {
	s.once.Do(s.routes)
	return s.handler
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/api/v1/versions", s.versions)
	m.HandleFunc("/api/v1/summaries", s.summaries)
	m.HandleFunc("/api/v1/rusages", s.rusages)
	m.HandleFunc("/api/v1/self_proc_stats", s.selfProcStats)
	m.HandleFunc("/api/v1/system_proc_stats", s.systemProcStats)
	m.HandleFunc("/api/v1/meminfos", s.meminfos)
	m.HandleFunc("/api/v1/features", s.features)
	m.HandleFunc("/api/v1/tests/requests", s.requests)
	m.HandleFunc("/api/v1/tests/errors", s.testErrors)
	m.HandleFunc("/api/v1/tests/redirects", s.testRedirects)
	m.HandleFunc("/api/v1/authors", s.authors)
	m.HandleFunc("/api/v1/clusters", s.clusters)
	for _, p := range []string{"streams", "plugins", "vhosts", "clients"} {
		p := p
		m.HandleFunc("/api/v1/"+p, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/api/v1/"+p+"/", http.StatusFound)
		})
	}
	m.HandleFunc("/api/v1/streams/", s.streams)
	m.HandleFunc("/api/v1/plugins/", s.plugins)
	m.HandleFunc("/api/v1/vhosts/", s.vhosts)
	m.HandleFunc("/api/v1/clients/", s.clientsHandler)
	m.Handle("/metrics", s.metricsHandler())
	m.Handle("/console/", console.Handler("/console/"))
	m.HandleFunc("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
	m.HandleFunc("/api/v1/raw", s.raw)
	m.HandleFunc("/api/v1/", s.v1Index)
	m.HandleFunc("/api/", s.apiIndex)
	m.HandleFunc("/favicon.ico", s.favicon)
	m.HandleFunc("/", s.root)
	s.handler = s.withAuth(m)
}

// Serve runs the API on ln until ctx ends.
func (s *Server) Serve(ln net.Listener) error {
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	err := s.srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// ServeTLS runs the API over TLS on ln with the given certificate files.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	s.tlsSrv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	err := s.tlsSrv.ServeTLS(ln, certFile, keyFile)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Shutdown stops the API servers gracefully.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.tlsSrv != nil {
		err = s.tlsSrv.Shutdown(ctx)
	}
	if s.srv != nil {
		if e := s.srv.Shutdown(ctx); err == nil {
			err = e
		}
	}
	return err
}

func (s *Server) envelope(code int) map[string]any {
	return map[string]any{"code": code, "server": s.ServerID, "service": s.ServiceID, "pid": strconv.Itoa(os.Getpid())}
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, HEAD, PUT, DELETE, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "*")
	}
	if cb := r.URL.Query().Get("callback"); cb != "" && jsonpName(cb) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, cb+"(")
		_, _ = w.Write(b)
		_, _ = io.WriteString(w, ")")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func jsonpName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '.' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int) {
	s.write(w, r, map[string]any{"code": code})
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(s.Version, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	atoi := func(v string) int { n, _ := strconv.Atoi(v); return n }
	e := s.envelope(codeOK)
	e["data"] = map[string]any{"major": atoi(parts[0]), "minor": atoi(parts[1]), "revision": atoi(parts[2]), "version": s.Version}
	s.write(w, r, e)
}

func (s *Server) summaries(w http.ResponseWriter, r *http.Request) {
	selfPct, sysPct := s.proc.sample()
	mi := meminfo()
	rss := rssKB("self")
	memPct := 0.0
	if t := mi["MemTotal"]; t > 0 {
		memPct = float64(rss) / float64(t)
	}
	ramUsed := mi["MemTotal"] - mi["MemAvailable"]
	ramPct := 0.0
	if t := mi["MemTotal"]; t > 0 {
		ramPct = float64(ramUsed) / float64(t)
	}
	swapUsed := mi["SwapTotal"] - mi["SwapFree"]
	swapPct := 0.0
	if t := mi["SwapTotal"]; t > 0 {
		swapPct = float64(swapUsed) / float64(t)
	}
	l1, l5, l15 := loadavg()
	up, idle := uptime()
	cwd, _ := os.Getwd()
	now := time.Now()
	var recv, send uint64
	for _, si := range s.Streams.Streams() {
		recv += si.Ring.BytesWritten
	}
	clients := s.clientStats(r.Context())
	for _, c := range clients {
		send += c.SendBytes
	}
	e := s.envelope(codeOK)
	e["data"] = map[string]any{
		"ok":     true,
		"now_ms": now.UnixMilli(),
		"self": map[string]any{
			"version": s.Version, "pid": os.Getpid(), "ppid": os.Getppid(), "argv": strings.Join(os.Args, " "), "cwd": cwd,
			"mem_kbyte": rss, "mem_percent": memPct, "cpu_percent": selfPct, "srs_uptime": int64(time.Since(s.Started).Seconds()),
		},
		"system": map[string]any{
			"cpu_percent": sysPct, "disk_read_KBps": 0, "disk_write_KBps": 0, "disk_busy_percent": 0,
			"mem_ram_kbyte": mi["MemTotal"], "mem_ram_percent": ramPct, "mem_swap_kbyte": mi["SwapTotal"], "mem_swap_percent": swapPct,
			"cpus": numCPU(), "cpus_online": numCPU(), "uptime": up, "ilde_time": idle,
			"load_1m": l1, "load_5m": l5, "load_15m": l15,
			"net_sample_time": now.UnixMilli(), "net_recv_bytes": 0, "net_send_bytes": 0, "net_recvi_bytes": 0, "net_sendi_bytes": 0,
			"srs_sample_time": now.UnixMilli(), "srs_recv_bytes": recv, "srs_send_bytes": send,
			"conn_sys": 0, "conn_sys_et": 0, "conn_sys_tw": 0, "conn_sys_udp": 0, "conn_srs": len(clients),
		},
	}
	s.write(w, r, e)
}

// VhostID is the API id of a vhost name (stable across restarts).
func VhostID(name string) string {
	sum := sha1.Sum([]byte(name))
	return "vid-" + hex.EncodeToString(sum[:])[:7]
}

// VhostInfo is what the API reports of a vhost's config.
type VhostInfo struct {
	Enabled     bool
	HLS         bool          // hls { enabled = true } with the plugin reading it (httpstream) running
	HLSFragment time.Duration // hls fragment, when HLS is on
}

// vhosts is SRS's /api/v1/vhosts/: each vhost's clients, bytes and rates
// are the sums of its streams' (SrsStatisticVhost counts every client of
// its streams, publishers included).
func (s *Server) vhosts(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/v1/vhosts/")
	names := s.Vhosts()
	sort.Strings(names)
	streams := s.Streams.Streams()
	load := s.streamClients(r.Context())
	var list []map[string]any
	for _, n := range names {
		info := VhostInfo{Enabled: true}
		if s.VhostInfo != nil {
			info = s.VhostInfo(n)
		}
		v := map[string]any{"id": VhostID(n), "name": n, "enabled": info.Enabled}
		clients, count, recv30, send30 := 0, 0, 0, 0
		var recv, send uint64
		for _, si := range streams {
			if si.Ref.Vhost != n {
				continue
			}
			l := load[si.Ref.Key()]
			count++
			clients += l.clients
			recv += si.Ring.BytesWritten
			send += l.sendBytes
			recv30 += s.streamRecvRate(si)
			send30 += l.send30
		}
		v["clients"], v["streams"], v["recv_bytes"], v["send_bytes"] = clients, count, recv, send
		v["kbps"] = map[string]any{"recv_30s": recv30, "send_30s": send30}
		hls := map[string]any{"enabled": info.HLS}
		if info.HLS {
			hls["fragment"] = fixed2(info.HLSFragment.Seconds())
		}
		v["hls"] = hls
		if id != "" && (id == v["id"] || id == n) {
			e := s.envelope(codeOK)
			e["vhost"] = v
			s.write(w, r, e)
			return
		}
		list = append(list, v)
	}
	if id != "" {
		s.fail(w, r, codeNoVhost)
		return
	}
	e := s.envelope(codeOK)
	e["vhosts"] = list
	s.write(w, r, e)
}

// fixed2 is a number written with two decimals, as SRS writes its floats
// ("fragment":2.00).
type fixed2 float64

func (f fixed2) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(f), 'f', 2, 64), nil
}

func (s *Server) streamJSON(si hub.StreamInfo, load map[string]streamLoad) map[string]any {
	url := "/" + si.Ref.App + "/" + si.Ref.Stream
	if si.Ref.Vhost != hub.DefaultVhost {
		url = si.Ref.Vhost + url
	}
	recv30 := s.streamRecvRate(si)
	l := load[si.Ref.Key()]
	st := map[string]any{
		"id": si.ID, "name": si.Ref.Stream, "vhost": VhostID(si.Ref.Vhost), "vhost_name": si.Ref.Vhost, "app": si.Ref.App,
		"tcUrl": si.Ref.TcURL, "url": url, "live_ms": time.Now().UnixMilli(), "clients": l.clients,
		"frames": si.Ring.WriteSeq, "send_bytes": l.sendBytes, "recv_bytes": si.Ring.BytesWritten,
		"kbps":    map[string]any{"recv_30s": recv30, "send_30s": l.send30},
		"publish": map[string]any{"active": si.Active, "cid": ""},
		"video":   nil, "audio": nil,
	}
	if si.Active {
		st["publish"] = map[string]any{"active": true, "cid": si.Publisher.ID}
		if s.Codecs != nil {
			ci := s.Codecs(si)
			if ci.Video != nil {
				st["video"] = ci.Video
			}
			if ci.Audio != nil {
				st["audio"] = ci.Audio
			}
		}
	}
	return st
}

// streamRecvRate is the kbps published into a stream's ring, whose byte
// counter starts at 0 when the publication starts.
func (s *Server) streamRecvRate(si hub.StreamInfo) int {
	return s.kbps.rate("stream/"+si.ID+"/recv", si.Published, time.Now(), si.Ring.BytesWritten)
}

func (s *Server) streams(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/v1/streams/")
	all := s.Streams.Streams()
	load := s.streamClients(r.Context())
	if id != "" {
		for _, si := range all {
			if si.ID == id {
				e := s.envelope(codeOK)
				e["stream"] = s.streamJSON(si, load)
				s.write(w, r, e)
				return
			}
		}
		s.fail(w, r, codeStreamNotFound)
		return
	}
	e := s.envelope(codeOK)
	e["streams"] = page(r, all, func(si hub.StreamInfo) map[string]any { return s.streamJSON(si, load) })
	s.write(w, r, e)
}

// raw is SRS's RAW API: rpc=reload applies the config file again.
func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	switch rpc := r.URL.Query().Get("rpc"); rpc {
	case "reload":
		if s.Reload == nil {
			s.write(w, r, map[string]any{"code": codeRawDisabled, "msg": "reload through the API is disabled (api { allow_reload = false })"})
			return
		}
		if err := s.Reload(); err != nil {
			s.Log.Error("reload through the API rejected, the running config stays", "error", err)
			s.write(w, r, map[string]any{"code": codeReloadFailed, "msg": err.Error()})
			return
		}
		s.write(w, r, s.envelope(codeOK))
	case "dvr", "update":
		// SRS's DVR control (rpc=update&scope=dvr&value=vhost&param=enable|disable&data=app/stream,
		// or rpc=dvr&vhost=&app=&stream=&enabled=on|off) belongs to the dvr plugin.
		if rpc == "update" && r.URL.Query().Get("scope") != "dvr" {
			s.write(w, r, map[string]any{"code": codeNotFound, "msg": "rpc=update supports scope=dvr only"})
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/api/v1/dvr"
		if s.routeOwner(r2.URL.Path) == "" {
			s.write(w, r, map[string]any{"code": codeNotFound, "msg": "no dvr plugin running"})
			return
		}
		s.pluginRoute(w, r2)
	default:
		s.write(w, r, map[string]any{"code": codeNotFound, "msg": fmt.Sprintf("unknown rpc %q (supported: reload, dvr, update)", rpc)})
	}
}

// page renders the start/count window of items the request asks for.
func page[T any](r *http.Request, items []T, render func(T) map[string]any) []map[string]any {
	start, count := paging(r)
	list := []map[string]any{}
	for i := start; i < len(items) && len(list) < count; i++ {
		list = append(list, render(items[i]))
	}
	return list
}

// paging reads SRS's start/count; count is at least 10 as in SRS.
func paging(r *http.Request) (start, count int) {
	q := r.URL.Query()
	start, _ = strconv.Atoi(q.Get("start"))
	count, _ = strconv.Atoi(q.Get("count"))
	if start < 0 {
		start = 0
	}
	count = max(count, 10)
	return start, count
}

func (s *Server) plugins(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/api/v1/plugins/")
	sts := s.Plugins.Statuses()
	if name != "" {
		for _, st := range sts {
			if st.Name == name {
				e := s.envelope(codeOK)
				e["plugin"] = st
				s.write(w, r, e)
				return
			}
		}
		s.fail(w, r, codeNotFound)
		return
	}
	e := s.envelope(codeOK)
	e["plugins"] = sts
	s.write(w, r, e)
}

// maxRouteBody bounds request bodies forwarded to plugins (SDP offers etc.).
const maxRouteBody = 1 << 20

// routeOwner returns the plugin whose HTTPRoutes prefix matches path
// longest, or "".
func (s *Server) routeOwner(path string) string {
	var best, owner string
	for _, n := range s.Plugins.Names() {
		info, ok := s.Plugins.Info(n)
		if !ok {
			continue
		}
		for _, p := range info.HTTPRoutes {
			if strings.HasPrefix(path, p) && len(p) > len(best) {
				best, owner = p, n
			}
		}
	}
	return owner
}

// pluginRoute forwards requests under a plugin's HTTPRoutes to it.
func (s *Server) pluginRoute(w http.ResponseWriter, r *http.Request) {
	owner := s.routeOwner(r.URL.Path)
	if owner == "" {
		http.Error(w, "404 not found: "+r.URL.Path, http.StatusNotFound)
		return
	}
	c := s.Plugins.Client(owner)
	if c == nil {
		http.Error(w, "plugin "+owner+" is restarting", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRouteBody))
	if err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	resp, err := c.ServeHTTP(r.Context(), wire.HTTPRequest{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header, Body: body, RemoteAddr: r.RemoteAddr,
	})
	if err != nil {
		s.Log.Warn("plugin route failed", "plugin", owner, "path", r.URL.Path, "error", err)
		http.Error(w, "plugin "+owner+": "+err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}
