package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// JSON kinds compared between SRS's answers and Rill's. An SRS integer
// (SrsJsonAny::integer) must be an integer in Rill; an SRS float
// (SrsJsonAny::number) may be written either way, as a float that happens
// to be whole is.
const (
	kindString = "string"
	kindInt    = "int"
	kindFloat  = "float"
	kindBool   = "bool"
	kindObject = "object"
	kindArray  = "array"
	kindNull   = "null"
)

// jsonKinds flattens a JSON document into key paths ("data.self.pid",
// "streams[].kbps.recv_30s") and the kinds seen at each.
func jsonKinds(raw []byte) (map[string]map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	var walk func(path string, v any)
	add := func(path, kind string) {
		if out[path] == nil {
			out[path] = map[string]bool{}
		}
		out[path][kind] = true
	}
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			add(path, kindObject)
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, e)
			}
		case []any:
			add(path, kindArray)
			for _, e := range x {
				walk(path+"[]", e)
			}
		case json.Number:
			if strings.ContainsAny(x.String(), ".eE") {
				add(path, kindFloat)
			} else {
				add(path, kindInt)
			}
		case string:
			add(path, kindString)
		case bool:
			add(path, kindBool)
		case nil:
			add(path, kindNull)
		}
	}
	walk("", v)
	return out, nil
}

// srsShapeProblems lists every key path of the SRS example document srs
// that got lacks or holds with another JSON kind. Extra keys in got are
// Rill's own and fine.
func srsShapeProblems(srs string, got []byte) ([]string, error) {
	want, err := jsonKinds([]byte(srs))
	if err != nil {
		return nil, fmt.Errorf("bad SRS fixture: %v", err)
	}
	have, err := jsonKinds(got)
	if err != nil {
		return nil, fmt.Errorf("answer is not JSON: %v: %.300s", err, got)
	}
	var problems []string
	for path, kinds := range want {
		if path == "" {
			continue
		}
		for k := range kinds {
			h := have[path]
			switch {
			case h == nil:
				problems = append(problems, fmt.Sprintf("missing %s (SRS: %s)", path, k))
			case h[k]:
			case k == kindFloat && h[kindInt] && len(h) == 1:
			default:
				problems = append(problems, fmt.Sprintf("%s is %v, SRS has %s", path, keys(h), k))
			}
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// checkSRSShape fails t for every difference srsShapeProblems finds.
func checkSRSShape(t *testing.T, what, srs string, got []byte) {
	t.Helper()
	problems, err := srsShapeProblems(srs, got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
	if len(problems) > 0 {
		t.Logf("%s answer: %.3000s", what, got)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSRSShapeChecker checks the checker itself on known differences.
func TestSRSShapeChecker(t *testing.T) {
	t.Parallel()
	srs := `{"code":0,"data":{"rsslim":-1,"percent":0.5,"list":[{"a":"x"}],"v":{"c":"h264"}}}`
	cases := []struct {
		got  string
		bad  bool
		name string
	}{
		{`{"code":0,"data":{"rsslim":-1,"percent":0,"list":[{"a":"y","extra":1}],"v":{"c":"h264"},"more":true}}`, false, "same shape, whole float, extras"},
		{`{"code":0,"data":{"rsslim":"18446744073709551615","percent":0.5,"list":[{"a":"x"}],"v":{"c":"h264"}}}`, true, "string for an integer"},
		{`{"code":0,"data":{"rsslim":1.5,"percent":0.5,"list":[{"a":"x"}],"v":{"c":"h264"}}}`, true, "float for an integer"},
		{`{"code":0,"data":{"rsslim":-1,"percent":0.5,"list":[],"v":{"c":"h264"}}}`, true, "empty list"},
		{`{"code":0,"data":{"rsslim":-1,"percent":0.5,"list":[{"a":"x"}],"v":null}}`, true, "null object"},
		{`{"code":0,"data":{"percent":0.5,"list":[{"a":"x"}],"v":{"c":"h264"}}}`, true, "missing key"},
	}
	for _, tc := range cases {
		problems, err := srsShapeProblems(srs, []byte(tc.got))
		if err != nil {
			t.Fatal(err)
		}
		if (len(problems) > 0) != tc.bad {
			t.Errorf("%s: problems %v, want some: %v", tc.name, problems, tc.bad)
		}
	}
}
