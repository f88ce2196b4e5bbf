package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// SRS's defaults (trunk/conf/full.conf, vhost dvr section).
const (
	defaultPath     = "./objs/nginx/html/[app]/[stream].[timestamp].flv"
	defaultDuration = 30 * time.Second
	planSession     = "session"
	planSegment     = "segment"
	jitterFull      = "full"
	jitterZero      = "zero"
	jitterOff       = "off"
)

// settings is the dvr {} block of a vhost. Keys are SRS's without the
// dvr_ prefix (dvr_plan -> plan, dvr_path -> path, dvr_apply -> apply).
type settings struct {
	Enabled      *bool        `json:"enabled"`
	Plan         string       `json:"plan"`
	Path         string       `json:"path"`
	Duration     sdk.Duration `json:"duration"`
	WaitKeyframe *bool        `json:"wait_keyframe"`
	TimeJitter   string       `json:"time_jitter"`
	// Apply is SRS's dvr_apply: "all" (default) or the app/stream names to
	// record; an empty list records only what the API starts.
	Apply applyList `json:"apply"`
}

// applyList decodes "all" or a list of "app/stream" names.
type applyList struct {
	all     bool
	streams map[string]bool
}

func (a *applyList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "all" {
			return &sdk.ConfigError{Key: []string{"apply"}, Msg: fmt.Sprintf(`want "all" or a list of "app/stream" names, got %q`, s)}
		}
		*a = applyList{all: true}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return &sdk.ConfigError{Key: []string{"apply"}, Msg: `want "all" or a list of "app/stream" names`}
	}
	out := applyList{streams: map[string]bool{}}
	for _, s := range list {
		if s == "all" {
			out.all = true
			continue
		}
		// The stream is the part after the last slash: apps may be multi-level.
		i := strings.LastIndexByte(s, '/')
		if i <= 0 || !validApp(s[:i]) || !validName(s[i+1:]) {
			return &sdk.ConfigError{Key: []string{"apply"}, Msg: fmt.Sprintf("%q is not an app/stream name", s)}
		}
		out.streams[s] = true
	}
	*a = out
	return nil
}

// vhostConfig is a vhost's validated DVR configuration.
type vhostConfig struct {
	name string
	// configured: the vhost has a dvr block (enabled or not), so the API may
	// start recordings in it.
	configured bool
	// auto: streams are recorded when published (enabled, and in apply).
	auto         bool
	apply        applyList
	plan         string
	path         *template
	duration     time.Duration
	waitKeyframe bool
	jitter       string
}

// records reports whether a stream of the vhost is recorded without being
// asked through the API.
func (v *vhostConfig) records(app, stream string) bool {
	return v.auto && (v.apply.all || v.apply.streams[app+"/"+stream])
}

func parseVhost(vc sdk.VhostConfig) (*vhostConfig, error) {
	s := settings{Apply: applyList{all: true}}
	if err := vc.Decode(&s); err != nil {
		return nil, err
	}
	bad := func(key, format string, args ...any) error {
		return &sdk.ConfigError{Vhost: vc.Name, Key: []string{key}, Msg: fmt.Sprintf(format, args...)}
	}
	v := &vhostConfig{
		name:         vc.Name,
		configured:   vc.Enabled || s.Enabled != nil,
		auto:         vc.Enabled && (s.Enabled == nil || *s.Enabled),
		apply:        s.Apply,
		plan:         s.Plan,
		duration:     s.Duration.Std(),
		waitKeyframe: s.WaitKeyframe == nil || *s.WaitKeyframe,
		jitter:       s.TimeJitter,
	}
	switch v.plan {
	case "":
		v.plan = planSession
	case planSession, planSegment:
	default:
		return nil, bad("plan", `want "session" or "segment", got %q`, v.plan)
	}
	switch v.jitter {
	case "":
		v.jitter = jitterFull
	case jitterFull, jitterZero, jitterOff:
	default:
		return nil, bad("time_jitter", `want "full", "zero" or "off", got %q`, v.jitter)
	}
	if v.duration == 0 {
		v.duration = defaultDuration
	}
	if v.duration < 100*time.Millisecond {
		return nil, bad("duration", "%v is too short, want at least 100ms", v.duration)
	}
	p := s.Path
	if p == "" {
		p = defaultPath
	}
	t, err := parseTemplate(p)
	if err != nil {
		return nil, bad("path", "%v", err)
	}
	v.path = t
	return v, nil
}
