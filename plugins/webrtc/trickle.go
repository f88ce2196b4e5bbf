package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pion/webrtc/v3"
)

// sdpFragType is the media type of trickle ICE and ICE restart bodies
// (RFC 8840 §9.1), what WHIP/WHEP PATCH carries (RFC 9725 §4.3).
const sdpFragType = "application/trickle-ice-sdpfrag"

// maxFragCandidates bounds the candidates one PATCH may add.
const maxFragCandidates = 64

// sdpFrag is a parsed application/trickle-ice-sdpfrag body.
type sdpFrag struct {
	ufrag, pwd string
	// mid is the first a=mid: seen (the bundle's transport).
	mid        string
	candidates []string // "candidate:..." attribute values
	end        bool     // a=end-of-candidates
}

// parseSDPFrag reads an SDP fragment (RFC 8840 §9): session-level and
// media-level a=ice-ufrag, a=ice-pwd, a=mid, a=candidate and
// a=end-of-candidates; other lines are skipped.
func parseSDPFrag(body string) (*sdpFrag, error) {
	f := &sdpFrag{}
	for _, l := range strings.Split(body, "\n") {
		l = strings.TrimRight(l, "\r")
		if l == "" {
			continue
		}
		if len(l) < 2 || l[1] != '=' {
			return nil, fmt.Errorf("sdpfrag line %q is not type=value", truncate(l, 40))
		}
		a, ok := strings.CutPrefix(l, "a=")
		if !ok {
			continue // m=, c=, ...: the transport is the bundle's
		}
		k, v, _ := strings.Cut(a, ":")
		switch k {
		case "ice-ufrag":
			if f.ufrag != "" && f.ufrag != v {
				return nil, errors.New("sdpfrag has two different ice-ufrag values")
			}
			f.ufrag = v
		case "ice-pwd":
			if f.pwd != "" && f.pwd != v {
				return nil, errors.New("sdpfrag has two different ice-pwd values")
			}
			f.pwd = v
		case "mid":
			if f.mid == "" {
				f.mid = v
			}
		case "candidate":
			if len(f.candidates) >= maxFragCandidates {
				return nil, fmt.Errorf("sdpfrag has more than %d candidates", maxFragCandidates)
			}
			f.candidates = append(f.candidates, a)
		case "end-of-candidates":
			f.end = true
		}
	}
	if (f.ufrag == "") != (f.pwd == "") {
		return nil, errors.New("sdpfrag has ice-ufrag without ice-pwd or the reverse")
	}
	return f, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// etagMatches compares an If-Match value with the session's entity tag
// (RFC 9110 §13.1.1: a list of quoted tags or "*").
func etagMatches(ifMatch, etag string) bool {
	for _, t := range strings.Split(ifMatch, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag || `"`+strings.Trim(t, `"`)+`"` == etag {
			return true
		}
	}
	return false
}

// servePatch serves PATCH on a WHIP/WHEP session resource (RFC 9725
// §4.3): trickled candidates (204) or an ICE restart (200 with the new
// local ufrag, pwd and candidates), both guarded by If-Match.
func (s *Server) servePatch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ss := s.session(q.Get("session"))
	if ss == nil || q.Get("token") != ss.token {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	if ct := strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]); ct != sdpFragType {
		ss.patchRefused(w, http.StatusUnsupportedMediaType, "PATCH content type "+ct+" is not "+sdpFragType)
		return
	}
	ifMatch := r.Header.Get("If-Match")
	if ifMatch == "" {
		ss.patchRefused(w, http.StatusPreconditionRequired, "PATCH without If-Match (RFC 9725 §4.3.1)")
		return
	}
	body, err := s.readBody(r)
	if err != nil {
		ss.patchRefused(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	frag, err := parseSDPFrag(string(body))
	if err != nil {
		ss.patchRefused(w, http.StatusBadRequest, err.Error())
		return
	}
	ss.sigMu.Lock()
	defer ss.sigMu.Unlock()
	etag := ss.etag
	if !etagMatches(ifMatch, etag) {
		ss.patchRefused(w, http.StatusPreconditionFailed, "If-Match "+ifMatch+" is not the session's entity tag")
		return
	}
	ss.mu.Lock()
	pc := ss.pc
	ss.mu.Unlock()
	if pc == nil {
		ss.patchRefused(w, http.StatusConflict, "session is still negotiating")
		return
	}
	remote := pc.RemoteDescription()
	if remote == nil {
		ss.patchRefused(w, http.StatusConflict, "session has no remote description")
		return
	}
	if frag.ufrag != "" && frag.ufrag != ufragOf(remote.SDP) {
		frag2, newTag, err := ss.iceRestart(r.Context(), remote.SDP, frag)
		if err != nil {
			ss.patchRefused(w, http.StatusBadRequest, "ice restart: "+err.Error())
			return
		}
		ss.s.restarts.Add(1)
		ss.log.Info("webrtc ice restart", "remote_ufrag", frag.ufrag, "candidates", len(frag.candidates))
		w.Header().Set("Content-Type", sdpFragType)
		w.Header().Set("ETag", newTag)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, frag2)
		return
	}
	for _, c := range frag.candidates {
		if err := pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c, SDPMid: &frag.mid}); err != nil {
			ss.patchRefused(w, http.StatusBadRequest, "trickled candidate refused: "+err.Error())
			return
		}
		ss.s.trickled.Add(1)
	}
	ss.log.Debug("webrtc trickle ice", "candidates", len(frag.candidates), "end_of_candidates", frag.end)
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusNoContent)
}

// patchRefused logs and answers a refused PATCH; the session goes on.
func (ss *session) patchRefused(w http.ResponseWriter, status int, reason string) {
	ss.s.rejected.Add(1)
	ss.log.Warn("webrtc patch refused", "status", status, "reason", reason)
	http.Error(w, reason, status)
}

// iceRestart applies the client's new ICE credentials and candidates as a
// new offer (the old one with its ICE lines replaced); pion restarts the
// agent with new local credentials. It returns the answer's ICE part as an
// sdpfrag and the session's new entity tag.
func (ss *session) iceRestart(ctx context.Context, oldOffer string, frag *sdpFrag) (string, string, error) {
	offer := replaceICE(oldOffer, frag.ufrag, frag.pwd, frag.candidates)
	if err := ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", "", fmt.Errorf("restart offer refused: %w", err)
	}
	answer, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return "", "", fmt.Errorf("restart answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(answer); err != nil {
		return "", "", fmt.Errorf("set restart answer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return "", "", errors.New("ice gathering did not complete within 5s")
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	ss.etag = newETag()
	return iceFragOf(ss.pc.LocalDescription().SDP), ss.etag, nil
}

func newETag() string { return `"` + newToken()[:16] + `"` }

// replaceICE returns sdp with every a=ice-ufrag, a=ice-pwd, a=candidate
// and a=end-of-candidates line replaced: the new credentials where the old
// ones were, the candidates in the first media section.
func replaceICE(sdp, ufrag, pwd string, cands []string) string {
	var b strings.Builder
	inMedia, placed := false, false
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = "a=ice-ufrag:" + ufrag
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = "a=ice-pwd:" + pwd
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			continue
		case strings.HasPrefix(l, "m="):
			if inMedia && !placed {
				placed = true
				for _, c := range cands {
					b.WriteString("a=" + c + "\r\n")
				}
			}
			inMedia = true
		}
		b.WriteString(l + "\r\n")
	}
	if !placed {
		for _, c := range cands {
			b.WriteString("a=" + c + "\r\n")
		}
	}
	return b.String()
}

// iceFragOf is the ICE part of a local description as an sdpfrag (RFC
// 8840 §9): credentials, then the first media section's mid and
// candidates (bundle: one transport).
func iceFragOf(sdp string) string {
	var ufrag, pwd, mline, mid string
	var cands []string
	media := 0
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case strings.HasPrefix(l, "m="):
			media++
			if media == 1 {
				mline = l
			}
		case strings.HasPrefix(l, "a=ice-ufrag:") && ufrag == "":
			ufrag = strings.TrimPrefix(l, "a=ice-ufrag:")
		case strings.HasPrefix(l, "a=ice-pwd:") && pwd == "":
			pwd = strings.TrimPrefix(l, "a=ice-pwd:")
		case media == 1 && strings.HasPrefix(l, "a=mid:") && mid == "":
			mid = l
		case media == 1 && strings.HasPrefix(l, "a=candidate:"):
			cands = append(cands, l)
		}
	}
	var b strings.Builder
	b.WriteString("a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n")
	if mline != "" {
		b.WriteString(mline + "\r\n")
	}
	if mid != "" {
		b.WriteString(mid + "\r\n")
	}
	for _, c := range cands {
		b.WriteString(c + "\r\n")
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
}
