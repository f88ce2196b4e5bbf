package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// validName is the hub's rule for names (sdk.ValidName).
var validName = sdk.ValidName

// Stream formats served by the plugin.
type format uint8

const (
	fmtFLV format = iota + 1
	fmtTS
	fmtAAC
	fmtMP3
	fmtM3U8
	// fmtM4S and fmtMP4 are the media and initialization segments of fMP4
	// HLS (H.265 streams): files only, never live streams.
	fmtM4S
	fmtMP4
	// fmtMPD is a DASH MPD (a file).
	fmtMPD
)

var formatByExt = map[string]format{
	".flv": fmtFLV, ".ts": fmtTS, ".aac": fmtAAC, ".mp3": fmtMP3, ".m3u8": fmtM3U8,
	".m4s": fmtM4S, ".mp4": fmtMP4, ".mpd": fmtMPD,
}

func (f format) contentType() string {
	switch f {
	case fmtFLV:
		return "video/x-flv"
	case fmtTS:
		return "video/MP2T"
	case fmtAAC:
		return "audio/aac"
	case fmtMP3:
		return "audio/mpeg"
	case fmtM3U8:
		return "application/vnd.apple.mpegurl"
	case fmtM4S:
		return "video/iso.segment"
	case fmtMP4:
		return "video/mp4"
	case fmtMPD:
		return "application/dash+xml"
	}
	return "application/octet-stream"
}

// audio is the only audio codec an audio-only format carries (0 for the
// others): .aac is ADTS, .mp3 MPEG audio, with no transcoding.
func (f format) audio() media.Codec {
	switch f {
	case fmtAAC:
		return media.CodecAAC
	case fmtMP3:
		return media.CodecMP3
	}
	return 0
}

func (f format) String() string {
	switch f {
	case fmtFLV:
		return "flv"
	case fmtTS:
		return "ts"
	case fmtAAC:
		return "aac"
	case fmtMP3:
		return "mp3"
	case fmtM3U8:
		return "m3u8"
	case fmtM4S:
		return "m4s"
	case fmtMP4:
		return "mp4"
	case fmtMPD:
		return "mpd"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// streamPath is a parsed request path /[vhost/]app/stream.ext.
type streamPath struct {
	Vhost  string // "" unless the first segment named a configured vhost
	App    string
	Stream string
	Format format
}

var errBadPath = errors.New("bad stream path")

// parseStreamPath parses an unescaped URL path into app, stream and format.
// isVhost says whether a first segment names a vhost (SRS mounts
// [vhost]/[app]/[stream].flv). Every segment must be a valid name, so
// "..", NUL, backslashes and empty segments are rejected.
func parseStreamPath(p string, isVhost func(string) bool) (streamPath, error) {
	if len(p) > 1024 || !strings.HasPrefix(p, "/") {
		return streamPath{}, errBadPath
	}
	segs := strings.Split(p[1:], "/")
	if len(segs) < 2 {
		return streamPath{}, errBadPath
	}
	last := segs[len(segs)-1]
	ext := filepath.Ext(last)
	f, ok := formatByExt[ext]
	if !ok {
		return streamPath{}, errBadPath
	}
	sp := streamPath{Stream: strings.TrimSuffix(last, ext), Format: f}
	segs = segs[:len(segs)-1]
	if len(segs) >= 2 && isVhost != nil && isVhost(segs[0]) {
		sp.Vhost, segs = segs[0], segs[1:]
	}
	for _, s := range segs {
		if !validName(s) {
			return streamPath{}, errBadPath
		}
	}
	if !validName(sp.Stream) {
		return streamPath{}, errBadPath
	}
	sp.App = strings.Join(segs, "/")
	return sp, nil
}

// vhostOf picks the vhost of a request as SRS does: ?vhost= or ?domain=,
// else the Host header's name; names that are not configured fall back to
// the default vhost.
func vhostOf(q url.Values, host string, known func(string) bool) string {
	for _, k := range []string{"vhost", "domain"} {
		if v := q.Get(k); v != "" && known(v) {
			return v
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host != "" && known(host) {
		return host
	}
	return defaultVhost
}

// unsafeRequestPath reports an unescaped request path that tries to leave
// a file root: ".." segments (also from %2e%2e, which Go has decoded),
// backslashes, NUL.
func unsafeRequestPath(path string) bool {
	if strings.ContainsAny(path, "\x00\\") {
		return true
	}
	for _, s := range strings.Split(path, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}

// checkTemplate validates an HLS path template: relative, no "..", only
// known variables.
func checkTemplate(tpl string) error {
	if tpl == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(tpl, "\x00\\") || filepath.IsAbs(tpl) {
		return errors.New("must be a relative path")
	}
	probe := renderTemplate(tpl, tplVars{Vhost: "v", App: "a", Stream: "s", Seq: 1, Time: time.Unix(0, 0)})
	if !filepath.IsLocal(probe) {
		return errors.New("must stay inside path")
	}
	rest := tpl
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			return fmt.Errorf("unclosed [ in %q", tpl)
		}
		if _, ok := knownVars[rest[i:i+j+1]]; !ok {
			return fmt.Errorf("unknown variable %s", rest[i:i+j+1])
		}
		rest = rest[i+j+1:]
	}
}

var knownVars = map[string]struct{}{
	"[vhost]": {}, "[app]": {}, "[stream]": {}, "[seq]": {}, "[timestamp]": {}, "[duration]": {},
	"[2006]": {}, "[01]": {}, "[02]": {}, "[15]": {}, "[04]": {}, "[05]": {}, "[999]": {},
}

type tplVars struct {
	Vhost, App, Stream string
	Seq                uint64
	Time               time.Time
	Duration           time.Duration
}

// renderTemplate substitutes SRS's path variables. Names were validated,
// so the result has no "..": callers still check it with filepath.IsLocal.
func renderTemplate(tpl string, v tplVars) string {
	t := v.Time
	r := strings.NewReplacer(
		"[vhost]", v.Vhost, "[app]", v.App, "[stream]", v.Stream,
		"[seq]", strconv.FormatUint(v.Seq, 10),
		"[timestamp]", strconv.FormatInt(t.UnixMilli(), 10),
		"[duration]", strconv.FormatInt(v.Duration.Milliseconds(), 10),
		"[2006]", t.Format("2006"), "[01]", t.Format("01"), "[02]", t.Format("02"),
		"[15]", t.Format("15"), "[04]", t.Format("04"), "[05]", t.Format("05"),
		"[999]", fmt.Sprintf("%03d", t.Nanosecond()/1e6),
	)
	return filepath.Clean(r.Replace(tpl))
}
