package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// A GB28181 camera simulator: a sipgo user agent that registers with
// digest auth, keeps alive, answers the Catalog query and an INVITE, and
// streams PS over RTP (UDP, or RFC 4571 TCP) built from an ffmpeg-encoded
// H.264 file.

const (
	gbServerID = "34020000002000000001"
	gbDeviceID = "34020000001320000001"
	gbChanID   = "34020000001310000001"
)

type gbAddrs struct{ sipUDP, mediaUDP, mediaTCP string }

func startGB(t *testing.T, transport string, extra ...string) (*Daemon, gbAddrs, string) {
	t.Helper()
	return startGBWith(t, transport, "", false, extra...)
}

// startGBWith adds vhostBody to the default vhost (after its gb28181
// block) and, with rtc, the webrtc plugin.
func startGBWith(t *testing.T, transport, vhostBody string, rtc bool, extra ...string) (*Daemon, gbAddrs, string) {
	t.Helper()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	block := fmt.Sprintf(`listen = ["127.0.0.1:0"]
  listen_sip_udp = ["127.0.0.1:0"]
  listen_media = ["127.0.0.1:0"]
  listen_media_udp = ["127.0.0.1:0"]
  password = "secret"
  keepalive_timeout = "3s"
  media_timeout = "2s"
  transport = %q
  %s`, transport, strings.Join(extra, "\n  "))
	cfg := Config{
		Plugins: []string{"gb28181", "rtmp", "httpstream"},
		Blocks: map[string]string{
			"gb28181":    block,
			"rtmp":       `listen = ["127.0.0.1:0"]`,
			"httpstream": `listen = ["127.0.0.1:0"]`,
		},
		Extra: "vhost \"__defaultVhost__\" {\n  gb28181 { enabled = true }\n" + vhostBody + "}\n",
	}
	if rtc {
		cfg.Plugins = append(cfg.Plugins, "webrtc")
		cfg.Blocks["webrtc"] = "listen = [\"udp://127.0.0.1:0\"]\ncandidate = \"127.0.0.1\""
	}
	d := StartDaemon(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "gb28181", "rtmp", "httpstream")
	var a gbAddrs
	for _, l := range ps["gb28181"].Listeners {
		switch l.Name {
		case "sip_udp":
			a.sipUDP = l.Addr
		case "media":
			a.mediaTCP = l.Addr
		case "media_udp":
			a.mediaUDP = l.Addr
		}
	}
	var rtmp string
	for _, l := range ps["rtmp"].Listeners {
		rtmp = l.Addr
	}
	if a.sipUDP == "" || a.mediaUDP == "" || a.mediaTCP == "" || rtmp == "" {
		t.Fatalf("listeners: %+v", ps)
	}
	return d, a, rtmp
}

// gbAUs encodes a test pattern once and splits it into access units.
func gbAUs(t *testing.T) [][]byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "src.h264")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-frames:v", "75",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0", "-x264-params", "aud=1", "-pix_fmt", "yuv420p", "-f", "h264", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	start := -1
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 1 && b[i+4]&0x1f == 9 {
			if start >= 0 {
				aus = append(aus, b[start:i])
			}
			start = i
		}
	}
	aus = append(aus, b[start:])
	return aus
}

func gbIsKey(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

func gbPutTS(b []byte, marker byte, ts uint64) {
	b[0] = marker<<4 | byte(ts>>29)&0x0e | 1
	binary.BigEndian.PutUint16(b[1:], uint16(ts>>14)|1)
	binary.BigEndian.PutUint16(b[3:], uint16(ts<<1)|1)
}

// gbPack is one PS pack (ISO/IEC 13818-1 §2.5): pack header with
// stuffing, a PSM before keyframes, PES packets of at most 60000 bytes.
func gbPack(au []byte, ts uint64, key bool) []byte {
	var w bytes.Buffer
	h := []byte{0, 0, 1, 0xba, 0x44 | byte(ts>>27)&0x38 | byte(ts>>28)&0x03, byte(ts >> 20),
		byte(ts>>12)&0xf8 | 0x04 | byte(ts>>13)&0x03, byte(ts >> 5), byte(ts<<3) | 0x04, 0x01, 0x01, 0x89, 0xc3, 0xf8 | 2, 0xff, 0xff}
	w.Write(h)
	if key {
		psm := []byte{0, 0, 1, 0xbc, 0, 0, 0xe0, 0xff, 0, 0, 0, 4, 0x1b, 0xe0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(psm[4:], uint16(len(psm)-6))
		w.Write(psm)
	}
	first := true
	for len(au) > 0 {
		n := min(len(au), 60000)
		hdr := []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0}
		if first {
			hdr[7], hdr[8] = 0xc0, 10
			t := make([]byte, 10)
			gbPutTS(t, 3, ts)
			gbPutTS(t[5:], 1, ts)
			hdr = append(hdr, t...)
		}
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(hdr)-6+n))
		w.Write(hdr)
		w.Write(au[:n])
		au, first = au[n:], false
	}
	return w.Bytes()
}

type gbDevice struct {
	t        *testing.T
	id       string
	password string
	server   sip.Uri
	ua       *sipgo.UserAgent
	cli      *sipgo.Client
	pc       net.PacketConn
	aus      [][]byte

	keepalive atomic.Bool
	catalogs  atomic.Int32
	stop      chan struct{}
	wg        sync.WaitGroup
	streaming atomic.Bool
	invites   atomic.Int32 // INVITEs answered
	byes      atomic.Int32 // BYEs received
	// activeInvites counts INVITEs asking for TCP active; mediaPorts gets
	// the UDP port of each UDP INVITE.
	activeInvites atomic.Int32
	mediaPorts    chan string
	junk          bool // send random bytes as the PS payload
	tcp           bool // SIP over TCP

	audio [][]byte // G.711 A-law, one 40 ms frame per pack (gb28181_audio_test.go)
}

func newGBDevice(t *testing.T, sipAddr string, password string, aus [][]byte) *gbDevice {
	t.Helper()
	host, port, _ := net.SplitHostPort(sipAddr)
	p, _ := strconv.Atoi(port)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("gb-sim"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gbDevice{t: t, id: gbDeviceID, password: password, server: sip.Uri{User: gbServerID, Host: host, Port: p},
		ua: ua, cli: cli, pc: pc, aus: aus, stop: make(chan struct{}), mediaPorts: make(chan string, 64)}
	srv.OnMessage(g.onMessage)
	srv.OnInvite(g.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		g.byes.Add(1)
		g.streaming.Store(false)
	})
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		close(g.stop)
		g.wg.Wait()
		ua.Close()
		pc.Close()
	})
	return g
}

func (g *gbDevice) port() int { return g.pc.LocalAddr().(*net.UDPAddr).Port }

func (g *gbDevice) request(method sip.RequestMethod, body []byte) *sip.Request {
	to := g.server
	if g.tcp {
		to.UriParams = sip.NewParams()
		to.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(method, to)
	from := sip.Uri{User: g.id, Host: "127.0.0.1", Port: g.port()}
	params := sip.NewParams()
	params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(&sip.FromHeader{Address: from, Params: params})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: g.id, Host: g.server.Host}})
	req.AppendHeader(&sip.ContactHeader{Address: from})
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
		req.SetBody(body)
	}
	return req
}

// register returns the final status of a REGISTER with digest auth.
func (g *gbDevice) register() int { return g.registerExpires(3600) }

// unregister sends REGISTER with Expires: 0.
func (g *gbDevice) unregister() int { return g.registerExpires(0) }

func (g *gbDevice) registerExpires(expires int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := g.request(sip.REGISTER, nil)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res, err := g.cli.Do(ctx, req)
	if err != nil {
		g.t.Fatalf("register: %v", err)
	}
	if res.StatusCode == 401 {
		res, err = g.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: g.id, Password: g.password})
		if err != nil {
			g.t.Fatalf("register with auth: %v", err)
		}
	}
	return res.StatusCode
}

func (g *gbDevice) message(body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := g.cli.Do(ctx, g.request(sip.MESSAGE, []byte(body)))
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

func (g *gbDevice) startKeepalive() {
	g.keepalive.Store(true)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for sn := 1; ; sn++ {
			select {
			case <-g.stop:
				return
			case <-time.After(time.Second):
			}
			if g.keepalive.Load() {
				_, _ = g.message(fmt.Sprintf("<?xml version=\"1.0\"?>\n<Notify><CmdType>Keepalive</CmdType><SN>%d</SN><DeviceID>%s</DeviceID><Status>OK</Status></Notify>", sn, g.id))
			}
		}
	}()
}

func (g *gbDevice) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if !strings.Contains(string(req.Body()), "<CmdType>Catalog</CmdType>") {
		return
	}
	g.catalogs.Add(1)
	name, _ := simplifiedchinese.GBK.NewEncoder().String("通道一")
	body := fmt.Sprintf("<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>%s</DeviceID><SumNum>1</SumNum><DeviceList Num=\"1\"><Item><DeviceID>%s</DeviceID><Name>%s</Name><Status>ON</Status></Item></DeviceList></Response>", g.id, gbChanID, name)
	go func() { _, _ = g.message(body) }()
}

var (
	sdpMedia = regexp.MustCompile(`(?m)^m=video (\d+) (\S+)`)
	sdpConn  = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`)
	sdpSSRC  = regexp.MustCompile(`(?m)^y=(\d+)`)
)

func (g *gbDevice) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	body := string(req.Body())
	m, c, y := sdpMedia.FindStringSubmatch(body), sdpConn.FindStringSubmatch(body), sdpSSRC.FindStringSubmatch(body)
	if m == nil || c == nil || y == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	ssrc, _ := strconv.ParseUint(y[1], 10, 32)
	tcp := m[2] == "TCP/RTP/AVP"
	// TCP active (the server connects): listen, and answer with the port.
	var ln net.Listener
	port := "0"
	if tcp && strings.Contains(body, "a=setup:active") {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Error", nil))
			return
		}
		port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		g.activeInvites.Add(1)
	}
	if !tcp {
		select {
		case g.mediaPorts <- m[1]:
		default:
		}
	}
	answer := fmt.Sprintf("v=0\r\no=%s 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video %s %s 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n", g.id, port, m[2])
	if ln != nil {
		answer += "a=setup:passive\r\na=connection:new\r\n"
	}
	answer += "y=" + y[1] + "\r\n"
	res := sip.NewResponseFromRequest(req, 200, "OK", []byte(answer))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: g.id, Host: "127.0.0.1", Port: g.port()}})
	_ = tx.Respond(res)
	dst := net.JoinHostPort(c[1], m[1])
	g.streaming.Store(true)
	g.invites.Add(1)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		var nc net.Conn
		var err error
		switch {
		case ln != nil:
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
			nc, err = ln.Accept()
			ln.Close()
		case tcp:
			nc, err = net.Dial("tcp", dst)
		default:
			nc, err = net.Dial("udp", dst)
		}
		if err != nil {
			g.t.Errorf("media connection (%s): %v", dst, err)
			return
		}
		g.stream(nc, tcp, uint32(ssrc))
	}()
}

// stream sends the file in a loop at its frame rate on nc until stopped
// or BYE.
func (g *gbDevice) stream(nc net.Conn, tcp bool, ssrc uint32) {
	defer nc.Close()
	var seq uint16
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for n := 0; n < 25*120 && g.streaming.Load(); n++ {
		select {
		case <-g.stop:
			return
		case <-tick.C:
		}
		au := g.aus[n%len(g.aus)]
		ts := uint64(n) * 3600
		ps := gbPack(au, ts, gbIsKey(au))
		if g.audio != nil {
			ps = gbPackAudio(ps, g.audio[n%len(g.audio)], ts, gbIsKey(au))
		}
		if g.junk {
			_, _ = rand.Read(ps)
		}
		for len(ps) > 0 {
			k := min(len(ps), 1400)
			p := make([]byte, 12, 14+k)
			p[0], p[1] = 0x80, 96
			if k == len(ps) {
				p[1] |= 0x80
			}
			binary.BigEndian.PutUint16(p[2:], seq)
			binary.BigEndian.PutUint32(p[4:], uint32(ts))
			binary.BigEndian.PutUint32(p[8:], ssrc)
			p = append(p, ps[:k]...)
			if tcp {
				p = append(binary.BigEndian.AppendUint16(nil, uint16(len(p))), p...)
			}
			if _, err := nc.Write(p); err != nil {
				return
			}
			ps = ps[k:]
			seq++
		}
	}
}

type gbDevicesReply struct {
	Devices []struct {
		ID       string `json:"device_id"`
		Status   string `json:"status"`
		Channels []struct {
			ID     string `json:"device_id"`
			Name   string `json:"name"`
			Status string `json:"status"`
			Stream string `json:"stream"`
		} `json:"channels"`
	} `json:"devices"`
}

func testGB(t *testing.T, transport string) {
	d, addrs, rtmp := startGB(t, transport)
	aus := gbAUs(t)

	// Wrong password: refused, and the device is not listed.
	bad := newGBDevice(t, addrs.sipUDP, "wrong", aus)
	if code := bad.register(); code != 403 {
		t.Fatalf("register with a wrong password: %d, want 403", code)
	}
	var r gbDevicesReply
	if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil || len(r.Devices) != 0 {
		t.Fatalf("devices after a refused register: %+v %v", r, err)
	}

	g := newGBDevice(t, addrs.sipUDP, "secret", aus)
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)
	if t.Name() == "TestGB28181UDP" {
		gbHostile(t, d, addrs, g, aus)
	}
	Eventually(t, 10*time.Second, "device listed with its streaming channel", func() error {
		var r gbDevicesReply
		if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil {
			return err
		}
		for _, dv := range r.Devices {
			if dv.ID == gbDeviceID && dv.Status == "online" && len(dv.Channels) == 1 &&
				dv.Channels[0].Status == "streaming" && dv.Channels[0].Name == "通道一" &&
				dv.Channels[0].Stream == "live/"+stream {
				return nil
			}
		}
		return fmt.Errorf("devices %+v", r)
	})

	p := ffprobe(t, "rtmp://"+rtmp+"/live/"+stream, 2)
	if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 {
		t.Fatalf("rtmp probe: %+v", p.Streams)
	}
	httpWantCodecs(t, "flv", httpProbe(t, "http://"+hlsAddr(t, d)+"/live/"+stream+".flv", 2), "h264")

	// Keepalives stop: the device expires, its stream ends.
	g.keepalive.Store(false)
	Eventually(t, 20*time.Second, "device expired and stream ended", func() error {
		var r gbDevicesReply
		if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil {
			return err
		}
		if len(r.Devices) != 0 {
			return fmt.Errorf("devices %+v", r)
		}
		var sr streamsReply
		if err := d.GetJSON("/api/v1/streams/", &sr); err != nil {
			return err
		}
		for _, s := range sr.Streams {
			if s.Name == stream && s.Publish.Active {
				return fmt.Errorf("stream still published")
			}
		}
		return nil
	})
	if !strings.Contains(d.Log(), "no keepalive for 3s") {
		t.Fatal("no log line for the expiry")
	}
}

func TestGB28181UDP(t *testing.T) { testGB(t, "udp") }
func TestGB28181TCP(t *testing.T) { testGB(t, "tcp") }

// gbHostile sends malformed SIP, a REGISTER flood, junk media and a device
// streaming junk PS next to the streaming device g: each gets its refusal
// or log line, the plugin stays up and g's stream is untouched.
func gbHostile(t *testing.T, d *Daemon, addrs gbAddrs, g *gbDevice, aus [][]byte) {
	ps0, _ := d.Plugins()
	pid := ps0["gb28181"].PID
	raw, err := net.Dial("udp", addrs.sipUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, m := range []string{
		"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\nContent-Length: 999999999\r\n\r\nabc",
		"MESSAGE sip:a@b SIP/2.0\r\n\r\n",
		"INVITE\r\n\r\n",
		strings.Repeat("\x00\xff", 700),
	} {
		_, _ = raw.Write([]byte(m))
	}
	// A flood of unauthenticated REGISTERs: each is challenged, none is kept.
	for i := range 2000 {
		reg := fmt.Sprintf("REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK%d\r\nFrom: <sip:3402000000132%07d@3402000000>;tag=%d\r\nTo: <sip:3402000000132%07d@3402000000>\r\nCall-ID: flood%d\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", i, i, i, i, i)
		_, _ = raw.Write([]byte(reg))
	}
	// Bad MANSCDP from the registered device: 400, logged.
	if code, err := g.message("<Notify><CmdType>Keepalive"); err != nil || code != 400 {
		t.Fatalf("bad xml message: %d %v", code, err)
	}
	// Junk on the media ports.
	if mc, err := net.Dial("udp", addrs.mediaUDP); err == nil {
		_, _ = mc.Write(bytes.Repeat([]byte{0x80, 96, 0, 1}, 100))
		mc.Close()
	}
	tc, err := net.Dial("tcp", addrs.mediaTCP)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tc.Write(append([]byte{0, 20}, bytes.Repeat([]byte{0xee}, 20)...))
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Fatal("tcp media connection with an unknown ssrc not closed")
	}
	tc.Close()
	// A second device streaming junk PS: its session ends with a log line.
	j := newGBDevice(t, addrs.sipUDP, "secret", aus)
	j.id = "34020000001320000002"
	j.junk = true
	if code := j.register(); code != 200 {
		t.Fatalf("register junk device: %d", code)
	}
	j.startKeepalive()
	Eventually(t, 20*time.Second, "junk stream ended with a log line", func() error {
		if strings.Contains(d.Log(), "no decodable media within 2s") {
			return nil
		}
		return fmt.Errorf("no log line yet")
	})
	for _, want := range []string{"register refused: wrong credentials", "bad manscdp message", "tcp media for an unknown ssrc closed"} {
		if !strings.Contains(d.Log(), want) {
			t.Errorf("no %q log line", want)
		}
	}
	ps1, _ := d.Plugins()
	if ps1["gb28181"].PID != pid || ps1["gb28181"].State != "running" {
		t.Fatalf("plugin restarted or down: %+v", ps1["gb28181"])
	}
	var r gbDevicesReply
	if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil || len(r.Devices) != 2 {
		t.Fatalf("devices after the flood (want the two registered): %+v %v", r, err)
	}
	waitPublished(t, d, "live", gbDeviceID+"_"+gbChanID)
	j.keepalive.Store(false) // it expires along with g below
}

// TestGB28181OnDemand: with auto_invite off, a registered channel is only
// invited when a player asks for its stream; once no player is left for
// idle_timeout it is sent BYE and its stream ends; a player coming back
// before that keeps it; the next player invites it again.
func TestGB28181OnDemand(t *testing.T) {
	t.Parallel()
	d, addrs, rtmp := startGB(t, "udp", "auto_invite = false", `idle_timeout = "3s"`)
	g := newGBDevice(t, addrs.sipUDP, "secret", gbAUs(t))
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	Eventually(t, 10*time.Second, "channel listed, not streaming", func() error {
		var r gbDevicesReply
		if err := d.GetJSON("/api/v1/gb28181/devices", &r); err != nil {
			return err
		}
		if len(r.Devices) == 1 && len(r.Devices[0].Channels) == 1 && r.Devices[0].Channels[0].Status == "ON" {
			return nil
		}
		return fmt.Errorf("devices %+v", r)
	})
	if g.streaming.Load() {
		t.Fatal("invited without a player")
	}
	probe := func() {
		t.Helper()
		p := ffprobe(t, "rtmp://"+rtmp+"/live/"+stream, 2)
		if len(p.Streams) == 0 || p.Streams[0].CodecName != "h264" || p.Streams[0].Width != 320 {
			t.Fatalf("rtmp probe: %+v", p.Streams)
		}
	}
	probe()
	// Players come back one after another, each before idle_timeout: the
	// channel is not sent BYE.
	for range 2 {
		probe()
	}
	if n := g.byes.Load(); n != 0 || g.invites.Load() != 1 {
		t.Fatalf("byes=%d invites=%d while players came and went within idle_timeout", n, g.invites.Load())
	}
	Eventually(t, 10*time.Second, "each player's leaving seen", func() error {
		if n := strings.Count(d.Log(), "no players left"); n < 3 {
			return fmt.Errorf("%d 'no players left' lines, want 3", n)
		}
		return nil
	})
	// No player: BYE, the stream ends, with a log line.
	Eventually(t, 20*time.Second, "idle channel sent BYE", func() error {
		if g.byes.Load() == 0 {
			return fmt.Errorf("no bye yet")
		}
		return nil
	})
	waitUnpublished(t, d, "live", stream)
	gbWaitLog(t, d, "no players for 3s")
	// The next player invites it again.
	probe()
	if n := g.invites.Load(); n != 2 {
		t.Fatalf("invites=%d, want 2 after a player came back", n)
	}
}

// TestGB28181SIPOverTCP: a device that registers over SIP/TCP gets its
// Catalog query and INVITE on the same connection, and streams.
func TestGB28181SIPOverTCP(t *testing.T) {
	t.Parallel()
	d, addrs, _ := startGB(t, "tcp")
	ps, _ := d.Plugins()
	var sipTCP string
	for _, l := range ps["gb28181"].Listeners {
		if l.Name == "sip" {
			sipTCP = l.Addr
		}
	}
	_ = addrs
	g := newGBDevice(t, sipTCP, "secret", gbAUs(t))
	g.tcp = true
	if code := g.register(); code != 200 {
		t.Fatalf("register over tcp: %d", code)
	}
	g.startKeepalive()
	waitPublished(t, d, "live", gbDeviceID+"_"+gbChanID)
}
