package main

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStreamPath(t *testing.T) {
	isVhost := func(v string) bool { return v == "live.example.com" }
	for _, tc := range []struct {
		in   string
		want streamPath
		ok   bool
	}{
		{"/live/stream.flv", streamPath{App: "live", Stream: "stream", Format: fmtFLV}, true},
		{"/live/sub/stream.ts", streamPath{App: "live/sub", Stream: "stream", Format: fmtTS}, true},
		{"/live.example.com/live/s.m3u8", streamPath{Vhost: "live.example.com", App: "live", Stream: "s", Format: fmtM3U8}, true},
		{"/live/s.aac", streamPath{App: "live", Stream: "s", Format: fmtAAC}, true},
		{"/live/s.mp3", streamPath{App: "live", Stream: "s", Format: fmtMP3}, true},
		{"/s.flv", streamPath{}, false},
		{"/live/s-init.mp4", streamPath{App: "live", Stream: "s-init", Format: fmtMP4}, true},
		{"/live/s-3.m4s", streamPath{App: "live", Stream: "s-3", Format: fmtM4S}, true},
		{"/live/s.mkv", streamPath{}, false},
		{"/../s.flv", streamPath{}, false},
		{"/live/...flv", streamPath{}, false},
		{"/live//s.flv", streamPath{}, false},
		{"/live/a\x00.flv", streamPath{}, false},
		{"/live\\x/s.flv", streamPath{}, false},
		{"live/s.flv", streamPath{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseStreamPath(tc.in, isVhost)
			if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
				t.Fatalf("got %+v, %v; want %+v ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestVhostOf(t *testing.T) {
	known := func(v string) bool { return v == "a.com" || v == defaultVhost }
	for _, tc := range []struct{ q, host, want string }{
		{"", "a.com:8080", "a.com"},
		{"", "127.0.0.1:8080", defaultVhost},
		{"vhost=a.com", "127.0.0.1", "a.com"},
		{"domain=a.com", "", "a.com"},
		{"vhost=b.com", "", defaultVhost},
	} {
		q, _ := url.ParseQuery(tc.q)
		if got := vhostOf(q, tc.host, known); got != tc.want {
			t.Errorf("%q %q: got %q want %q", tc.q, tc.host, got, tc.want)
		}
	}
}

func TestTemplates(t *testing.T) {
	for _, bad := range []string{"/abs/[stream].ts", "../[stream].ts", "[app]/../../x-[seq].ts", "[nope]-[seq].ts", "[app"} {
		if checkTemplate(bad) == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	if err := checkTemplate("[vhost]/[app]/[stream]-[2006][01][02]-[seq].ts"); err != nil {
		t.Fatal(err)
	}
	got := renderTemplate("[app]/[stream]-[seq].ts", tplVars{App: "live", Stream: "s", Seq: 7, Time: time.Unix(0, 0)})
	if got != filepath.Join("live", "s-7.ts") {
		t.Fatal(got)
	}
}

func FuzzParseStreamPath(f *testing.F) {
	for _, s := range []string{"/live/s.flv", "/v/live/s.m3u8", "/../x.ts", "/a/%2e%2e/b.aac"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		sp, err := parseStreamPath(p, func(v string) bool { return v == "v" })
		if err != nil {
			return
		}
		for _, seg := range append(strings.Split(sp.App, "/"), sp.Stream) {
			if !validName(seg) {
				t.Fatalf("accepted bad segment %q in %q", seg, p)
			}
		}
		rel := renderTemplate("[vhost]/[app]/[stream]-[seq].ts", tplVars{Vhost: "v", App: sp.App, Stream: sp.Stream})
		if !filepath.IsLocal(rel) {
			t.Fatalf("%q renders outside the root: %q", p, rel)
		}
		if unsafeRequestPath(p) && !strings.Contains(p, "\x00") {
			t.Fatalf("accepted unsafe path %q", p)
		}
	})
}
