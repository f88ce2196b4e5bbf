package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// SRS 6's API for an external SIP server (v6.0.144): the SIP server
// handles devices itself and asks the media server for a port for one
// stream, named by id, whose RTP carries ssrc:
//
//	POST /gb/v1/publish/  {"id":"34020000001320000001","ssrc":"0100000001"}
//	-> {"code":0,"port":9000,"is_tcp":true}
//
// SRS only does TCP; Rill also takes "transport":"udp" (then the port is
// one of the rtp_port range, or the shared UDP port). The stream is
// [app]/[id]; it ends when its TCP connection closes, when no decodable
// media comes within media_timeout, or when its client id is kicked.
// Errors are SRS's: {"code":3008,"desc":...} for a bad request, 1028 when
// the id or the SSRC is taken.
const (
	srsErrorHTTPDataInvalid = 3008
	srsErrorStreamBusy      = 1028
)

var streamIDRE = regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)

type publishRequest struct {
	ID        string          `json:"id"`
	SSRC      json.RawMessage `json:"ssrc"`
	Transport string          `json:"transport"`
}

func (s *Server) servePublish(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "Close")
	reply := func(v map[string]any) { _ = json.NewEncoder(w).Encode(v) }
	fail := func(code int, why string) {
		s.log.Warn("gb publish refused", "remote_addr", r.RemoteAddr, "reason", why)
		reply(map[string]any{"code": code, "desc": why})
	}
	if r.Method != http.MethodPost {
		fail(srsErrorHTTPDataInvalid, "method "+r.Method+": want POST")
		return
	}
	var req publishRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		fail(srsErrorHTTPDataInvalid, "invalid body: "+err.Error())
		return
	}
	if !streamIDRE.MatchString(req.ID) {
		fail(srsErrorHTTPDataInvalid, fmt.Sprintf("id %q: want 1-64 of [0-9A-Za-z_.-]", req.ID))
		return
	}
	ssrc, err := parseSSRC(req.SSRC)
	if err != nil {
		fail(srsErrorHTTPDataInvalid, err.Error())
		return
	}
	mode := strings.ToLower(req.Transport)
	switch mode {
	case "", "tcp":
		mode = "tcp"
	case "udp":
	default:
		fail(srsErrorHTTPDataInvalid, fmt.Sprintf("transport %q: want tcp or udp", req.Transport))
		return
	}
	cfg := s.cfg.Load()
	if !cfg.enabled {
		fail(srsErrorHTTPDataInvalid, "gb28181 is not enabled in vhost "+cfg.Vhost)
		return
	}
	ss := s.newSession(cfg, nil, req.ID, req.ID, ssrc, mode)
	ss.info.IP = hostOf(r.RemoteAddr)
	s.mu.Lock()
	for _, x := range s.sessions {
		if x.ref.Stream == req.ID && x.ref.App == cfg.app {
			s.mu.Unlock()
			fail(srsErrorStreamBusy, "stream already exists: "+ss.ref.Key())
			return
		}
	}
	s.mu.Unlock()
	if err := ss.openMedia(cfg); err != nil {
		fail(srsErrorHTTPDataInvalid, err.Error())
		return
	}
	if !s.addSession(ss) {
		ss.releaseMedia()
		fail(srsErrorStreamBusy, fmt.Sprintf("ssrc already exists: %d", ssrc))
		return
	}
	ss.log.Info("gb publish: waiting for media", "stream", ss.ref.Key(), "transport", mode, "media_port", ss.port)
	reply(map[string]any{"code": 0, "port": ss.port, "is_tcp": mode == "tcp", "client_id": ss.clientID})
}

// parseSSRC reads the SSRC as SRS does (a decimal string) or as a number.
func parseSSRC(raw json.RawMessage) (uint32, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || len(raw) == 0 {
		return 0, fmt.Errorf("ssrc required: a decimal 32-bit number (got %s)", raw)
	}
	return uint32(v), nil
}
