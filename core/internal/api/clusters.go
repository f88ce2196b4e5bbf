package api

import (
	"net"
	"net/http"
	"strconv"

	"github.com/rill-media/rill/core/internal/hub"
)

// Publisher types of streams a node holds for someone else: an edge's
// pull from its origin and an origin-cluster pull from a coworker. The
// clusters lookup never names them, so two origins cannot send a player to
// each other's copies (a loop with no publisher at its end).
var relayTypes = map[string]bool{"rtmp-edge": true, "rtmp-cluster": true}

// clusters is SRS's origin-cluster lookup (SrsGoApiClusters):
// GET /api/v1/clusters?vhost=&ip=&app=&stream=&coworker= answers
// {code:0, data:{query:{ip,vhost,app,stream}, origin:{ip,port,vhost,api,routers}}}
// when this node has a publisher of the stream, and origin null when not.
// ip is the host the asker reached us at (the coworker parameter, else the
// request's Host), port our RTMP port: where a player is sent.
func (s *Server) clusters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	vhost, app, stream := q.Get("vhost"), q.Get("app"), q.Get("stream")
	if vhost == "" {
		vhost = "__defaultVhost__"
	}
	data := map[string]any{
		"query":  map[string]any{"ip": q.Get("ip"), "vhost": vhost, "app": app, "stream": stream},
		"origin": nil,
	}
	if si, ok := s.originStream(vhost, app, stream); ok {
		if port := s.rtmpPort(); port > 0 {
			api := q.Get("coworker")
			if api == "" {
				api = r.Host
			}
			host := api
			if h, _, err := net.SplitHostPort(api); err == nil {
				host = h
			}
			data["origin"] = map[string]any{
				"ip": host, "port": port, "vhost": si.Ref.Vhost, "api": api, "routers": []string{api},
			}
		}
	}
	e := s.envelope(codeOK)
	e["data"] = data
	s.write(w, r, e)
}

// originStream finds the live stream vhost/app/stream that a publisher of
// ours (not a relay) feeds. A vhost the config does not know is the default
// vhost, as the hub resolves it.
func (s *Server) originStream(vhost, app, stream string) (si0 hub.StreamInfo, ok bool) {
	if s.Vhosts != nil {
		known := false
		for _, v := range s.Vhosts() {
			known = known || v == vhost
		}
		if !known {
			vhost = "__defaultVhost__"
		}
	}
	for _, si := range s.Streams.Streams() {
		if si.Active && si.Publisher != nil && !relayTypes[si.Publisher.Type] &&
			si.Ref.Vhost == vhost && si.Ref.App == app && si.Ref.Stream == stream {
			return si, true
		}
	}
	return hub.StreamInfo{}, false
}

// rtmpPort is the port of the rtmp plugin's first listener (0: none).
func (s *Server) rtmpPort() int {
	for _, st := range s.Plugins.Statuses() {
		if st.Name != "rtmp" {
			continue
		}
		for _, l := range st.Listeners {
			if l.Name != "rtmp" {
				continue
			}
			if _, p, err := net.SplitHostPort(l.Addr); err == nil {
				if n, err := strconv.Atoi(p); err == nil {
					return n
				}
			}
		}
	}
	return 0
}
