package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want streamID
	}{
		{"#!::r=live/livestream,m=publish", streamID{App: "live", Stream: "livestream", Mode: modePublish}},
		{"#!::r=live/livestream,m=request", streamID{App: "live", Stream: "livestream", Mode: modeRequest}},
		{"#!::r=live/livestream", streamID{App: "live", Stream: "livestream", Mode: modeRequest}},
		{"#!::m=publish,r=live/x", streamID{App: "live", Stream: "x", Mode: modePublish}},
		{"#!::h=example.com,r=live/x,m=publish", streamID{Vhost: "example.com", App: "live", Stream: "x", Mode: modePublish}},
		{"#!::h=example.com/live/x,m=publish", streamID{Vhost: "example.com", App: "live", Stream: "x", Mode: modePublish}},
		{"#!::r=live/x,m=publish,secret=abc,token=t 1", streamID{App: "live", Stream: "x", Mode: modePublish, Params: "secret=abc&token=t+1"}},
		{"#!::r=live/x?secret=abc,m=publish,u=me", streamID{App: "live", Stream: "x", Mode: modePublish, Params: "secret=abc&u=me"}},
		{"#!::r=x,m=publish", streamID{App: "live", Stream: "x", Mode: modePublish}},
		{"#!::r=a/b/c", streamID{App: "a/b", Stream: "c"}},
		{"live/livestream", streamID{App: "live", Stream: "livestream"}},
		{"live/livestream?secret=1", streamID{App: "live", Stream: "livestream", Params: "secret=1"}},
		{"/live/livestream", streamID{App: "live", Stream: "livestream"}},
		{"livestream", streamID{App: "live", Stream: "livestream"}},
		{"#!::r=live/x,,m=publish", streamID{App: "live", Stream: "x", Mode: modePublish}},
	} {
		got, err := parseStreamID(tc.in, "live")
		if err != nil {
			t.Errorf("parseStreamID(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseStreamID(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseStreamIDRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"#!::",
		"#!::m=publish",
		"#!::r=live/x,m=play",
		"#!::r=live/x,novalue",
		"live/",
		"live/a b",
		"live/a\nb",
		"#!::r=live/" + strings.Repeat("x", maxStreamIDLen),
	} {
		if got, err := parseStreamID(in, "live"); !errors.Is(err, errStreamID) {
			t.Errorf("parseStreamID(%q) = %+v, %v; want errStreamID", in, got, err)
		}
	}
}

func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{"#!::r=live/livestream,m=publish", "#!::h=v/a/s,m=request,k=v", "live/x?a=b", "", "#!::,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseStreamID(s, "live")
		if err != nil {
			if !errors.Is(err, errStreamID) {
				t.Fatalf("error %v is not errStreamID", err)
			}
			return
		}
		if id.App == "" || id.Stream == "" {
			t.Fatalf("%q: empty app or stream in %+v", s, id)
		}
		if strings.Contains(id.Stream, "/") {
			t.Fatalf("%q: stream %q has a slash", s, id.Stream)
		}
		if strings.ContainsAny(id.App+id.Stream+id.Vhost, "\x00\r\n\t ") {
			t.Fatalf("%q: control characters in %+v", s, id)
		}
	})
}
