package main

import (
	"net"
	"net/url"
	"strings"

	"github.com/rill-media/rill/sdk"
)

const defaultVhost = sdk.DefaultVhost

// resolveStream maps a connect tcUrl and a publish/play stream name to a
// stream as SRS does (srs_discovery_tc_url and srs_vhost_resolve in
// trunk/src/protocol/srs_protocol_utility.cpp): the vhost
// comes from ?vhost= or ?domain= in the app or the stream name (also in the
// legacy forms app...vhost...VHOST and app?vhost?VHOST), else from the tcUrl
// host; param is the raw query with its "?", the stream's if it has one,
// else the app's.
func resolveStream(tcURL, app, name string) sdk.StreamRef {
	ref := sdk.StreamRef{TcURL: tcURL}
	host := ""
	if u, err := url.Parse(tcURL); err == nil {
		host = u.Hostname()
		if app == "" {
			app = strings.TrimPrefix(u.Path, "/")
			if u.RawQuery != "" {
				app += "?" + u.RawQuery
			}
		}
	} else if app == "" {
		// not a URL: take what follows the host part
		s := tcURL
		if i := strings.Index(s, "://"); i >= 0 {
			s = s[i+3:]
		}
		if i := strings.IndexByte(s, '/'); i >= 0 {
			host, app = s[:i], s[i+1:]
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	appName, appParam, appVhost := splitVhost(app)
	streamName, streamParam, streamVhost := splitVhost(name)
	ref.App = strings.TrimSuffix(strings.Trim(appName, "/"), "/_definst_")
	ref.Stream = streamName
	// A stream name with a path ("sub/stream") puts the rest in the app, as
	// SRS does for multi-level apps.
	if i := strings.LastIndexByte(ref.Stream, '/'); i >= 0 {
		ref.App = strings.Trim(ref.App+"/"+ref.Stream[:i], "/")
		ref.Stream = ref.Stream[i+1:]
	}
	ref.Param = appParam
	if streamParam != "" {
		ref.Param = streamParam
	}
	ref.Vhost = host
	if appVhost != "" {
		ref.Vhost = appVhost
	}
	if streamVhost != "" {
		ref.Vhost = streamVhost
	}
	if ref.Vhost == "" {
		ref.Vhost = defaultVhost
	}
	return ref
}

// splitVhost splits "name?query" (or the legacy "name...vhost...VHOST")
// into the name, the original query with its "?", and the vhost named by
// vhost= or domain=.
func splitVhost(s string) (name, param, vhost string) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		param = s[i:]
	}
	norm := s
	for _, sep := range []string{",", "...", "&&"} {
		norm = strings.ReplaceAll(norm, sep, "?")
	}
	i := strings.IndexByte(norm, '?')
	if i < 0 {
		return s, param, ""
	}
	name = norm[:i]
	// Query pairs may be separated by "&" or by the replaced legacy
	// separators; "vhost?x" (from "vhost...x") counts as vhost=x.
	for _, kv := range strings.FieldsFunc(norm[i+1:], func(r rune) bool { return r == '&' || r == '?' }) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if (k == "vhost" || k == "domain") && v != "" {
			vhost = v
		}
	}
	if vhost == "" { // legacy "vhost?VHOST" after the separator rewrite
		parts := strings.Split(norm[i+1:], "?")
		for j := 0; j+1 < len(parts); j++ {
			if parts[j] == "vhost" || parts[j] == "domain" {
				vhost = parts[j+1]
				break
			}
		}
	}
	return name, param, vhost
}
