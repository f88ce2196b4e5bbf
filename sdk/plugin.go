package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk/wire"
)

// APIVersion is the plugin API version this SDK speaks.
const APIVersion = wire.APIVersion

// Sentinel errors returned by Host calls. They survive the process boundary,
// so errors.Is(err, sdk.ErrStreamBusy) works on an error from Publish.
var (
	ErrStreamBusy  = wire.ErrStreamBusy  // the stream already has a publisher
	ErrForbidden   = wire.ErrForbidden   // refused by security rules or a callback
	ErrNotFound    = wire.ErrNotFound    // no such stream, vhost or client
	ErrTimeout     = wire.ErrTimeout     // no publisher appeared within the wait
	ErrUnavailable = wire.ErrUnavailable // the core is shutting down or unreachable
	ErrInvalid     = wire.ErrInvalid     // a malformed request (bad stream name, ...)
)

// Capabilities a plugin may declare in Info.Capabilities.
const (
	CapOnDemandSource = wire.CapOnDemandSource
	CapVhostOptIn     = wire.CapVhostOptIn
	CapOwnEnabled     = wire.CapOwnEnabled
)

// Info describes a plugin. Name must equal the binary's file name and the
// config block name ("rtmp" for bin/plugins/rtmp and plugin "rtmp" {}).
// Its block in a vhost is named Name too, unless VhostBlock names another:
// the httpstream plugin reads SRS's vhost "x" { hls { ... } }.
type Info struct {
	Name         string
	Version      string
	Description  string
	Capabilities []string
	Listeners    []Listener
	// HTTPRoutes are path prefixes of the core's API listener (:1985) that the
	// core forwards to the plugin's HTTPHandler, e.g. "/rtc/v1/".
	HTTPRoutes []string
	// VhostBlock is the name of the plugin's block inside a vhost when it
	// is not Name (an SRS section name such as "hls"); at most one plugin
	// of a daemon may read a given block.
	VhostBlock string
}

// Plugin is the one interface every plugin implements. Everything else is an
// optional interface, checked with a type assertion (as Caddy modules do):
// Configurer, Starter, Stopper, StreamWatcher, Kicker, StatsReporter and
// http.Handler. Declare the ones you implement with compile-time guards:
//
//	var _ sdk.Starter = (*Server)(nil)
type Plugin interface {
	Info() Info
}

// Configurer validates and applies configuration. Configure is called before
// Start and again on every reload. It must validate everything before it
// changes anything (all or nothing); with cfg.DryRun it only validates.
// Return *ConfigError values (joined with errors.Join for several) so the
// core can point the operator at the file, line and key.
type Configurer interface {
	Configure(ctx context.Context, cfg Config) error
}

// Starter starts the plugin's work: accept on its listeners, subscribe to
// streams. ctx is only for the call; long-running work must use its own
// lifetime, ended in Stop.
type Starter interface {
	Start(ctx context.Context, rt *Runtime) error
}

// Stopper stops the plugin gracefully until ctx ends. It is called once
// before the process exits; the process is killed if it takes too long.
type Stopper interface {
	Stop(ctx context.Context) error
}

// StreamWatcher is told when a stream of a vhost that enables this plugin is
// published or unpublished (an HLS or DVR plugin subscribes then).
type StreamWatcher interface {
	StreamEvent(ctx context.Context, ev StreamEvent)
}

// Kicker disconnects one of the plugin's clients by id; it reports whether
// the client was found.
type Kicker interface {
	Kick(ctx context.Context, clientID string) bool
}

// StatsReporter reports the plugin's clients and counters.
type StatsReporter interface {
	Stats(ctx context.Context) Stats
}

var _ http.Handler = http.HandlerFunc(nil) // HTTPRoutes are served by a plugin that is an http.Handler.

// Config is a plugin's configuration: its own `plugin "name" {}` block and its
// block in every vhost.
type Config struct {
	DryRun     bool
	Generation uint64
	// Settings is the plugin block's own keys as JSON (listen, enabled, path
	// and env are the core's and are not included).
	Settings json.RawMessage
	Vhosts   []VhostConfig
}

// VhostConfig is one vhost as the plugin sees it.
type VhostConfig struct {
	Name string
	// Enabled is true when the vhost has the plugin's block and has not set
	// enabled = false in it. A plugin must ignore streams of other vhosts.
	Enabled bool
	// Settings is the plugin's block inside the vhost, as JSON.
	Settings json.RawMessage
	// Vhost holds the vhost's core settings.
	Vhost VhostSettings
}

// VhostSettings are the vhost keys the core owns.
type VhostSettings struct {
	GopCache bool `json:"gop_cache"`
	// Blocks holds the vhost's shared blocks that no single plugin owns, as
	// JSON by name: "play", "publish", "forward", "cluster", "hooks",
	// "http_hooks", "security". Read them with VhostConfig.DecodeBlock.
	Blocks map[string]json.RawMessage `json:"blocks"`
	// Play and Publish are the vhost's play {} and publish {} blocks,
	// decoded and resolved with SRS's defaults by the SDK, the same for
	// every plugin.
	Play    Play    `json:"-"`
	Publish Publish `json:"-"`
}

// HasBlock reports whether the vhost has the shared block name.
func (v VhostConfig) HasBlock(name string) bool {
	_, ok := v.Vhost.Blocks[name]
	return ok
}

// DecodeBlock decodes the vhost's shared block name (e.g. "forward") into
// dst strictly. Problems come back as *ConfigError with VhostRelative set
// and the key path starting at the block name. A missing block leaves dst
// as it is.
func (v VhostConfig) DecodeBlock(name string, dst any) error {
	raw, ok := v.Vhost.Blocks[name]
	if !ok {
		return nil
	}
	ps := decodeProblems(v.Name, raw, dst)
	for _, ce := range ps {
		ce.VhostRelative = true
		ce.Key = append([]string{name}, ce.Key...)
	}
	return joinProblems(ps)
}

// DecodeSettings decodes the plugin block into v strictly: unknown keys,
// wrong types and values their UnmarshalJSON refuses are *ConfigError
// values naming the key, nested keys by their whole path; every problem of
// the block comes back (one *ConfigError, or an errors.Join of them).
func (c Config) DecodeSettings(v any) error { return joinProblems(decodeProblems("", c.Settings, v)) }

// Decode decodes the plugin's block of this vhost into v strictly, as
// DecodeSettings does.
func (v VhostConfig) Decode(dst any) error {
	return joinProblems(decodeProblems(v.Name, v.Settings, dst))
}

// ConfigError is one invalid setting: the vhost ("" for the plugin block),
// the key path inside the block, and what is wrong.
type ConfigError struct {
	Vhost string
	Key   []string
	Msg   string
	// VhostRelative says Key starts at the vhost block (a shared block read
	// with DecodeBlock), not at the plugin's own block in the vhost.
	VhostRelative bool
}

func (e *ConfigError) Error() string {
	where := "plugin block"
	if e.Vhost != "" {
		where = fmt.Sprintf("vhost %q", e.Vhost)
	}
	if len(e.Key) > 0 {
		return fmt.Sprintf("%s key %q: %s", where, strings.Join(e.Key, "."), e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// Duration is a time.Duration that decodes from a config string such as
// "2s" or "350ms" (or a number of seconds).
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return &ConfigError{Msg: fmt.Sprintf("bad duration %q", s)}
		}
		if v < 0 {
			return &ConfigError{Msg: fmt.Sprintf("negative duration %q", s)}
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil || f < 0 {
		return &ConfigError{Msg: fmt.Sprintf("bad duration %s", string(b))}
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
