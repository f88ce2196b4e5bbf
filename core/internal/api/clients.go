package api

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/sdk/wire"
)

// clientCache keeps the last gathering of every plugin's clients briefly,
// so a dashboard polling several endpoints costs one round of Stats calls.
type clientCache struct {
	mu   sync.Mutex
	at   time.Time
	list []wire.ClientStat
}

// clientStats asks every running plugin for its clients (bounded in time:
// a plugin that does not answer within 2 s is left out).
func (s *Server) clientStats(ctx context.Context) []wire.ClientStat {
	s.clients.mu.Lock()
	defer s.clients.mu.Unlock()
	if time.Since(s.clients.at) < 500*time.Millisecond {
		return s.clients.list
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	var all []wire.ClientStat
	var wg sync.WaitGroup
	for _, name := range s.Plugins.Names() {
		c := s.Plugins.Client(name)
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(name string, c *wire.PluginClient) {
			defer wg.Done()
			st, err := c.Stats(ctx)
			if err != nil {
				s.Log.Warn("plugin stats", "plugin", name, "error", err)
				return
			}
			mu.Lock()
			for _, cl := range st.Clients {
				cl.Client.Plugin = name
				all = append(all, cl)
			}
			mu.Unlock()
		}(name, c)
	}
	wg.Wait()
	s.clients.at, s.clients.list = time.Now(), all
	return all
}

// resolveVhost maps a client's vhost as the hub does (unknown → default).
func (s *Server) resolveVhost(v string) string {
	for _, n := range s.Vhosts() {
		if n == v {
			return v
		}
	}
	return hub.DefaultVhost
}

func (s *Server) clientJSON(c wire.ClientStat, streamIDs map[string]string) map[string]any {
	ref := c.Stream
	ref.Vhost = s.resolveVhost(ref.Vhost)
	name := ref.Stream
	ip := c.Client.IP
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	alive := c.Alive.Seconds()
	kbps := 0
	if alive > 0 {
		kbps = int(float64(c.SendBytes+c.RecvBytes) * 8 / 1000 / alive)
	}
	return map[string]any{
		"id": c.Client.ID, "vhost": VhostID(ref.Vhost), "stream": streamIDs[ref.Key()], "ip": ip,
		"pageUrl": c.Client.PageURL, "swfUrl": c.Client.SwfURL, "tcUrl": ref.TcURL, "url": "/" + ref.App + "/" + name,
		"name": name, "type": c.Client.Type, "publish": c.Publish, "alive": alive,
		"send_bytes": c.SendBytes, "recv_bytes": c.RecvBytes, "plugin": c.Client.Plugin,
		"kbps": map[string]any{"recv_30s": 0, "send_30s": kbps},
	}
}

func (s *Server) clientsHandler(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/v1/clients/")
	if r.Method == http.MethodDelete {
		s.kick(w, r, id)
		return
	}
	streamIDs := map[string]string{}
	for _, si := range s.Streams.Streams() {
		streamIDs[si.Ref.Key()] = si.ID
	}
	all := s.clientStats(r.Context())
	if id != "" {
		for _, c := range all {
			if c.Client.ID == id {
				e := s.envelope(codeOK)
				e["client"] = s.clientJSON(c, streamIDs)
				s.write(w, r, e)
				return
			}
		}
		s.fail(w, r, codeClientNotFound)
		return
	}
	e := s.envelope(codeOK)
	e["clients"] = page(r, all, func(c wire.ClientStat) map[string]any { return s.clientJSON(c, streamIDs) })
	s.write(w, r, e)
}

// kick asks every plugin to drop the client; SRS answers code 0 or 2049.
func (s *Server) kick(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		s.fail(w, r, codeClientNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	for _, name := range s.Plugins.Names() {
		c := s.Plugins.Client(name)
		if c == nil {
			continue
		}
		found, err := c.Kick(ctx, id)
		if err != nil {
			s.Log.Warn("kick", "plugin", name, "client_id", id, "error", err)
			continue
		}
		if found {
			s.Log.Info("client kicked through the API", "plugin", name, "client_id", id)
			s.clients.mu.Lock()
			s.clients.at = time.Time{}
			s.clients.mu.Unlock()
			s.write(w, r, map[string]any{"code": codeOK})
			return
		}
	}
	s.fail(w, r, codeClientNotFound)
}

// streamClients counts players and bytes sent per stream key from the
// plugins' client lists.
func (s *Server) streamClients(ctx context.Context) map[string]streamLoad {
	out := map[string]streamLoad{}
	for _, c := range s.clientStats(ctx) {
		ref := c.Stream
		ref.Vhost = s.resolveVhost(ref.Vhost)
		l := out[ref.Key()]
		l.clients++
		l.sendBytes += c.SendBytes
		out[ref.Key()] = l
	}
	return out
}

type streamLoad struct {
	clients   int
	sendBytes uint64
}
