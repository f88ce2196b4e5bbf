package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rill-media/rill/plugins/internal/digestauth"
	"github.com/rill-media/rill/sdk"
)

const defaultVhost = "__defaultVhost__"

// defaultAddr is RTSP's well-known port; SRS 7 uses 8554, set listen for it.
const defaultAddr = "0.0.0.0:554"

// settings is the plugin block: plugin "rtsp" { ... }; `listen` is the
// core's (it binds the TCP socket and hands it over).
type settings struct {
	// PlayWait is how long a DESCRIBE waits for a publisher (default 5s).
	PlayWait sdk.Duration `json:"play_wait"`
	// IdleTimeout ends a publisher that sends no RTP for this long, over
	// UDP or TCP (default 10s), and a connection that neither publishes
	// nor plays and sends no request for this long.
	IdleTimeout sdk.Duration `json:"idle_timeout"`
	// MaxPlayers caps the RTSP players of the process (default 2000).
	MaxPlayers int `json:"max_players"`
	// MWLatency gathers a stream's RTP for this long and writes it to
	// each TCP player at once (SRS's mw_latency; 0 writes every frame as
	// it comes). Default 100ms; a vhost's play { mw_latency } or
	// min_latency overrides it, as for every plugin.
	MWLatency sdk.Duration `json:"mw_latency"`
}

func defaultSettings() settings {
	return settings{
		PlayWait:    sdk.Duration(5 * time.Second),
		IdleTimeout: sdk.Duration(10 * time.Second),
		MaxPlayers:  2000,
		MWLatency:   sdk.Duration(100 * time.Millisecond),
	}
}

// vhostSettings is the rtsp {} block of a vhost.
type vhostSettings struct {
	Enabled *bool         `json:"enabled"`
	Auth    *authSettings `json:"auth"`
}

// authSettings is rtsp { auth { ... } } of a vhost: RTSP Digest (MD5) and
// optionally Basic authentication of ANNOUNCE and DESCRIBE.
type authSettings struct {
	// Realm is the digest realm (default "rill").
	Realm string `json:"realm"`
	// Users maps user names to passwords.
	Users map[string]string `json:"users"`
	// Basic also accepts Basic credentials (the password in clear text).
	Basic bool `json:"basic"`
	// Publish and Play say what needs credentials (default both).
	Publish *bool `json:"publish"`
	Play    *bool `json:"play"`
	// NonceTTL is how long a digest nonce is accepted (default 5m); an
	// expired one is answered stale=true and the client retries.
	NonceTTL sdk.Duration `json:"nonce_ttl"`
	// QOP offers qop="auth" (RFC 2617 §3.2.1): FFmpeg then answers with a
	// nonce count; VLC and most cameras answer without, as without it.
	QOP bool `json:"qop"`
}

// vhostAuth is a vhost's authentication, ready to check.
type vhostAuth struct {
	*digestauth.Checker
	publish, play bool
}

type config struct {
	settings
	vhosts map[string]bool
	auth   map[string]*vhostAuth    // by vhost; nil entries: none
	mw     map[string]time.Duration // play { mw_latency } of the vhosts that set it
}

// mwLatency is the merged-write window of vhost's TCP players.
func (c *config) mwLatency(vhost string) time.Duration {
	if d, ok := c.mw[vhost]; ok {
		return d
	}
	return c.MWLatency.Std()
}

// authFor is the authentication of vhost (resolved) for a publisher or a
// player, nil when none is asked.
func (c *config) authFor(vhost string, publish bool) *vhostAuth {
	a := c.auth[vhost]
	if a == nil || (publish && !a.publish) || (!publish && !a.play) {
		return nil
	}
	return a
}

func (c *config) vhost(name string) (string, bool) {
	if name == "" {
		name = defaultVhost
	}
	if e, ok := c.vhosts[name]; ok {
		return name, e
	}
	return defaultVhost, c.vhosts[defaultVhost] || len(c.vhosts) == 0
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=-]{1,64}$`)

// parseAuth checks a vhost's auth block and builds its checker; secret
// are the server's (kept across reloads).
func parseAuth(vhost string, a *authSettings, nonces *digestauth.Nonces) (*vhostAuth, []error) {
	var errs []error
	bad := func(key, msg string) {
		errs = append(errs, &sdk.ConfigError{Vhost: vhost, Key: []string{"auth", key}, Msg: msg})
	}
	realm := a.Realm
	if realm == "" {
		realm = "rill"
	}
	if strings.ContainsAny(realm, "\"\\\r\n") || len(realm) > 128 {
		bad("realm", "must not hold quotes, backslashes or line breaks (128 bytes at most)")
	}
	if len(a.Users) == 0 {
		bad("users", "needs at least one user = \"password\"")
	}
	users := make(map[string]string, len(a.Users))
	for u, pw := range a.Users {
		if !userRE.MatchString(u) {
			bad("users", fmt.Sprintf("user name %q: 1 to 64 letters, digits or URL-safe signs, no colon", u))
		}
		if pw == "" {
			bad("users", fmt.Sprintf("user %q has an empty password", u))
		}
		users[u] = pw
	}
	if ttl := a.NonceTTL.Std(); ttl < 0 || (ttl > 0 && ttl < 10*time.Second) || ttl > digestauth.MaxNonceTTL {
		bad("nonce_ttl", fmt.Sprintf("must be between 10s and %s", digestauth.MaxNonceTTL))
	}
	va := &vhostAuth{
		Checker: nonces.Checker(digestauth.Options{Realm: realm, Users: users, Basic: a.Basic, QOP: a.QOP, TTL: a.NonceTTL.Std()}),
		publish: a.Publish == nil || *a.Publish,
		play:    a.Play == nil || *a.Play,
	}
	return va, errs
}

func parseConfig(cfg sdk.Config, nonces *digestauth.Nonces) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]bool{}, auth: map[string]*vhostAuth{}, mw: map[string]time.Duration{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	if c.IdleTimeout.Std() < 100*time.Millisecond {
		errs = append(errs, &sdk.ConfigError{Key: []string{"idle_timeout"}, Msg: "must be at least 100ms"})
	}
	if c.MWLatency.Std() < 0 || c.MWLatency.Std() > 5*time.Second {
		errs = append(errs, &sdk.ConfigError{Key: []string{"mw_latency"}, Msg: "must be between 0 and 5s"})
	}
	if c.MaxPlayers < 1 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_players"}, Msg: "must be at least 1"})
	}
	for _, v := range cfg.Vhosts {
		c.vhosts[v.Name] = v.Enabled
		if pl := v.Vhost.Play; pl.Set["mw_latency"] || pl.MinLatency {
			c.mw[v.Name] = pl.MWLatency
		}
		var vs vhostSettings
		if err := v.Decode(&vs); err != nil {
			errs = append(errs, err)
			continue
		}
		if vs.Auth != nil {
			a, aerrs := parseAuth(v.Name, vs.Auth, nonces)
			errs = append(errs, aerrs...)
			c.auth[v.Name] = a
		}
	}
	return c, errors.Join(errs...)
}
