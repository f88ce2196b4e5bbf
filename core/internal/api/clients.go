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

// clientsAt is clientStats with the time the list was gathered (the
// clients' byte counters are as of then).
func (s *Server) clientsAt(ctx context.Context) ([]wire.ClientStat, time.Time) {
	list := s.clientStats(ctx)
	s.clients.mu.Lock()
	at := s.clients.at
	s.clients.mu.Unlock()
	return list, at
}

// clientRates returns a client's SRS kbps (recv_30s, send_30s), its
// counters known to be 0 when it connected (Alive ago).
func (s *Server) clientRates(c wire.ClientStat, at time.Time) (recv, send int) {
	since := at.Add(-c.Alive)
	return s.kbps.rate("client/"+c.Client.ID+"/recv", since, at, c.RecvBytes),
		s.kbps.rate("client/"+c.Client.ID+"/send", since, at, c.SendBytes)
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

func (s *Server) clientJSON(c wire.ClientStat, at time.Time, streamIDs map[string]string) map[string]any {
	ref := c.Stream
	ref.Vhost = s.resolveVhost(ref.Vhost)
	name := ref.Stream
	ip := c.Client.IP
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	alive := c.Alive.Seconds()
	// A publisher's rate is what it sends us (recv_30s), a player's what we
	// send it (send_30s), each from its own counter as in SRS.
	recv30, send30 := s.clientRates(c, at)
	return map[string]any{
		"id": c.Client.ID, "vhost": VhostID(ref.Vhost), "stream": streamIDs[ref.Key()], "ip": ip,
		"pageUrl": c.Client.PageURL, "swfUrl": c.Client.SwfURL, "tcUrl": ref.TcURL, "url": "/" + ref.App + "/" + name,
		"name": name, "type": c.Client.Type, "publish": c.Publish, "alive": alive,
		"send_bytes": c.SendBytes, "recv_bytes": c.RecvBytes, "plugin": c.Client.Plugin,
		"kbps": map[string]any{"recv_30s": recv30, "send_30s": send30},
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
	all, at := s.clientsAt(r.Context())
	if id != "" {
		for _, c := range all {
			if c.Client.ID == id {
				e := s.envelope(codeOK)
				e["client"] = s.clientJSON(c, at, streamIDs)
				s.write(w, r, e)
				return
			}
		}
		s.fail(w, r, codeClientNotFound)
		return
	}
	e := s.envelope(codeOK)
	e["clients"] = page(r, all, func(c wire.ClientStat) map[string]any { return s.clientJSON(c, at, streamIDs) })
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
			s.write(w, r, s.envelope(codeOK)) // SRS answers the full envelope
			return
		}
	}
	s.fail(w, r, codeClientNotFound)
}

// streamClients sums the plugins' clients (publishers and players, as
// SRS counts a stream's clients) by stream key: their number, bytes and
// rates.
func (s *Server) streamClients(ctx context.Context) map[string]streamLoad {
	out := map[string]streamLoad{}
	list, at := s.clientsAt(ctx)
	for _, c := range list {
		ref := c.Stream
		ref.Vhost = s.resolveVhost(ref.Vhost)
		l := out[ref.Key()]
		l.clients++
		l.sendBytes += c.SendBytes
		_, send := s.clientRates(c, at)
		l.send30 += send
		out[ref.Key()] = l
	}
	return out
}

type streamLoad struct {
	clients   int
	sendBytes uint64
	send30    int // kbps sent to the stream's clients
}
