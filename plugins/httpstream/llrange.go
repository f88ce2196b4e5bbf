package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Byte-range parts (hls { ll_hls_byterange = true }): the playlist lists
// each part as a byte range of its segment's URI
// (EXT-X-PART:...,URI="[stream]-ll-S.m4s",BYTERANGE="len@off") and hints
// the next one as the bytes from where the open segment ends now
// (EXT-X-PRELOAD-HINT:TYPE=PART,URI="[stream]-ll-S.m4s",BYTERANGE-START=n).
// A Range request on a segment is answered 206 from memory, the open
// segment included:
//
//   - a complete segment: as any file (http.ServeContent: 206, 416, or
//     several ranges);
//   - the open segment, bytes=a-b: the bytes already there at once, the
//     rest as each part completes (RFC 8216bis §6.2.6: a part is sent only
//     once all of it can be), Content-Range a-b/*; at most three target
//     durations, then the connection is closed;
//   - the open segment, bytes=a- (a preload hint): once a part past a is
//     complete, the bytes from a to where the segment ends then,
//     Content-Range a-e/*;
//   - a start past what the open segment holds: 416 at once. The hint of
//     the segment after the open one (BYTERANGE-START=0) waits for it.
//
// Other ranges of the open segment (suffix, several) wait for the whole
// segment as a request without Range does.

// llByteRange is a single byte range; end is -1 when open-ended.
type llByteRange struct{ start, end int64 }

// parseLLRange reads "bytes=a-b" or "bytes=a-"; anything else (several
// ranges, a suffix range, junk) is not one.
func parseLLRange(h string) (llByteRange, bool) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || len(spec) > 41 || strings.Contains(spec, ",") {
		return llByteRange{}, false
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok || a == "" {
		return llByteRange{}, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return llByteRange{}, false
	}
	r := llByteRange{start: start, end: -1}
	if b != "" {
		end, err := strconv.ParseInt(b, 10, 64)
		if err != nil || end < start {
			return llByteRange{}, false
		}
		r.end = end
	}
	return r, true
}

// llSegState is what a range request sees of a segment at one moment.
type llSegState struct {
	seg     *llSeg // nil: not there
	pending bool   // not open yet, but the next to come
	size    int
	done    bool
	parts   []llPart // the complete parts (shared, never written again)
	changed chan struct{}
}

func (l *llStore) segState(seq uint64) llSegState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := llSegState{changed: l.changed}
	for _, s := range l.segs {
		if s.seq == seq {
			st.seg, st.size, st.done, st.parts = s, s.size, s.done, s.parts
			return st
		}
	}
	done, open := l.splitLocked()
	st.pending = open == nil && len(done) > 0 && done[len(done)-1].seq+1 == seq
	return st
}

// appendRange appends the bytes [from, to) of the parts to dst.
func appendRange(dst []byte, parts []llPart, from, to int) []byte {
	for _, p := range parts {
		lo, hi := max(from, p.off), min(to, p.off+len(p.data))
		if lo < hi {
			dst = append(dst, p.data[lo-p.off:hi-p.off]...)
		}
	}
	return dst
}

// serveRange answers a GET of segment seq with a Range header, and
// reports whether it did: false leaves the request to the whole-segment
// path (a range form it does not stream). refuse answers an error before
// anything is sent; cut logs why a response already started is cut short
// (the connection is then closed).
func (l *llStore) serveRange(w http.ResponseWriter, r *http.Request, seq uint64, wait time.Duration, refuse func(int, error), cut func(error)) bool {
	abort := func(err error) {
		cut(err)
		panic(http.ErrAbortHandler)
	}
	rng, single := parseLLRange(r.Header.Get("Range"))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	w.Header().Set("Content-Type", fmtM4S.contentType())
	sent := false
	pos := rng.start
	var buf []byte
	for range 100000 {
		st := l.segState(seq)
		switch {
		case st.seg == nil && !st.pending:
			if sent {
				abort(fmt.Errorf("segment %d left the window at byte %d of the range", seq, pos))
			}
			refuse(http.StatusNotFound, fmt.Errorf("%w: segment %d", errLLGone, seq))
			return true
		case st.seg != nil && st.done && !sent:
			// Complete: a file like any other.
			w.Header().Set("Cache-Control", "max-age=60")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(st.seg.data))
			return true
		case st.seg != nil && !sent && !single:
			return false
		case st.seg != nil && !sent && rng.start > int64(st.size):
			w.Header().Set("Content-Range", "bytes */*")
			refuse(http.StatusRequestedRangeNotSatisfiable, fmt.Errorf("%w: range from byte %d of segment %d, which holds %d bytes so far", errLLBadRequest, rng.start, seq, st.size))
			return true
		case st.seg != nil && rng.end < 0 && int64(st.size) > rng.start:
			// A hint: what is there from its start, once a part is.
			end := int64(st.size) - 1
			total := "*"
			if st.done {
				total = strconv.Itoa(st.size)
			}
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%s", rng.start, end, total))
			w.Header().Set("Content-Length", strconv.FormatInt(end-rng.start+1, 10))
			w.WriteHeader(http.StatusPartialContent)
			_, _ = w.Write(appendRange(buf[:0], st.parts, int(rng.start), int(end)+1))
			return true
		case st.seg != nil && rng.end >= 0:
			if !sent {
				sent = true
				w.Header().Set("Cache-Control", "no-cache")
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", rng.start, rng.end))
				w.Header().Set("Content-Length", strconv.FormatInt(rng.end-rng.start+1, 10))
				w.WriteHeader(http.StatusPartialContent)
			}
			if to := min(int64(st.size), rng.end+1); to > pos {
				buf = appendRange(buf[:0], st.parts, int(pos), int(to))
				if _, err := w.Write(buf); err != nil {
					return true
				}
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				pos = to
			}
			if pos > rng.end {
				return true
			}
			if st.done {
				abort(fmt.Errorf("segment %d ended at byte %d, before the range's end %d", seq, st.size, rng.end))
			}
		}
		select {
		case <-st.changed:
		case <-timer.C:
			if sent {
				abort(fmt.Errorf("%w: byte %d of segment %d (range %d-%d)", errLLTimeout, pos, seq, rng.start, rng.end))
			}
			refuse(http.StatusServiceUnavailable, fmt.Errorf("%w: bytes from %d of segment %d", errLLTimeout, rng.start, seq))
			return true
		case <-r.Context().Done():
			return true
		}
	}
	if sent {
		abort(fmt.Errorf("segment %d: too many updates while serving a range", seq))
	}
	return true
}
