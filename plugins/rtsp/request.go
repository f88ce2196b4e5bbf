package main

import (
	"fmt"
	"strings"
	"time"
)

// request is one RTSP request as the guard's framer passed it (a whole
// unit: line, headers, body), read for the requests the plugin answers
// itself (OPTIONS, GET_PARAMETER, SET_PARAMETER, PAUSE, a PLAY that
// resumes) and for the authentication of ANNOUNCE and DESCRIBE.
type request struct {
	method, uri string
	headers     map[string]string // lower-case names; a repeated header keeps its first value
	body        []byte
}

// parseRequest reads a unit the framer accepted; it still checks what it
// reads, so that it is safe on any input (it is fuzzed as such).
func parseRequest(b []byte) (*request, error) {
	end := strings.Index(string(b), "\r\n\r\n")
	if end < 0 {
		return nil, fmt.Errorf("%w: request without the blank line ending its headers", errMalformed)
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	parts := strings.Fields(lines[0])
	if len(parts) != 3 || !rtspMethods[parts[0]] || !strings.HasPrefix(parts[2], "RTSP/") {
		return nil, fmt.Errorf("%w: bad request line %q", errMalformed, truncate(lines[0]))
	}
	r := &request{method: parts[0], uri: parts[1], headers: make(map[string]string, len(lines)), body: b[end+4:]}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header line %q without a colon", errMalformed, truncate(l))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := r.headers[k]; !dup {
			r.headers[k] = strings.TrimSpace(v)
		}
	}
	return r, nil
}

// cseq is the request's CSeq, as a response must repeat it (RFC 2326
// §12.17); one that could break the response's header is dropped.
func (r *request) cseq() string {
	v := r.headers["cseq"]
	if strings.ContainsAny(v, "\r\n") || len(v) > 32 {
		return "0"
	}
	return v
}

// serverName is the Server header of the responses the plugin writes.
const serverName = "rill-rtsp"

// publicMethods is the OPTIONS answer: what the plugin handles.
const publicMethods = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

// response builds an RTSP response to r: status line, CSeq, Server, Date,
// the extra header lines (each without its CRLF) and no body.
func response(r *request, status string, extra ...string) []byte {
	var b strings.Builder
	b.WriteString("RTSP/1.0 ")
	b.WriteString(status)
	b.WriteString("\r\nCSeq: ")
	b.WriteString(r.cseq())
	b.WriteString("\r\nServer: " + serverName + "\r\nDate: ")
	b.WriteString(time.Now().UTC().Format(time.RFC1123))
	b.WriteString("\r\n")
	for _, h := range extra {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}
