package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// mode is what an SRT caller asks for in its stream id.
type mode int

const (
	modeRequest mode = iota // play (SRS: m=request, the default)
	modePublish
)

func (m mode) String() string {
	if m == modePublish {
		return "publish"
	}
	return "request"
}

// streamID is a parsed SRT stream id.
type streamID struct {
	Vhost  string // "" when the caller named none
	App    string
	Stream string
	Mode   mode
	// Params are the keys SRS does not interpret, as a query string
	// ("?secret=x&token=y" style without the "?"), for the hooks.
	Params string
}

// Limits of a stream id: SRT itself caps it at 512 bytes.
const maxStreamIDLen = 512

var errStreamID = errors.New("bad srt streamid")

func sidErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errStreamID, fmt.Sprintf(format, args...))
}

// parseStreamID reads a stream id as SRS, OBS and FFmpeg send it
// (SRS trunk/src/app/srs_app_srt_utility.cpp srs_srt_streamid_to_request):
//
//   - the access control syntax "#!::r=live/livestream,m=publish", with
//     h= naming the vhost or a whole "vhost/app/stream" and any other
//     key=value pair kept as a parameter for the hooks;
//   - a bare "live/livestream" (or "live/livestream?secret=x"), which plays;
//   - an empty id or one without an app, for which defaultApp is the app.
//
// m= is "publish" or "request" (play); no m= plays.
func parseStreamID(s, defaultApp string) (streamID, error) {
	var id streamID
	if len(s) > maxStreamIDLen {
		return id, sidErr("longer than %d bytes", maxStreamIDLen)
	}
	var path, host string
	var params []string
	if strings.HasPrefix(s, "#!::") {
		for _, kv := range strings.Split(s[len("#!::"):], ",") {
			if kv == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return id, sidErr("%q is not key=value", kv)
			}
			switch k {
			case "r":
				path = v
			case "h":
				host = v
			case "m":
				switch v {
				case "publish":
					id.Mode = modePublish
				case "request":
					id.Mode = modeRequest
				default:
					return id, sidErr("m=%q is neither publish nor request", v)
				}
			default:
				params = append(params, url.QueryEscape(k)+"="+url.QueryEscape(v))
			}
		}
	} else {
		path = s
	}
	// "live/stream?secret=x": the query is parameters too.
	if p, q, ok := strings.Cut(path, "?"); ok {
		path = p
		if q != "" {
			params = append([]string{q}, params...)
		}
	}
	// h= may carry "vhost/app/stream" (SRS) when r= is absent, or just the
	// vhost.
	if h, rest, ok := strings.Cut(host, "/"); ok {
		host = h
		if path == "" {
			path = rest
		}
	}
	path = strings.TrimLeft(path, "/")
	app, stream, ok := cutLast(path, "/")
	if !ok {
		app, stream = defaultApp, path
	}
	if stream == "" {
		return id, sidErr("no stream name in %q", s)
	}
	if app == "" {
		app = defaultApp
	}
	for _, part := range []string{host, app, stream} {
		if strings.ContainsAny(part, "\x00\r\n\t ") {
			return id, sidErr("control or space characters in %q", s)
		}
	}
	id.Vhost, id.App, id.Stream = host, app, stream
	id.Params = strings.Join(params, "&")
	return id, nil
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}
