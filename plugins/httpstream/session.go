package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/rill-media/rill/sdk"
)

// HLS viewers with hls_ctx (SRS's per-viewer HLS sessions): the first
// playlist request of a session asks the core (security rules, on_play with
// the stream as name.m3u8, as SRS reports it); every request with the
// session's hls_ctx keeps it alive; a session idle for twice the window
// (at least 10 s) ends with on_stop. Sessions are listed as hls-play clients
// and can be kicked.

type hlsSession struct {
	client  sdk.ClientInfo
	ref     sdk.StreamRef
	started time.Time
	last    time.Time
	timeout time.Duration
	bytes   uint64
}

type sessions struct {
	mu     sync.Mutex
	byID   map[string]*hlsSession
	kicked map[string]time.Time
}

func (ss *sessions) init() {
	if ss.byID == nil {
		ss.byID = map[string]*hlsSession{}
		ss.kicked = map[string]time.Time{}
	}
}

// hlsSessionTimeout is how long a session may stay silent: twice the
// window, as SRS, and at least 10 s.
func hlsSessionTimeout(vc *vhostConfig) time.Duration {
	return max(2*vc.HLS.Window, 10*time.Second)
}

// admit returns whether the request of session id may be served, starting
// the session (and asking the core) on its first request.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, id string, vc *vhostConfig, sp streamPath, size int64) bool {
	ss := &s.sessions
	ss.mu.Lock()
	ss.init()
	if _, kicked := ss.kicked[id]; kicked {
		ss.mu.Unlock()
		httpError(w, http.StatusForbidden, "hls session %s was kicked", id)
		return false
	}
	if sess := ss.byID[id]; sess != nil {
		sess.last = time.Now()
		if size > 0 {
			sess.bytes += uint64(size)
		}
		ss.mu.Unlock()
		return true
	}
	ss.mu.Unlock()
	if sp.Format != fmtM3U8 {
		// A segment of a session that never fetched its playlist (or
		// timed out): start it like a playlist request would.
		sp.Format = fmtM3U8
	}
	ref := sdk.StreamRef{Vhost: vc.Name, App: sp.App, Stream: sp.Stream + ".m3u8", Param: "?" + r.URL.RawQuery, TcURL: "http://" + r.Host + "/" + sp.App}
	client := sdk.ClientInfo{ID: id, IP: remoteIP(r.RemoteAddr), Type: "hls-play", PageURL: r.Referer()}
	if err := s.rt.Host.Play(r.Context(), client, ref); err != nil {
		s.log.Warn("hls viewer refused", "client_id", id, "stream", ref.Key(), "error", err)
		code, msg := subscribeStatus(err)
		httpError(w, code, "%s: %s", msg, ref.Key())
		return false
	}
	now := time.Now()
	ss.mu.Lock()
	if _, dup := ss.byID[id]; !dup {
		ss.byID[id] = &hlsSession{client: client, ref: ref, started: now, last: now, timeout: hlsSessionTimeout(vc), bytes: uint64(max(size, 0))}
	}
	ss.mu.Unlock()
	s.log.Info("hls viewer started", "client_id", id, "stream", ref.Key(), "remote_addr", r.RemoteAddr)
	return true
}

// sessionBytes counts n bytes sent to session id ("" : none).
func (s *Server) sessionBytes(id string, n int) {
	if id == "" {
		return
	}
	s.sessions.mu.Lock()
	if sess := s.sessions.byID[id]; sess != nil {
		sess.bytes += uint64(n)
	}
	s.sessions.mu.Unlock()
}

// expireSessions ends the sessions idle past their timeout (on_stop).
func (s *Server) expireSessions(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.endSessions(func(*hlsSession) bool { return true }, "plugin stopped")
			return
		case <-t.C:
		}
		now := time.Now()
		s.endSessions(func(sess *hlsSession) bool { return now.Sub(sess.last) > sess.timeout }, "timed out")
		s.sessions.mu.Lock()
		for id, at := range s.sessions.kicked {
			if now.Sub(at) > 10*time.Minute {
				delete(s.sessions.kicked, id)
			}
		}
		s.sessions.mu.Unlock()
	}
}

func (s *Server) endSessions(match func(*hlsSession) bool, why string) {
	ss := &s.sessions
	ss.mu.Lock()
	ss.init()
	var ended []*hlsSession
	for id, sess := range ss.byID {
		if match(sess) {
			ended = append(ended, sess)
			delete(ss.byID, id)
		}
	}
	ss.mu.Unlock()
	for _, sess := range ended {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.rt.Host.PlayStopped(ctx, sess.client, sess.ref); err != nil {
			s.log.Debug("report hls viewer stop", "client_id", sess.client.ID, "error", err)
		}
		cancel()
		s.log.Info("hls viewer stopped", "client_id", sess.client.ID, "stream", sess.ref.Key(), "reason", why, "bytes", sess.bytes)
	}
}

// kickSession ends session id and refuses its later requests.
func (s *Server) kickSession(id string) bool {
	s.sessions.mu.Lock()
	s.sessions.init()
	_, ok := s.sessions.byID[id]
	if ok {
		s.sessions.kicked[id] = time.Now()
	}
	s.sessions.mu.Unlock()
	if ok {
		s.endSessions(func(sess *hlsSession) bool { return sess.client.ID == id }, "kicked")
	}
	return ok
}

// sessionStats lists the sessions as hls-play clients.
func (s *Server) sessionStats() []sdk.ClientStat {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	var out []sdk.ClientStat
	for _, sess := range s.sessions.byID {
		ref := sess.ref
		out = append(out, sdk.ClientStat{Client: sess.client, Stream: ref, Alive: time.Since(sess.started), SendBytes: sess.bytes})
	}
	return out
}
