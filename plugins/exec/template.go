package main

import (
	"errors"
	"fmt"
	"strings"
)

// A command line in the config is split into argv once, at configure time,
// and the placeholders ([vhost], [app], [stream], ...) are substituted into
// each argument separately. A substituted value therefore never becomes two
// arguments, never reaches a shell (children run through exec.Command with
// the argv as is: docs/THREATS.md row 22, CVE-2023-34105) and is checked against
// an allow-list before it is used.

// Errors of splitting and substitution.
var (
	errEmptyCommand   = errors.New("empty command")
	errUnterminated   = errors.New("unterminated quote")
	errTrailingEscape = errors.New("trailing backslash")
	errUnsafeValue    = errors.New("unsafe value")
)

// splitCommand splits a command line into arguments at unquoted white space.
// Single quotes keep everything literally; double quotes keep white space
// and allow \" and \\; a backslash outside quotes escapes the next
// character. Nothing else is interpreted: no variables, globs or pipes.
func splitCommand(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '\'':
			inArg = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errUnterminated
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inArg = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errUnterminated
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errTrailingEscape
			}
			inArg = true
			i++
			cur.WriteByte(s[i])
		default:
			inArg = true
			cur.WriteByte(c)
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errEmptyCommand
	}
	return args, nil
}

// vars holds the values substituted for [name] placeholders.
type vars map[string]string

// expand substitutes the known placeholders of tmpl. Unknown ones ("[0:v]"
// in a filter graph) stay as written. Every substituted value must pass
// safeValue for its name, and an argument that did not start with "-" must
// not start with one after substitution (no option injection).
func expand(tmpl string, v vars) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], ']')
		if j < 0 {
			b.WriteString(rest)
			break
		}
		name := rest[i+1 : i+j]
		val, ok := v[name]
		if !ok {
			b.WriteString(rest[:i+j+1])
			rest = rest[i+j+1:]
			continue
		}
		if err := safeValue(name, val); err != nil {
			return "", err
		}
		b.WriteString(rest[:i])
		b.WriteString(val)
		rest = rest[i+j+1:]
	}
	out := b.String()
	if strings.HasPrefix(out, "-") && !strings.HasPrefix(tmpl, "-") {
		return "", fmt.Errorf("%w: argument %q would start with '-'", errUnsafeValue, out)
	}
	return out, nil
}

// expandArgs substitutes v into every argument of argv.
func expandArgs(argv []string, v vars) ([]string, error) {
	out := make([]string, len(argv))
	for i, a := range argv {
		x, err := expand(a, v)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}

// maxValueLen bounds a substituted value.
const maxValueLen = 1024

// safeValue checks a value before it is substituted for [name]. The core
// already validates stream and app names; this allow-list is the plugin's
// own line of defence, so it is strict on purpose.
func safeValue(name, v string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: [%s] = %q: %s", errUnsafeValue, name, v, why)
	}
	if len(v) > maxValueLen {
		return bad("too long")
	}
	switch name {
	case "stream", "engine", "vhost":
		if !isName(v) {
			return bad("want letters, digits, '.', '_', '~' or '-'")
		}
	case "app":
		for _, seg := range strings.Split(v, "/") {
			if !isName(seg) {
				return bad("want names of letters, digits, '.', '_', '~' or '-' separated by '/'")
			}
		}
	case "param":
		for i := 0; i < len(v); i++ {
			if !isNameByte(v[i]) && strings.IndexByte("?=&%+:,/@", v[i]) < 0 {
				return bad(fmt.Sprintf("character %q not allowed", v[i]))
			}
		}
	default: // [url], [rtmp], [port], [input], ...: built by the plugin from checked parts
		for i := 0; i < len(v); i++ {
			if v[i] <= ' ' || v[i] == 0x7f {
				return bad("control character or space")
			}
		}
	}
	return nil
}

// isName reports whether s is a non-empty name that is not "." or "..".
func isName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-'
}

// quoteArgv renders argv for a log line.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'\\") {
			parts[i] = fmt.Sprintf("%q", a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}
