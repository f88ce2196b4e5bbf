package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/v2"
)

var (
	pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	// hostnameRE is an RFC 1123 host name in lower case.
	hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

	logLevels = []string{"trace", "debug", "info", "warn", "error"}

	// vhostKeys are the keys of a vhost block that the core reads itself;
	// no plugin may take one of these names.
	vhostKeys = []string{"enabled", "gop_cache", "ring_size"}

	// reservedBlocks may appear in a vhost without a plugin of that name.
	// They are kept in Vhost.Blocks for the core features that will read
	// them (callbacks, security, play/publish tuning, clusters, forwarding).
	reservedBlocks = []string{"hooks", "http_hooks", "security", "play", "publish", "cluster", "forward", "rtc", "dash"}
)

// validVhostName reports whether name is DefaultVhost or a lower-case RFC
// 1123 host name.
func validVhostName(name string) bool {
	return name == DefaultVhost || (len(name) <= 253 && hostnameRE.MatchString(name))
}

// decoder turns the koanf tree into a Config, collecting every problem.
type decoder struct {
	file  string
	k     *koanf.Koanf
	pos   Positions
	kinds map[string]kind
	errs  []*Error
}

func (d *decoder) fail(path []string, key string, class error, format string, args ...any) {
	pos := d.pos[KeyPath(path...)]
	d.errs = append(d.errs, &Error{
		File: d.file,
		Line: pos.Line,
		Col:  pos.Column,
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
		Err:  class,
	})
}

func (d *decoder) get(path []string) any { return d.k.Get(KeyPath(path...)) }

func (d *decoder) keys(path []string) []string { return d.k.MapKeys(KeyPath(path...)) }

func (d *decoder) kind(path []string) kind { return d.kinds[KeyPath(path...)] }

// describe names the type of the value at path for error messages.
func (d *decoder) describe(path []string, v any) string {
	if d.kind(path) == kindBlock {
		return "a block"
	}
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case int64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func (d *decoder) typeError(path []string, key, want string, v any) {
	if _, bad := v.(badValue); bad {
		return // already reported by the parser
	}
	d.fail(path, key, ErrInvalidValue, "want %s, got %s", want, d.describe(path, v))
}

func (d *decoder) str(path []string, key string) (string, bool) {
	v := d.get(path)
	s, ok := v.(string)
	if !ok {
		d.typeError(path, key, "a string", v)
	}
	return s, ok
}

func (d *decoder) nonEmpty(path []string, key string) (string, bool) {
	s, ok := d.str(path, key)
	if ok && s == "" {
		d.fail(path, key, ErrInvalidValue, "must not be empty")
		return "", false
	}
	return s, ok
}

func (d *decoder) boolean(path []string, key string) (bool, bool) {
	v := d.get(path)
	b, ok := v.(bool)
	if !ok {
		d.typeError(path, key, "a bool", v)
	}
	return b, ok
}

// size reads a size of at least MinRingSize: a string for ParseSize or an
// integer number of bytes.
func (d *decoder) size(path []string, key string) (int64, bool) {
	var n int64
	switch v := d.get(path).(type) {
	case int64:
		n = v
	case string:
		var err error
		if n, err = ParseSize(v); err != nil {
			d.fail(path, key, ErrInvalidValue, "%v", err)
			return 0, false
		}
	default:
		d.typeError(path, key, `a size such as "8MiB"`, v)
		return 0, false
	}
	if n < MinRingSize {
		d.fail(path, key, ErrInvalidValue, "size %d is below the minimum of 64KiB", n)
		return 0, false
	}
	return n, true
}

// block checks that path was written as a block without labels.
func (d *decoder) block(path []string, key string) bool {
	switch d.kind(path) {
	case kindBlock:
		return true
	case kindLabels:
		d.fail(path, key, ErrInvalidValue, "block takes no labels")
	default:
		d.fail(path, key, ErrInvalidValue, "must be a block, not an attribute: %s { ... }", path[len(path)-1])
	}
	return false
}

// labeled checks that path was written as blocks with one label each,
// name "label" { }, and returns the labels.
func (d *decoder) labeled(path []string, key string) ([]string, bool) {
	name := path[len(path)-1]
	if d.kind(path) != kindLabels {
		d.fail(path, key, ErrInvalidValue, "must be a labeled block: %s \"name\" { ... }", name)
		return nil, false
	}
	var labels []string
	for _, l := range d.keys(path) {
		p := appendPath(path, l)
		if d.kind(p) != kindBlock {
			d.fail(p, blockHeader(name, []string{l}), ErrInvalidValue, "%s block takes exactly one label", name)
			continue
		}
		labels = append(labels, l)
	}
	return labels, true
}

func (d *decoder) decode(knownPlugins []string) *Config {
	c := &Config{
		File:      d.file,
		PluginDir: DefaultPluginDir,
		ListenAPI: DefaultListenAPI,
		LogLevel:  DefaultLogLevel,
		Shm:       ShmConfig{Dir: DefaultShmDir, RingSize: DefaultRingSize, Slots: DefaultSlots},
		API:       APIConfig{AllowReload: true},
		Plugins:   map[string]*Plugin{},
		Vhosts:    map[string]*Vhost{},
		Pos:       d.pos,
	}
	var plugins, vhosts bool
	for _, key := range d.keys(nil) {
		p, desc := []string{key}, keyDesc("", key)
		switch key {
		case "plugin_dir":
			if s, ok := d.nonEmpty(p, desc); ok {
				c.PluginDir = s
			}
		case "listen_api":
			if s, ok := d.nonEmpty(p, desc); ok {
				if network, _, err := ParseListen(s); err != nil {
					d.fail(p, desc, ErrInvalidValue, "%v", err)
				} else if network != "tcp" {
					d.fail(p, desc, ErrInvalidValue, "must be a tcp address")
				} else {
					c.ListenAPI = s
				}
			}
		case "server_id":
			if s, ok := d.str(p, desc); ok {
				c.ServerID = s
			}
		case "log_level":
			if s, ok := d.str(p, desc); ok {
				if slices.Contains(logLevels, s) {
					c.LogLevel = s
				} else {
					d.fail(p, desc, ErrInvalidValue, "invalid log level %q: want one of %s", s, strings.Join(logLevels, ", "))
				}
			}
		case "shm":
			if d.block(p, desc) {
				d.shm(&c.Shm)
			}
		case "api":
			if d.block(p, desc) {
				d.api(&c.API)
			}
		case "plugin":
			plugins = true
		case "vhost":
			vhosts = true
		default:
			d.fail(p, desc, ErrUnknownKey, "unknown key")
		}
	}
	// Plugins need plugin_dir; vhosts need the plugin names.
	if plugins {
		d.plugins(c)
	}
	d.checkListeners(c)
	if vhosts {
		d.vhosts(c, knownPlugins)
	}
	if c.Vhosts[DefaultVhost] == nil {
		c.Vhosts[DefaultVhost] = newVhost(DefaultVhost)
	}
	return c
}

func (d *decoder) api(a *APIConfig) {
	for _, key := range d.keys([]string{"api"}) {
		p, desc := []string{"api", key}, keyDesc("api", key)
		switch key {
		case "username":
			if v, ok := d.nonEmpty(p, desc); ok {
				a.Username = v
			}
		case "password":
			if v, ok := d.nonEmpty(p, desc); ok {
				a.Password = v
			}
		case "https_listen":
			if v, ok := d.nonEmpty(p, desc); ok {
				if network, _, err := ParseListen(v); err != nil || network != "tcp" {
					d.fail(p, desc, ErrInvalidValue, "want a tcp address such as \"0.0.0.0:1990\"")
				} else {
					a.HTTPSListen = v
				}
			}
		case "https_cert":
			if v, ok := d.nonEmpty(p, desc); ok {
				a.HTTPSCert = v
			}
		case "https_key":
			if v, ok := d.nonEmpty(p, desc); ok {
				a.HTTPSKey = v
			}
		case "allow_reload":
			if v, ok := d.boolean(p, desc); ok {
				a.AllowReload = v
			}
		default:
			d.fail(p, desc, ErrUnknownKey, "unknown key")
		}
	}
	if (a.Username == "") != (a.Password == "") {
		d.fail([]string{"api"}, keyDesc("", "api"), ErrInvalidValue, "username and password go together")
	}
	if a.HTTPSListen != "" && (a.HTTPSCert == "" || a.HTTPSKey == "") {
		d.fail([]string{"api", "https_listen"}, keyDesc("api", "https_listen"), ErrInvalidValue, "https_listen needs https_cert and https_key")
	}
}

func (d *decoder) shm(s *ShmConfig) {
	for _, key := range d.keys([]string{"shm"}) {
		p, desc := []string{"shm", key}, keyDesc("shm", key)
		switch key {
		case "dir":
			if v, ok := d.nonEmpty(p, desc); ok {
				s.Dir = v
			}
		case "ring_size":
			if n, ok := d.size(p, desc); ok {
				s.RingSize = n
			}
		case "slots":
			v := d.get(p)
			n, ok := v.(int64)
			if !ok {
				d.typeError(p, desc, "an integer", v)
			} else if n < 1 || n > MaxSlots {
				d.fail(p, desc, ErrInvalidValue, "slots %d out of range: want 1 to %d", n, MaxSlots)
			} else {
				s.Slots = int(n)
			}
		default:
			d.fail(p, desc, ErrUnknownKey, "unknown key")
		}
	}
}

func (d *decoder) plugins(c *Config) {
	names, ok := d.labeled([]string{"plugin"}, keyDesc("", "plugin"))
	if !ok {
		return
	}
	for _, name := range names {
		path := []string{"plugin", name}
		scope := blockHeader("plugin", []string{name})
		if !pluginNameRE.MatchString(name) {
			d.fail(path, scope, ErrInvalidValue, "invalid plugin name: want %s", pluginNameRE)
			continue
		}
		if slices.Contains(vhostKeys, name) {
			d.fail(path, scope, ErrInvalidValue, "plugin name %q is reserved: it is a key of vhost blocks", name)
			continue
		}
		if now, ok := RenamedPlugins[name]; ok {
			if slices.Contains(names, now) {
				d.fail(path, scope, ErrInvalidValue, "plugin %q is the old name of plugin %q, which the file also has: keep one block", name, now)
				continue
			}
			// Read as the new name; keys are located where the file has them.
			c.Plugins[now] = d.plugin(c, path, scope, now)
			old, renamed := KeyPath(path...), KeyPath("plugin", now)
			for k, pos := range d.pos {
				if k == old || strings.HasPrefix(k, old+Delim) {
					d.pos[renamed+k[len(old):]] = pos
				}
			}
			c.Notes = append(c.Notes, fmt.Sprintf("%s: plugin %q is the old name of plugin %q: read as plugin %q { } (rename the block)", c.PosOf(path...), name, now, now))
			continue
		}
		c.Plugins[name] = d.plugin(c, path, scope, name)
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (d *decoder) plugin(c *Config, path []string, scope, name string) *Plugin {
	pl := &Plugin{
		Name:     name,
		Enabled:  true,
		Listen:   []string{},
		Env:      map[string]string{},
		Settings: map[string]any{},
	}
	for _, key := range d.keys(path) {
		p, desc := appendPath(path, key), keyDesc(scope, key)
		switch key {
		case "enabled":
			if b, ok := d.boolean(p, desc); ok {
				pl.Enabled = b
			}
		case "path":
			if s, ok := d.nonEmpty(p, desc); ok {
				pl.Path = s
			}
		case "listen":
			pl.Listen = d.listen(p, scope, key)
		case "env":
			pl.Env = d.env(p, scope, key)
		case "user", "group":
			if s, ok := d.nonEmpty(p, desc); ok {
				if key == "user" {
					pl.User = s
				} else {
					pl.Group = s
				}
			}
		case "max_open_files":
			v := d.get(p)
			if n, ok := v.(int64); !ok {
				d.typeError(p, desc, "an integer", v)
			} else if n < 16 || n > 1<<20 {
				d.fail(p, desc, ErrInvalidValue, "max_open_files %d out of range: want 16 to 1048576", n)
			} else {
				pl.MaxOpenFiles = n
			}
		case "max_memory":
			if v, ok := d.get(p).(string); ok {
				if n, err := ParseSize(v); err != nil {
					d.fail(p, desc, ErrInvalidValue, "%v", err)
				} else if n < 64<<20 {
					d.fail(p, desc, ErrInvalidValue, "max_memory %s is below 64MiB: a Go process cannot start in less", v)
				} else {
					pl.MaxMemory = n
				}
			} else {
				d.typeError(p, desc, `a size such as "1GiB"`, d.get(p))
			}
		case "sha256":
			if s, ok := d.str(p, desc); ok {
				if !sha256RE.MatchString(s) {
					d.fail(p, desc, ErrInvalidValue, "want 64 hex digits (sha256sum of the binary), got %q", s)
				} else {
					pl.SHA256 = strings.ToLower(s)
				}
			}
		default:
			pl.Settings[key] = d.get(p)
		}
	}
	if pl.Path == "" {
		pl.Path = filepath.Join(c.PluginDir, name)
	}
	return pl
}

func (d *decoder) listen(path []string, scope, key string) []string {
	v := d.get(path)
	list, ok := v.([]any)
	if !ok {
		d.typeError(path, keyDesc(scope, key), "a list of addresses", v)
		return []string{}
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		p, desc := appendPath(path, strconv.Itoa(i)), keyDesc(scope, fmt.Sprintf("%s[%d]", key, i))
		s, ok := x.(string)
		if !ok {
			d.typeError(p, desc, "a string", x)
			continue
		}
		if _, _, err := ParseListen(s); err != nil {
			d.fail(p, desc, ErrInvalidValue, "%v", err)
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) env(path []string, scope, key string) map[string]string {
	out := map[string]string{}
	v := d.get(path)
	m, ok := v.(map[string]any)
	if !ok {
		d.typeError(path, keyDesc(scope, key), "an object of strings", v)
		return out
	}
	for _, name := range sortedKeys(m) {
		p, desc := appendPath(path, name), keyDesc(scope, key+"."+name)
		if name == "" || strings.ContainsAny(name, "=\x00") {
			d.fail(p, desc, ErrInvalidValue, "invalid environment variable name %q", name)
			continue
		}
		s, ok := m[name].(string)
		if !ok {
			d.typeError(p, desc, "a string", m[name])
			continue
		}
		if strings.ContainsRune(s, 0) {
			d.fail(p, desc, ErrInvalidValue, "environment value must not contain NUL")
			continue
		}
		out[name] = s
	}
	return out
}

// checkListeners reports an address bound twice: by listen_api and a
// plugin, or by two plugins. Port 0 is never a conflict: each bind gets a
// port of its own.
func (d *decoder) checkListeners(c *Config) {
	type use struct {
		path  []string
		owner string
		addr  string
	}
	var uses []use
	if _, addr, err := ParseListen(c.ListenAPI); err == nil {
		uses = append(uses, use{[]string{"listen_api"}, "listen_api", "tcp://" + addr})
	}
	for _, name := range sortedKeys(c.Plugins) {
		pl := c.Plugins[name]
		if !pl.Enabled {
			continue
		}
		for i, s := range pl.Listen {
			network, addr, err := ParseListen(s)
			if err != nil {
				continue
			}
			path := []string{"plugin", name, "listen", strconv.Itoa(i)}
			uses = append(uses, use{path, blockHeader("plugin", []string{name}), network + "://" + addr})
		}
	}
	slices.SortStableFunc(uses, func(a, b use) int {
		pa, pb := d.pos[KeyPath(a.path...)], d.pos[KeyPath(b.path...)]
		return pa.Byte - pb.Byte
	})
	seen := map[string]use{}
	for _, u := range uses {
		if strings.HasSuffix(u.addr, ":0") {
			continue
		}
		if first, ok := seen[u.addr]; ok {
			key := keyDesc("", "listen_api")
			if u.path[0] == "plugin" {
				key = keyDesc(u.owner, "listen["+u.path[3]+"]")
			}
			d.fail(u.path, key, ErrDuplicate, "address %s is already bound by %s at %s",
				u.addr, first.owner, FormatPos(d.file, d.pos[KeyPath(first.path...)]))
			continue
		}
		seen[u.addr] = u
	}
}

func newVhost(name string) *Vhost {
	return &Vhost{Name: name, Enabled: true, GopCache: true, Blocks: map[string]map[string]any{}}
}

func (d *decoder) vhosts(c *Config, knownPlugins []string) {
	names, ok := d.labeled([]string{"vhost"}, keyDesc("", "vhost"))
	if !ok {
		return
	}
	blocks := map[string]bool{}
	for _, n := range knownPlugins {
		blocks[n] = true
	}
	for n := range c.Plugins {
		blocks[n] = true
	}
	for _, n := range reservedBlocks {
		blocks[n] = true
	}
	for _, name := range names {
		path := []string{"vhost", name}
		scope := blockHeader("vhost", []string{name})
		if !validVhostName(name) {
			d.fail(path, scope, ErrInvalidValue, "invalid vhost name: want a lower-case host name or %s", DefaultVhost)
			continue
		}
		v := newVhost(name)
		for _, key := range d.keys(path) {
			p, desc := appendPath(path, key), keyDesc(scope, key)
			switch {
			case key == "enabled":
				if b, ok := d.boolean(p, desc); ok {
					v.Enabled = b
				}
			case key == "gop_cache":
				if b, ok := d.boolean(p, desc); ok {
					v.GopCache = b
				}
			case key == "ring_size":
				if n, ok := d.size(p, desc); ok {
					v.RingSize = n
				}
			case blocks[key]:
				if d.block(p, desc) {
					m, _ := d.get(p).(map[string]any)
					if m == nil {
						m = map[string]any{}
					}
					v.Blocks[key] = m
				}
			default:
				d.fail(p, desc, ErrUnknownKey, "unknown key")
			}
		}
		c.Vhosts[name] = v
	}
}
