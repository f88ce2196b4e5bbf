package main

// lalSessionID is the Session of lal's SETUP responses (one constant for
// every session), which the plugin's own responses repeat.
const lalSessionID = "191201771"

// onRequest is the guard's request hook: the plugin answers the requests
// lal leaves unanswered or answers in a way VLC and NVRs do not expect
// (OPTIONS without the keep-alive methods, GET_PARAMETER, SET_PARAMETER,
// PAUSE, a PLAY that resumes after PAUSE), and passes the others on.
func (c *conn) onRequest(unit []byte) (bool, error) {
	req, err := parseRequest(unit)
	if err != nil {
		return false, err
	}
	switch req.method {
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
		if !c.paused.Swap(true) {
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
			c.waitKey.Store(true)
			c.paused.Store(false)
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
