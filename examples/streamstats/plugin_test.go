package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/sdktest"
	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

// The plugin runs over real gRPC against sdktest's in-memory host with
// real shared-memory rings: what it counts is what was written.
func TestCountsAPublishedStream(t *testing.T) {
	p := New()
	h := sdktest.New(t, p)
	if problems := h.Configure(t, sdktest.Config{Settings: `{"window":"2s"}`, Vhosts: []sdktest.Vhost{
		{Name: "__defaultVhost__", Settings: `{"enabled":true}`},
		{Name: "quiet.example.com", Disabled: true},
	}}); len(problems) != 0 {
		t.Fatalf("problems: %+v", problems)
	}
	h.Start(t)
	pub := h.Publish(t, sdk.StreamRef{Vhost: sdk.DefaultVhost, App: "live", Stream: "cam"})
	other := h.Publish(t, sdk.StreamRef{Vhost: "quiet.example.com", App: "live", Stream: "cam"})
	const frames = 60
	for i := 0; i < frames; i++ {
		m := shm.Meta{Kind: uint8(media.KindVideo), Codec: uint8(media.CodecH264), DTS: int64(i) * int64(40*time.Millisecond)}
		if i%30 == 0 {
			m.Flags = shm.FlagSync | uint32(media.FlagKey)<<8
		}
		payload := []byte{0, 0, 0, 2, 0x65, byte(i)}
		for _, w := range []*shm.Writer{pub.Writer, other.Writer} {
			if err := w.Write(m, payload); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	var s Snapshot
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s = get[struct{ Stream Snapshot }](t, h, "/api/v1/streamstats/live/cam").Stream
		if s.Packets >= frames {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Packets != frames || s.Bytes != frames*6 || s.Keys != 2 || !s.Live {
		t.Fatalf("counted %+v, want %d packets, %d bytes, 2 key frames", s, frames, frames*6)
	}
	if v := s.Kinds["video"]; v.Codec != media.CodecH264.String() || v.Packets != frames || v.LastDTS != (frames-1)*40 {
		t.Fatalf("video: %+v", v)
	}
	if s.FPS <= 0 {
		t.Fatalf("fps %v", s.FPS)
	}
	// The vhost that does not enable the plugin is not read.
	all := get[struct{ Streams []Snapshot }](t, h, "/api/v1/streamstats/").Streams
	if len(all) != 1 || all[0].Vhost != sdk.DefaultVhost {
		t.Fatalf("streams %+v, want only the default vhost's", all)
	}
	// The stream ends with its publisher; the counts stay, not live.
	pub.End()
	for time.Now().Before(deadline) {
		if s = get[struct{ Stream Snapshot }](t, h, "/api/v1/streamstats/live/cam").Stream; !s.Live {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.Live || s.Ended == nil || s.Packets != frames {
		t.Fatalf("after the end: %+v", s)
	}
	resp, err := h.Plugin.ServeHTTP(context.Background(), wire.HTTPRequest{Method: "GET", Path: "/api/v1/streamstats/live/nope"})
	if err != nil || resp.Status != http.StatusNotFound || !strings.Contains(string(resp.Body), "no such stream") {
		t.Fatalf("unknown stream: %v %d %s", err, resp.Status, resp.Body)
	}
}

// Bad settings come back as problems at their own key, so the operator
// sees the key's file:line:col; a dry run changes nothing.
func TestRefusesBadSettings(t *testing.T) {
	h := sdktest.New(t, New())
	for _, tc := range []struct{ settings, vhost, key string }{
		{`{"window":"1ms"}`, `{}`, "window"},
		{`{"window":"banana"}`, `{}`, "window"},
		{`{"windw":"2s"}`, `{}`, "windw"},
		{`{}`, `{"enabled":true,"colour":1}`, "colour"},
	} {
		problems := h.Configure(t, sdktest.Config{Settings: tc.settings, Vhosts: []sdktest.Vhost{{Name: sdk.DefaultVhost, Settings: tc.vhost}}})
		if len(problems) != 1 || len(problems[0].KeyPath) == 0 || problems[0].KeyPath[0] != tc.key {
			t.Errorf("%s %s: problems %+v, want one at %q", tc.settings, tc.vhost, problems, tc.key)
		}
	}
}

func get[T any](t *testing.T, h *sdktest.Harness, path string) T {
	t.Helper()
	var v T
	resp, err := h.Plugin.ServeHTTP(context.Background(), wire.HTTPRequest{Method: "GET", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, resp.Body)
	}
	return v
}
