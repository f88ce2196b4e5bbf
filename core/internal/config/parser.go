package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/knadh/koanf/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Delim separates the parts of a key path, both for koanf and for
// Positions. It is the ASCII unit separator: it cannot appear in an HCL
// identifier and the parser rejects it in labels and object keys, so vhost
// names such as "live.example.com" and keys such as "application/x-mpegurl"
// stay whole.
const Delim = "\x1f"

// KeyPath joins the parts of a key path with Delim, the form used by koanf
// and by Positions.
func KeyPath(parts ...string) string { return strings.Join(parts, Delim) }

// Positions maps the joined key path (see KeyPath) of every key of a config
// file to where it is defined: the name of an attribute, the type of an
// unlabeled block, the label of a labeled block, the key of an object
// element or the start of a list element (whose path part is its index).
// For a group of labeled blocks such as "vhost", the path of the type alone
// points at the first block of the group.
type Positions map[string]hcl.Pos

// Lookup returns the position of the key path given by its parts.
func (p Positions) Lookup(keyPath ...string) (hcl.Pos, bool) {
	pos, ok := p[KeyPath(keyPath...)]
	return pos, ok
}

// FormatPos renders pos in file as "file:line:col", or as "file" alone when
// pos is the zero position.
func FormatPos(file string, pos hcl.Pos) string {
	return formatPos(file, pos.Line, pos.Column)
}

// kind says how a key path was defined, to tell blocks from attributes
// after both have become maps.
type kind uint8

const (
	kindAttr   kind = iota + 1 // name = value
	kindBlock                  // the body of a block: name { } or the last label of name "l" { }
	kindLabels                 // a block type or a non-final label: a group of labeled blocks
	kindValue                  // an object key or list element inside an attribute value
)

func (k kind) String() string {
	switch k {
	case kindAttr:
		return "attribute"
	case kindBlock:
		return "block"
	case kindLabels:
		return "labeled block"
	default:
		return "key"
	}
}

// Parser is a koanf.Parser for HCL2 config files (hashicorp/hcl/v2 native
// syntax). koanf's bundled HCL parser speaks HCL1, which turns repeated
// labeled blocks into lists; this one maps them as follows:
//
//	name = value           m["name"] = value
//	name { ... }           m["name"] = map
//	name "a" { ... }       m["name"]["a"] = map
//	name "a" "b" { ... }   m["name"]["a"]["b"] = map
//
// Values must be literals: an expression is evaluated with no variables and
// no functions, and becomes a string, bool, int64 (integral numbers that
// fit), float64, []any or map[string]any (nil for null). A block or
// attribute defined twice, a block and an attribute sharing a name, and a
// reference to a variable are errors naming the file, line and column.
// Unmarshal returns an errors.Join of *Error sorted by position.
//
// A Parser is not safe for concurrent use: Unmarshal records Positions.
type Parser struct {
	// Filename names the file in positions and errors.
	Filename string
	// Positions is filled by Unmarshal with the position of every key path,
	// also when Unmarshal fails on anything but a syntax error.
	Positions Positions

	kinds map[string]kind
	// keepGoing makes Unmarshal return what it could convert and leave its
	// non-syntax problems in problems, so that Parse can report them
	// together with the problems of the typed decode.
	keepGoing bool
	problems  []*Error
}

var _ koanf.Parser = (*Parser)(nil)

// attributeRedefined is the summary of hclsyntax's diagnostic for an
// attribute set twice in one body. The parser drops the second attribute
// and the body is otherwise complete, so it is reported like the other
// duplicates instead of stopping the walk. Should hcl ever reword it, the
// diagnostic is reported as a syntax error, which is still correct.
const attributeRedefined = "Attribute redefined"

// Unmarshal parses src as HCL2 and returns it as a nested map, or an
// errors.Join of every *Error found, sorted by position.
func (p *Parser) Unmarshal(src []byte) (map[string]any, error) {
	w := &walker{
		file:  p.Filename,
		src:   src,
		pos:   Positions{},
		kinds: map[string]kind{},
	}
	p.Positions, p.kinds, p.problems = w.pos, w.kinds, nil

	if len(src) > MaxFileSize {
		return nil, joinErrors([]*Error{{File: p.Filename, Err: ErrSyntax,
			Msg: fmt.Sprintf("file of %d bytes is larger than the limit of %d", len(src), MaxFileSize)}})
	}
	if e := checkLimits(src, p.Filename); e != nil {
		return nil, joinErrors([]*Error{e})
	}
	file, diags := hclsyntax.ParseConfig(src, p.Filename, hcl.InitialPos)
	body, _ := file.Body.(*hclsyntax.Body)
	fatal := body == nil
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if d.Summary != attributeRedefined || d.Subject == nil || body == nil {
			fatal = true
		}
	}
	for _, d := range diags {
		switch {
		case d.Severity != hcl.DiagError:
		case d.Summary == attributeRedefined && d.Subject != nil && body != nil:
			w.redefined(body, d)
		default:
			w.diag(d, "", ErrSyntax)
		}
	}
	if fatal {
		// What hclsyntax recovered of a broken file would only add
		// misleading errors: report the syntax errors alone.
		if len(w.errs) == 0 {
			w.fail(hcl.Pos{}, "", ErrSyntax, "cannot parse file")
		}
		return nil, joinErrors(w.errs)
	}

	out := map[string]any{}
	w.body(body, nil, "", out)
	if len(w.errs) == 0 {
		return out, nil
	}
	if p.keepGoing {
		p.problems = w.errs
		return out, nil
	}
	return nil, joinErrors(w.errs)
}

// Limits on what hclsyntax may see. Its parser and evaluator recurse once
// per level of brackets and once per operator, traversal or index in a
// chain, so a file such as 100000 "[" overflows the goroutine stack, which
// is a fatal error, not a panic. A config of literals is far below both.
const (
	// MaxFileSize is the largest config file accepted, in bytes. A
	// conf.hcl is a few KiB; the limit keeps a mistaken file (a log, a
	// media file) from costing seconds of parsing.
	MaxFileSize = 1 << 20
	// maxNesting bounds the depth of blocks, brackets, parentheses, strings
	// and template sequences.
	maxNesting = 64
	// maxChain bounds the number of tokens that can chain expressions
	// without brackets: operators, dots, '?' and '['.
	maxChain = 10000
)

// checkLimits lexes src (the lexer does not recurse) and reports the first
// token beyond maxNesting or maxChain.
func checkLimits(src []byte, filename string) *Error {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth, chain := 0, 0
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			depth++
		case hclsyntax.TokenOBrack:
			depth++
			chain++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			depth = max(depth-1, 0)
		case hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPlus, hclsyntax.TokenMinus,
			hclsyntax.TokenPercent, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual,
			hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan,
			hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr, hclsyntax.TokenBang,
			hclsyntax.TokenDot, hclsyntax.TokenQuestion, hclsyntax.TokenEllipsis:
			chain++
		}
		if depth > maxNesting {
			return &Error{File: filename, Line: tok.Range.Start.Line, Col: tok.Range.Start.Column,
				Msg: fmt.Sprintf("nested more than %d levels deep", maxNesting), Err: ErrSyntax}
		}
		if chain > maxChain {
			return &Error{File: filename, Line: tok.Range.Start.Line, Col: tok.Range.Start.Column,
				Msg: fmt.Sprintf("more than %d operators, lists and traversals", maxChain), Err: ErrSyntax}
		}
	}
	return nil
}

// Marshal is not supported: config files are written by people.
func (p *Parser) Marshal(map[string]any) ([]byte, error) {
	return nil, errors.New("config: marshal to hcl is not supported")
}

// walker converts an hclsyntax body to a map, recording positions and
// collecting every problem instead of stopping at the first.
type walker struct {
	file  string
	src   []byte
	pos   Positions
	kinds map[string]kind
	errs  []*Error
}

func (w *walker) fail(pos hcl.Pos, key string, class error, format string, args ...any) {
	w.errs = append(w.errs, &Error{
		File: w.file,
		Line: pos.Line,
		Col:  pos.Column,
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
		Err:  class,
	})
}

// diag records an hcl diagnostic as an *Error.
func (w *walker) diag(d *hcl.Diagnostic, key string, class error) {
	var pos hcl.Pos
	if d.Subject != nil {
		pos = d.Subject.Start
	}
	msg := lowerFirst(d.Summary)
	if detail := strings.TrimSuffix(strings.TrimSpace(d.Detail), "."); detail != "" {
		msg += ": " + lowerFirst(detail)
	}
	w.fail(pos, key, class, "%s", msg)
}

// redefined reports hclsyntax's "Attribute redefined" diagnostic d with the
// positions of both definitions.
func (w *walker) redefined(root *hclsyntax.Body, d *hcl.Diagnostic) {
	r := *d.Subject
	if r.Start.Byte < 0 || r.End.Byte > len(w.src) || r.Start.Byte >= r.End.Byte {
		w.diag(d, "", ErrDuplicate)
		return
	}
	name := string(w.src[r.Start.Byte:r.End.Byte])
	first, ok := innermostBody(root, r.Start.Byte).Attributes[name]
	if !ok {
		w.diag(d, "", ErrDuplicate)
		return
	}
	w.fail(r.Start, keyDesc(w.scopeOf(root, r.Start.Byte), name), ErrDuplicate,
		"duplicate attribute, first defined at %s", FormatPos(w.file, first.NameRange.Start))
}

// innermostBody returns the deepest body under b whose source range holds
// the byte offset off.
func innermostBody(b *hclsyntax.Body, off int) *hclsyntax.Body {
	for _, blk := range b.Blocks {
		r := blk.Body.SrcRange
		if r.Start.Byte <= off && off < r.End.Byte {
			return innermostBody(blk.Body, off)
		}
	}
	return b
}

// scopeOf describes the blocks enclosing the byte offset off, as body does.
func (w *walker) scopeOf(b *hclsyntax.Body, off int) string {
	scope := ""
	for {
		var inner *hclsyntax.Block
		for _, blk := range b.Blocks {
			r := blk.Body.SrcRange
			if r.Start.Byte <= off && off < r.End.Byte {
				inner = blk
				break
			}
		}
		if inner == nil {
			return scope
		}
		scope = joinScope(scope, blockHeader(inner.Type, inner.Labels))
		b = inner.Body
	}
}

// claim records that path is defined as k at pos, or reports why it cannot
// be: a second definition, or a block and an attribute of the same name.
// Labeled blocks of one type share their type (and leading labels).
func (w *walker) claim(path []string, k kind, pos hcl.Pos, key string) bool {
	jp := KeyPath(path...)
	prev, ok := w.kinds[jp]
	if !ok {
		w.kinds[jp] = k
		w.pos[jp] = pos
		return true
	}
	if prev == kindLabels && k == kindLabels {
		return true
	}
	first := FormatPos(w.file, w.pos[jp])
	if prev == k {
		w.fail(pos, key, ErrDuplicate, "duplicate %s, first defined at %s", k, first)
	} else {
		w.fail(pos, key, ErrDuplicate, "%s conflicts with the %s defined at %s", k, prev, first)
	}
	return false
}

// body converts b, found at path inside the blocks described by scope,
// into out, item by item in source order.
func (w *walker) body(b *hclsyntax.Body, path []string, scope string, out map[string]any) {
	type item struct {
		start int
		attr  *hclsyntax.Attribute
		block *hclsyntax.Block
	}
	items := make([]item, 0, len(b.Attributes)+len(b.Blocks))
	for _, a := range b.Attributes {
		items = append(items, item{start: a.SrcRange.Start.Byte, attr: a})
	}
	for _, blk := range b.Blocks {
		items = append(items, item{start: blk.TypeRange.Start.Byte, block: blk})
	}
	slices.SortStableFunc(items, func(x, y item) int { return x.start - y.start })
	for _, it := range items {
		if it.attr != nil {
			w.attribute(it.attr, path, scope, out)
		} else {
			w.block(it.block, path, scope, out)
		}
	}
}

func (w *walker) attribute(a *hclsyntax.Attribute, path []string, scope string, out map[string]any) {
	p := appendPath(path, a.Name)
	key := keyDesc(scope, a.Name)
	if !w.claim(p, kindAttr, a.NameRange.Start, key) {
		return
	}
	if vars := a.Expr.Variables(); len(vars) > 0 {
		for _, t := range vars {
			r := t.SourceRange()
			w.fail(r.Start, key, ErrInvalidValue,
				"variable reference %q is not allowed: values must be literals", w.text(r, t.RootName()))
		}
		out[a.Name] = badValue{}
		return
	}
	v, ok := w.expr(a.Expr, p, scope, a.Name)
	if !ok {
		v = badValue{}
	}
	out[a.Name] = v
}

// badValue stands for the value of an attribute that could not be
// converted, already reported. It keeps the key in the tree so that Parse
// still reports an unknown key there, and is never type-checked again.
// Unmarshal returns no tree holding one unless Parse asked it to go on.
type badValue struct{}

func (w *walker) block(b *hclsyntax.Block, path []string, scope string, out map[string]any) {
	key := joinScope(scope, blockHeader(b.Type, b.Labels))
	for i, l := range b.Labels {
		if strings.Contains(l, Delim) {
			w.fail(labelPos(b, i), key, ErrInvalidValue, "label must not contain U+001F")
			return
		}
	}
	cur, p := out, path
	parts := append([]string{b.Type}, b.Labels...)
	for i, part := range parts {
		p = appendPath(p, part)
		k, pos := kindLabels, b.TypeRange.Start
		if i == len(parts)-1 {
			k = kindBlock
		}
		if i > 0 {
			pos = labelPos(b, i-1)
		}
		if !w.claim(p, k, pos, key) {
			return
		}
		next, ok := cur[part].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[part] = next
		}
		cur = next
	}
	w.body(b.Body, p, key, cur)
}

func labelPos(b *hclsyntax.Block, i int) hcl.Pos {
	if i < len(b.LabelRanges) {
		return b.LabelRanges[i].Start
	}
	return b.TypeRange.Start
}

// expr converts the value of e, found at path and named name (such as
// "listen[1]" or "env.HOME") inside scope. List and object constructors are
// walked so that their elements get positions of their own; anything else
// is evaluated with a nil EvalContext.
func (w *walker) expr(e hclsyntax.Expression, path []string, scope, name string) (any, bool) {
	switch e := e.(type) {
	case *hclsyntax.TupleConsExpr:
		out := make([]any, 0, len(e.Exprs))
		ok := true
		for i, x := range e.Exprs {
			p := appendPath(path, strconv.Itoa(i))
			w.kinds[KeyPath(p...)] = kindValue
			w.pos[KeyPath(p...)] = x.Range().Start
			v, good := w.expr(x, p, scope, fmt.Sprintf("%s[%d]", name, i))
			ok = ok && good
			out = append(out, v)
		}
		return out, ok
	case *hclsyntax.ObjectConsExpr:
		out := make(map[string]any, len(e.Items))
		ok := true
		for _, item := range e.Items {
			kpos := item.KeyExpr.Range().Start
			kv, diags := item.KeyExpr.Value(nil)
			if diags.HasErrors() {
				for _, d := range diags {
					if d.Severity == hcl.DiagError {
						w.diag(d, keyDesc(scope, name), ErrInvalidValue)
					}
				}
				ok = false
				continue
			}
			k, err := objectKey(kv)
			if err != nil {
				w.fail(kpos, keyDesc(scope, name), ErrInvalidValue, "%v", err)
				ok = false
				continue
			}
			p := appendPath(path, k)
			sub := name + "." + k
			if !w.claim(p, kindValue, kpos, keyDesc(scope, sub)) {
				ok = false
				continue
			}
			v, good := w.expr(item.ValueExpr, p, scope, sub)
			ok = ok && good
			out[k] = v
		}
		return out, ok
	}
	key := keyDesc(scope, name)
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				w.diag(d, key, ErrInvalidValue)
			}
		}
		return nil, false
	}
	out, err := goValue(v)
	if err != nil {
		w.fail(e.Range().Start, key, ErrInvalidValue, "%v", err)
		return nil, false
	}
	return out, true
}

// text returns the source text of r, or fallback when r is out of range.
func (w *walker) text(r hcl.Range, fallback string) string {
	if r.Start.Byte < 0 || r.End.Byte > len(w.src) || r.Start.Byte >= r.End.Byte {
		return fallback
	}
	return string(w.src[r.Start.Byte:r.End.Byte])
}

// objectKey converts the value of an object key expression to a string.
func objectKey(v cty.Value) (string, error) {
	if !v.IsWhollyKnown() || v.IsNull() {
		return "", errors.New("object key must be a string")
	}
	v, _ = v.Unmark()
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		return "", fmt.Errorf("object key must be a string: %w", err)
	}
	k := s.AsString()
	if strings.Contains(k, Delim) {
		return "", errors.New("object key must not contain U+001F")
	}
	return k, nil
}

// goValue converts a cty value to plain Go values.
func goValue(v cty.Value) (any, error) {
	v, _ = v.Unmark()
	if !v.IsKnown() {
		return nil, errors.New("value is not known")
	}
	if v.IsNull() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		return goNumber(v.AsBigFloat())
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			x, err := goValue(ev)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			ks := k.AsString()
			if strings.Contains(ks, Delim) {
				return nil, errors.New("object key must not contain U+001F")
			}
			x, err := goValue(ev)
			if err != nil {
				return nil, err
			}
			out[ks] = x
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value of type %s", t.FriendlyName())
	}
}

// goNumber returns f as an int64 when it is integral and fits, else as a
// finite float64.
func goNumber(f *big.Float) (any, error) {
	if f.IsInt() {
		if i, acc := f.Int64(); acc == big.Exact {
			return i, nil
		}
	}
	x, _ := f.Float64()
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil, fmt.Errorf("number %s is out of range", f.Text('g', 10))
	}
	return x, nil
}

func appendPath(path []string, part string) []string {
	out := make([]string, len(path), len(path)+1)
	copy(out, path)
	return append(out, part)
}

// blockHeader renders a block header as written: hls, vhost "live".
func blockHeader(typ string, labels []string) string {
	var b strings.Builder
	b.WriteString(typ)
	for _, l := range labels {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(l))
	}
	return b.String()
}

func joinScope(scope, header string) string {
	if scope == "" {
		return header
	}
	return scope + " " + header
}

// keyDesc names key inside scope the way errors show it:
// `key "log_level"`, `vhost "live" key "gop_cache"`.
func keyDesc(scope, key string) string {
	if scope == "" {
		return "key " + strconv.Quote(key)
	}
	return scope + " key " + strconv.Quote(key)
}

// lowerFirst lower-cases the first letter of an hcl message, so that it
// reads like our own errors.
func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 || !unicode.IsUpper(r) {
		return s
	}
	// Keep acronyms such as "HCL" or "UTF-8" as they are.
	if r2, _ := utf8.DecodeRuneInString(s[n:]); unicode.IsUpper(r2) {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
