package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// gbVhost is the vhost body startGB writes, which reloadExtra replaces.
const gbVhost = "vhost \"__defaultVhost__\" {\n  gb28181 { enabled = true }\n}\n"

// TestGB28181HLSAndWebRTC: a camera's stream plays over HLS (ffprobe reads
// the m3u8: H.264 320x240) and over WebRTC (a pion WHEP peer gets SPS, PPS
// and an IDR first).
func TestGB28181HLSAndWebRTC(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vh := fmt.Sprintf("  hls {\n    enabled = true\n    fragment = \"1s\"\n    window = \"4s\"\n    path = %q\n  }\n  rtc {\n    enabled = true\n  }\n", dir)
	d, addrs, _ := startGBWith(t, "udp", vh, true)
	g := newGBDevice(t, addrs.sipUDP, "secret", gbAUs(t))
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)

	url := "http://" + hlsAddr(t, d) + "/live/" + stream + ".m3u8"
	waitPlaylist(t, url, 30*time.Second, "gb stream segments", func(p hlsPlaylist) error {
		if len(p.URIs) < 2 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	ps := httpProbe(t, url, 3)
	httpWantCodecs(t, "m3u8", ps, "h264")
	if ps[0].Width != 320 || ps[0].Height != 240 {
		t.Fatalf("hls probe: %+v, want 320x240", ps)
	}

	p := whepPlay(t, d.API, "live", stream)
	checkKeyframeStart(t, p)
	if p.rtp.Load() == 0 {
		t.Fatal("no rtp over webrtc")
	}
}

// TestGB28181KickReloadUnregister: kicking a GB stream's client id ends it
// and sends the channel BYE; a reload (new stream name template) keeps the
// registered device and names the next device's stream by the new
// template; REGISTER with Expires: 0 drops the device and ends its stream.
func TestGB28181KickReloadUnregister(t *testing.T) {
	t.Parallel()
	d, addrs, rtmp := startGB(t, "udp")
	aus := gbAUs(t)
	g := newGBDevice(t, addrs.sipUDP, "secret", aus)
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)

	// Kick.
	cid := publisherCID(t, d, "live", stream)
	if cid == "" {
		t.Fatal("no publisher client id")
	}
	if st := httpDelete(t, d.API+"/api/v1/clients/"+cid); st != http.StatusOK {
		t.Fatalf("kick: status %d", st)
	}
	waitUnpublished(t, d, "live", stream)
	Eventually(t, 10*time.Second, "kicked channel sent BYE", func() error {
		if g.byes.Load() == 0 {
			return fmt.Errorf("no bye")
		}
		return nil
	})
	gbWaitLog(t, d, `reason="kicked by the api"`)
	var r gbDevicesReply
	if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil || len(r.Devices) != 1 {
		t.Fatalf("the device stays registered after its stream is kicked: %+v %v", r, err)
	}

	// Reload with another stream name template.
	reloadExtra(t, d, gbVhost, "vhost \"__defaultVhost__\" {\n  gb28181 {\n    enabled = true\n    stream = \"cam_[channelid]\"\n  }\n}\n")
	g2 := newGBDevice(t, addrs.sipUDP, "secret", aus)
	g2.id = "34020000001320000009"
	if code := g2.register(); code != 200 {
		t.Fatalf("register after reload: %d", code)
	}
	g2.startKeepalive()
	waitPublished(t, d, "live", "cam_"+gbChanID)
	p := ffprobe(t, "rtmp://"+rtmp+"/live/cam_"+gbChanID, 2)
	if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" {
		t.Fatalf("rtmp probe after reload: %+v", p.Streams)
	}
	if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil || len(r.Devices) != 2 {
		t.Fatalf("devices after reload: %+v %v", r, err)
	}

	// Unregister: the device and its stream are gone, the other stays.
	if code := g2.unregister(); code != 200 {
		t.Fatalf("unregister: %d", code)
	}
	waitUnpublished(t, d, "live", "cam_"+gbChanID)
	Eventually(t, 10*time.Second, "unregistered device gone", func() error {
		var r gbDevicesReply
		if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil {
			return err
		}
		if len(r.Devices) != 1 || r.Devices[0].ID != gbDeviceID {
			return fmt.Errorf("devices %+v", r)
		}
		return nil
	})
	gbWaitLog(t, d, `reason=unregistered`)
}

// TestGB28181DigestReplay: the challenge offers qop="auth"; a REGISTER
// replayed with the same nonce and nonce count is refused (401, stale)
// with a log line, the next nonce count on the same nonce is accepted,
// and a wrong password is still 403.
func TestGB28181DigestReplay(t *testing.T) {
	t.Parallel()
	d, addrs, _ := startGB(t, "udp", "auto_invite = false")
	g := newGBDevice(t, addrs.sipUDP, "secret", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := g.request(sip.REGISTER, nil)
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	res, err := g.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first register: %v %v", res, err)
	}
	wwwAuth := res.GetHeader("WWW-Authenticate").Value()
	if !strings.Contains(wwwAuth, `qop="auth"`) {
		t.Fatalf("challenge without qop=auth: %s", wwwAuth)
	}
	res2, err := g.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: g.id, Password: "secret"})
	if err != nil || res2.StatusCode != 200 {
		t.Fatalf("register with auth: %v %v", res2, err)
	}
	send := func(auth string) int {
		t.Helper()
		r := req.Clone()
		r.RemoveHeader("Via")
		r.CSeq().SeqNo += 10
		r.RemoveHeader("Authorization")
		r.AppendHeader(sip.NewHeader("Authorization", auth))
		res, err := g.cli.Do(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	first := req.GetHeader("Authorization").Value()
	if !strings.Contains(first, "nc=00000001") {
		t.Fatalf("sipgo did not answer with qop: %s", first)
	}
	if code := send(first); code != 401 {
		t.Fatalf("replayed register: %d, want 401", code)
	}
	gbWaitLog(t, d, "register refused: nonce replayed")
	chal, err := digest.ParseChallenge(wwwAuth)
	if err != nil {
		t.Fatal(err)
	}
	cred := func(nc int, pw string) string {
		c, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: g.id, Password: pw, Count: nc})
		if err != nil {
			t.Fatal(err)
		}
		return c.String()
	}
	next := cred(2, "secret")
	if code := send(next); code != 200 {
		t.Fatalf("nonce count 2 on the same nonce: %d, want 200", code)
	}
	if code := send(next); code != 401 {
		t.Fatalf("nonce count 2 again: %d, want 401", code)
	}
	if code := send(cred(3, "wrong")); code != 403 {
		t.Fatalf("wrong password: %d, want 403", code)
	}
}

// gbWaitLog waits for a line of the plugin's log: plugin logs reach the
// core's log asynchronously.
func gbWaitLog(t *testing.T, d *Daemon, want string) {
	t.Helper()
	Eventually(t, 10*time.Second, "log line "+want, func() error {
		if !strings.Contains(d.Log(), want) {
			return fmt.Errorf("not logged")
		}
		return nil
	})
}
