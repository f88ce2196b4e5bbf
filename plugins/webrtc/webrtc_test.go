package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	pmedia "github.com/pion/webrtc/v3/pkg/media"

	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR = []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	testP   = []byte{0x41, 0x9a, 0x02, 0x04}
)

func annexB(nals ...[]byte) []byte {
	var b []byte
	for i, n := range nals {
		if i%2 == 0 {
			b = append(b, 0, 0, 0, 1)
		} else {
			b = append(b, 0, 0, 1)
		}
		b = append(b, n...)
	}
	return b
}

func TestSplitAnnexB(t *testing.T) {
	got := splitAnnexB(annexB(testSPS, testPPS, testIDR))
	if len(got) != 3 || !bytes.Equal(got[0], testSPS) || !bytes.Equal(got[1], testPPS) || !bytes.Equal(got[2], testIDR) {
		t.Fatalf("split: %x", got)
	}
	if got := splitAnnexB(testIDR); len(got) != 1 || !bytes.Equal(got[0], testIDR) {
		t.Fatalf("bare NAL: %x", got)
	}
	for _, b := range [][]byte{nil, {0}, {0, 0}, {0, 0, 1}, {0, 0, 0, 1}, {0, 0, 1, 0, 0, 1}} {
		for _, n := range splitAnnexB(b) {
			if len(n) == 0 {
				t.Fatalf("empty NAL from %x", b)
			}
		}
	}
}

func TestAVCConfigRoundTrip(t *testing.T) {
	rec, err := avcConfig(testSPS, testPPS)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := tsmux.ParamSets(rec, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || !bytes.Equal(sets[0], testSPS) || !bytes.Equal(sets[1], testPPS) {
		t.Fatalf("sets %x", sets)
	}
	if _, err := avcConfig([]byte{0x67}, testPPS); err == nil {
		t.Fatal("a 1-byte SPS was accepted")
	}
}

func TestIsBSlice(t *testing.T) {
	for _, c := range []struct {
		nal  []byte
		want bool
	}{
		{[]byte{0x01, 0xa0}, true},  // first_mb 0, slice_type 1 (B)
		{[]byte{0x01, 0x9c}, true},  // slice_type 6 (B, all slices)
		{[]byte{0x01, 0xc0}, false}, // slice_type 0 (P)
		{[]byte{0x65, 0xa0}, false}, // IDR
		{[]byte{0x01}, false},
		{[]byte{0x01, 0x00}, false}, // header cut short
	} {
		if got := isBSlice(c.nal); got != c.want {
			t.Errorf("%x: %v, want %v", c.nal, got, c.want)
		}
	}
}

func TestDepacketizerStartsAtKeyframe(t *testing.T) {
	var d h264Depacketizer
	var all []media.Packet
	push := func(ts int64, nals ...[]byte) {
		t.Helper()
		ps, err := d.packets(&pmedia.Sample{Data: annexB(nals...), PacketTimestamp: uint32(ts)})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ps...)
	}
	push(4294967000, testP) // before any parameter set: dropped
	push(4294967000+3600, testSPS, testPPS, testIDR)
	push(4294967000+7200, testP) // across the 2^32 wrap
	push(4294967000+10800, testSPS, testPPS, testIDR)
	if len(all) != 4 {
		t.Fatalf("%d packets: %v", len(all), all)
	}
	if !all[0].IsConfig() || all[0].DTS != 40e6 {
		t.Fatalf("first is not the config at 40ms: %v", all[0])
	}
	if !all[1].IsKey() || all[1].IsConfig() || all[1].PTS != 40e6 {
		t.Fatalf("second is not the keyframe: %v", all[1])
	}
	if all[2].IsKey() || all[2].PTS != 80e6 {
		t.Fatalf("third: %v", all[2])
	}
	if !all[3].IsKey() || all[3].PTS != 120e6 {
		t.Fatalf("fourth (same parameter sets: no new config): %v", all[3])
	}
	var nals [][]byte
	if err := media.SplitAVCC(all[1].Payload, func(n []byte) bool { nals = append(nals, n); return true }); err != nil {
		t.Fatal(err)
	}
	if len(nals) != 1 || !bytes.Equal(nals[0], testIDR) {
		t.Fatalf("keyframe payload %x", nals)
	}
}

const minimalOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 AA:BB\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=mid:0\r\na=sendonly\r\na=rtpmap:102 H264/90000\r\n"

func TestCheckOffer(t *testing.T) {
	s := newServer()
	if _, err := s.checkOffer(minimalOffer, true); err != nil {
		t.Fatalf("minimal offer: %v", err)
	}
	audioOnly := strings.Replace(minimalOffer, "m=video", "m=audio", 1)
	for _, c := range []struct {
		name, sdp string
		publish   bool
		status    int
	}{
		{"empty", "", true, 400},
		{"garbage", "hello", true, 400},
		{"no ufrag", strings.Replace(minimalOffer, "a=ice-ufrag:abcd\r\n", "", 1), true, 400},
		{"no pwd", strings.Replace(minimalOffer, "a=ice-pwd:", "a=x:", 1), true, 400},
		{"no fingerprint", strings.Replace(minimalOffer, "a=fingerprint", "a=x", 1), true, 400},
		{"publish without video", audioOnly, true, 400},
		{"many m-lines", minimalOffer + strings.Repeat("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", 10), false, 400},
		{"huge", minimalOffer + strings.Repeat("a=x:y\r\n", 20000), false, 413},
	} {
		_, err := s.checkOffer(c.sdp, c.publish)
		var he *httpError
		if !errors.As(err, &he) || he.status != c.status {
			t.Errorf("%s: %v, want status %d", c.name, err, c.status)
		}
	}
	if _, err := s.checkOffer(audioOnly, false); err != nil {
		t.Fatalf("audio-only play offer: %v", err)
	}
}

func TestParseStreamURL(t *testing.T) {
	ref, err := parseStreamURL("webrtc://example.com:1985/live/cam?token=x")
	if err != nil || ref.Vhost != "example.com" || ref.App != "live" || ref.Stream != "cam" || ref.Param != "?token=x" {
		t.Fatalf("%+v %v", ref, err)
	}
	ref, err = parseStreamURL("webrtc://1.2.3.4/live/cam?vhost=v.example.com")
	if err != nil || ref.Vhost != "v.example.com" {
		t.Fatalf("%+v %v", ref, err)
	}
	for _, bad := range []string{"", "rtmp://h/live/cam", "webrtc://h/cam", "webrtc://h/live/"} {
		if _, err := parseStreamURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func vhostCfg(name, rtc string) sdk.VhostConfig {
	blocks := map[string]json.RawMessage{}
	if rtc != "" {
		blocks["rtc"] = json.RawMessage(rtc)
	}
	return sdk.VhostConfig{Name: name, Enabled: true, Settings: json.RawMessage(`{}`), Vhost: sdk.VhostSettings{Blocks: blocks}}
}

func TestParseConfig(t *testing.T) {
	t.Setenv("CANDIDATE", "")
	c, err := parseConfig(sdk.Config{Settings: json.RawMessage(`{"candidate":"192.0.2.7"}`), Vhosts: []sdk.VhostConfig{
		vhostCfg(sdk.DefaultVhost, `{"enabled":true,"keep_bframe":true,"stun_timeout":5,"nack":false}`),
		vhostCfg("off.example.com", ""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.candidates) != 1 || c.candidates[0] != "192.0.2.7" {
		t.Fatalf("candidates %v", c.candidates)
	}
	_, o := c.vhost(sdk.DefaultVhost)
	if !o.Enabled || !o.KeepBframe || o.NACK || !o.TWCC || o.StunTimeout.Seconds() != 5 {
		t.Fatalf("default vhost %+v", o)
	}
	if _, o := c.vhost("off.example.com"); o.Enabled {
		t.Fatal("a vhost without rtc {} is enabled")
	}
	if name, _ := c.vhost("unknown.example.com"); name != sdk.DefaultVhost {
		t.Fatalf("unknown vhost resolved to %q", name)
	}

	t.Setenv("CANDIDATE", "198.51.100.1")
	c, err = parseConfig(sdk.Config{Settings: json.RawMessage(`{"candidate":"$CANDIDATE"}`)})
	if err != nil || len(c.candidates) != 1 || c.candidates[0] != "198.51.100.1" {
		t.Fatalf("$CANDIDATE: %v %v", c, err)
	}

	_, err = parseConfig(sdk.Config{Settings: json.RawMessage(`{"candidate":"not-an-ip","max_m_lines":0}`), Vhosts: []sdk.VhostConfig{
		vhostCfg(sdk.DefaultVhost, `{"enabled":true,"rtc_to_rtmp":false,"stun_timeout":"1ms","bogus":1}`),
	}})
	for _, want := range []string{"candidate", "max_m_lines", "rtc_to_rtmp", "stun_timeout", "bogus"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestServeHTTPRefusesBeforeStart(t *testing.T) {
	s := newServer()
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, "/rtc/v1/whip/?app=live&stream=x", strings.NewReader(minimalOffer))
	s.ServeHTTP(rec, req)
	if rec.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", rec.status, rec.body.String())
	}
	rec = &recorder{h: http.Header{}}
	req, _ = http.NewRequest(http.MethodGet, "/rtc/v1/nope/", nil)
	s.ServeHTTP(rec, req)
	if rec.status != http.StatusNotFound {
		t.Fatalf("unknown route: %d", rec.status)
	}
}

type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(c int) {
	if r.status == 0 {
		r.status = c
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
