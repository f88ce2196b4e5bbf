package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/knadh/koanf/v2"
)

func TestParserUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want map[string]any
	}{
		{
			name: "empty",
			src:  "",
			want: map[string]any{},
		},
		{
			name: "scalars",
			src: `s = "x"
b = true
i = 42
neg = -3
f = 1.5
e = 1e3
huge = 9223372036854775808
tmpl = "${1 + 1}px"
heredoc = <<EOT
a
EOT
n = null
`,
			want: map[string]any{
				"s": "x", "b": true, "i": int64(42), "neg": int64(-3), "f": 1.5, "e": int64(1000),
				"huge": 9223372036854775808.0, "tmpl": "2px", "heredoc": "a\n", "n": nil,
			},
		},
		{
			name: "lists and objects",
			src: `l = [1, "a", [true]]
o = { a = 1, "b.c" = { d = [] } }
`,
			want: map[string]any{
				"l": []any{int64(1), "a", []any{true}},
				"o": map[string]any{"a": int64(1), "b.c": map[string]any{"d": []any{}}},
			},
		},
		{
			name: "repeated labeled blocks are a map",
			src: `vhost "live.example.com" {
  gop_cache = false
}
vhost "__defaultVhost__" {
  hls {
    fragment = "2s"
  }
}
shm {
  slots = 8
}
`,
			want: map[string]any{
				"vhost": map[string]any{
					"live.example.com": map[string]any{"gop_cache": false},
					"__defaultVhost__": map[string]any{"hls": map[string]any{"fragment": "2s"}},
				},
				"shm": map[string]any{"slots": int64(8)},
			},
		},
		{
			name: "at the limits",
			src: "a = " + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "\n" +
				"b = " + strings.Repeat("!", 10000-64) + "true\n", // the lists count too
			want: map[string]any{"a": nest(63), "b": true},
		},
		{
			name: "two labels nest",
			src: `x "a" "b" {
  k = 1
}
x "a" "c" {}
x "d" "b" {}
`,
			want: map[string]any{
				"x": map[string]any{
					"a": map[string]any{"b": map[string]any{"k": int64(1)}, "c": map[string]any{}},
					"d": map[string]any{"b": map[string]any{}},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Parser{Filename: "conf.hcl"}
			got, err := p.Unmarshal([]byte(tt.src))
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmarshal =\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestParserErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  string
		class error
	}{
		{
			name:  "duplicate attribute",
			src:   "a = 1\nb = 2\na = 3\n",
			want:  `conf.hcl:3:1: key "a": duplicate attribute, first defined at conf.hcl:1:1`,
			class: ErrDuplicate,
		},
		{
			name:  "duplicate attribute in a nested block",
			src:   "vhost \"v\" {\n  hls {\n    a = 1\n    a = 2\n  }\n}\n",
			want:  `conf.hcl:4:5: vhost "v" hls key "a": duplicate attribute, first defined at conf.hcl:3:5`,
			class: ErrDuplicate,
		},
		{
			name:  "duplicate labeled block",
			src:   "vhost \"v\" {}\nvhost \"w\" {}\nvhost \"v\" {}\n",
			want:  `conf.hcl:3:7: vhost "v": duplicate block, first defined at conf.hcl:1:7`,
			class: ErrDuplicate,
		},
		{
			name:  "duplicate block",
			src:   "shm {}\nshm {}\n",
			want:  `conf.hcl:2:1: shm: duplicate block, first defined at conf.hcl:1:1`,
			class: ErrDuplicate,
		},
		{
			name:  "block after attribute",
			src:   "shm = {}\nshm {}\n",
			want:  `conf.hcl:2:1: shm: block conflicts with the attribute defined at conf.hcl:1:1`,
			class: ErrDuplicate,
		},
		{
			name:  "attribute after block",
			src:   "vhost \"v\" {}\nvhost = 1\n",
			want:  `conf.hcl:2:1: key "vhost": attribute conflicts with the labeled block defined at conf.hcl:1:1`,
			class: ErrDuplicate,
		},
		{
			name:  "duplicate object key",
			src:   "env = {\n  A = 1\n  \"A\" = 2\n}\n",
			want:  `conf.hcl:3:3: key "env.A": duplicate key, first defined at conf.hcl:2:3`,
			class: ErrDuplicate,
		},
		{
			name:  "variable reference",
			src:   "a = 1\nb = [1, var.port]\n",
			want:  `conf.hcl:2:9: key "b": variable reference "var.port" is not allowed: values must be literals`,
			class: ErrInvalidValue,
		},
		{
			name:  "variable in template",
			src:   "a = \"${x}\"\n",
			want:  `conf.hcl:1:8: key "a": variable reference "x" is not allowed: values must be literals`,
			class: ErrInvalidValue,
		},
		{
			name:  "function call",
			src:   "a = upper(\"x\")\n",
			want:  `conf.hcl:1:5: key "a": function calls not allowed: functions may not be called here`,
			class: ErrInvalidValue,
		},
		{
			name:  "number out of range",
			src:   "a = 1e400\n",
			want:  `conf.hcl:1:5: key "a": number 1e+400 is out of range`,
			class: ErrInvalidValue,
		},
		{
			name:  "delimiter in label",
			src:   "vhost \"a\\u001fb\" {}\n",
			want:  `conf.hcl:1:7: vhost "a\x1fb": label must not contain U+001F`,
			class: ErrInvalidValue,
		},
		{
			name:  "delimiter in object key",
			src:   "a = { \"x\\u001f\" = 1 }\n",
			want:  `conf.hcl:1:7: key "a": object key must not contain U+001F`,
			class: ErrInvalidValue,
		},
		{
			name:  "syntax error",
			src:   "a = \n",
			want:  `conf.hcl:1:5: invalid expression: expected the start of an expression, but found an invalid expression token`,
			class: ErrSyntax,
		},
		{
			name: "duplicate attribute next to a syntax error",
			src:  "a = 1\na = 2\nb = \n",
			want: "conf.hcl:2:1: key \"a\": duplicate attribute, first defined at conf.hcl:1:1\n" +
				"conf.hcl:3:5: invalid expression: expected the start of an expression, but found an invalid expression token",
			class: ErrDuplicate,
		},
		{
			name:  "nested too deep",
			src:   "a = " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n",
			want:  `conf.hcl:1:69: nested more than 64 levels deep`,
			class: ErrSyntax,
		},
		{
			name:  "blocks nested too deep",
			src:   strings.Repeat("a {\n", 65) + strings.Repeat("}\n", 65),
			want:  `conf.hcl:65:3: nested more than 64 levels deep`,
			class: ErrSyntax,
		},
		{
			name:  "operator chain too long",
			src:   "a = " + strings.Repeat("!", 100000) + "true\n",
			want:  `conf.hcl:1:10005: more than 10000 operators, lists and traversals`,
			class: ErrSyntax,
		},
		{
			name:  "file too large",
			src:   strings.Repeat("#\n", MaxFileSize/2+1),
			want:  `conf.hcl: file of 1048578 bytes is larger than the limit of 1048576`,
			class: ErrSyntax,
		},
		{
			name:  "several attributes on a one-line block",
			src:   "hls { a = 1  b = 2 }\n",
			want:  `conf.hcl:1:14: invalid single-argument block definition: a single-line block definition must end with a closing brace immediately after its single argument definition`,
			class: ErrSyntax,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Parser{Filename: "conf.hcl"}
			m, err := p.Unmarshal([]byte(tt.src))
			if err == nil {
				t.Fatalf("Unmarshal = %v, want error %q", m, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error %v is not %v", err, tt.class)
			}
			if m != nil {
				t.Errorf("Unmarshal returned a map with an error: %v", m)
			}
		})
	}
}

func TestParserPositions(t *testing.T) {
	src := `plugin "rtmp" {
  listen = ["a:1", "b:2"]
  env = {
    K = "v"
  }
}
vhost "live.example.com" {
  hls {
    fragment = "2s"
  }
}
`
	p := &Parser{Filename: "conf.hcl"}
	if _, err := p.Unmarshal([]byte(src)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path []string
		want string
	}{
		{[]string{"plugin"}, "conf.hcl:1:1"},
		{[]string{"plugin", "rtmp"}, "conf.hcl:1:8"},
		{[]string{"plugin", "rtmp", "listen"}, "conf.hcl:2:3"},
		{[]string{"plugin", "rtmp", "listen", "1"}, "conf.hcl:2:20"},
		{[]string{"plugin", "rtmp", "env", "K"}, "conf.hcl:4:5"},
		{[]string{"vhost", "live.example.com"}, "conf.hcl:7:7"},
		{[]string{"vhost", "live.example.com", "hls"}, "conf.hcl:8:3"},
		{[]string{"vhost", "live.example.com", "hls", "fragment"}, "conf.hcl:9:5"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.path, "/"), func(t *testing.T) {
			pos, ok := p.Positions.Lookup(tt.path...)
			if !ok {
				t.Fatalf("no position for %q", tt.path)
			}
			if got := FormatPos("conf.hcl", pos); got != tt.want {
				t.Errorf("position = %s, want %s", got, tt.want)
			}
		})
	}
	if _, ok := p.Positions.Lookup("vhost", "nope"); ok {
		t.Error("Lookup of a missing key path succeeded")
	}
	if got := FormatPos("conf.hcl", hcl.Pos{}); got != "conf.hcl" {
		t.Errorf("FormatPos(zero) = %q, want conf.hcl", got)
	}
}

// TestParserKoanf checks the parser behind koanf: names with dots stay
// whole with Delim, and koanf reports the parser's error.
func TestParserKoanf(t *testing.T) {
	k := koanf.New(Delim)
	src := "vhost \"live.example.com\" {\n  hls {\n    fragment = \"2s\"\n  }\n}\n"
	if err := k.Load(bytesProvider(src), &Parser{Filename: "conf.hcl"}); err != nil {
		t.Fatal(err)
	}
	if got := k.String(KeyPath("vhost", "live.example.com", "hls", "fragment")); got != "2s" {
		t.Errorf("fragment = %q, want 2s", got)
	}
	if got := k.MapKeys("vhost"); !reflect.DeepEqual(got, []string{"live.example.com"}) {
		t.Errorf("vhosts = %q", got)
	}

	err := koanf.New(Delim).Load(bytesProvider("a = 1\na = 2\n"), &Parser{Filename: "conf.hcl"})
	if !errors.Is(err, ErrDuplicate) {
		t.Errorf("Load error = %v, want ErrDuplicate", err)
	}
	if _, err := (&Parser{}).Marshal(map[string]any{}); err == nil {
		t.Error("Marshal succeeded")
	}
}

// nest returns depth lists nested in a list: [[...]].
func nest(depth int) []any {
	if depth == 0 {
		return []any{}
	}
	return []any{nest(depth - 1)}
}
