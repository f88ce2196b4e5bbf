package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

type rootEntry struct{ root *os.Root }

// root returns an os.Root for dir (opened once): every file access goes
// through it, so no request can leave the directory, whatever its name or
// symlinks (docs/THREATS.md #21).
func (s *Server) root(dir string) (*os.Root, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.roots[dir]; e != nil {
		return e.root, nil
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	s.roots[dir] = &rootEntry{root: r}
	return r, nil
}

func (s *Server) setCORS(h http.Header, cfg *config) {
	if cfg.CORSOrigin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", cfg.CORSOrigin)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "*")
	h.Set("Access-Control-Expose-Headers", "Server, Content-Length, Content-Range")
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Load()
	w.Header().Set("Server", "rill")
	s.setCORS(w.Header(), cfg)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusOK)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		return
	}
	if unsafeRequestPath(r.URL.Path) {
		httpError(w, http.StatusForbidden, "forbidden path")
		return
	}
	known := func(v string) bool { return cfg.Vhosts[v] != nil }
	isVhost := func(v string) bool { return v != defaultVhost && known(v) }
	sp, err := parseStreamPath(r.URL.Path, isVhost)
	if err != nil {
		s.serveStatic(w, r, cfg)
		return
	}
	vhost := sp.Vhost
	if vhost == "" {
		vhost = vhostOf(r.URL.Query(), r.Host, known)
	}
	vc := cfg.Vhosts[vhost]
	key := streamKey{Vhost: vhost, App: sp.App, Stream: sp.Stream}
	if sp.Format == fmtM3U8 && s.serveMaster(w, r, vc, key) {
		return
	}
	if s.serveLL(w, r, vc, key, sp) {
		return
	}
	switch sp.Format {
	case fmtM3U8:
		found := s.serveHLSFile(w, r, cfg, vc, sp)
		s.touchHLS(key, vc, remoteIP(r.RemoteAddr), hlsParam(r.URL.Query()), !found)
		return
	case fmtTS:
		if s.serveHLSFile(w, r, cfg, vc, sp) {
			return
		}
	case fmtM4S, fmtMP4, fmtMPD:
		if !s.serveHLSFile(w, r, cfg, vc, sp) {
			httpError(w, http.StatusNotFound, "not found: %s", strings.TrimPrefix(path.Clean(r.URL.Path), "/"))
		}
		return
	}
	if vc == nil {
		httpError(w, http.StatusNotFound, "vhost %s does not serve http streams", vhost)
		return
	}
	if !vc.HTTPRemux {
		httpError(w, http.StatusNotFound, "http streaming is off in vhost %s", vhost)
		return
	}
	s.serveLive(w, r, cfg, key, sp.Format)
}

// serveHLSFile serves a playlist or segment from the vhost's hls path, then
// from the static dir. For a .ts request it reports whether a file was
// found (otherwise the request is a live HTTP-TS stream).
func (s *Server) serveHLSFile(w http.ResponseWriter, r *http.Request, cfg *config, vc *vhostConfig, sp streamPath) bool {
	rel := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	var dirs []string
	if vc != nil && vc.HLS.Enabled {
		dirs = append(dirs, vc.HLS.Path)
	}
	if vc != nil && vc.Dash.Enabled && (len(dirs) == 0 || dirs[0] != vc.Dash.Path) {
		dirs = append(dirs, vc.Dash.Path)
	}
	if cfg.Dir != "" {
		dirs = append(dirs, cfg.Dir)
	}
	for _, d := range dirs {
		root, err := s.root(d)
		if err != nil {
			continue
		}
		f, err := root.Open(filepath.FromSlash(rel))
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			continue
		}
		if vc != nil && vc.HLS.HLSCtx {
			if id := r.URL.Query().Get("hls_ctx"); id != "" && validName(id) && !s.admit(w, r, id, vc, sp, fi.Size()) {
				f.Close()
				return true
			}
		}
		if sp.Format == fmtM3U8 {
			w.Header().Set("Content-Type", fmtM3U8.contentType())
			w.Header().Set("Cache-Control", "no-cache")
			if vc != nil && vc.HLS.HLSCtx {
				s.serveHLSCtx(w, r, f, sp)
				f.Close()
				return true
			}
		} else {
			w.Header().Set("Content-Type", sp.Format.contentType())
			if sp.Format == fmtMPD {
				w.Header().Set("Cache-Control", "no-cache")
			}
		}
		http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
		f.Close()
		return true
	}
	if sp.Format == fmtM3U8 {
		httpError(w, http.StatusNotFound, "playlist not found: %s (is the stream published with hls enabled?)", rel)
	}
	return false
}

// serveHLSCtx answers like SRS with hls_ctx on: without an hls_ctx query a
// one-variant master playlist pointing at the playlist with a session id;
// with it the playlist whose segment URIs carry the id.
func (s *Server) serveHLSCtx(w http.ResponseWriter, r *http.Request, f *os.File, sp streamPath) {
	q := r.URL.Query()
	ctxID := q.Get("hls_ctx")
	if ctxID == "" || !validName(ctxID) {
		id := sdk.NewClientID()
		q.Set("hls_ctx", id)
		fmt.Fprintf(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n%s.m3u8?%s\n", sp.Stream, q.Encode())
		return
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		httpError(w, http.StatusInternalServerError, "read playlist")
		return
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line != "" && !strings.HasPrefix(line, "#") && !strings.Contains(line, "?") {
			line += "?hls_ctx=" + ctxID
		}
		if uri, ok := strings.CutPrefix(line, `#EXT-X-MAP:URI="`); ok && !strings.Contains(uri, "?") {
			line = `#EXT-X-MAP:URI="` + strings.TrimSuffix(uri, `"`) + "?hls_ctx=" + ctxID + `"`
		}
		out.WriteString(line + "\n")
	}
	_, _ = w.Write(out.Bytes())
}

// serveStatic serves a file under the static dir (SRS http_server.dir).
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request, cfg *config) {
	if cfg.Dir == "" {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	root, err := s.root(cfg.Dir)
	if err != nil {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	rel := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if rel == "" {
		rel = "."
	}
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	if fi.IsDir() {
		idx, err := root.Open(filepath.Join(filepath.FromSlash(rel), "index.html"))
		if err != nil {
			httpError(w, http.StatusForbidden, "directory listing is off")
			return
		}
		defer idx.Close()
		if fi, err = idx.Stat(); err != nil || !fi.Mode().IsRegular() {
			httpError(w, http.StatusForbidden, "directory listing is off")
			return
		}
		f = idx
	} else if !fi.Mode().IsRegular() {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

func remoteIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// serveLive streams a live HTTP-FLV/TS/AAC/MP3 response.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request, cfg *config, key streamKey, f format) {
	// SRS reports every HTTP live player (FLV, TS, AAC, MP3) as flv-play.
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: remoteIP(r.RemoteAddr), Type: "flv-play", PageURL: r.Referer()}
	log := s.log.With("client_id", client.ID, "remote_addr", r.RemoteAddr)
	ref := key.ref()
	if r.URL.RawQuery != "" {
		ref.Param = "?" + r.URL.RawQuery // SRS's param keeps its "?"
	}
	ref.TcURL = "http://" + r.Host + "/" + key.App
	// Each player is authorized by the core (security rules, on_play);
	// media comes from the stream's one shared subscription.
	if err := s.rt.Host.Play(r.Context(), client, ref); err != nil {
		log.Warn("player refused", "stream", key.String(), "error", err)
		// As SRS: a refused HTTP-FLV player gets its connection closed
		// without an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				conn.Close()
				return
			}
		}
		code, msg := subscribeStatus(err)
		httpError(w, code, "%s: %s", msg, key.String())
		return
	}
	playStopped := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.rt.Host.PlayStopped(ctx, client, ref); err != nil {
			log.Warn("report play stop", "error", err)
		}
	}
	handedOff := false // to the player, which reports its own stop
	defer func() {
		if !handedOff {
			playStopped()
		}
	}()
	if r.Method == http.MethodHead && f.audio() == 0 {
		sub, err := s.rt.Host.Subscribe(r.Context(), client, ref, sdk.SubscribeOptions{})
		if err != nil {
			code, msg := subscribeStatus(err)
			httpError(w, code, "%s: %s", msg, key.String())
			return
		}
		_ = sub.Close()
		w.Header().Set("Content-Type", f.contentType())
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		return
	}
	var src *source
	var err error
	for attempt := 0; ; attempt++ {
		src, err = s.source(r.Context(), key, client, ref.Param)
		if err != nil {
			code, msg := subscribeStatus(err)
			log.Info("player refused", "stream", key.String(), "status", code, "error", err)
			httpError(w, code, "%s: %s", msg, key.String())
			return
		}
		if attempt > 0 || !src.isEnded() {
			break
		}
	}
	if want := f.audio(); want != 0 {
		// Answer only once the audio codec is known: a stream without
		// the format's codec would get a 200 and then nothing (SRS: 404).
		got, ended := src.audioCodec(r.Context(), audioWait)
		if why := audioMismatch(f, want, got, ended); why != "" {
			log.Info("player refused", "stream", key.String(), "format", f.String(), "status", http.StatusNotFound, "reason", why)
			src.release()
			httpError(w, http.StatusNotFound, "%s: %s", why, key.String())
			return
		}
		if r.Method == http.MethodHead {
			src.release()
			w.Header().Set("Content-Type", f.contentType())
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		httpError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		log.Warn("hijack", "error", err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	chunked := r.ProtoAtLeast(1, 1)
	var hb strings.Builder
	hb.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + f.contentType() + "\r\nCache-Control: no-cache\r\nServer: rill\r\n")
	if chunked {
		hb.WriteString("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n")
	} else {
		hb.WriteString("Connection: close\r\n")
	}
	if cfg.CORSOrigin != "" {
		hb.WriteString("Access-Control-Allow-Origin: " + cfg.CORSOrigin + "\r\nAccess-Control-Expose-Headers: Server\r\n")
	}
	hb.WriteString("\r\n")
	_ = brw // nothing buffered for writing yet; the request has no body
	if _, err := io.WriteString(conn, hb.String()); err != nil {
		conn.Close()
		return
	}
	p := newPlayer(client.ID, client.IP, f, conn, chunked, cfg, log)
	p.url = r.URL.String()
	// From here the player lives without this goroutine: its socket is in
	// the feed's fan-out group, and its end (whoever causes it) detaches
	// it, logs and reports the stop.
	handedOff = true
	p.onDone = func(reason string) {
		if p.takeDetach() {
			src.detach(p)
		}
		s.mu.Lock()
		delete(s.players, p.id)
		s.mu.Unlock()
		log.Info("player stopped", "stream", key.String(), "format", f.String(), "reason", reason, "bytes", p.sink.Sent(), "duration", time.Since(p.started).Round(time.Millisecond))
		playStopped()
	}
	s.mu.Lock()
	s.players[p.id] = &playerEntry{p: p, key: key}
	s.mu.Unlock()
	if err := src.attach(p); err != nil {
		p.close(err.Error())
		return
	}
	p.mu.Lock()
	p.attached = true
	p.mu.Unlock()
	if p.takeDetach() { // closed while attaching
		src.detach(p)
	}
	log.Info("player started", "stream", key.String(), "format", f.String())
}

// audioWait bounds how long an .aac or .mp3 request waits for the first
// audio packet of a stream before it is refused as a stream without audio.
const audioWait = 2 * time.Second

// audioMismatch tells why an audio-only format f, which carries codec
// want, cannot play a stream whose audio codec is got ("" if it can).
func audioMismatch(f format, want, got media.Codec, ended bool) string {
	switch {
	case got == want:
		return ""
	case ended && got == 0:
		return "stream ended"
	case got == 0:
		return fmt.Sprintf("no audio within %s, .%s needs %s audio", audioWait, f, want)
	}
	return fmt.Sprintf("audio is %s, .%s needs %s audio", got, f, want)
}

func (s *source) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

func subscribeStatus(err error) (int, string) {
	switch {
	case errors.Is(err, sdk.ErrForbidden):
		return http.StatusForbidden, "play refused"
	case errors.Is(err, sdk.ErrTimeout), errors.Is(err, sdk.ErrNotFound):
		return http.StatusNotFound, "stream not found"
	case errors.Is(err, sdk.ErrInvalid):
		return http.StatusBadRequest, "bad stream"
	}
	return http.StatusServiceUnavailable, "stream unavailable"
}
