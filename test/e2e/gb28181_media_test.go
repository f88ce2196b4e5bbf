package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gbRange finds a base port with n free UDP ports after it on loopback
// (free when probed; the plugin skips a port taken meanwhile).
func gbRange(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free udp port range")
	return 0
}

// TestGB28181PortRange: with rtp_port_min/max each UDP stream gets a port
// of its own from the range, packets of another SSRC on it are dropped,
// and the port is given back when the stream ends.
func TestGB28181PortRange(t *testing.T) {
	base := gbRange(t, 4)
	d, addrs, rtmp := startGB(t, "udp", fmt.Sprintf("rtp_port_min = %d", base), fmt.Sprintf("rtp_port_max = %d", base+3))
	g := newGBDevice(t, addrs.sipUDP, "secret", gbAUs(t))
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	var port int
	select {
	case p := <-g.mediaPorts:
		port, _ = strconv.Atoi(p)
	case <-time.After(15 * time.Second):
		t.Fatal("no udp invite")
	}
	_, shared, _ := net.SplitHostPort(addrs.mediaUDP)
	if port < base || port > base+3 || strconv.Itoa(port) == shared {
		t.Fatalf("invite offered port %d, want one of %d-%d (shared port %s)", port, base, base+3, shared)
	}
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)
	p := ffprobe(t, "rtmp://"+rtmp+"/live/"+stream, 2)
	if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 {
		t.Fatalf("rtmp probe: %+v", p.Streams)
	}

	// RTP of another SSRC on the stream's port is dropped with a log line.
	mc, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 40)
	pkt[0], pkt[1] = 0x80, 96
	binary.BigEndian.PutUint32(pkt[8:], 4242)
	for range 3 {
		_, _ = mc.Write(pkt)
	}
	mc.Close()
	Eventually(t, 10*time.Second, "foreign ssrc logged", func() error {
		if strings.Contains(d.Log(), "rtp of another ssrc dropped") && strings.Contains(d.Log(), "got_ssrc=4242") {
			return nil
		}
		return fmt.Errorf("no log line")
	})
	waitPublished(t, d, "live", stream) // untouched

	// The device unregisters: the stream ends and its port is free again.
	if code := g.unregister(); code != 200 {
		t.Fatalf("unregister: %d", code)
	}
	waitUnpublished(t, d, "live", stream)
	Eventually(t, 10*time.Second, "rtp port given back", func() error {
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return err
		}
		pc.Close()
		return nil
	})
}

// TestGB28181TCPActive: with transport tcp_active the INVITE asks the
// device to listen (a=setup:active), and the server connects to the port
// of the device's answer and receives the stream there.
func TestGB28181TCPActive(t *testing.T) {
	d, addrs, rtmp := startGB(t, "tcp_active")
	g := newGBDevice(t, addrs.sipUDP, "secret", gbAUs(t))
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)
	if g.activeInvites.Load() == 0 {
		t.Fatal("the invite did not ask for tcp active")
	}
	gbWaitLog(t, d, "tcp active media connected")
	httpWantCodecs(t, "flv", httpProbe(t, "http://"+hlsAddr(t, d)+"/live/"+stream+".flv", 2), "h264")
	p := ffprobe(t, "rtmp://"+rtmp+"/live/"+stream, 2)
	if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" || p.Streams[0].Height != 240 {
		t.Fatalf("rtmp probe: %+v", p.Streams)
	}
}

type gbPublishReply struct {
	Code     int    `json:"code"`
	Desc     string `json:"desc"`
	Port     int    `json:"port"`
	IsTCP    bool   `json:"is_tcp"`
	ClientID string `json:"client_id"`
}

func gbPublish(t *testing.T, d *Daemon, body string) gbPublishReply {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(d.API+"/gb/v1/publish/", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gbPublishReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("publish reply: %v", err)
	}
	return r
}

// TestGB28181PublishAPI: an external SIP server asks for a stream with SRS
// 6's POST /gb/v1/publish/ (id, ssrc), gets the media port, and the PS
// sent there with that SSRC plays as live/<id>; over TCP (SRS's answer)
// and over UDP; a taken id or SSRC and a bad body get SRS's error codes.
func TestGB28181PublishAPI(t *testing.T) {
	d, addrs, rtmp := startGB(t, "udp")
	aus := gbAUs(t)
	sim := newGBDevice(t, addrs.sipUDP, "secret", aus) // only its media sender is used
	sim.streaming.Store(true)

	r := gbPublish(t, d, `{"id":"cam1","ssrc":"0100000123"}`)
	_, tcpPort, _ := net.SplitHostPort(addrs.mediaTCP)
	if r.Code != 0 || !r.IsTCP || strconv.Itoa(r.Port) != tcpPort {
		t.Fatalf("publish reply %+v, want code 0, is_tcp and port %s", r, tcpPort)
	}
	nc, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)))
	if err != nil {
		t.Fatal(err)
	}
	sim.wg.Add(1)
	go func() { defer sim.wg.Done(); sim.stream(nc, true, 100000123) }()
	waitPublished(t, d, "live", "cam1")
	Eventually(t, 10*time.Second, "publish session listed", func() error {
		var l struct {
			Sessions []struct {
				ID, ClientID, Stream, Status string
				SSRC                         uint32
			} `json:"publish_sessions"`
		}
		if err := d.GetJSON("/api/v1/gb28181/devices", &l); err != nil {
			return err
		}
		if len(l.Sessions) == 1 && l.Sessions[0].ID == "cam1" && l.Sessions[0].SSRC == 100000123 && l.Sessions[0].Status == "streaming" && l.Sessions[0].Stream == "live/cam1" {
			return nil
		}
		return fmt.Errorf("publish sessions %+v", l.Sessions)
	})
	p := ffprobe(t, "rtmp://"+rtmp+"/live/cam1", 2)
	if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 {
		t.Fatalf("rtmp probe: %+v", p.Streams)
	}

	if r := gbPublish(t, d, `{"id":"cam1","ssrc":"77"}`); r.Code != 1028 {
		t.Fatalf("same id again: %+v, want code 1028", r)
	}
	if r := gbPublish(t, d, `{"id":"cam9","ssrc":"100000123"}`); r.Code != 1028 {
		t.Fatalf("same ssrc again: %+v, want code 1028", r)
	}
	for _, bad := range []string{`{"id":"cam2"}`, `{"ssrc":"5"}`, `{"id":"../x","ssrc":"5"}`, `not json`, `{"id":"cam2","ssrc":"99999999999"}`} {
		if r := gbPublish(t, d, bad); r.Code != 3008 || r.Desc == "" {
			t.Fatalf("bad body %s: %+v, want code 3008 with a desc", bad, r)
		}
	}

	// UDP: the shared UDP port (no range configured here).
	u := gbPublish(t, d, `{"id":"cam2","ssrc":"4000","transport":"udp"}`)
	_, udpPort, _ := net.SplitHostPort(addrs.mediaUDP)
	if u.Code != 0 || u.IsTCP || strconv.Itoa(u.Port) != udpPort {
		t.Fatalf("udp publish reply %+v, want port %s", u, udpPort)
	}
	uc, err := net.Dial("udp", addrs.mediaUDP)
	if err != nil {
		t.Fatal(err)
	}
	sim.wg.Add(1)
	go func() { defer sim.wg.Done(); sim.stream(uc, false, 4000) }()
	waitPublished(t, d, "live", "cam2")
	httpWantCodecs(t, "flv", httpProbe(t, "http://"+hlsAddr(t, d)+"/live/cam2.flv", 2), "h264")

	// The TCP stream ends when its connection closes.
	nc.Close()
	waitUnpublished(t, d, "live", "cam1")
	waitPublished(t, d, "live", "cam2")
}
