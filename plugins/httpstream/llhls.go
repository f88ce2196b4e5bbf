package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rill-media/rill/sdk"
)

// Low-Latency HLS (draft-pantos-hls-rfc8216bis, "RFC 8216bis" below): with
// hls { ll_hls = true } a stream's fMP4 segments are also kept in memory,
// cut into partial segments of about part_target, and its playlist is
// rendered from memory with EXT-X-PART, EXT-X-PRELOAD-HINT and
// EXT-X-SERVER-CONTROL; a request may block until a segment or part exists
// (_HLS_msn, _HLS_part) and ask for a delta update (_HLS_skip). Nothing of
// it is read from the disk. The URIs, relative to /[app]/[stream].m3u8:
//
//	[stream]-ll-init-N.mp4  initialization segment N (EXT-X-MAP)
//	[stream]-ll-S.m4s       the whole media segment S
//	[stream]-ll-S-P.m4s     part P of segment S
const (
	// llAdvanceParts is how far past the last part a blocking request may
	// ask before it is refused (RFC 8216bis §6.2.5.2: the Advance Part
	// Limit is 3).
	llAdvanceParts = 3
	// llFullParts is how many target durations at the end of the playlist
	// list their parts (§4.4.4.9: at least three).
	llFullParts = 3
	// llSkipTargets is CAN-SKIP-UNTIL in target durations (§4.4.3.8: at
	// least six).
	llSkipTargets = 6
)

var (
	errLLBadRequest = errors.New("bad low-latency hls request")
	errLLGone       = errors.New("no such segment or part")
	errLLTimeout    = errors.New("not available in time")
)

// llPart is one partial segment: an fMP4 fragment (moof+mdat), at byte
// off of its segment.
type llPart struct {
	dur   time.Duration
	indep bool
	off   int
	data  []byte
}

// llInit is an initialization segment.
type llInit struct {
	id   int
	data []byte
}

// llSeg is one media segment: its parts and, once done, its duration and
// all its bytes (the parts' data then point into it).
type llSeg struct {
	seq   uint64
	pdt   time.Time // wall clock of its first sample's arrival
	disc  bool
	init  *llInit
	parts []llPart
	size  int
	done  bool
	dur   time.Duration
	data  []byte
}

// llStore holds a stream's low-latency segments in memory. The writer
// goroutine adds to it; HTTP handlers read and wait on it.
type llStore struct {
	part   time.Duration // PART-TARGET
	target time.Duration // segment target (fragment)

	mu      sync.Mutex
	segs    []*llSeg // the window, oldest first; the last may be open
	discSeq int
	inits   []*llInit
	nextID  int
	// changed is closed (and replaced) at every new part or segment.
	changed chan struct{}
}

func newLLStore(part, target time.Duration) *llStore {
	return &llStore{part: part, target: target, changed: make(chan struct{})}
}

// broadcastLocked wakes every waiting request.
func (l *llStore) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// initFor returns the init segment for data: the last one when equal.
func (l *llStore) initFor(data []byte) *llInit {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.inits); n > 0 && string(l.inits[n-1].data) == string(data) {
		return l.inits[n-1]
	}
	in := &llInit{id: l.nextID, data: append([]byte(nil), data...)}
	l.nextID++
	l.inits = append(l.inits, in)
	return in
}

// open starts segment seq. An open segment left by a lost one is dropped.
func (l *llStore) open(seq uint64, disc bool, init *llInit, pdt time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.segs); n > 0 && !l.segs[n-1].done {
		l.segs = l.segs[:n-1]
		disc = true
	}
	l.segs = append(l.segs, &llSeg{seq: seq, disc: disc, init: init, pdt: pdt})
	l.broadcastLocked()
}

// addPart appends a fragment to the open segment seq.
func (l *llStore) addPart(seq uint64, b []byte, dur time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.segs)
	if n == 0 || l.segs[n-1].seq != seq || l.segs[n-1].done || len(b) == 0 {
		return
	}
	s := l.segs[n-1]
	if dur <= 0 {
		dur = time.Millisecond
	}
	s.parts = append(s.parts, llPart{dur: dur, indep: len(s.parts) == 0, off: s.size, data: append([]byte(nil), b...)})
	s.size += len(b)
	l.broadcastLocked()
}

// close ends segment seq with its duration and slides the window.
func (l *llStore) close(seq uint64, dur, window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.segs)
	if n == 0 || l.segs[n-1].seq != seq || l.segs[n-1].done {
		return
	}
	s := l.segs[n-1]
	if len(s.parts) == 0 {
		l.segs = l.segs[:n-1]
		l.broadcastLocked()
		return
	}
	// One buffer for the segment; the parts become views of it.
	s.data = make([]byte, 0, s.size)
	for i := range s.parts {
		off := len(s.data)
		s.data = append(s.data, s.parts[i].data...)
		s.parts[i].data = s.data[off:len(s.data):len(s.data)]
	}
	s.dur, s.done = dur, true
	var total time.Duration
	for _, x := range l.segs {
		total += x.dur
	}
	for len(l.segs) > 2 && total > window {
		total -= l.segs[0].dur
		if l.segs[0].disc {
			l.discSeq++
		}
		l.segs[0] = nil
		l.segs = l.segs[1:]
	}
	used := map[*llInit]bool{}
	for _, x := range l.segs {
		used[x.init] = true
	}
	kept := l.inits[:0]
	for _, in := range l.inits {
		if used[in] || in == l.inits[len(l.inits)-1] {
			kept = append(kept, in)
		}
	}
	clear(l.inits[len(kept):])
	l.inits = kept
	l.broadcastLocked()
}

// done returns the segments that are complete and the open one (or nil).
func (l *llStore) splitLocked() (done []*llSeg, open *llSeg) {
	done = l.segs
	if n := len(done); n > 0 && !done[n-1].done {
		return done[:n-1], done[n-1]
	}
	return done, nil
}

// targetSecs is EXT-X-TARGETDURATION: the configured fragment, or the
// longest segment, rounded up (RFC 8216 §4.3.3.1).
func (l *llStore) targetSecsLocked() int {
	t := int(math.Ceil(l.target.Seconds()))
	for _, s := range l.segs {
		if s.done {
			t = max(t, int(math.Round(s.dur.Seconds())))
		}
	}
	return max(t, 1)
}

// blockWait is how long a blocking request may wait: three target
// durations (RFC 8216bis §6.2.5.2).
func (l *llStore) blockWait() time.Duration {
	l.mu.Lock()
	t := l.targetSecsLocked()
	l.mu.Unlock()
	return 3 * time.Duration(t) * time.Second
}

// llQuery is a playlist request's delivery directives.
type llQuery struct {
	block bool
	msn   uint64
	part  int // -1: none
	skip  bool
}

// parseLLQuery reads _HLS_msn, _HLS_part and _HLS_skip (RFC 8216bis §6.2.5).
func parseLLQuery(q map[string][]string) (llQuery, error) {
	lq := llQuery{part: -1}
	get := func(k string) (string, bool, error) {
		v, ok := q[k]
		if !ok {
			return "", false, nil
		}
		if len(v) != 1 {
			return "", true, fmt.Errorf("%w: %s given %d times", errLLBadRequest, k, len(v))
		}
		if len(v[0]) > 20 {
			return "", true, fmt.Errorf("%w: %s longer than 20 characters", errLLBadRequest, k)
		}
		return v[0], true, nil
	}
	msn, ok, err := get("_HLS_msn")
	if err != nil {
		return lq, err
	}
	if ok {
		n, err := strconv.ParseUint(msn, 10, 63)
		if err != nil {
			return lq, fmt.Errorf("%w: _HLS_msn %q is not a number", errLLBadRequest, msn)
		}
		lq.block, lq.msn = true, n
	}
	part, ok, err := get("_HLS_part")
	if err != nil {
		return lq, err
	}
	if ok {
		if !lq.block {
			return lq, fmt.Errorf("%w: _HLS_part without _HLS_msn", errLLBadRequest)
		}
		n, err := strconv.ParseUint(part, 10, 16)
		if err != nil {
			return lq, fmt.Errorf("%w: _HLS_part %q is not a small number", errLLBadRequest, part)
		}
		lq.part = int(n)
	}
	skip, ok, err := get("_HLS_skip")
	if err != nil {
		return lq, err
	}
	if ok {
		if skip != "YES" && skip != "v2" {
			return lq, fmt.Errorf("%w: _HLS_skip %q", errLLBadRequest, skip)
		}
		lq.skip = true
	}
	return lq, nil
}

// readyLocked reports whether the playlist holds what q waits for, or an
// error when it never will (too far ahead).
func (l *llStore) readyLocked(q llQuery) (bool, error) {
	done, open := l.splitLocked()
	var last uint64 // the next sequence number to complete
	switch {
	case open != nil:
		last = open.seq
	case len(done) > 0:
		last = done[len(done)-1].seq + 1
	}
	// §6.2.5.2: more than two segments ahead is a 400.
	if q.msn > last+2 {
		return false, fmt.Errorf("%w: _HLS_msn %d is more than two segments past the last one (%d)", errLLBadRequest, q.msn, last)
	}
	if q.msn < last {
		return true, nil // that segment is complete (or gone)
	}
	if q.part < 0 {
		return false, nil
	}
	have := 0
	if open != nil && open.seq == q.msn {
		have = len(open.parts)
	}
	if q.part >= have+llAdvanceParts {
		return false, fmt.Errorf("%w: _HLS_part %d of segment %d is more than %d parts past the last one", errLLBadRequest, q.part, q.msn, llAdvanceParts)
	}
	return q.part < have, nil
}

// wait blocks until ready says yes, the request ends or wait passes.
func (l *llStore) wait(r *http.Request, wait time.Duration, ready func() (bool, error)) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range 100000 {
		l.mu.Lock()
		ok, err := ready()
		ch := l.changed
		l.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return errLLTimeout
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	return errLLTimeout
}

// llRender is how a playlist request wants the playlist.
type llRender struct {
	// skip asks for a delta update (_HLS_skip).
	skip bool
	// byteRange lists parts as byte ranges of their segment's URI
	// (ll_hls_byterange) instead of URIs of their own.
	byteRange bool
	// query ends every URI ("?hls_ctx=ID"), or is empty.
	query string
	// reports are the EXT-X-RENDITION-REPORTs of the other renditions.
	reports []llReport
}

// llReport is an EXT-X-RENDITION-REPORT (RFC 8216bis §4.4.5.4): the last
// segment and part of another rendition's playlist.
type llReport struct {
	uri  string
	msn  uint64
	part int
}

// lastPart returns the sequence number and part index of the last part in
// the playlist, and false while no segment is complete (no playlist yet).
func (l *llStore) lastPart() (uint64, int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	done, open := l.splitLocked()
	if len(done) == 0 {
		return 0, 0, false
	}
	if open != nil && len(open.parts) > 0 {
		return open.seq, len(open.parts) - 1, true
	}
	last := done[len(done)-1]
	return last.seq, len(last.parts) - 1, true
}

// playlist renders the media playlist (RFC 8216bis §4.4) and reports
// whether there was anything to render.
func (l *llStore) playlist(stream string, o llRender) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	done, open := l.splitLocked()
	if len(done) == 0 {
		return nil, false
	}
	q := o.query
	target := l.targetSecsLocked()
	partSecs := l.part.Seconds()
	for _, s := range l.segs {
		for _, p := range s.parts {
			partSecs = max(partSecs, p.dur.Seconds())
		}
	}
	// Segments skipped by a delta update: the oldest ones, as long as
	// what is left spans CAN-SKIP-UNTIL (§4.4.3.8, §6.2.5.1).
	skipUntil := time.Duration(llSkipTargets*target) * time.Second
	skipped := 0
	if o.skip {
		var rest time.Duration
		for _, s := range done {
			rest += s.dur
		}
		for skipped < len(done)-1 && rest-done[skipped].dur >= skipUntil {
			rest -= done[skipped].dur
			skipped++
		}
	}
	var b strings.Builder
	b.Grow(4096)
	version := 6
	if o.skip {
		version = 9
	}
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n#EXT-X-TARGETDURATION:%d\n", version, target)
	// PART-HOLD-BACK: at least twice the part target (§4.4.3.8); three
	// parts give a player room for one late part.
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=%.1f,PART-HOLD-BACK=%.3f\n", skipUntil.Seconds(), 3*partSecs)
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", partSecs)
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", done[0].seq)
	discSeq := l.discSeq
	if discSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", discSeq)
	}
	if skipped > 0 {
		fmt.Fprintf(&b, "#EXT-X-SKIP:SKIPPED-SEGMENTS=%d\n", skipped)
	}
	// Parts are listed for the segments in the last llFullParts target
	// durations.
	all := l.segs
	var tail time.Duration
	partsFrom := len(all)
	for i := len(all) - 1; i >= 0; i-- {
		if tail >= time.Duration(llFullParts*target)*time.Second {
			break
		}
		tail += all[i].dur
		partsFrom = i
	}
	var prev *llInit
	for i, s := range all {
		if i < skipped {
			prev = s.init
			continue
		}
		if s.disc && i > 0 {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if i == skipped || s.init != prev || s.disc {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s-ll-init-%d.mp4%s\"\n", stream, s.init.id, q)
		}
		// RFC 8216 §4.3.2.6: when the segment's first sample reached
		// the server, so players can tell their latency (hls.playingDate).
		if !s.pdt.IsZero() && (i == skipped || s.disc) {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", s.pdt.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		prev = s.init
		if i >= partsFrom {
			for j, p := range s.parts {
				if o.byteRange {
					fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.3f,URI=\"%s-ll-%d.m4s%s\",BYTERANGE=\"%d@%d\"", p.dur.Seconds(), stream, s.seq, q, len(p.data), p.off)
				} else {
					fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.3f,URI=\"%s-ll-%d-%d.m4s%s\"", p.dur.Seconds(), stream, s.seq, j, q)
				}
				if p.indep {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if s.done {
			fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s-ll-%d.m4s%s\n", s.dur.Seconds(), stream, s.seq, q)
		}
	}
	// §4.4.5.3: the part that comes next: in byte-range mode, the bytes
	// of the open segment from where it ends now (a new segment: 0).
	next, nextPart, nextOff := done[len(done)-1].seq+1, 0, 0
	if open != nil {
		next, nextPart, nextOff = open.seq, len(open.parts), open.size
	}
	if o.byteRange {
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s-ll-%d.m4s%s\",BYTERANGE-START=%d\n", stream, next, q, nextOff)
	} else {
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s-ll-%d-%d.m4s%s\"\n", stream, next, nextPart, q)
	}
	for _, r := range o.reports {
		// The URI is the rendition's as the master playlist names it.
		fmt.Fprintf(&b, "#EXT-X-RENDITION-REPORT:URI=\"%s\",LAST-MSN=%d,LAST-PART=%d\n", r.uri, r.msn, r.part)
	}
	return []byte(b.String()), true
}

// llName matches the file names of llStore (see the comment at the top).
var llName = regexp.MustCompile(`^(.+)-ll-(?:init-(\d{1,9})|(\d{1,19})(?:-(\d{1,5}))?)$`)

// llFile is a parsed request for an llStore file.
type llFile struct {
	stream string
	init   bool
	id     int
	seq    uint64
	part   int // -1: the whole segment
}

func parseLLName(name string) (llFile, bool) {
	m := llName.FindStringSubmatch(name)
	if m == nil {
		return llFile{}, false
	}
	f := llFile{stream: m[1], part: -1}
	if m[2] != "" {
		id, err := strconv.Atoi(m[2])
		f.init, f.id = true, id
		return f, err == nil
	}
	seq, err := strconv.ParseUint(m[3], 10, 63)
	if err != nil {
		return llFile{}, false
	}
	f.seq = seq
	if m[4] != "" {
		f.part, _ = strconv.Atoi(m[4])
	}
	return f, true
}

// file returns the bytes of f, waiting (up to wait) for a part or segment
// that is the next one to come: the preload hint of the playlist, or a part
// a little ahead of it (RFC 8216bis §6.2.6). Anything else missing is
// errLLGone at once.
func (l *llStore) file(r *http.Request, f llFile, wait time.Duration) ([]byte, error) {
	if f.init {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, in := range l.inits {
			if in.id == f.id {
				return in.data, nil
			}
		}
		return nil, errLLGone
	}
	var out []byte
	err := l.wait(r, wait, func() (bool, error) {
		done, open := l.splitLocked()
		for _, s := range done {
			if s.seq != f.seq {
				continue
			}
			if f.part < 0 {
				out = s.data
				return true, nil
			}
			if f.part < len(s.parts) {
				out = s.parts[f.part].data
				return true, nil
			}
			return false, errLLGone
		}
		next := uint64(0)
		have := 0
		switch {
		case open != nil:
			next, have = open.seq, len(open.parts)
		case len(done) > 0:
			next = done[len(done)-1].seq + 1
		default:
			return false, errLLGone
		}
		switch {
		case open != nil && f.seq == open.seq && f.part >= 0 && f.part < have:
			out = open.parts[f.part].data
			return true, nil
		case f.seq == next && (f.part < 0 || f.part < have+llAdvanceParts):
			return false, nil // being written: wait
		case f.seq == next+1 && f.part >= 0 && f.part < llAdvanceParts:
			return false, nil // the first parts of the next segment
		}
		return false, errLLGone
	})
	return out, err
}

// llStoreOf returns the low-latency store of a stream, or nil.
func (s *Server) llStoreOf(key streamKey) *llStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hls[key]; h != nil {
		return h.ll
	}
	return nil
}

// serveLL answers a request for a low-latency playlist, part, segment or
// init of a stream with ll_hls, and reports whether it did. Anything else
// falls through to the files and live streams.
func (s *Server) serveLL(w http.ResponseWriter, r *http.Request, vc *vhostConfig, key streamKey, sp streamPath) bool {
	var f llFile
	switch sp.Format {
	case fmtM3U8:
	case fmtM4S, fmtMP4:
		var ok bool
		if f, ok = parseLLName(sp.Stream); !ok || (sp.Format == fmtMP4) != f.init {
			return false
		}
		key.Stream = f.stream
	default:
		return false
	}
	l := s.llStoreOf(key)
	if l == nil {
		return false
	}
	refuse := func(code int, err error) {
		id := sdk.NewClientID()
		s.log.Warn("ll-hls request refused", "client_id", id, "remote_addr", r.RemoteAddr, "stream", key.String(), "path", r.URL.Path, "status", code, "error", err)
		httpError(w, code, "%s: %v (client %s)", key.String(), err, id)
	}
	status := func(err error) int {
		switch {
		case errors.Is(err, errLLBadRequest):
			return http.StatusBadRequest
		case errors.Is(err, errLLTimeout):
			return http.StatusServiceUnavailable
		}
		return http.StatusNotFound
	}
	// hls_ctx: the session (hls-play client, on_play once) of a request
	// that names one; a playlist request without one gets SRS's
	// one-variant master playlist that gives it one.
	ctxID := ""
	if vc != nil && vc.HLS.HLSCtx {
		if id := r.URL.Query().Get("hls_ctx"); id != "" && validName(id) {
			ctxID = id
			ssp := sp
			ssp.Stream = key.Stream
			if !s.admit(w, r, id, vc, ssp, 0) {
				return true
			}
		} else if sp.Format == fmtM3U8 {
			s.serveLLCtxMaster(w, r, key)
			return true
		}
	}
	if sp.Format != fmtM3U8 {
		if !f.init && f.part < 0 && r.Method == http.MethodGet && r.Header.Get("Range") != "" {
			cut := func(err error) {
				s.log.Warn("ll-hls range response cut short", "client_id", sdk.NewClientID(), "remote_addr", r.RemoteAddr, "stream", key.String(), "path", r.URL.Path, "range", r.Header.Get("Range"), "error", err)
			}
			if l.serveRange(w, r, f.seq, l.blockWait(), refuse, cut) {
				return true
			}
		}
		data, err := l.file(r, f, l.blockWait())
		if err != nil {
			if r.Context().Err() == nil {
				refuse(status(err), err)
			}
			return true
		}
		s.sessionBytes(ctxID, len(data))
		w.Header().Set("Content-Type", sp.Format.contentType())
		w.Header().Set("Cache-Control", "max-age=60")
		if !f.init && f.part < 0 {
			// A whole segment: ranges of it as of any file.
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
			return true
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		if r.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
		return true
	}
	q, err := parseLLQuery(r.URL.Query())
	if err != nil {
		refuse(http.StatusBadRequest, err)
		return true
	}
	if q.block {
		if err := l.wait(r, l.blockWait(), func() (bool, error) { return l.readyLocked(q) }); err != nil {
			if r.Context().Err() == nil {
				refuse(status(err), err)
			}
			return true
		}
	}
	o := llRender{skip: q.skip, reports: s.llReports(vc, key)}
	if vc != nil {
		o.byteRange = vc.HLS.LLByteRange
	}
	if ctxID != "" {
		o.query = "?hls_ctx=" + ctxID
	}
	b, ok := l.playlist(key.Stream, o)
	if !ok {
		httpError(w, http.StatusNotFound, "%s: no low-latency segment yet", key.String())
		return true
	}
	s.sessionBytes(ctxID, len(b))
	w.Header().Set("Content-Type", fmtM3U8.contentType())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return true
}

// serveLLCtxMaster answers a low-latency playlist request without hls_ctx
// on a vhost with hls_ctx = true as SRS answers one of a playlist: a
// master playlist of one variant, the playlist with a new session id and
// the request's other parameters (delivery directives left out).
func (s *Server) serveLLCtxMaster(w http.ResponseWriter, r *http.Request, key streamKey) {
	q := r.URL.Query()
	for k := range q {
		if strings.HasPrefix(k, "_HLS_") {
			q.Del(k)
		}
	}
	q.Set("hls_ctx", sdk.NewClientID())
	b := fmt.Sprintf("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n%s.m3u8?%s\n", key.Stream, q.Encode())
	w.Header().Set("Content-Type", fmtM3U8.contentType())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, b)
	}
}

// llReports returns the rendition reports of key's playlist: when key is
// one of the variants of a stream (hls { variants }), the last part of
// each other rendition that is live with ll_hls, in the listed order.
func (s *Server) llReports(vc *vhostConfig, key streamKey) []llReport {
	if vc == nil || len(vc.HLS.Variants) < 2 {
		return nil
	}
	// The most specific template that names the stream gives its base:
	// with ["[stream]", "[stream]_sd"], cam_sd is cam's, not its own.
	base := ""
	for _, tpl := range vc.HLS.Variants {
		if b, ok := variantBase(tpl, key); ok && (base == "" || len(b) < len(base)) {
			base = b
		}
	}
	if base == "" {
		return nil
	}
	var out []llReport
	for _, tpl := range vc.HLS.Variants {
		name := renderVariant(tpl, base, key)
		if name == key.Stream || !validName(name) {
			continue
		}
		l := s.llStoreOf(streamKey{Vhost: key.Vhost, App: key.App, Stream: name})
		if l == nil {
			continue
		}
		if msn, part, ok := l.lastPart(); ok {
			out = append(out, llReport{uri: name + ".m3u8", msn: msn, part: part})
		}
	}
	return out
}
