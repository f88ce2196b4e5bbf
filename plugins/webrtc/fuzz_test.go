package main

import (
	"net/http"
	"strings"
	"testing"

	pmedia "github.com/pion/webrtc/v3/pkg/media"

	"github.com/rill-media/rill/sdk/media"
)

// FuzzCheckOffer: any offer is refused with a status or passed, never a
// panic (docs/THREATS.md row 18).
func FuzzCheckOffer(f *testing.F) {
	f.Add(minimalOffer, true)
	f.Add(strings.Replace(minimalOffer, "a=ice-ufrag:abcd\r\n", "", 1), false)
	f.Add("v=0\r\nm=video\r\n", true)
	f.Add("", false)
	s := newServer()
	f.Fuzz(func(t *testing.T, offer string, publish bool) {
		if _, err := s.checkOffer(offer, publish); err != nil {
			he, ok := err.(*httpError)
			if !ok || (he.status != http.StatusBadRequest && he.status != http.StatusRequestEntityTooLarge) || he.msg == "" {
				t.Fatalf("refusal %#v", err)
			}
		}
	})
}

// FuzzSignalling: the signalling handler answers every request body on
// every route without panicking (the plugin is not started: after the
// checks it answers 503).
func FuzzSignalling(f *testing.F) {
	f.Add("/rtc/v1/whip/", "app=live&stream=x", minimalOffer)
	f.Add("/rtc/v1/play/", "", `{"api":"x","streamurl":"webrtc://h/live/s","sdp":"v=0"}`)
	f.Add("/rtc/v1/publish/", "eip=1.2.3.4", `{"streamurl":5}`)
	s := newServer()
	f.Fuzz(func(t *testing.T, path, query, body string) {
		req, err := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path, req.URL.RawQuery = "/rtc/v1/"+strings.TrimPrefix(path, "/rtc/v1/"), query
		rec := &recorder{h: http.Header{}}
		s.ServeHTTP(rec, req)
		if rec.status == 0 || rec.status == http.StatusCreated {
			t.Fatalf("status %d for %q", rec.status, path)
		}
	})
}

// FuzzH264 feeds arbitrary access units to the depacketizer and the
// B-slice test: no panic, and every frame out is well-formed AVCC.
func FuzzH264(f *testing.F) {
	f.Add(annexB(testSPS, testPPS, testIDR), uint32(0))
	f.Add([]byte{0, 0, 1, 0x67, 0, 0, 1}, uint32(1<<31))
	f.Add([]byte{0x01, 0xa0}, uint32(3000))
	f.Fuzz(func(t *testing.T, data []byte, ts uint32) {
		var d h264Depacketizer
		for i := range 3 {
			ps, err := d.packets(&pmedia.Sample{Data: data, PacketTimestamp: ts + uint32(i)*3000})
			if err != nil {
				continue
			}
			for _, p := range ps {
				if p.IsConfig() {
					continue
				}
				if err := media.SplitAVCC(p.Payload, func(n []byte) bool { _ = isBSlice(n); return true }); err != nil {
					t.Fatalf("frame out is not AVCC: %v", err)
				}
			}
		}
		for _, n := range splitAnnexB(data) {
			_ = isBSlice(n)
		}
	})
}
