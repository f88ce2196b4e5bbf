package main

import (
	"testing"

	"github.com/rill-media/rill/sdk"
)

func TestResolveStream(t *testing.T) {
	for _, tc := range []struct {
		name, tcURL, app, stream string
		want                     sdk.StreamRef
	}{
		{"plain", "rtmp://127.0.0.1:1935/live", "live", "livestream",
			sdk.StreamRef{Vhost: "127.0.0.1", App: "live", Stream: "livestream"}},
		{"host vhost", "rtmp://live.example.com/live", "live", "s1",
			sdk.StreamRef{Vhost: "live.example.com", App: "live", Stream: "s1"}},
		{"stream query vhost", "rtmp://10.0.0.1/live", "live", "s1?vhost=v1.com&token=abc",
			sdk.StreamRef{Vhost: "v1.com", App: "live", Stream: "s1", Param: "?vhost=v1.com&token=abc"}},
		{"app query vhost", "rtmp://10.0.0.1/live?vhost=v2.com", "live?vhost=v2.com", "s1",
			sdk.StreamRef{Vhost: "v2.com", App: "live", Stream: "s1", Param: "?vhost=v2.com"}},
		{"domain", "rtmp://10.0.0.1/live", "live", "s1?domain=v3.com",
			sdk.StreamRef{Vhost: "v3.com", App: "live", Stream: "s1", Param: "?domain=v3.com"}},
		{"legacy dots", "rtmp://10.0.0.1/live...vhost...v4.com", "live...vhost...v4.com", "s1",
			sdk.StreamRef{Vhost: "v4.com", App: "live", Stream: "s1"}},
		{"token only", "rtmp://h/live", "live", "s1?token=xyz",
			sdk.StreamRef{Vhost: "h", App: "live", Stream: "s1", Param: "?token=xyz"}},
		{"app from tcUrl", "rtmp://h:1935/app2", "", "s",
			sdk.StreamRef{Vhost: "h", App: "app2", Stream: "s"}},
		{"definst", "rtmp://h/live/_definst_", "live/_definst_", "s",
			sdk.StreamRef{Vhost: "h", App: "live", Stream: "s"}},
		{"no host", "", "live", "s",
			sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolveStream(tc.tcURL, tc.app, tc.stream)
			tc.want.TcURL = tc.tcURL
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
