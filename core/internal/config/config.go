package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/knadh/koanf/v2"

	"github.com/rill-media/rill/sdk/wire"
)

// Defaults of the keys the core reads.
const (
	// DefaultVhost is the vhost of streams whose URL names no known vhost.
	// It always exists in a loaded Config.
	DefaultVhost = wire.DefaultVhost
	// DefaultPluginDir is the default plugin_dir.
	DefaultPluginDir = "bin/plugins"
	// DefaultListenAPI is the default listen_api, SRS's HTTP API port.
	DefaultListenAPI = "0.0.0.0:1985"
	// DefaultLogLevel is the default log_level.
	DefaultLogLevel = "info"
	// DefaultShmDir is the default shm.dir.
	DefaultShmDir = "/dev/shm"
	// DefaultRingSize is the default shm.ring_size in bytes (8 MiB).
	DefaultRingSize = 8 << 20
	// DefaultSlots is the default shm.slots.
	DefaultSlots = 4096
	// MinRingSize is the smallest ring_size accepted, in bytes (64 KiB).
	MinRingSize = 64 << 10
	// MaxSlots is the largest shm.slots accepted.
	MaxSlots = 1 << 24
)

// Config is a loaded conf.hcl. Load and Parse fill every field, defaults
// included; the core treats a Config as read-only once loaded and builds a
// new one on reload.
type Config struct {
	// File is the file name the config was read from.
	File string
	// PluginDir (plugin_dir) is where plugin binaries live. A relative path
	// is relative to the working directory of the process, as in SRS, not to
	// the config file.
	PluginDir string
	// ListenAPI (listen_api) is the TCP address of the HTTP API.
	ListenAPI string
	// ServerID (server_id) identifies this server in the API and callbacks;
	// empty when not set, for the core to fill.
	ServerID string
	// LogLevel (log_level) is one of trace, debug, info, warn, error.
	LogLevel string
	// Shm is the shm block: where rings live and their default geometry.
	Shm ShmConfig
	// API is the api block: basic auth, HTTPS and the RAW API of :1985.
	API APIConfig
	// Plugins holds the plugin "name" { } blocks by name.
	Plugins map[string]*Plugin
	// Vhosts holds the vhost "name" { } blocks by name; DefaultVhost is
	// always present, with defaults when the file does not define it.
	Vhosts map[string]*Vhost
	// Pos locates every key of the file; see PosOf.
	Pos Positions
	// Notes are warnings about a file that loads: old names read as their
	// new ones ("file:line:col: ..."), for the daemon to log and rill -t to
	// print.
	Notes []string
}

// RenamedPlugins maps the old name of a first-party plugin to its name now:
// a plugin "hls" { } block of an older file configures the httpstream
// plugin (which serves HTTP-FLV, TS, AAC, MP3 and HLS, and reads the vhost's
// SRS-named hls { } block).
var RenamedPlugins = map[string]string{"hls": "httpstream"}

// ShmConfig is the shm { } block.
type ShmConfig struct {
	// Dir (dir) is the directory of ring segments, a tmpfs.
	Dir string
	// RingSize (ring_size) is the default size of a stream's ring in bytes.
	RingSize int64
	// Slots (slots) is the number of packet slots of a ring.
	Slots int
}

// APIConfig is the api { } block (SRS's http_api auth, https, raw_api).
type APIConfig struct {
	// Username and Password (username, password) turn on HTTP basic auth
	// for the API, /metrics and the console; both or neither.
	Username, Password string
	// HTTPSListen (https_listen) serves the API over TLS too, with the
	// certificate and key files HTTPSCert and HTTPSKey (https_cert, https_key).
	HTTPSListen, HTTPSCert, HTTPSKey string
	// AllowReload (allow_reload, default true) enables /api/v1/raw?rpc=reload.
	AllowReload bool
}

// Plugin is a plugin "name" { } block.
type Plugin struct {
	// Name is the block's label, also the binary's name.
	Name string
	// Enabled (enabled, default true): a disabled plugin is not started.
	Enabled bool
	// Path (path) is the plugin binary, by default <plugin_dir>/<name>.
	Path string
	// Listen (listen) lists the addresses the core binds for the plugin, as
	// written; ParseListen splits one into network and address. Never nil.
	Listen []string
	// Env (env) is added to the plugin's environment. Never nil.
	Env map[string]string
	// SHA256 (sha256) pins the binary: 64 hex digits, lower case; the core
	// refuses to run a binary whose SHA-256 differs. Empty: not pinned.
	SHA256 string
	// User and Group (user, group) run the plugin process as that user
	// (name or number) and primary group (default: the user's); the core
	// must run as root for them, binds the ports and keeps them. Empty:
	// the core's own user.
	User, Group string
	// MaxOpenFiles (max_open_files) and MaxMemory (max_memory, a size:
	// the address space) are the plugin process's rlimits; 0: inherited.
	MaxOpenFiles int64
	MaxMemory    int64
	// Settings holds every other key of the block, as parsed, for the
	// plugin to validate. Never nil.
	Settings map[string]any
}

// Vhost is a vhost "name" { } block.
type Vhost struct {
	// Name is the block's label: a host name or DefaultVhost.
	Name string
	// Enabled (enabled, default true): a disabled vhost accepts no stream.
	Enabled bool
	// GopCache (gop_cache, default true): new players start at the last GOP.
	GopCache bool
	// RingSize (ring_size) overrides shm.ring_size for this vhost's
	// streams; 0 when not set.
	RingSize int64
	// Blocks holds the vhost's plugin blocks and reserved blocks by name,
	// as parsed, e.g. Blocks["hls"] for hls { fragment = "2s" }; each is
	// passed as-is to its plugin, which validates it. Never nil.
	Blocks map[string]map[string]any
}

// Load reads the config file at path and parses it; see Parse.
func Load(path string, knownPlugins []string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, src, knownPlugins)
}

// Parse parses src, the content of the config file filename, through koanf
// and a Parser, and checks it. knownPlugins names the plugins found in the
// plugin directory: a vhost may hold a block for each of them and for each
// plugin block of the file.
//
// On failure Parse returns a nil Config and an errors.Join of *Error, one
// per problem, sorted by position. A file that is not valid HCL yields its
// syntax errors only; otherwise every problem of the file is listed.
func Parse(filename string, src []byte, knownPlugins []string) (*Config, error) {
	c, err := ParseAll(filename, src, knownPlugins)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseAll is Parse for a caller that reports every problem at once, the
// plugins' with the core's (rill -t): along with the problems it returns
// what it could decode, where a key with a problem has its default and a
// block with a bad label is left out. The Config is nil only for syntax
// errors. Never serve with a Config that came with an error.
func ParseAll(filename string, src []byte, knownPlugins []string) (*Config, error) {
	p := &Parser{Filename: filename, keepGoing: true}
	k := koanf.New(Delim)
	if err := k.Load(bytesProvider(src), p); err != nil {
		return nil, err
	}
	d := &decoder{file: filename, k: k, pos: p.Positions, kinds: p.kinds, errs: p.problems}
	c := d.decode(knownPlugins)
	err := joinErrors(d.errs)
	if err != nil {
		// Values already reported (not literals) are left out of what the
		// plugins will see, lest they report them again, differently.
		for _, pl := range c.Plugins {
			dropBad(pl.Settings)
		}
		for _, v := range c.Vhosts {
			for _, b := range v.Blocks {
				dropBad(b)
			}
		}
	}
	return c, err
}

// dropBad deletes the values of m that stand for reported problems, and
// the lists that hold one.
func dropBad(m map[string]any) {
	for k, v := range m {
		if hasBad(v) {
			delete(m, k)
		}
	}
}

func hasBad(v any) bool {
	switch x := v.(type) {
	case badValue:
		return true
	case map[string]any:
		dropBad(x)
	case []any:
		for _, e := range x {
			if hasBad(e) {
				return true
			}
		}
	}
	return false
}

// PosOf returns where the key path given by its parts is defined, as
// "conf.hcl:12:5", or the file name alone when the path is unknown:
// c.PosOf("vhost", "live.example.com", "hls").
func (c *Config) PosOf(keyPath ...string) string {
	if pos, ok := c.Pos.Lookup(keyPath...); ok {
		return FormatPos(c.File, pos)
	}
	return c.File
}

// VhostBlocks returns the block named name of every vhost that has one,
// by vhost name: what a plugin is configured with besides its plugin block.
func (c *Config) VhostBlocks(name string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for vn, v := range c.Vhosts {
		if b, ok := v.Blocks[name]; ok {
			out[vn] = b
		}
	}
	return out
}

// Fingerprint returns a stable digest of the plugin's block: equal blocks
// give equal fingerprints whatever their layout, so a reload can tell which
// plugins changed.
func (p *Plugin) Fingerprint() string {
	return fingerprint(struct {
		Name     string            `json:"name"`
		Enabled  bool              `json:"enabled"`
		Path     string            `json:"path"`
		Listen   []string          `json:"listen"`
		Env      map[string]string `json:"env"`
		Settings map[string]any    `json:"settings"`
	}{p.Name, p.Enabled, p.Path, p.Listen, p.Env, p.Settings})
}

// Fingerprint returns a stable digest of the vhost's block named block, or
// "" when the vhost has no such block, so a reload can tell which plugins
// see a change in this vhost.
func (v *Vhost) Fingerprint(block string) string {
	b, ok := v.Blocks[block]
	if !ok {
		return ""
	}
	return fingerprint(b)
}

// fingerprint hashes the JSON form of x, whose maps encoding/json writes
// with sorted keys. Parsed values are always JSON-able (numbers are
// finite); the fallback only keeps the function total.
func fingerprint(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		b = fmt.Appendf(nil, "%#v", x)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// bytesProvider is a koanf.Provider of a config already in memory.
type bytesProvider []byte

var _ koanf.Provider = bytesProvider(nil)

// ReadBytes returns the config source.
func (b bytesProvider) ReadBytes() ([]byte, error) { return b, nil }

// Read is not supported: the bytes need a Parser.
func (b bytesProvider) Read() (map[string]any, error) {
	return nil, errors.New("config: bytes provider needs a parser")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
