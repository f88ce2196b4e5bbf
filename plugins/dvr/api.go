package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// API answer codes: SRS's where it has one.
const (
	codeOK             = 0
	codeNoVhost        = 2014 // ERROR_SYSTEM_VHOST_NOT_FOUND-like: no dvr block in the vhost
	codeStreamNotFound = 2048
	codeBadRequest     = 1001
	codeForbidden      = 1003
)

// ServeHTTP is the DVR control API:
//
//	GET /api/v1/dvr                                            running recordings
//	GET /api/v1/dvr?vhost=V&app=A&stream=S&action=start|stop   start or stop one
//	GET /api/v1/dvr?vhost=V&app=A&stream=S&enabled=on|off      the same
//	GET ...?rpc=update&scope=dvr&value=V&param=enable|disable&data=A/S
//	                                                           SRS's RAW API form
//
// Start and stop apply to the stream while it is live: start records it
// even when its vhost has dvr { enabled = false } or it is not in apply;
// stop closes its file (renamed, on_dvr sent) before answering.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": codeBadRequest, "msg": "use GET or POST"})
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			q = r.Form
		}
	}
	vhost, app, name, action := q.Get("vhost"), q.Get("app"), q.Get("stream"), q.Get("action")
	switch q.Get("enabled") {
	case "on":
		action = "start"
	case "off":
		action = "stop"
	}
	if q.Has("rpc") || q.Has("scope") {
		if q.Get("rpc") != "update" || q.Get("scope") != "dvr" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": codeBadRequest, "msg": "want rpc=update&scope=dvr"})
			return
		}
		vhost = q.Get("value")
		switch q.Get("param") {
		case "enable":
			action = "start"
		case "disable":
			action = "stop"
		default:
			writeJSON(w, http.StatusBadRequest, map[string]any{"code": codeBadRequest, "msg": "want param=enable or param=disable"})
			return
		}
		data := q.Get("data")
		if i := strings.LastIndexByte(data, '/'); i > 0 {
			app, name = data[:i], data[i+1:]
		}
	}
	if action == "" && app == "" && name == "" {
		writeJSON(w, http.StatusOK, map[string]any{"code": codeOK, "recordings": s.recordings()})
		return
	}
	if vhost == "" {
		vhost = defaultVhost
	}
	if !validName(vhost) || !validApp(app) || !validName(name) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": codeBadRequest, "msg": fmt.Sprintf("bad vhost %q, app %q or stream %q", vhost, app, name)})
		return
	}
	ref := sdk.StreamRef{Vhost: vhost, App: app, Stream: name}
	var (
		status int
		body   map[string]any
	)
	switch action {
	case "start":
		status, body = s.apiStart(r.Context(), ref)
	case "stop":
		status, body = s.apiStop(r.Context(), ref)
	default:
		status, body = http.StatusBadRequest, map[string]any{"code": codeBadRequest, "msg": fmt.Sprintf("unknown action %q (want start or stop)", action)}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *server) apiStart(ctx context.Context, ref sdk.StreamRef) (int, map[string]any) {
	s.mu.Lock()
	if s.rt == nil {
		s.mu.Unlock()
		return http.StatusServiceUnavailable, map[string]any{"code": codeForbidden, "msg": "dvr is starting"}
	}
	v := s.vhostOf(ref.Vhost)
	if v == nil || !v.configured {
		s.mu.Unlock()
		return http.StatusNotFound, map[string]any{"code": codeNoVhost, "msg": fmt.Sprintf("vhost %q has no dvr block", ref.Vhost)}
	}
	ref.Vhost = v.name
	st := s.streams[ref.Key()]
	if st != nil && st.rec != nil {
		st.override = 1
		file := st.rec.r.currentFile()
		s.mu.Unlock()
		return http.StatusOK, map[string]any{"code": codeOK, "recording": true, "file": file}
	}
	known := st != nil && st.live
	s.mu.Unlock()

	var sub *sdk.Subscription
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "dvr"}
	if !known {
		// No publish event for it (yet): ask the core whether it is live.
		var err error
		sub, err = s.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Internal: true})
		if err != nil {
			status, code := http.StatusNotFound, codeStreamNotFound
			if errors.Is(err, sdk.ErrForbidden) {
				status, code = http.StatusForbidden, codeForbidden
			}
			return status, map[string]any{"code": code, "msg": err.Error()}
		}
		ref = sub.Stream
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st = s.streams[ref.Key()]
	if st == nil {
		st = &stream{ref: ref, live: true, byAPI: true}
		s.streams[ref.Key()] = st
	}
	st.override = 1
	if st.rec == nil && s.ctx.Err() == nil {
		s.startLocked(st, v, sub, client)
		sub = nil
	}
	if sub != nil {
		_ = sub.Close()
	}
	return http.StatusOK, map[string]any{"code": codeOK, "recording": true}
}

func (s *server) apiStop(ctx context.Context, ref sdk.StreamRef) (int, map[string]any) {
	s.mu.Lock()
	v := s.vhostOf(ref.Vhost)
	if v == nil || !v.configured {
		s.mu.Unlock()
		return http.StatusNotFound, map[string]any{"code": codeNoVhost, "msg": fmt.Sprintf("vhost %q has no dvr block", ref.Vhost)}
	}
	ref.Vhost = v.name
	st := s.streams[ref.Key()]
	if st == nil || st.rec == nil {
		if st != nil {
			st.override = -1
		}
		s.mu.Unlock()
		return http.StatusOK, map[string]any{"code": codeOK, "recording": false}
	}
	st.override = -1
	rec := st.rec
	file := rec.r.currentFile()
	rec.cancel()
	s.mu.Unlock()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case <-rec.done:
	case <-wait.Done():
		return http.StatusAccepted, map[string]any{"code": codeOK, "recording": false, "file": file, "msg": "file still closing"}
	}
	return http.StatusOK, map[string]any{"code": codeOK, "recording": false, "file": file}
}
