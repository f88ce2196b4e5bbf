package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/rill-media/rill/plugins/internal/digestauth"
	"github.com/rill-media/rill/sdk"
)

// lalSessionID is the Session of lal's SETUP responses (one constant for
// every session), which the plugin's own responses repeat.
const lalSessionID = "191201771"

// onRequest is the guard's request hook: the plugin answers the requests
// lal leaves unanswered or answers in a way VLC and NVRs do not expect
// (OPTIONS without the keep-alive methods, GET_PARAMETER, SET_PARAMETER,
// PAUSE, a PLAY that resumes after PAUSE, TEARDOWN), checks the
// credentials of ANNOUNCE and DESCRIBE, notes a player's SETUP, and passes
// the others on.
func (c *conn) onRequest(unit []byte) (bool, error) {
	req, err := parseRequest(unit)
	if err != nil {
		return false, err
	}
	switch req.method {
	case "ANNOUNCE", "DESCRIBE":
		return c.authorize(req)
	case "SETUP":
		c.noteSetup(req)
		return false, nil
	case "TEARDOWN":
		// lal closes the connection with its response still queued (the
		// client may never read it): answered here, then closed.
		_ = c.respond(response(req, "200 OK", sessionHeader(req)...))
		c.close("teardown")
		return true, nil
	case "OPTIONS":
		return true, c.respond(response(req, "200 OK", "Public: "+publicMethods))
	case "GET_PARAMETER", "SET_PARAMETER":
		// Keep-alives (RFC 2326 §10.8, §10.9): the plugin has no
		// parameters to read or set.
		if req.method == "SET_PARAMETER" && len(req.body) > 0 {
			return true, c.respond(response(req, "451 Parameter Not Understood", sessionHeader(req)...))
		}
		return true, c.respond(response(req, "200 OK", sessionHeader(req)...))
	case "PAUSE":
		if !c.started2.Load() {
			return true, c.respond(response(req, "455 Method Not Valid in This State", sessionHeader(req)...))
		}
		if !c.paused.Load() {
			c.setPaused(true)
			c.log.Info("play paused", "stream", c.ref.Key())
		}
		return true, c.respond(response(req, "200 OK", sessionHeader(req)...))
	case "PLAY":
		if !c.started2.Load() {
			return false, nil // the first PLAY: lal's
		}
		// A PLAY of a session that plays: after PAUSE it resumes from the
		// live edge, at the next keyframe (RFC 2326 §10.5 lets a live
		// source ignore the Range).
		if c.paused.Load() {
			c.setPaused(false)
			c.log.Info("play resumed", "stream", c.ref.Key())
		}
		return true, c.respond(response(req, "200 OK", append(sessionHeader(req), "Range: npt=now-")...))
	}
	return false, nil
}

// sessionHeader is the Session line of the response to a request that
// names its session (RFC 2326 §12.37).
func sessionHeader(r *request) []string {
	if r.headers["session"] == "" {
		return nil
	}
	return []string{"Session: " + lalSessionID}
}

// respond writes one of the plugin's own responses.
func (c *conn) respond(b []byte) error {
	if err := c.g.writeDirect(b); err != nil {
		c.close("write response: " + err.Error())
	}
	return nil
}

// maxAuthFailures is how many wrong credentials a connection may send
// before it is closed.
const maxAuthFailures = 3

// vhostOf resolves the vhost of a request URI as streamRef does: the host
// unless it is an IP or localhost, ?vhost= and ?domain= override it.
func (c *conn) vhostOf(rawURL string) (string, bool) {
	vhost := ""
	u, err := url.Parse(rawURL)
	if err != nil {
		return c.cfg.vhost("")
	}
	if h := u.Hostname(); h != "" && net.ParseIP(h) == nil && h != "localhost" {
		vhost = h
	}
	q, _ := url.ParseQuery(u.RawQuery)
	if v := q.Get("vhost"); v != "" {
		vhost = v
	} else if v := q.Get("domain"); v != "" {
		vhost = v
	}
	return c.cfg.vhost(vhost)
}

// authorize checks the credentials of an ANNOUNCE or DESCRIBE when the
// vhost asks for them: a request without valid ones is answered 401 with
// the challenges (RFC 2326 §11.4.1) and lal never sees it; the user of
// valid ones goes into the callbacks' param (rtsp_user=).
func (c *conn) authorize(req *request) (bool, error) {
	publish := req.method == "ANNOUNCE"
	vhost, _ := c.vhostOf(req.uri)
	a := c.cfg.authFor(vhost, publish)
	if a == nil {
		return false, nil
	}
	user, res, err := a.Check(req.headers["authorization"], req.method, req.uri, c.info.IP)
	challenge := func(stale bool) (bool, error) {
		var hs []string
		for _, ch := range a.Challenges(c.info.IP, stale) {
			hs = append(hs, "WWW-Authenticate: "+ch)
		}
		return true, c.respond(response(req, "401 Unauthorized", hs...))
	}
	what := "play"
	if publish {
		what = "publish"
	}
	switch res {
	case digestauth.OK:
		c.mu.Lock()
		c.user, c.failure = user, nil
		c.mu.Unlock()
		c.log.Info("rtsp authenticated", "user", user, "method", req.method, "vhost", vhost)
		return false, nil
	case digestauth.Missing:
		c.mu.Lock()
		c.failure = fmt.Errorf("%w: %s of %s needs credentials (vhost %q), none sent: answered 401", sdk.ErrForbidden, what, truncate(req.uri), vhost)
		c.mu.Unlock()
		c.log.Debug("rtsp credentials asked", "method", req.method, "vhost", vhost)
		return challenge(false)
	case digestauth.Stale:
		c.log.Debug("rtsp digest nonce expired, challenged again", "user", user)
		return challenge(true)
	case digestauth.Replayed:
		c.log.Warn("rtsp digest nonce replayed, challenged again", "user", user, "error", err)
		return challenge(true)
	}
	c.authFails++
	c.s.refused.Add(1)
	ferr := fmt.Errorf("%w: %s of %s: authentication failed for user %q: %v", sdk.ErrForbidden, what, truncate(req.uri), truncate(user), err)
	c.mu.Lock()
	c.failure = ferr
	c.mu.Unlock()
	c.log.Warn("rtsp client refused", "error", ferr.Error(), "vhost", vhost, "attempt", c.authFails)
	if c.authFails >= maxAuthFailures {
		_, _ = challenge(false)
		c.close(fmt.Sprintf("%d failed authentications: %v", c.authFails, ferr))
		return true, nil
	}
	return challenge(false)
}

// withUser sets rtsp_user=user in a raw query, dropping any rtsp_user the
// client wrote itself (a hook can trust it).
func withUser(query, user string) string {
	var parts []string
	for _, p := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(p, "=")
		if p == "" || k == "rtsp_user" {
			continue
		}
		parts = append(parts, p)
	}
	return strings.Join(append(parts, "rtsp_user="+url.QueryEscape(user)), "&")
}
