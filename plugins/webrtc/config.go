package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// settings is the plugin block: plugin "webrtc" { ... } (SRS rtc_server).
type settings struct {
	// Candidate is the address put in the ICE candidates of the answers
	// (SRS rtc_server.candidate): an IP, "$CANDIDATE" or "*" for the
	// CANDIDATE environment variable. Empty: the listener's own address, or
	// every interface address when it listens on 0.0.0.0.
	Candidate string `json:"candidate"`
	// MaxSDPBytes caps an offer's size and MaxMLines its media sections
	// (docs/THREATS.md row 18).
	MaxSDPBytes int `json:"max_sdp_bytes"`
	MaxMLines   int `json:"max_m_lines"`
	// MaxSessions caps the sessions of the process (a WHIP flood).
	MaxSessions int `json:"max_sessions"`
}

func defaultSettings() settings {
	return settings{MaxSDPBytes: 64 << 10, MaxMLines: 8, MaxSessions: 1000}
}

// rtcBlock is SRS's vhost rtc {} section, a shared vhost block.
type rtcBlock struct {
	Enabled     *bool         `json:"enabled"`
	RTMPToRTC   *bool         `json:"rtmp_to_rtc"`
	RTCToRTMP   *bool         `json:"rtc_to_rtmp"`
	NACK        *bool         `json:"nack"`
	TWCC        *bool         `json:"twcc"`
	KeepBframe  *bool         `json:"keep_bframe"`
	StunTimeout *sdk.Duration `json:"stun_timeout"`
}

// vhostOptions is the resolved rtc behaviour of one vhost.
type vhostOptions struct {
	Enabled     bool
	NACK        bool
	TWCC        bool
	KeepBframe  bool
	StunTimeout time.Duration
}

func defaultVhostOptions() vhostOptions {
	return vhostOptions{NACK: true, TWCC: true, StunTimeout: 30 * time.Second}
}

type config struct {
	settings
	// candidates are the resolved candidate addresses (empty: automatic).
	candidates []string
	vhosts     map[string]vhostOptions
}

// vhost returns the options of a vhost, falling back to the default vhost
// as the hub does for unknown names.
func (c *config) vhost(name string) (string, vhostOptions) {
	if o, ok := c.vhosts[name]; ok {
		return name, o
	}
	if o, ok := c.vhosts[sdk.DefaultVhost]; ok {
		return sdk.DefaultVhost, o
	}
	return sdk.DefaultVhost, vhostOptions{}
}

// resolveCandidate turns SRS's candidate forms into addresses: "$CANDIDATE"
// and "*" read the CANDIDATE environment variable (SRS's docker default).
func resolveCandidate(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "*" || s == "$CANDIDATE" || s == "${CANDIDATE}" {
		s = strings.TrimSpace(os.Getenv("CANDIDATE"))
	}
	if s == "" {
		if env := strings.TrimSpace(os.Getenv("CANDIDATE")); env != "" {
			s = env
		} else {
			return nil, nil
		}
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if net.ParseIP(p) == nil {
			return nil, fmt.Errorf("%q is not an IP address", p)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseConfig(cfg sdk.Config) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]vhostOptions{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	cands, err := resolveCandidate(c.Candidate)
	if err != nil {
		errs = append(errs, &sdk.ConfigError{Key: []string{"candidate"}, Msg: err.Error()})
	}
	c.candidates = cands
	if c.MaxSDPBytes < 1024 || c.MaxSDPBytes > 1<<20 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_sdp_bytes"}, Msg: "must be 1024..1048576"})
	}
	if c.MaxMLines < 1 || c.MaxMLines > 64 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_m_lines"}, Msg: "must be 1..64"})
	}
	if c.MaxSessions < 1 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_sessions"}, Msg: "must be positive"})
	}
	for _, v := range cfg.Vhosts {
		o := defaultVhostOptions()
		var rb rtcBlock
		if err := v.DecodeBlock("rtc", &rb); err != nil {
			errs = append(errs, err)
		}
		// SRS: a vhost without rtc { enabled on; } serves no WebRTC.
		o.Enabled = v.Enabled && v.HasBlock("rtc") && rb.Enabled != nil && *rb.Enabled
		for _, k := range []struct {
			key string
			b   *bool
		}{{"rtmp_to_rtc", rb.RTMPToRTC}, {"rtc_to_rtmp", rb.RTCToRTMP}} {
			if k.b != nil && !*k.b {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"rtc", k.key}, VhostRelative: true,
					Msg: "not supported: Rill's hub shares every stream between protocols, so this bridge is always on; remove the key or set it true"})
			}
		}
		if rb.NACK != nil {
			o.NACK = *rb.NACK
		}
		if rb.TWCC != nil {
			o.TWCC = *rb.TWCC
		}
		if rb.KeepBframe != nil {
			o.KeepBframe = *rb.KeepBframe
		}
		if rb.StunTimeout != nil {
			o.StunTimeout = rb.StunTimeout.Std()
			if o.StunTimeout < time.Second || o.StunTimeout > 10*time.Minute {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"rtc", "stun_timeout"}, VhostRelative: true, Msg: "must be 1s..10m"})
			}
		}
		c.vhosts[v.Name] = o
	}
	return c, errors.Join(errs...)
}
