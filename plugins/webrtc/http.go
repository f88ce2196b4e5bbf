package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"

	"github.com/rill-media/rill/sdk"
)

var _ http.Handler = (*Server)(nil)

// httpError is a refusal with its HTTP status and the reason told to the
// client and logged.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// signal is one signalling request, whatever its form.
type signal struct {
	publish bool
	ref     sdk.StreamRef
	offer   string
	eip     string
	ip      string
}

// ServeHTTP serves SRS's signalling on the API port:
//
//	POST /rtc/v1/whip/?app=&stream=   WHIP publish (RFC 9725), application/sdp
//	POST /rtc/v1/whep/?app=&stream=   WHEP play (also /rtc/v1/whip-play/, or whip with action=play)
//	PATCH <Location>                  trickle ICE or ICE restart (RFC 9725 §4.3), If-Match
//	DELETE <Location>                 ends the session
//	POST /rtc/v1/publish/, /rtc/v1/play/  SRS's JSON (api, streamurl, sdp, tid)
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/") + "/"
	q := r.URL.Query()
	if r.Header.Get("Origin") != "" {
		// Browser WHIP/WHEP clients and SRS's players call from other origins.
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
		h.Set("Access-Control-Expose-Headers", "Location, ETag")
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	switch path {
	case "/rtc/v1/whip/", "/rtc/v1/whep/", "/rtc/v1/whip-play/":
		if r.Method == http.MethodPatch {
			s.servePatch(w, r)
			return
		}
		if r.Method == http.MethodDelete || q.Get("action") == "delete" {
			s.serveDelete(w, q)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		publish := path == "/rtc/v1/whip/" && q.Get("action") != "play"
		s.serveWHIP(w, r, publish)
	case "/rtc/v1/publish/", "/rtc/v1/play/":
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveSRS(w, r, path == "/rtc/v1/publish/")
	default:
		http.Error(w, "404 not found: "+r.URL.Path, http.StatusNotFound)
	}
}

func (s *Server) readBody(r *http.Request) ([]byte, error) {
	max := s.cfg.Load().MaxSDPBytes
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	if len(b) > max {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", max)}
	}
	return b, nil
}

func (s *Server) serveWHIP(w http.ResponseWriter, r *http.Request, publish bool) {
	q := r.URL.Query()
	body, err := s.readBody(r)
	if err != nil {
		s.refuse(w, r, err, false)
		return
	}
	app, stream := q.Get("app"), q.Get("stream")
	if app == "" {
		app = "live"
	}
	if stream == "" {
		stream = "livestream"
	}
	vhost := q.Get("vhost")
	if vhost == "" {
		vhost = q.Get("domain")
	}
	withBearer(q, r.Header.Get("Authorization"))
	sig := signal{publish: publish, offer: string(body), eip: firstOf(q.Get("eip"), q.Get("candidate")), ip: remoteIP(r.RemoteAddr),
		ref: sdk.StreamRef{Vhost: vhost, App: app, Stream: stream, Param: paramOf(q)}}
	ss, answer, err := s.negotiate(r.Context(), sig)
	if err != nil {
		s.refuse(w, r, err, false)
		return
	}
	base := "/rtc/v1/whip/"
	if !publish {
		base = "/rtc/v1/whep/"
	}
	loc := base + "?" + url.Values{"action": {"delete"}, "token": {ss.token}, "app": {app}, "stream": {stream}, "session": {ss.id}}.Encode()
	ss.sigMu.Lock()
	ss.etag = newETag()
	etag := ss.etag
	ss.sigMu.Unlock()
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", loc)
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// srsRequest is the body SRS's players (srs.sdk.js) send.
type srsRequest struct {
	API       string `json:"api"`
	StreamURL string `json:"streamurl"`
	ClientIP  any    `json:"clientip"`
	SDP       string `json:"sdp"`
	TID       string `json:"tid"`
}

func (s *Server) serveSRS(w http.ResponseWriter, r *http.Request, publish bool) {
	body, err := s.readBody(r)
	if err != nil {
		s.refuse(w, r, err, true)
		return
	}
	var req srsRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.refuse(w, r, badRequest("body is not SRS's JSON: %v", err), true)
		return
	}
	ref, err := parseStreamURL(req.StreamURL)
	if err != nil {
		s.refuse(w, r, err, true)
		return
	}
	q := r.URL.Query()
	eip := firstOf(q.Get("eip"), q.Get("candidate"))
	if eip == "" && req.API != "" {
		if u, err := url.Parse(req.API); err == nil {
			eip = firstOf(u.Query().Get("eip"), u.Query().Get("candidate"))
		}
	}
	sig := signal{publish: publish, offer: req.SDP, eip: eip, ip: remoteIP(r.RemoteAddr), ref: ref}
	ss, answer, err := s.negotiate(r.Context(), sig)
	if err != nil {
		s.refuse(w, r, err, true)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"code": 0, "server": s.serverID(), "service": s.serviceID(), "pid": strconv.Itoa(os.Getpid()),
		"sdp": answer, "sessionid": ss.ufrags(),
	})
}

// parseStreamURL reads webrtc://host[:port]/app/stream[?params]; the
// vhost is ?vhost= or ?domain=, else the host (unknown names fall back to
// the default vhost).
func parseStreamURL(s string) (sdk.StreamRef, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "webrtc" {
		return sdk.StreamRef{}, badRequest("streamurl %q is not webrtc://host/app/stream", s)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] == "" || parts[len(parts)-1] == "" {
		return sdk.StreamRef{}, badRequest("streamurl %q has no app and stream", s)
	}
	q := u.Query()
	vhost := firstOf(q.Get("vhost"), q.Get("domain"), u.Hostname())
	return sdk.StreamRef{Vhost: vhost, App: strings.Join(parts[:len(parts)-1], "/"), Stream: parts[len(parts)-1], Param: paramOf(q)}, nil
}

// withBearer makes a WHIP/WHEP bearer token (RFC 9725 §4.5; OBS's "Bearer
// Token") the stream's ?token= param when the URL has none, so that the
// on_publish/on_play callbacks check it as they check SRS's token param.
func withBearer(q url.Values, auth string) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(auth), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" || q.Has("token") {
		return
	}
	q.Set("token", strings.TrimSpace(tok))
}

func paramOf(q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		switch k {
		case "app", "stream", "eip", "candidate", "codec", "action", "vhost", "domain":
		default:
			c[k] = v
		}
	}
	if len(c) == 0 {
		return ""
	}
	return "?" + c.Encode()
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func (s *Server) serverID() string {
	if s.rt != nil {
		return s.rt.ServerID
	}
	return ""
}

func (s *Server) serviceID() string {
	if s.rt != nil {
		return s.rt.InstanceID
	}
	return ""
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// refuse answers a failed signalling request: WHIP/WHEP with the HTTP
// status and the reason as text, SRS's JSON API as SRS does (HTTP 200 and
// a non-zero code) with the reason in msg.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error, srsJSON bool) {
	s.rejected.Add(1)
	status := http.StatusInternalServerError
	var he *httpError
	switch {
	case errors.As(err, &he):
		status = he.status
	case errors.Is(err, sdk.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, sdk.ErrStreamBusy):
		status = http.StatusConflict
	case errors.Is(err, sdk.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, sdk.ErrNotFound), errors.Is(err, sdk.ErrTimeout):
		status = http.StatusNotFound
	case errors.Is(err, sdk.ErrUnavailable):
		status = http.StatusServiceUnavailable
	}
	s.log.Warn("webrtc signalling refused", "path", r.URL.Path, "remote_addr", r.RemoteAddr, "status", status, "reason", err.Error())
	if srsJSON {
		s.writeJSON(w, http.StatusOK, map[string]any{"code": status, "server": s.serverID(), "msg": err.Error()})
		return
	}
	http.Error(w, err.Error(), status)
}

func (s *Server) serveDelete(w http.ResponseWriter, q url.Values) {
	ss := s.session(q.Get("session"))
	if ss == nil || q.Get("token") != ss.token {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	// The resource is gone once DELETE is answered (a second DELETE is a
	// 404), even while the session's teardown still runs.
	s.removeSession(ss)
	ss.close("deleted by the client (DELETE on its resource)")
	w.WriteHeader(http.StatusOK)
}

// checkOffer refuses what must not reach the negotiation: a huge offer,
// too many media sections, no ICE credentials or DTLS fingerprint
// (docs/THREATS.md row 18).
func (s *Server) checkOffer(offer string, publish bool) (*sdp.SessionDescription, error) {
	c := s.cfg.Load()
	if strings.TrimSpace(offer) == "" {
		return nil, badRequest("empty SDP offer")
	}
	if len(offer) > c.MaxSDPBytes {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("SDP offer larger than %d bytes", c.MaxSDPBytes)}
	}
	if n := strings.Count("\n"+offer, "\nm="); n > c.MaxMLines {
		return nil, badRequest("SDP offer has %d media sections, at most %d allowed", n, c.MaxMLines)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return nil, badRequest("SDP offer does not parse: %v", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return nil, badRequest("SDP offer has no media section")
	}
	_, sessUfrag := d.Attribute("ice-ufrag")
	_, sessPwd := d.Attribute("ice-pwd")
	_, sessFP := d.Attribute("fingerprint")
	video := false
	for _, m := range d.MediaDescriptions {
		_, ufrag := m.Attribute("ice-ufrag")
		_, pwd := m.Attribute("ice-pwd")
		_, fp := m.Attribute("fingerprint")
		if !(ufrag || sessUfrag) || !(pwd || sessPwd) {
			return nil, badRequest("SDP offer lacks ice-ufrag or ice-pwd in media section %q", m.MediaName.Media)
		}
		if !(fp || sessFP) {
			return nil, badRequest("SDP offer lacks a DTLS fingerprint in media section %q", m.MediaName.Media)
		}
		if m.MediaName.Media == "video" {
			video = true
		}
	}
	if !video && publish {
		return nil, badRequest("SDP offer has no video section: publishing needs H.264 video")
	}
	return &d, nil
}

// candidates returns the candidate addresses of one session: ?eip= (an IP,
// a port part is ignored: media stays on the one listener), else the
// configured ones.
func (s *Server) candidates(eip string) ([]string, error) {
	if eip != "" {
		if h, _, err := net.SplitHostPort(eip); err == nil {
			eip = h
		}
		if net.ParseIP(eip) == nil {
			return nil, badRequest("eip %q is not an IP address", eip)
		}
		return []string{eip}, nil
	}
	return s.cfg.Load().candidates, nil
}

// negotiate checks the offer, asks the core (publish: claim the stream,
// on_publish; play: security and on_play), and answers the offer.
func (s *Server) negotiate(ctx context.Context, sig signal) (_ *session, _ string, err error) {
	offer, err := s.checkOffer(sig.offer, sig.publish)
	if err != nil {
		return nil, "", err
	}
	if s.rt == nil || s.mux == nil {
		return nil, "", &httpError{http.StatusServiceUnavailable, "webrtc plugin not started"}
	}
	if !sdk.ValidApp(sig.ref.App) || !sdk.ValidName(sig.ref.Stream) {
		return nil, "", badRequest("invalid app or stream name %q/%q", sig.ref.App, sig.ref.Stream)
	}
	cands, err := s.candidates(sig.eip)
	if err != nil {
		return nil, "", err
	}
	vhost, opts := s.cfg.Load().vhost(sig.ref.Vhost)
	sig.ref.Vhost = vhost
	if !opts.Enabled {
		return nil, "", &httpError{http.StatusForbidden, fmt.Sprintf("webrtc is not enabled in vhost %s (rtc { enabled = true })", vhost)}
	}
	ss := s.newSession(sig.publish, sig.ref, opts, sig.ip)
	if !s.addSession(ss) {
		return nil, "", &httpError{http.StatusServiceUnavailable, "too many webrtc sessions"}
	}
	defer func() {
		if err != nil {
			// The session's own log line names its client id and why.
			ss.close("signalling failed: " + err.Error())
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	if sig.publish {
		pub, err := s.rt.Host.Publish(cctx, ss.info, ss.ref)
		if err != nil {
			return nil, "", err
		}
		ss.mu.Lock()
		ss.pub = pub
		ss.mu.Unlock()
	} else {
		if err := s.rt.Host.Play(cctx, ss.info, ss.ref); err != nil {
			return nil, "", err
		}
		ss.mu.Lock()
		ss.playing = true
		ss.mu.Unlock()
	}
	api, err := s.newAPI(cands, opts, &ss.nack)
	if err != nil {
		return nil, "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	ss.mu.Lock()
	ss.pc = pc
	ss.mu.Unlock()
	select {
	case <-ss.done: // kicked meanwhile: cleanup may have missed pc
		_ = pc.Close()
		return nil, "", errors.New("session closed during signalling")
	default:
	}
	var onConnected func()
	if sig.publish {
		pc.OnTrack(ss.onTrack)
	} else {
		pl, err := ss.preparePlay(offer)
		if err != nil {
			return nil, "", err
		}
		onConnected = pl.run
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sig.offer}); err != nil {
		return nil, "", badRequest("SDP offer refused: %v", err)
	}
	if !sig.publish {
		if err := ss.addPlayTracks(offer); err != nil {
			return nil, "", err
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", badRequest("no answer to the SDP offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, "", fmt.Errorf("set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return nil, "", errors.New("ice gathering did not complete within 5s")
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	ss.watch(onConnected)
	if sig.publish {
		s.published.Add(1)
	} else {
		s.played.Add(1)
	}
	ss.log.Info("webrtc session started", "param", ss.ref.Param, "candidates", strings.Join(cands, ","))
	return ss, pc.LocalDescription().SDP, nil
}

// ufrags is SRS's sessionid: the local and the remote ICE ufrag.
func (ss *session) ufrags() string {
	var local, remote string
	if d := ss.pc.LocalDescription(); d != nil {
		local = ufragOf(d.SDP)
	}
	if d := ss.pc.RemoteDescription(); d != nil {
		remote = ufragOf(d.SDP)
	}
	return local + ":" + remote
}

func ufragOf(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}
