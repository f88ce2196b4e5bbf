package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and keeps its contract: a
// Config with the default vhost and JSON-able plugin settings, or errors
// that are all positioned-or-not *Error values of a known class.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.hcl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"",
		"vhost \"live.example.com\" {\n  hls {\n    fragment = \"2s\"\n  }\n}\n",
		"vhost \"v\" {}\nvhost \"v\" {}\n",
		"a = 1\na = 2\n",
		"shm = {}\nshm {}\n",
		"x \"a\" \"b\" {}\nx \"a\" {}\n",
		"b = [1, var.port]\n",
		"a = upper(\"x\")\n",
		"a = [for x in [1, 2]: x * 2]\n",
		"a = { for k, v in { a = 1 }: k => v }\n",
		"a = \"%{ for x in [1] }${x}%{ endfor }\"\n",
		"a = 1 / 0\n",
		"a = 1e400\n",
		"a = { \"x\\u001f\" = 1 }\n",
		"vhost \"a\\u001fb\" {}\n",
		"plugin \"rtmp\" {\n  listen = [\"0.0.0.0:99999\"]\n  env = { A = 1 }\n}\n",
		"shm {\n  ring_size = \"8MB\"\n  slots = 1.5\n}\n",
		"hls { a = 1  b = 2 }\n",
		"vhost \"v\" {\n  gop_cache = \n}\n",
		"a = [\n",
		"a = <<EOT\nx\n",
		"a = true ? 1 : \"x\"\n",
		"a = [1, 2][*]\n",
		"a = null\nplugin \"p\" {\n  s = null\n}\n",
	} {
		f.Add([]byte(s))
	}
	known := []string{"rtmp", "hls", "dvr"}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("conf.hcl", src, known)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config with an error")
			}
			j, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("Parse error %T is not joined", err)
			}
			for _, e := range j.Unwrap() {
				var ce *Error
				if !errors.As(e, &ce) || ce.Msg == "" {
					t.Fatalf("error %v is not an *Error with a message", e)
				}
				if !errors.Is(ce, ErrSyntax) && !errors.Is(ce, ErrDuplicate) &&
					!errors.Is(ce, ErrUnknownKey) && !errors.Is(ce, ErrInvalidValue) {
					t.Fatalf("error %v has no class", e)
				}
			}
			return
		}
		if c.Vhosts[DefaultVhost] == nil {
			t.Fatal("no default vhost")
		}
		for _, p := range c.Plugins {
			if _, err := json.Marshal(p.Settings); err != nil {
				t.Fatalf("plugin %q settings are not JSON-able: %v", p.Name, err)
			}
			_ = p.Fingerprint()
		}
		for _, v := range c.Vhosts {
			if _, err := json.Marshal(v.Blocks); err != nil {
				t.Fatalf("vhost %q blocks are not JSON-able: %v", v.Name, err)
			}
		}
	})
}
