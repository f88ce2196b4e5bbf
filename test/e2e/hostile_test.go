package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
)

func hostileDaemon(t *testing.T, rtmpExtra, hlsExtra, extra string) (*Daemon, map[string]PluginStatus) {
	t.Helper()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks: map[string]string{
			"rtmp":       "  listen = [\"127.0.0.1:0\"]\n" + rtmpExtra,
			"httpstream": "  listen = [\"127.0.0.1:0\"]\n" + hlsExtra,
		},
		Extra: extra,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	return d, waitRunning(t, d, "rtmp", "httpstream")
}

// slowloris sends one byte a second and reports when the server closed it.
func slowloris(t *testing.T, addr string, payload []byte, closed chan<- string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		closed <- "dial: " + err.Error()
		return
	}
	defer c.Close()
	for i := 0; i < 60; i++ {
		b := payload[i%len(payload)]
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte{b}); err != nil {
			closed <- addr
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed <- addr
				return
			}
		}
	}
	closed <- "still open after 60 s: " + addr
}

// TestSlowlorisOnEveryPort trickles a byte a second into :1935, :8080 and
// :1985; each is closed by a handshake/header timeout while normal clients
// are served meanwhile.
func TestSlowlorisOnEveryPort(t *testing.T) {
	d, ps := hostileDaemon(t, `  handshake_timeout = "3s"`, `  read_header_timeout = "3s"`, "")
	rtmpAddr, httpAddr := ps["rtmp"].Listeners[0].Addr, ps["httpstream"].Listeners[0].Addr
	apiAddr := strings.TrimPrefix(d.API, "http://")
	closed := make(chan string, 3)
	go slowloris(t, rtmpAddr, []byte{3, 0, 0, 0}, closed)
	go slowloris(t, httpAddr, []byte("GET /live/x.flv HTTP/1.1\r\nHost: a\r\n"), closed)
	go slowloris(t, apiAddr, []byte("GET /api/v1/versions HTTP/1.1\r\nHost: a\r\n"), closed)
	// Meanwhile the API answers at once.
	for i := 0; i < 5; i++ {
		var v map[string]any
		if err := d.GetJSON("/api/v1/versions", &v); err != nil {
			t.Fatalf("API blocked by slowloris: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	got := map[string]bool{}
	for i := 0; i < 3; i++ {
		select {
		case s := <-closed:
			if s != rtmpAddr && s != httpAddr && s != apiAddr {
				t.Fatalf("slowloris: %s", s)
			}
			got[s] = true
		case <-time.After(70 * time.Second):
			t.Fatalf("slowloris connections still open: closed so far %v", got)
		}
	}
}

// TestIdleConnectionsBounded opens 5000 idle TCP connections to the RTMP
// port: the plugin's memory stays bounded and publishing and playing work.
func TestIdleConnectionsBounded(t *testing.T) {
	needTool(t, "ffmpeg")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 12000 {
		lim.Cur = min(lim.Max, 12000)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	d, ps := hostileDaemon(t, `  handshake_timeout = "60s"`, "", "")
	rtmpAddr := ps["rtmp"].Listeners[0].Addr
	rssBefore := rssOf(ps["rtmp"].PID)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 5000; i++ {
		c, err := net.DialTimeout("tcp", rtmpAddr, 5*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/idle", 60)
	waitPublished(t, d, "live", "idle")
	if err := ffprobeRun("rtmp://"+rtmpAddr+"/live/idle", 2); err != nil {
		t.Fatalf("play with 5000 idle connections: %v", err)
	}
	rss := rssOf(ps["rtmp"].PID)
	t.Logf("rtmp plugin RSS: %d KiB before, %d KiB with 5000 idle connections", rssBefore, rss)
	if rss > rssBefore+200*1024 {
		t.Fatalf("5000 idle connections cost %d KiB (more than 40 KiB each)", rss-rssBefore)
	}
}

func rssOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

// gapPlayer plays RTMP and records the longest pause between video frames.
type gapPlayer struct {
	mu     sync.Mutex
	last   time.Time
	maxGap time.Duration
	video  atomic.Int64
	sess   *lalrtmp.PullSession
}

func newGapPlayer(t *testing.T, url string) *gapPlayer {
	p := &gapPlayer{}
	p.sess = lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) { o.PullTimeoutMs = 15000 })
	p.sess.WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		if msg.Header.MsgTypeId != base.RtmpTypeIdVideo {
			return
		}
		now := time.Now()
		p.mu.Lock()
		if !p.last.IsZero() && now.Sub(p.last) > p.maxGap {
			p.maxGap = now.Sub(p.last)
		}
		p.last = now
		p.mu.Unlock()
		p.video.Add(1)
	})
	if err := p.sess.Pull(url); err != nil {
		t.Fatalf("pull %s: %v", url, err)
	}
	t.Cleanup(func() { _ = p.sess.Dispose() })
	return p
}

func (p *gapPlayer) gap() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxGap
}

// TestChaosKillHLSWhileRTMPPlays kills the HLS plugin every few seconds for
// 30 s while an RTMP player watches: the player never stalls, and after the
// chaos the HLS playlist resumes.
func TestChaosKillHLSWhileRTMPPlays(t *testing.T) {
	needTool(t, "ffmpeg")
	d, ps := hostileDaemon(t, "", "", `vhost "__defaultVhost__" {
  hls {
    enabled  = true
    fragment = "1s"
    window   = "10s"
    path     = "hlsroot"
  }
}
`)
	rtmpAddr := ps["rtmp"].Listeners[0].Addr
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/chaos", 120)
	waitPublished(t, d, "live", "chaos")
	player := newGapPlayer(t, "rtmp://"+rtmpAddr+"/live/chaos")
	Eventually(t, 15*time.Second, "player receives", func() error {
		if player.video.Load() < 25 {
			return fmt.Errorf("%d frames", player.video.Load())
		}
		return nil
	})
	kills := 0
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		cur, err := d.Plugins()
		if err == nil && cur["httpstream"].State == "running" && cur["httpstream"].PID > 0 {
			if syscall.Kill(cur["httpstream"].PID, syscall.SIGKILL) == nil {
				kills++
			}
		}
		time.Sleep(3 * time.Second)
	}
	if kills < 5 {
		t.Fatalf("only %d kills", kills)
	}
	if g := player.gap(); g > 3*time.Second {
		t.Fatalf("RTMP player stalled for %s while the HLS plugin was killed %d times", g, kills)
	}
	t.Logf("%d kills of hls; RTMP player's longest pause between frames: %s", kills, player.gap())
	ps2 := waitRunning(t, d, "httpstream")
	if ps2["httpstream"].Restarts < kills {
		t.Fatalf("core reports %d restarts for %d kills", ps2["httpstream"].Restarts, kills)
	}
	m3u8 := "http://" + ps2["httpstream"].Listeners[0].Addr + "/live/chaos.m3u8"
	var firstSeq string
	Eventually(t, 30*time.Second, "HLS playlist resumes", func() error {
		resp, err := http.Get(m3u8)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "#EXTINF") {
			return fmt.Errorf("HTTP %d %q", resp.StatusCode, b)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"); ok {
				if firstSeq == "" {
					firstSeq = v
					return fmt.Errorf("seen sequence %s, waiting for it to move", v)
				}
				if v != firstSeq {
					return nil
				}
			}
		}
		return fmt.Errorf("playlist not moving: %q", b)
	})
}

// TestChaosKillRTMPWhileFLVPlays kills the RTMP plugin while HTTP-FLV
// players watch: they get end of stream, play again once the publisher is
// back, and the core reports the restart.
func TestChaosKillRTMPWhileFLVPlays(t *testing.T) {
	needTool(t, "ffmpeg")
	d, ps := hostileDaemon(t, "", "", "")
	rtmpAddr, httpAddr := ps["rtmp"].Listeners[0].Addr, ps["httpstream"].Listeners[0].Addr
	pub := ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/flvchaos", 120)
	waitPublished(t, d, "live", "flvchaos")
	url := "http://" + httpAddr + "/live/flvchaos.flv"
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, 3)
	for i := 0; i < 3; i++ {
		go func() {
			c := http.Client{Timeout: 60 * time.Second}
			resp, err := c.Get(url)
			if err != nil {
				results <- result{0, err}
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			results <- result{n, err}
		}()
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(ps["rtmp"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		select {
		case r := <-results:
			if r.n < 10000 {
				t.Fatalf("HTTP-FLV player got only %d bytes before the end: %v", r.n, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("HTTP-FLV player did not see the end of the stream")
		}
	}
	_ = pub.Wait() // ffmpeg's connection died with the plugin
	// The players may see the end before the core notices the exit.
	Eventually(t, 30*time.Second, "rtmp plugin restarted", func() error {
		ps2 := waitRunning(t, d, "rtmp")
		if ps2["rtmp"].Restarts != 1 || ps2["rtmp"].PID == ps["rtmp"].PID {
			return fmt.Errorf("restart not reported: %+v", ps2["rtmp"])
		}
		return nil
	})
	// Same port (the core kept the socket): the publisher comes back.
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/flvchaos", 60)
	waitPublished(t, d, "live", "flvchaos")
	probe := ffprobeRun(url, 2)
	if probe != nil {
		t.Fatalf("HTTP-FLV after the publisher came back: %v", probe)
	}
}

// sendAt writes one message with an absolute timestamp.
func (r *rawRTMP) sendAt(csid int, typ uint8, streamID int, ts uint32, body []byte) error {
	h := base.RtmpHeader{Csid: csid, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: streamID, TimestampAbs: ts}
	_ = r.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := r.nc.Write(lalrtmp.Message2Chunks(body, &h))
	return err
}

// TestHostileRTMPPublishers publishes garbage media next to a good stream:
// video without a sequence header, timestamps going backwards, an AMF0
// string longer than its packet. The plugin never restarts and the good
// stream's player never stalls.
func TestHostileRTMPPublishers(t *testing.T) {
	needTool(t, "ffmpeg")
	d, addr := startRTMP(t, "", "")
	ps := waitRunning(t, d, "rtmp")
	ffmpegPublish(t, "rtmp://"+addr+"/live/good", 90)
	waitPublished(t, d, "live", "good")
	good := newGapPlayer(t, "rtmp://"+addr+"/live/good")

	publisher := func(name string) *rawRTMP {
		r := dialRaw(t, addr, true)
		r.connect("live", "rtmp://"+addr+"/live")
		r.send(3, base.RtmpTypeIdCommandMessageAmf0, 0, amfCommand("createStream", 2.0, nil))
		r.send(8, base.RtmpTypeIdCommandMessageAmf0, 1, amfCommand("publish", 3.0, nil, name, "live"))
		time.Sleep(300 * time.Millisecond)
		return r
	}
	// AVC NALU frames with no sequence header before them.
	nalu := []byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 5, 0x41, 1, 2, 3, 4}
	noHeader := publisher("noheader")
	for i := 0; i < 50; i++ {
		if err := noHeader.sendAt(6, base.RtmpTypeIdVideo, 1, uint32(i*40), nalu); err != nil {
			break
		}
	}
	// A valid sequence header, then timestamps that jump backwards.
	backwards := publisher("backwards")
	seqHeader := []byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 4, 0x68, 0xce, 0x3c, 0x80}
	_ = backwards.sendAt(6, base.RtmpTypeIdVideo, 1, 0, seqHeader)
	for i, ts := range []uint32{5000, 1000, 7000, 0, 0xFFFFF0, 10, 3} {
		key := byte(0x27)
		if i == 0 {
			key = 0x17
		}
		frame := append([]byte{key}, nalu[1:]...)
		if err := backwards.sendAt(6, base.RtmpTypeIdVideo, 1, ts, frame); err != nil {
			break
		}
	}
	// onMetaData whose string claims more bytes than the packet holds.
	liar := publisher("liar")
	_ = liar.sendAt(4, base.RtmpTypeIdMetadata, 1, 0, []byte{0x02, 0x00, 0x0d, '@', 's', 'e', 't', 0x02, 0xff, 0xff, 'x'})

	time.Sleep(2 * time.Second)
	for _, r := range []*rawRTMP{noHeader, backwards, liar} {
		r.nc.Close()
	}
	ps2, err := d.Plugins()
	if err != nil || ps2["rtmp"].PID != ps["rtmp"].PID || ps2["rtmp"].Restarts != 0 {
		t.Fatalf("rtmp plugin restarted: %+v", ps2["rtmp"])
	}
	before := good.video.Load()
	Eventually(t, 10*time.Second, "good stream still flowing", func() error {
		if good.video.Load() < before+25 {
			return fmt.Errorf("%d frames", good.video.Load())
		}
		return nil
	})
	if g := good.gap(); g > 3*time.Second {
		t.Fatalf("good stream's player stalled for %s", g)
	}
	if strings.Contains(d.Log(), "panic") {
		t.Fatalf("a panic was logged:\n%s", d.Log())
	}
}

// TestStuckPlayersMemoryBounded: 20 RTMP players that never read next to
// one that does: they are dropped, the reading one never stalls, and the
// plugin's memory comes back near where it was.
func TestStuckPlayersMemoryBounded(t *testing.T) {
	needTool(t, "ffmpeg")
	d, addr := startRTMP(t, "", `vhost "__defaultVhost__" {
  play {
    queue_length = 3
  }
}
`)
	ps := waitRunning(t, d, "rtmp")
	url := "rtmp://" + addr + "/live/stuck"
	ffmpegPublish(t, url, 90)
	waitPublished(t, d, "live", "stuck")
	good := newGapPlayer(t, url)
	time.Sleep(3 * time.Second)
	baseline := rssOf(ps["rtmp"].PID)
	var stuck []*rawRTMP
	for i := 0; i < 20; i++ {
		r := dialRaw(t, addr, true)
		r.connect("live", "rtmp://"+addr+"/live")
		r.play("stuck")
		stuck = append(stuck, r)
	}
	peak := 0
	Eventually(t, 60*time.Second, "every stuck player dropped", func() error {
		peak = max(peak, rssOf(ps["rtmp"].PID))
		n := strings.Count(d.Log(), "player too slow") + strings.Count(d.Log(), "write: timeout")
		if n < 20 {
			return fmt.Errorf("%d of 20 dropped", n)
		}
		return nil
	})
	var after int
	Eventually(t, 30*time.Second, "memory back near the baseline", func() error {
		after = rssOf(ps["rtmp"].PID)
		if after > baseline+48*1024 {
			return fmt.Errorf("RSS %d KiB, baseline %d KiB, peak %d KiB", after, baseline, peak)
		}
		return nil
	})
	t.Logf("rtmp plugin RSS: baseline %d KiB, peak %d KiB with 20 stuck players, %d KiB after they were dropped; reading player's longest pause %s",
		baseline, peak, after, good.gap())
	if g := good.gap(); g > 3*time.Second {
		t.Fatalf("the reading player stalled for %s", g)
	}
	for _, r := range stuck {
		r.nc.Close()
	}
}
