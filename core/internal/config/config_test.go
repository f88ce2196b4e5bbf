package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var testPlugins = []string{"rtmp", "hls", "dvr", "webrtc"}

func TestLoadFull(t *testing.T) {
	path := filepath.Join("testdata", "conf.hcl")
	c, err := Load(path, testPlugins)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		File:      path,
		PluginDir: "/opt/rill/plugins",
		ListenAPI: "127.0.0.1:1985",
		ServerID:  "rill-test-1",
		LogLevel:  "debug",
		Shm:       ShmConfig{Dir: "/dev/shm/rill", RingSize: 16 << 20, Slots: 8192},
		API:       APIConfig{AllowReload: true},
		Plugins: map[string]*Plugin{
			"rtmp": {
				Name:    "rtmp",
				Enabled: true,
				Path:    "/opt/rill/plugins/rtmp",
				Listen:  []string{"0.0.0.0:1935", "[::]:1935"},
				Env:     map[string]string{"GODEBUG": "madvdontneed=1"},
				Settings: map[string]any{
					"chunk_size": int64(60000),
					"mw_latency": "350ms",
					"tls":        map[string]any{"cert": "certs/server.crt"},
				},
			},
			"webrtc": {
				Name:     "webrtc",
				Enabled:  false,
				Path:     "/usr/local/bin/rill-webrtc",
				Listen:   []string{"udp://0.0.0.0:8000", "tcp://0.0.0.0:8000"},
				Env:      map[string]string{},
				Settings: map[string]any{"candidate": "192.168.1.10", "ratio": 1.5},
			},
		},
		Vhosts: map[string]*Vhost{
			DefaultVhost: {
				Name:     DefaultVhost,
				Enabled:  true,
				GopCache: true,
				Blocks: map[string]map[string]any{
					"hls": {"enabled": true, "fragment": "2s", "window": "60s"},
					"dvr": {"enabled": false, "plan": "session", "path": "objs/[app]/[stream].[timestamp].flv"},
					"hooks": {
						"on_publish": []any{"http://127.0.0.1:8085/api/v1/streams"},
					},
				},
			},
			"live.example.com": {
				Name:     "live.example.com",
				Enabled:  true,
				GopCache: false,
				RingSize: 512 << 10,
				Blocks: map[string]map[string]any{
					"rtmp": {"mw_latency": int64(0)},
					"security": {"rules": []any{
						map[string]any{"action": "allow", "method": "publish", "cidr": "10.0.0.0/8"},
						map[string]any{"action": "deny", "method": "publish", "cidr": "all"},
					}},
				},
			},
			"other.example.com": {
				Name:     "other.example.com",
				Enabled:  true,
				GopCache: true,
				RingSize: 1 << 20,
				Blocks:   map[string]map[string]any{},
			},
		},
	}
	want.Pos = c.Pos
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load =\n%#v\nwant\n%#v", c, want)
		for name, p := range c.Plugins {
			if !reflect.DeepEqual(p, want.Plugins[name]) {
				t.Errorf("plugin %q =\n%#v\nwant\n%#v", name, p, want.Plugins[name])
			}
		}
		for name, v := range c.Vhosts {
			if !reflect.DeepEqual(v, want.Vhosts[name]) {
				t.Errorf("vhost %q =\n%#v\nwant\n%#v", name, v, want.Vhosts[name])
			}
		}
	}

	positions := []struct {
		path []string
		want string
	}{
		{[]string{"log_level"}, "testdata/conf.hcl:5:1"},
		{[]string{"shm", "slots"}, "testdata/conf.hcl:10:3"},
		{[]string{"plugin", "webrtc"}, "testdata/conf.hcl:23:8"},
		{[]string{"plugin", "rtmp", "listen", "1"}, "testdata/conf.hcl:14:33"},
		{[]string{"vhost", "live.example.com", "ring_size"}, "testdata/conf.hcl:51:3"},
		{[]string{"vhost", "live.example.com", "security", "rules", "1", "cidr"}, "testdata/conf.hcl:58:46"},
		{[]string{"vhost", "missing.example.com"}, "testdata/conf.hcl"},
	}
	for _, tt := range positions {
		t.Run("PosOf/"+strings.Join(tt.path, "/"), func(t *testing.T) {
			if got := c.PosOf(tt.path...); got != tt.want {
				t.Errorf("PosOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.hcl"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v, want fs.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "read config: ") {
		t.Errorf("Load error = %q, want a read config prefix", err)
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want func(c *Config)
	}{
		{name: "empty file"},
		{name: "comments only", src: "# nothing\n// here\n/* either */\n"},
		{
			name: "plugin with defaults",
			src:  "plugin_dir = \"./plugins\"\nplugin \"rtmp\" {}\n",
			want: func(c *Config) {
				c.PluginDir = "./plugins"
				c.Plugins["rtmp"] = &Plugin{
					Name: "rtmp", Enabled: true, Path: "plugins/rtmp",
					Listen: []string{}, Env: map[string]string{}, Settings: map[string]any{},
				}
			},
		},
		{
			name: "vhost with defaults",
			src:  "vhost \"a.example.com\" {}\n",
			want: func(c *Config) {
				c.Vhosts["a.example.com"] = &Vhost{
					Name: "a.example.com", Enabled: true, GopCache: true, Blocks: map[string]map[string]any{},
				}
			},
		},
		{
			name: "default vhost kept when defined",
			src:  "vhost \"__defaultVhost__\" {\n  gop_cache = false\n}\n",
			want: func(c *Config) { c.Vhosts[DefaultVhost].GopCache = false },
		},
		{
			name: "empty shm block",
			src:  "shm {}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("conf.hcl", []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := &Config{
				File:      "conf.hcl",
				PluginDir: "bin/plugins",
				ListenAPI: "0.0.0.0:1985",
				LogLevel:  "info",
				Shm:       ShmConfig{Dir: "/dev/shm", RingSize: 8 << 20, Slots: 4096},
				API:       APIConfig{AllowReload: true},
				Plugins:   map[string]*Plugin{},
				Vhosts: map[string]*Vhost{
					DefaultVhost: {Name: DefaultVhost, Enabled: true, GopCache: true, Blocks: map[string]map[string]any{}},
				},
				Pos: c.Pos,
			}
			if tt.want != nil {
				tt.want(want)
			}
			if !reflect.DeepEqual(c, want) {
				t.Errorf("Parse =\n%#v\nwant\n%#v", c, want)
			}
		})
	}
}

// TestParseAccepts covers inputs that must not be errors.
func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		known []string
		check func(t *testing.T, c *Config)
	}{
		{
			name:  "unknown key inside a plugin block of a vhost is the plugin's job",
			src:   "vhost \"a.example.com\" {\n  hls {\n    no_such_key = 1\n  }\n}\n",
			known: []string{"hls"},
			check: func(t *testing.T, c *Config) {
				if got := c.Vhosts["a.example.com"].Blocks["hls"]["no_such_key"]; got != int64(1) {
					t.Errorf("no_such_key = %#v", got)
				}
			},
		},
		{
			name: "block of a plugin declared only in the file",
			src:  "plugin \"myplug\" {}\nvhost \"__defaultVhost__\" {\n  myplug {\n    x = \"y\"\n  }\n}\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Vhosts[DefaultVhost].Blocks["myplug"]["x"]; got != "y" {
					t.Errorf("x = %#v", got)
				}
			},
		},
		{
			name: "reserved blocks",
			src: `vhost "v.example.com" {
  hooks {}
  http_hooks {}
  security {}
  play {}
  publish {}
  cluster {}
  forward {}
  rtc {}
  dash {}
}
`,
			check: func(t *testing.T, c *Config) {
				if got := len(c.Vhosts["v.example.com"].Blocks); got != len(reservedBlocks) {
					t.Errorf("got %d blocks, want %d", got, len(reservedBlocks))
				}
			},
		},
		{
			name: "unknown keys of a plugin block are settings",
			src:  "plugin \"rtmp\" {\n  whatever = [1, 2]\n  nested {\n    a = true\n  }\n}\n",
			check: func(t *testing.T, c *Config) {
				want := map[string]any{"whatever": []any{int64(1), int64(2)}, "nested": map[string]any{"a": true}}
				if got := c.Plugins["rtmp"].Settings; !reflect.DeepEqual(got, want) {
					t.Errorf("Settings = %#v, want %#v", got, want)
				}
			},
		},
		{
			name: "sizes as strings and integers",
			src:  "shm {\n  ring_size = \"64KiB\"\n}\nvhost \"v\" {\n  ring_size = 1048576\n}\n",
			check: func(t *testing.T, c *Config) {
				if c.Shm.RingSize != 64<<10 || c.Vhosts["v"].RingSize != 1<<20 {
					t.Errorf("ring sizes = %d, %d", c.Shm.RingSize, c.Vhosts["v"].RingSize)
				}
			},
		},
		{
			name: "port 0 twice is not a conflict",
			src:  "listen_api = \"127.0.0.1:0\"\nplugin \"a\" {\n  listen = [\"127.0.0.1:0\"]\n}\nplugin \"b\" {\n  listen = [\"127.0.0.1:0\"]\n}\n",
		},
		{
			name: "same port on tcp and udp, and a disabled plugin",
			src:  "plugin \"a\" {\n  listen = [\"tcp://:8000\", \"udp://:8000\"]\n}\nplugin \"b\" {\n  enabled = false\n  listen = [\":8000\"]\n}\n",
		},
		{
			name: "hostname and ipv6 zone listen addresses",
			src:  "plugin \"a\" {\n  listen = [\"localhost:1\", \"[fe80::1%eth0]:2\", \"[::ffff:1.2.3.4]:3\"]\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("conf.hcl", []byte(tt.src), tt.known)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  []string // every line of the joined error
		class error    // of the first error
	}{
		{
			name:  "unknown top-level key",
			src:   "plugin_dir = \"x\"\nlisten_ap = \"0.0.0.0:1985\"\n",
			want:  []string{`conf.hcl:2:1: key "listen_ap": unknown key`},
			class: ErrUnknownKey,
		},
		{
			name:  "unknown vhost key",
			src:   "vhost \"live\" {\n  enabled = true\n\n  gop_cach = false\n}\n",
			want:  []string{`conf.hcl:4:3: vhost "live" key "gop_cach": unknown key`},
			class: ErrUnknownKey,
		},
		{
			name:  "block of an unknown plugin in a vhost",
			src:   "vhost \"live\" {\n  hsl {\n  }\n}\n",
			want:  []string{`conf.hcl:2:3: vhost "live" key "hsl": unknown key`},
			class: ErrUnknownKey,
		},
		{
			name:  "unknown shm key",
			src:   "shm {\n  size = 1\n}\n",
			want:  []string{`conf.hcl:2:3: shm key "size": unknown key`},
			class: ErrUnknownKey,
		},
		{
			name:  "string for a bool",
			src:   "vhost \"a.com\" {\n  gop_cache = \"yes\"\n}\n",
			want:  []string{`conf.hcl:2:3: vhost "a.com" key "gop_cache": want a bool, got a string`},
			class: ErrInvalidValue,
		},
		{
			name:  "null for a bool",
			src:   "plugin \"rtmp\" {\n  enabled = null\n}\n",
			want:  []string{`conf.hcl:2:3: plugin "rtmp" key "enabled": want a bool, got null`},
			class: ErrInvalidValue,
		},
		{
			name:  "number for a string",
			src:   "log_level = 1\n",
			want:  []string{`conf.hcl:1:1: key "log_level": want a string, got a number`},
			class: ErrInvalidValue,
		},
		{
			name:  "block for a string",
			src:   "server_id {\n}\n",
			want:  []string{`conf.hcl:1:1: key "server_id": want a string, got a block`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad log level",
			src:   "log_level = \"verbose\"\n",
			want:  []string{`conf.hcl:1:1: key "log_level": invalid log level "verbose": want one of trace, debug, info, warn, error`},
			class: ErrInvalidValue,
		},
		{
			name:  "empty plugin_dir",
			src:   "plugin_dir = \"\"\n",
			want:  []string{`conf.hcl:1:1: key "plugin_dir": must not be empty`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad listen_api",
			src:   "listen_api = \"1985\"\n",
			want:  []string{`conf.hcl:1:1: key "listen_api": invalid listen address "1985": want host:port: address 1985: missing port in address`},
			class: ErrInvalidValue,
		},
		{
			name:  "udp listen_api",
			src:   "listen_api = \"udp://:1985\"\n",
			want:  []string{`conf.hcl:1:1: key "listen_api": must be a tcp address`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad port in listen",
			src:   "plugin \"rtmp\" {\n  listen = [\"0.0.0.0:1935\", \"0.0.0.0:99999\"]\n}\n",
			want:  []string{`conf.hcl:2:29: plugin "rtmp" key "listen[1]": invalid listen address "0.0.0.0:99999": port "99999" is not a number from 0 to 65535`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad scheme in listen",
			src:   "plugin \"rtmp\" {\n  listen = [\"http://0.0.0.0:80\"]\n}\n",
			want:  []string{`conf.hcl:2:13: plugin "rtmp" key "listen[0]": invalid listen address "http://0.0.0.0:80": unknown scheme "http" (want tcp:// or udp://)`},
			class: ErrInvalidValue,
		},
		{
			name:  "listen not a list",
			src:   "plugin \"rtmp\" {\n  listen = \"0.0.0.0:1935\"\n}\n",
			want:  []string{`conf.hcl:2:3: plugin "rtmp" key "listen": want a list of addresses, got a string`},
			class: ErrInvalidValue,
		},
		{
			name:  "number in listen",
			src:   "plugin \"rtmp\" {\n  listen = [1935]\n}\n",
			want:  []string{`conf.hcl:2:13: plugin "rtmp" key "listen[0]": want a string, got a number`},
			class: ErrInvalidValue,
		},
		{
			name: "address bound twice",
			src:  "listen_api = \"0.0.0.0:8080\"\nplugin \"httpstream\" {\n  listen = [\"0.0.0.0:8080\"]\n}\nplugin \"rtmp\" {\n  listen = [\"tcp://0.0.0.0:8080\"]\n}\n",
			want: []string{
				`conf.hcl:3:13: plugin "httpstream" key "listen[0]": address tcp://0.0.0.0:8080 is already bound by listen_api at conf.hcl:1:1`,
				`conf.hcl:6:13: plugin "rtmp" key "listen[0]": address tcp://0.0.0.0:8080 is already bound by listen_api at conf.hcl:1:1`,
			},
			class: ErrDuplicate,
		},
		{
			name:  "env value not a string",
			src:   "plugin \"rtmp\" {\n  env = {\n    A = 1\n  }\n}\n",
			want:  []string{`conf.hcl:3:5: plugin "rtmp" key "env.A": want a string, got a number`},
			class: ErrInvalidValue,
		},
		{
			name:  "ring_size not a size",
			src:   "shm {\n  ring_size = \"8MB\"\n}\n",
			want:  []string{`conf.hcl:2:3: shm key "ring_size": invalid size "8MB": unknown unit "MB" (want B, KiB, MiB, GiB or TiB)`},
			class: ErrInvalidValue,
		},
		{
			name:  "ring_size too small",
			src:   "vhost \"v\" {\n  ring_size = \"63KiB\"\n}\n",
			want:  []string{`conf.hcl:2:3: vhost "v" key "ring_size": size 64512 is below the minimum of 64KiB`},
			class: ErrInvalidValue,
		},
		{
			name:  "ring_size a bool",
			src:   "shm {\n  ring_size = true\n}\n",
			want:  []string{`conf.hcl:2:3: shm key "ring_size": want a size such as "8MiB", got a bool`},
			class: ErrInvalidValue,
		},
		{
			name:  "slots out of range",
			src:   "shm {\n  slots = 0\n}\n",
			want:  []string{`conf.hcl:2:3: shm key "slots": slots 0 out of range: want 1 to 16777216`},
			class: ErrInvalidValue,
		},
		{
			name:  "slots not an integer",
			src:   "shm {\n  slots = 1.5\n}\n",
			want:  []string{`conf.hcl:2:3: shm key "slots": want an integer, got a number`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad vhost name",
			src:   "vhost \"Live_Example\" {}\n",
			want:  []string{`conf.hcl:1:7: vhost "Live_Example": invalid vhost name: want a lower-case host name or __defaultVhost__`},
			class: ErrInvalidValue,
		},
		{
			name:  "bad plugin name",
			src:   "plugin \"1rtmp\" {}\n",
			want:  []string{`conf.hcl:1:8: plugin "1rtmp": invalid plugin name: want ^[a-z][a-z0-9_-]{0,31}$`},
			class: ErrInvalidValue,
		},
		{
			name:  "reserved plugin name",
			src:   "plugin \"gop_cache\" {}\n",
			want:  []string{`conf.hcl:1:8: plugin "gop_cache": plugin name "gop_cache" is reserved: it is a key of vhost blocks`},
			class: ErrInvalidValue,
		},
		{
			name:  "plugin with two labels",
			src:   "plugin \"rtmp\" \"x\" {}\n",
			want:  []string{`conf.hcl:1:8: plugin "rtmp": plugin block takes exactly one label`},
			class: ErrInvalidValue,
		},
		{
			name:  "plugin without a label",
			src:   "plugin {\n}\n",
			want:  []string{`conf.hcl:1:1: key "plugin": must be a labeled block: plugin "name" { ... }`},
			class: ErrInvalidValue,
		},
		{
			name:  "vhost as an attribute",
			src:   "vhost = {}\n",
			want:  []string{`conf.hcl:1:1: key "vhost": must be a labeled block: vhost "name" { ... }`},
			class: ErrInvalidValue,
		},
		{
			name:  "shm as an attribute",
			src:   "shm = {\n  slots = 1\n}\n",
			want:  []string{`conf.hcl:1:1: key "shm": must be a block, not an attribute: shm { ... }`},
			class: ErrInvalidValue,
		},
		{
			name:  "plugin block of a vhost as an attribute",
			src:   "vhost \"v\" {\n  hls = {\n    enabled = true\n  }\n}\n",
			want:  []string{`conf.hcl:2:3: vhost "v" key "hls": must be a block, not an attribute: hls { ... }`},
			class: ErrInvalidValue,
		},
		{
			name:  "plugin block of a vhost with a label",
			src:   "vhost \"v\" {\n  hls \"x\" {}\n}\n",
			want:  []string{`conf.hcl:2:3: vhost "v" key "hls": block takes no labels`},
			class: ErrInvalidValue,
		},
		{
			name:  "duplicate vhost block",
			src:   "vhost \"live.example.com\" {\n  gop_cache = true\n}\nvhost \"live.example.com\" {\n  gop_cache = false\n}\n",
			want:  []string{`conf.hcl:4:7: vhost "live.example.com": duplicate block, first defined at conf.hcl:1:7`},
			class: ErrDuplicate,
		},
		{
			name:  "duplicate attribute",
			src:   "vhost \"v\" {\n  gop_cache = true\n  gop_cache = false\n}\n",
			want:  []string{`conf.hcl:3:3: vhost "v" key "gop_cache": duplicate attribute, first defined at conf.hcl:2:3`},
			class: ErrDuplicate,
		},
		{
			name:  "variable reference",
			src:   "vhost \"v\" {\n  gop_cache = var.gop\n}\n",
			want:  []string{`conf.hcl:2:15: vhost "v" key "gop_cache": variable reference "var.gop" is not allowed: values must be literals`},
			class: ErrInvalidValue,
		},
		{
			name:  "syntax error",
			src:   "vhost \"v\" {\n  gop_cache = \n}\nfoo = 1\n",
			want:  []string{`conf.hcl:2:15: invalid expression: expected the start of an expression, but found an invalid expression token`},
			class: ErrSyntax,
		},
		{
			name: "every problem at once, sorted",
			src: `log_level = "loud"
vhost "b.example.com" {
  gop_cache = 1
}
bogus = x.y
vhost "a.example.com" {
  colour = "red"
}
vhost "b.example.com" {}
plugin "rtmp" {
  listen = ["nope"]
}
`,
			want: []string{
				`conf.hcl:1:1: key "log_level": invalid log level "loud": want one of trace, debug, info, warn, error`,
				`conf.hcl:3:3: vhost "b.example.com" key "gop_cache": want a bool, got a number`,
				`conf.hcl:5:1: key "bogus": unknown key`,
				`conf.hcl:5:9: key "bogus": variable reference "x.y" is not allowed: values must be literals`,
				`conf.hcl:7:3: vhost "a.example.com" key "colour": unknown key`,
				`conf.hcl:9:7: vhost "b.example.com": duplicate block, first defined at conf.hcl:2:7`,
				`conf.hcl:11:13: plugin "rtmp" key "listen[0]": invalid listen address "nope": want host:port: address nope: missing port in address`,
			},
			class: ErrInvalidValue,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("conf.hcl", []byte(tt.src), []string{"hls"})
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("error =\n%s\nwant\n%s", got, want)
			}
			errs := err.(interface{ Unwrap() []error }).Unwrap()
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != "conf.hcl" || ce.Line == 0 || ce.Col == 0 {
					t.Errorf("error %v is not a positioned *Error", e)
				}
			}
			if !errors.Is(errs[0], tt.class) {
				t.Errorf("first error %v is not %v", errs[0], tt.class)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "conf.hcl", Line: 12, Col: 5, Key: `vhost "live" key "gop_cach"`, Msg: "unknown key"},
			`conf.hcl:12:5: vhost "live" key "gop_cach": unknown key`},
		{Error{File: "conf.hcl", Key: `key "a"`, Msg: "bad"}, `conf.hcl: key "a": bad`},
		{Error{File: "conf.hcl", Line: 1, Col: 2, Msg: "bad"}, `conf.hcl:1:2: bad`},
		{Error{Msg: "bad"}, `bad`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	parse := func(src string) *Config {
		t.Helper()
		c, err := Parse("conf.hcl", []byte(src), []string{"hls"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := parse(`plugin "rtmp" {
  listen = ["0.0.0.0:1935"]
  x      = 1
  y      = { b = 2, a = 1 }
}
vhost "v" {
  hls {
    fragment = "2s"
    window   = "60s"
  }
}
`)
	b := parse(`# same content, another layout
vhost "v" {
  hls {
    window = "60s"
    fragment = "2s"
  }
}
plugin "rtmp" {
  y = {
    a = 1
    b = 2
  }
  x = 1
  listen = ["0.0.0.0:1935"]
}
`)
	c := parse(`plugin "rtmp" {
  listen = ["0.0.0.0:1935"]
  x      = 2
  y      = { b = 2, a = 1 }
}
vhost "v" {
  hls {
    fragment = "4s"
    window   = "60s"
  }
}
`)
	fa, fb, fc := a.Plugins["rtmp"].Fingerprint(), b.Plugins["rtmp"].Fingerprint(), c.Plugins["rtmp"].Fingerprint()
	if fa != fb || fa == fc || fa == "" {
		t.Errorf("plugin fingerprints a=%s b=%s c=%s: want a == b != c", fa, fb, fc)
	}
	va, vb, vc := a.Vhosts["v"].Fingerprint("hls"), b.Vhosts["v"].Fingerprint("hls"), c.Vhosts["v"].Fingerprint("hls")
	if va != vb || va == vc || va == "" {
		t.Errorf("vhost fingerprints a=%s b=%s c=%s: want a == b != c", va, vb, vc)
	}
	if got := a.Vhosts["v"].Fingerprint("dvr"); got != "" {
		t.Errorf("fingerprint of a missing block = %q, want empty", got)
	}
	if got := a.VhostBlocks("hls"); len(got) != 1 || got["v"]["fragment"] != "2s" {
		t.Errorf("VhostBlocks(hls) = %v", got)
	}
}

// TestParseAllKeepsWhatDecoded: with problems in the core's keys, ParseAll
// still returns the plugin blocks and vhost blocks for the plugins to
// check, without the values already reported; Parse returns no Config.
func TestParseAllKeepsWhatDecoded(t *testing.T) {
	src := `log_level = "loud"
plugin "rtmp" {
  chunk_sise = 4096
  bad        = var.x
  nested     = { ok = 1, worse = upper("y") }
}
vhost "__defaultVhost__" {
  gop_cach = true
  hls {
    fragment = "banana"
    list     = ["a", upper("z")]
    tls {
      cert = upper("c")
      key  = "k"
    }
  }
}
vhost "Bad_Name" {
  hls {
    fragment = "1s"
  }
}
`
	c, err := ParseAll("conf.hcl", []byte(src), testPlugins)
	if err == nil || c == nil {
		t.Fatalf("ParseAll: config %v, error %v", c, err)
	}
	for _, want := range []string{"conf.hcl:1:", "log_level", "conf.hcl:4:", "conf.hcl:8:", "gop_cach", "conf.hcl:13:", "conf.hcl:18:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if c.LogLevel != DefaultLogLevel {
		t.Errorf("log level %q, want the default", c.LogLevel)
	}
	wantSettings := map[string]any{"chunk_sise": int64(4096)}
	if got := c.Plugins["rtmp"].Settings; !reflect.DeepEqual(got, wantSettings) {
		t.Errorf("rtmp settings %#v, want %#v", got, wantSettings)
	}
	if got, want := c.Vhosts[DefaultVhost].Blocks["hls"], map[string]any{"fragment": "banana", "tls": map[string]any{"key": "k"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("hls block %#v, want %#v", got, want)
	}
	if _, ok := c.Vhosts["Bad_Name"]; ok {
		t.Error("a vhost with a bad name was kept")
	}
	if pc, perr := Parse("conf.hcl", []byte(src), testPlugins); pc != nil || perr == nil || perr.Error() != err.Error() {
		t.Errorf("Parse: config %v, error %v; want nil and the same errors", pc, perr)
	}
	if c, err := ParseAll("conf.hcl", []byte("vhost {\n"), testPlugins); c != nil || !errors.Is(err, ErrSyntax) {
		t.Errorf("syntax error: config %v, error %v", c, err)
	}
}

// TestRenamedPlugin: plugin "hls" { } of an older file is read as plugin
// "httpstream" { } with its keys located where the file has them, and a
// note says so; both names in one file are refused.
func TestRenamedPlugin(t *testing.T) {
	src := "plugin \"hls\" {\n  listen = [\"127.0.0.1:0\"]\n  mw_latency = \"100ms\"\n}\n"
	c, err := Parse("conf.hcl", []byte(src), []string{"httpstream", "hls"})
	if err != nil {
		t.Fatal(err)
	}
	p := c.Plugins["httpstream"]
	if p == nil || c.Plugins["hls"] != nil {
		t.Fatalf("plugins %v: want httpstream only", c.Plugins)
	}
	if p.Name != "httpstream" || p.Settings["mw_latency"] != "100ms" || len(p.Listen) != 1 || filepath.Base(p.Path) != "httpstream" {
		t.Errorf("plugin read as %+v", p)
	}
	if got := c.PosOf("plugin", "httpstream", "mw_latency"); got != "conf.hcl:3:3" {
		t.Errorf("mw_latency located at %s, want conf.hcl:3:3", got)
	}
	if len(c.Notes) != 1 || !strings.HasPrefix(c.Notes[0], "conf.hcl:1:8: plugin \"hls\" is the old name of plugin \"httpstream\"") {
		t.Errorf("notes %q", c.Notes)
	}
	_, err = Parse("conf.hcl", []byte(src+"plugin \"httpstream\" {}\n"), []string{"httpstream", "hls"})
	if err == nil || !strings.Contains(err.Error(), "keep one block") {
		t.Errorf("both names: %v, want a refusal", err)
	}
}
