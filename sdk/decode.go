package sdk

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// decodeProblems decodes raw (a JSON object) into v strictly and returns
// every problem found, each with the path of its key.
//
// encoding/json stops at the first value an UnmarshalJSON refuses, names no
// key for it, and names an unknown key without its parents. So when the
// whole decode fails, each key is decoded again alone, placed at its path
// in an otherwise empty document, into a fresh value of v's type: a key
// that fails alone is descended into while its Go type has keys of its own
// (struct fields, map entries, slice elements), and the deepest key that
// still fails is the problem's key.
func decodeProblems(vhost string, raw json.RawMessage, v any) []*ConfigError {
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	err := decodeJSON(raw, v)
	if err == nil {
		return nil
	}
	var found []*ConfigError
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		l := &locator{root: t.Elem()}
		l.find(t.Elem(), nil, raw)
		found = l.found
	}
	if len(found) == 0 {
		found = []*ConfigError{problemAt(nil, err)}
	}
	for _, ce := range found {
		ce.Vhost = vhost
	}
	return found
}

// joinProblems returns nil, the only problem, or an errors.Join of them.
func joinProblems(ps []*ConfigError) error {
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return ps[0]
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// step is one element of a key path: an object key or a list index.
type step struct {
	key   string
	index bool
}

func keyOf(path []step) []string {
	out := make([]string, len(path))
	for i, s := range path {
		out[i] = s.key
	}
	return out
}

// locator finds the keys of the problems of a document decoded into root.
type locator struct {
	root  reflect.Type
	found []*ConfigError
}

// probe decodes val, placed at path in an otherwise empty document, into a
// fresh root value.
func (l *locator) probe(path []step, val json.RawMessage) error {
	doc := []byte(val)
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].index {
			doc = slices.Concat([]byte("["), doc, []byte("]"))
			continue
		}
		k, _ := json.Marshal(path[i].key)
		doc = slices.Concat([]byte("{"), k, []byte(":"), doc, []byte("}"))
	}
	return decodeJSON(doc, reflect.New(l.root).Interface())
}

// find records the problems of val at path, whose Go type is typ (nil when
// no field takes that key); it reports whether val has any.
func (l *locator) find(typ reflect.Type, path []step, val json.RawMessage) bool {
	err := l.probe(path, val)
	if err == nil {
		return false
	}
	n := len(l.found)
	l.descend(typ, path, val)
	if len(l.found) == n {
		l.found = append(l.found, problemAt(path, err))
	}
	return true
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// descend looks for the problems of val's keys or elements.
func (l *locator) descend(typ reflect.Type, path []step, val json.RawMessage) {
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ == nil {
		return
	}
	if p := reflect.PointerTo(typ); p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) {
		return // the type reads the value as a whole
	}
	trimmed := bytes.TrimSpace(val)
	if len(trimmed) == 0 {
		return
	}
	switch {
	case trimmed[0] == '{' && (typ.Kind() == reflect.Struct || typ.Kind() == reflect.Map && typ.Key().Kind() == reflect.String):
		var obj map[string]json.RawMessage
		if json.Unmarshal(trimmed, &obj) != nil {
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var ft reflect.Type
			if typ.Kind() == reflect.Map {
				ft = typ.Elem()
			} else {
				ft = fieldType(typ, k)
			}
			l.find(ft, append(slices.Clip(path), step{key: k}), obj[k])
		}
	case trimmed[0] == '[' && (typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array):
		var list []json.RawMessage
		if json.Unmarshal(trimmed, &list) != nil {
			return
		}
		for i, e := range list {
			l.find(typ.Elem(), append(slices.Clip(path), step{key: strconv.Itoa(i), index: true}), e)
		}
	}
}

// fieldType returns the type of the field of struct t that encoding/json
// fills from key (promoted fields of embedded structs included, an exact
// name before a case-insensitive one), or nil.
func fieldType(t reflect.Type, key string) reflect.Type {
	var folded reflect.Type
	var walk func(t reflect.Type) reflect.Type
	walk = func(t reflect.Type) reflect.Type {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					if r := walk(ft); r != nil {
						return r
					}
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if name == key {
				return f.Type
			}
			if folded == nil && strings.EqualFold(name, key) {
				folded = f.Type
			}
		}
		return nil
	}
	if r := walk(t); r != nil {
		return r
	}
	return folded
}

// problemAt is the problem err reported for the value at path (the root
// when path is empty: then the key comes from err, as json names it).
func problemAt(path []step, err error) *ConfigError {
	key := keyOf(path)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if len(key) == 0 && te.Field != "" {
			key = strings.Split(te.Field, ".")
		}
		return &ConfigError{Key: key, Msg: fmt.Sprintf("expected %s, got %s", te.Type, te.Value)}
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return &ConfigError{Key: append(key, ce.Key...), Msg: ce.Msg}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if len(key) == 0 {
			key = []string{strings.Trim(name, `"`)}
		}
		return &ConfigError{Key: key, Msg: "unknown key"}
	}
	return &ConfigError{Key: key, Msg: err.Error()}
}
