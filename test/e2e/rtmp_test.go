package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/httpflv"
	"github.com/q191201771/lal/pkg/remux"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"
	"github.com/q191201771/naza/pkg/nazalog"
)

func init() {
	_ = nazalog.Init(func(o *nazalog.Option) { o.Level = nazalog.LevelError })
}

// needTool fails (with CI set) or skips when an external tool is missing.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
}

// startRTMP starts a daemon with the rtmp plugin and returns its RTMP
// address.
func startRTMP(t *testing.T, pluginBlock, extra string) (*Daemon, string) {
	t.Helper()
	if pluginBlock == "" {
		pluginBlock = `listen = ["127.0.0.1:0"]`
	}
	d := StartDaemon(t, Config{Plugins: []string{"rtmp"}, Blocks: map[string]string{"rtmp": pluginBlock}, Extra: extra})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp")
	if len(ps["rtmp"].Listeners) == 0 {
		t.Fatalf("rtmp plugin has no listener: %+v", ps["rtmp"])
	}
	return d, ps["rtmp"].Listeners[0].Addr
}

// ffmpegPublish publishes testsrc2 + sine as x264 + aac to url for secs
// seconds; the process is killed at the end of the test.
func ffmpegPublish(t *testing.T, url string, secs int) *exec.Cmd {
	t.Helper()
	cmd, _ := ffmpegPublishAs(t, url, "flv", secs)
	return cmd
}

// ffmpegPublishAs is ffmpegPublish in container format (flv, mpegts, rtsp); it
// also returns ffmpeg's stderr.
func ffmpegPublishAs(t *testing.T, url, format string, secs int, outOpts ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return ffmpegPublishWith(t, url, format, secs, []string{"-c:a", "aac", "-b:a", "64k"}, outOpts)
}

// ffmpegPublishAudio is ffmpegPublishAs with other audio encoder arguments
// (such as "-c:a", "libopus").
func ffmpegPublishAudio(t *testing.T, url, format string, secs int, audio ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return ffmpegPublishWith(t, url, format, secs, audio, nil)
}

// ffmpegPublishWith is ffmpegPublishAs with the audio encoder arguments and
// the output options placed before the URL (-method POST, -rtsp_transport tcp).
func ffmpegPublishWith(t *testing.T, url, format string, secs int, audio, outOpts []string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(secs),
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p"}
	args = append(append(append(args, audio...), "-f", format), outOpts...)
	cmd := exec.Command("ffmpeg", append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, &stderr
}

type streamsReply struct {
	Streams []struct {
		Name    string `json:"name"`
		App     string `json:"app"`
		Vhost   string `json:"vhost"`
		Publish struct {
			Active bool `json:"active"`
		} `json:"publish"`
	} `json:"streams"`
}

func waitPublished(t *testing.T, d *Daemon, app, stream string) {
	t.Helper()
	Eventually(t, 20*time.Second, "stream "+app+"/"+stream+" published", func() error {
		var r streamsReply
		if err := d.GetJSON("/api/v1/streams/", &r); err != nil {
			return err
		}
		for _, s := range r.Streams {
			if s.App == app && s.Name == stream && s.Publish.Active {
				return nil
			}
		}
		return fmt.Errorf("streams: %+v", r.Streams)
	})
}

type probeOut struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		DTS         *int64 `json:"dts"`
		Flags       string `json:"flags"`
	} `json:"packets"`
}

// ffprobe plays url for about secs seconds and returns streams and packets.
func ffprobe(t *testing.T, url string, secs int) probeOut {
	t.Helper()
	return ffprobeOpts(t, url, secs)
}

// ffprobeOpts is ffprobe with input options before the URL (-rtsp_transport tcp).
func ffprobeOpts(t *testing.T, url string, secs int, inOpts ...string) probeOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-rw_timeout", "15000000"}, inOpts...)
	args = append(args, "-show_streams", "-show_packets", "-read_intervals", fmt.Sprintf("%%+%d", secs), "-of", "json", url)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, stderr.String())
	}
	var p probeOut
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return p
}

func TestRTMPPublishPlay(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	d, addr := startRTMP(t, "", "")
	url := "rtmp://" + addr + "/live/livestream"
	pub := ffmpegPublish(t, url+"?token=abc", 40)
	waitPublished(t, d, "live", "livestream")

	p := ffprobe(t, url, 4)
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
		if s.CodecType == "video" && (s.Width != 640 || s.Height != 360) {
			t.Errorf("video size %dx%d, want 640x360", s.Width, s.Height)
		}
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" {
		t.Fatalf("codecs %v, want h264 and aac", codecs)
	}
	last := map[int]int64{}
	counts := map[int]int{}
	for _, pk := range p.Packets {
		if pk.DTS == nil {
			continue
		}
		if prev, ok := last[pk.StreamIndex]; ok && *pk.DTS < prev {
			t.Fatalf("stream %d: dts %d after %d", pk.StreamIndex, *pk.DTS, prev)
		}
		last[pk.StreamIndex] = *pk.DTS
		counts[pk.StreamIndex]++
	}
	if len(counts) != 2 || counts[0] < 25 || counts[1] < 25 {
		t.Fatalf("packets per stream %v", counts)
	}
	if len(p.Packets) > 0 && !strings.HasPrefix(p.Packets[0].Flags, "K") && p.Streams[p.Packets[0].StreamIndex].CodecType == "video" {
		t.Errorf("first video packet is not a keyframe: %+v", p.Packets[0])
	}

	// Decoded frames arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-rw_timeout", "15000000",
		"-i", url, "-t", "2", "-map", "0:v", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg play: %v", err)
	}
	frames := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			frames++
		}
	}
	if frames < 25 {
		t.Fatalf("decoded %d video frames in 2s, want at least 25", frames)
	}

	// A second publisher is refused while the first goes on.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	second := exec.CommandContext(ctx2, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "20",
		"-c:v", "libx264", "-preset", "ultrafast", "-f", "flv", url)
	var serr bytes.Buffer
	second.Stderr = &serr
	if err := second.Run(); err == nil {
		t.Fatalf("second publisher was accepted")
	}
	if ctx2.Err() != nil {
		t.Fatalf("second publisher was not refused within 30s")
	}
	if !strings.Contains(d.Log(), "NetStream.Publish.BadName") && !strings.Contains(d.Log(), "already published") {
		t.Errorf("no busy refusal in the log")
	}
	if pub.ProcessState != nil {
		t.Fatalf("first publisher ended: %v", pub.ProcessState)
	}
	p = ffprobe(t, url, 2)
	if len(p.Packets) < 25 {
		t.Fatalf("after the refused publisher: %d packets", len(p.Packets))
	}
	ps, _ := d.Plugins()
	checkClean(t, d, ps["rtmp"].PID)
}

// goPlayer plays url with lal's PullSession and counts messages.
type goPlayer struct {
	video, audio atomic.Int64
	mu           sync.Mutex
	lastTS       map[uint8]uint32
	nonMono      int
	firstVideo   []byte
	sess         *lalrtmp.PullSession
}

func newGoPlayer(t *testing.T, url string) *goPlayer {
	t.Helper()
	p := &goPlayer{lastTS: map[uint8]uint32{}}
	p.sess = lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) { o.PullTimeoutMs = 15000 })
	p.sess.WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		p.mu.Lock()
		typ := msg.Header.MsgTypeId
		ts := msg.Header.TimestampAbs
		if prev, ok := p.lastTS[typ]; ok && ts < prev && !(typ == base.RtmpTypeIdMetadata) {
			p.nonMono++
		}
		if typ != base.RtmpTypeIdMetadata {
			p.lastTS[typ] = ts
		}
		if typ == base.RtmpTypeIdVideo && p.firstVideo == nil && len(msg.Payload) > 0 {
			p.firstVideo = append([]byte(nil), msg.Payload[:min(len(msg.Payload), 8)]...)
		}
		p.mu.Unlock()
		switch typ {
		case base.RtmpTypeIdVideo:
			p.video.Add(1)
		case base.RtmpTypeIdAudio:
			p.audio.Add(1)
		}
	})
	if err := p.sess.Pull(url); err != nil {
		t.Fatalf("pull %s: %v", url, err)
	}
	t.Cleanup(func() { _ = p.sess.Dispose() })
	return p
}

func TestRTMPManyPlayers(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	d, addr := startRTMP(t, "", "")
	url := "rtmp://" + addr + "/live/many"
	ffmpegPublish(t, url, 40)
	waitPublished(t, d, "live", "many")
	const n = 50
	players := make([]*goPlayer, n)
	var wg sync.WaitGroup
	for i := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			players[i] = newGoPlayer(t, url)
		}()
	}
	wg.Wait()
	Eventually(t, 30*time.Second, "50 players receive 50 video and audio messages", func() error {
		for i, p := range players {
			if p.video.Load() < 50 || p.audio.Load() < 50 {
				return fmt.Errorf("player %d: video %d audio %d", i, p.video.Load(), p.audio.Load())
			}
		}
		return nil
	})
	for i, p := range players {
		p.mu.Lock()
		if p.nonMono != 0 {
			t.Errorf("player %d: %d timestamps went backwards", i, p.nonMono)
		}
		// The first video message is the AVC sequence header (keyframe, type 0).
		if len(p.firstVideo) < 2 || p.firstVideo[0] != 0x17 || p.firstVideo[1] != 0 {
			t.Errorf("player %d: first video message %x is not the sequence header", i, p.firstVideo)
		}
		p.mu.Unlock()
	}
}

// rawRTMP is a minimal RTMP client for hostile and non-reading peers.
type rawRTMP struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string, handshake bool) *rawRTMP {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawRTMP{t: t, nc: nc}
	if handshake {
		var hc lalrtmp.HandshakeClientSimple
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := hc.WriteC0C1(nc); err != nil {
			t.Fatal(err)
		}
		if err := hc.ReadS0S1(nc); err != nil {
			t.Fatal(err)
		}
		if err := hc.WriteC2(nc); err != nil {
			t.Fatal(err)
		}
		if err := hc.ReadS2(nc); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Time{})
		// lal's Message2Chunks, used by send, cuts chunks of LocalChunkSize.
		r.send(2, base.RtmpTypeIdSetChunkSize, 0, []byte{0, 0, byte(lalrtmp.LocalChunkSize >> 8), byte(lalrtmp.LocalChunkSize)})
	}
	return r
}

// send writes one message in a single type 0 chunk (chunk size 128 or more
// than the body, which the caller ensures).
func (r *rawRTMP) send(csid int, typ uint8, streamID int, body []byte) {
	r.t.Helper()
	h := base.RtmpHeader{Csid: csid, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: streamID}
	if _, err := r.nc.Write(lalrtmp.Message2Chunks(body, &h)); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

func amfCommand(vals ...any) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			_ = lalrtmp.Amf0.WriteString(&b, v)
		case float64:
			_ = lalrtmp.Amf0.WriteNumber(&b, v)
		case nil:
			_ = lalrtmp.Amf0.WriteNull(&b)
		case lalrtmp.ObjectPairArray:
			_ = lalrtmp.Amf0.WriteObject(&b, v)
		}
	}
	return b.Bytes()
}

func (r *rawRTMP) connect(app, tcURL string) {
	r.send(3, base.RtmpTypeIdCommandMessageAmf0, 0, amfCommand("connect", 1.0,
		lalrtmp.ObjectPairArray{{Key: "app", Value: app}, {Key: "tcUrl", Value: tcURL}}))
}

func (r *rawRTMP) play(stream string) {
	r.send(3, base.RtmpTypeIdCommandMessageAmf0, 0, amfCommand("createStream", 2.0, nil))
	r.send(8, base.RtmpTypeIdCommandMessageAmf0, 1, amfCommand("play", 3.0, nil, stream))
}

// closedWithin reports whether the server closes the connection within d
// (reading and discarding what it sends).
func (r *rawRTMP) closedWithin(d time.Duration) bool {
	_ = r.nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		if _, err := r.nc.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !(ok && ne.Timeout())
		}
	}
}

func TestRTMPSlowPlayerDropped(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	d, addr := startRTMP(t, `listen = ["127.0.0.1:0"]
  queue_bytes = 262144
  send_buffer = 65536`, `
vhost "__defaultVhost__" {
  play {
    queue_length = 2
    mw_latency = "100ms"
  }
}
`)
	url := "rtmp://" + addr + "/live/slow"
	ffmpegPublish(t, url, 60)
	waitPublished(t, d, "live", "slow")

	stuck := dialRaw(t, addr, true)
	stuck.connect("live", "rtmp://"+addr+"/live")
	stuck.play("slow")
	good := newGoPlayer(t, url)

	Eventually(t, 45*time.Second, "the non-reading player is dropped", func() error {
		if strings.Contains(d.Log(), "player too slow") || strings.Contains(d.Log(), "write: timeout") {
			return nil
		}
		return fmt.Errorf("not yet")
	})
	before := good.video.Load()
	Eventually(t, 10*time.Second, "the reading player goes on", func() error {
		if good.video.Load() < before+25 {
			return fmt.Errorf("video %d -> %d", before, good.video.Load())
		}
		return nil
	})
	if !stuck.closedWithin(10 * time.Second) {
		t.Fatalf("the stuck player's connection is still open")
	}
}

// pushFLV pushes the tags of an FLV file to url with lal's PushSession,
// with every timestamp moved to start at base ms, paced at speed x real time.
func pushFLV(t *testing.T, file, url string, baseTS uint32, speed int) error {
	t.Helper()
	var r httpflv.FlvFileReader
	if err := r.Open(file); err != nil {
		return err
	}
	defer r.Dispose()
	if _, err := r.ReadFlvHeader(); err != nil {
		return err
	}
	push := lalrtmp.NewPushSession(func(o *lalrtmp.PushSessionOption) { o.PushTimeoutMs = 10000 })
	if err := push.Push(url); err != nil {
		return err
	}
	defer push.Dispose()
	start := time.Now()
	for {
		tag, err := r.ReadTag()
		if err != nil {
			break
		}
		msg := remux.FlvTag2RtmpMsg(tag)
		ts := msg.Header.TimestampAbs
		msg.Header.TimestampAbs = baseTS + ts
		if due := time.Duration(ts) * time.Millisecond / time.Duration(speed); time.Since(start) < due {
			time.Sleep(due - time.Since(start))
		}
		if err := push.WriteMsg(msg); err != nil {
			return err
		}
	}
	return push.Flush()
}

// makeFLV records a short x264+aac FLV file with ffmpeg.
func makeFLV(t *testing.T, secs int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.flv")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-t", fmt.Sprint(secs), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-f", "flv", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

func TestRTMPTimestampWrap(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	file := makeFLV(t, 6)
	for _, tc := range []struct {
		name   string
		base   uint32
		jitter string
	}{
		// Just below 2^24 ms (4.66 h): extended timestamps from the
		// publisher and, with time_jitter off, to the player too. lal
		// writes a timestamp of exactly 0xffffff without the extended
		// field, so the base avoids hitting it.
		{"24bit", 1<<24 - 3001, "off"},
		// Just below 2^32 ms (49.7 days): the publisher's clock wraps.
		{"32bit", 1<<32 - 3001, "full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, addr := startRTMP(t, "", fmt.Sprintf(`
vhost "__defaultVhost__" {
  play {
    time_jitter = %q
  }
}
`, tc.jitter))
			url := "rtmp://" + addr + "/live/wrap"
			player := newGoPlayer(t, url) // waits for the publisher
			if err := pushFLV(t, file, url, tc.base, 2); err != nil {
				t.Fatalf("push: %v", err)
			}
			Eventually(t, 20*time.Second, "player gets the whole stream", func() error {
				if player.video.Load() < 140 {
					return fmt.Errorf("video %d audio %d", player.video.Load(), player.audio.Load())
				}
				return nil
			})
			player.mu.Lock()
			defer player.mu.Unlock()
			if player.nonMono != 0 {
				t.Fatalf("%d timestamps went backwards", player.nonMono)
			}
			last := player.lastTS[base.RtmpTypeIdVideo]
			if tc.jitter == "off" && last < 1<<24 {
				t.Fatalf("last video timestamp %d did not pass 2^24", last)
			}
			if strings.Contains(d.Log(), "panic") {
				t.Fatalf("panic in the log")
			}
		})
	}
}

func TestRTMPBadInput(t *testing.T) {
	t.Parallel()
	d, addr := startRTMP(t, `listen = ["127.0.0.1:0"]
  handshake_timeout = "1s"`, "")
	ps0, _ := d.Plugins()
	pid := ps0["rtmp"].PID

	t.Run("garbage before handshake", func(t *testing.T) {
		r := dialRaw(t, addr, false)
		_, _ = r.nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("silent peer", func(t *testing.T) {
		r := dialRaw(t, addr, false)
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed within the handshake timeout")
		}
	})
	t.Run("silent after handshake", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed within the handshake timeout")
		}
	})
	t.Run("chunk size 0", func(t *testing.T) {
		r := dialRaw(t, addr, true) // sends set chunk size 4096 first
		r.send(2, base.RtmpTypeIdSetChunkSize, 0, []byte{0, 0, 0, 0})
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("chunk size over 16 MiB", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		r.send(2, base.RtmpTypeIdSetChunkSize, 0, []byte{0x7f, 0xff, 0xff, 0xff})
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("empty user control", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		r.connect("live", "rtmp://"+addr+"/live")
		// fmt 0, csid 2, length 0, type 4 (lal's chunker writes nothing for an empty body)
		_, _ = r.nc.Write([]byte{0x02, 0, 0, 0, 0, 0, 0, base.RtmpTypeIdUserControl, 0, 0, 0, 0})
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("huge command", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		// type 0 header announcing a 16 MiB command message
		_, _ = r.nc.Write([]byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0})
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("unknown message type", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		r.send(3, 99, 0, []byte{1, 2, 3})
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})
	t.Run("deep amf0", func(t *testing.T) {
		r := dialRaw(t, addr, true)
		body := amfCommand("connect", 1.0)
		for i := 0; i < 30; i++ {
			body = append(body, 0x03, 0, 1, 'a')
		}
		r.send(3, base.RtmpTypeIdCommandMessageAmf0, 0, body)
		if !r.closedWithin(5 * time.Second) {
			t.Fatal("not closed")
		}
	})

	ps, err := d.Plugins()
	if err != nil || ps["rtmp"].PID != pid || ps["rtmp"].Restarts != 0 {
		t.Fatalf("rtmp plugin restarted: %+v (pid before %d)", ps["rtmp"], pid)
	}
	// Log lines travel from the plugin through the core's log: poll.
	for _, want := range []string{"not an rtmp handshake", "set chunk size 0", "set chunk size 2147483647", "user control message of 0 bytes", "unknown message type 99", "nested deeper"} {
		Eventually(t, 10*time.Second, "log line "+want, func() error {
			if !strings.Contains(d.Log(), want) {
				return fmt.Errorf("log has no %q", want)
			}
			return nil
		})
	}
}

func TestRTMPForward(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	dst, dstAddr := startRTMP(t, "", "")
	src, srcAddr := startRTMP(t, "", fmt.Sprintf(`
vhost "__defaultVhost__" {
  forward {
    destination = [%q]
  }
}
`, dstAddr))
	ffmpegPublish(t, "rtmp://"+srcAddr+"/live/fwd", 40)
	waitPublished(t, src, "live", "fwd")
	waitPublished(t, dst, "live", "fwd")
	p := ffprobe(t, "rtmp://"+dstAddr+"/live/fwd", 3)
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || len(p.Packets) < 50 {
		t.Fatalf("forwarded stream: codecs %v, %d packets", codecs, len(p.Packets))
	}

	// The destination goes away and comes back: the forward reconnects.
	dst.Stop()
	dst2, dst2Addr := startRTMP(t, fmt.Sprintf("listen = [%q]", dstAddr), "")
	if dst2Addr != dstAddr {
		t.Fatalf("restarted destination on %s, want %s", dst2Addr, dstAddr)
	}
	waitPublished(t, dst2, "live", "fwd")
}

func TestRTMPEdge(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	origin, originAddr := startRTMP(t, "", "")
	edge, edgeAddr := startRTMP(t, "", fmt.Sprintf(`
vhost "__defaultVhost__" {
  cluster {
    mode   = "remote"
    origin = ["127.0.0.1:1", %q]
  }
}
`, originAddr))
	ffmpegPublish(t, "rtmp://"+originAddr+"/live/edge", 40)
	waitPublished(t, origin, "live", "edge")

	// A player on the edge makes it pull from the origin (the first origin
	// refuses connections: fail over to the second).
	p := ffprobe(t, "rtmp://"+edgeAddr+"/live/edge", 3)
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || len(p.Packets) < 50 {
		t.Fatalf("stream through the edge: codecs %v, %d packets", codecs, len(p.Packets))
	}
	// The last player left: the edge stops pulling.
	Eventually(t, 15*time.Second, "edge stops pulling", func() error {
		if !strings.Contains(edge.Log(), "edge pull stopped") {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// A publish to the edge goes on to the origin.
	ffmpegPublish(t, "rtmp://"+edgeAddr+"/live/up", 40)
	waitPublished(t, edge, "live", "up")
	waitPublished(t, origin, "live", "up")
}
