package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/bench/replay"
)

func TestMain(m *testing.M) {
	quietLal()
	os.Exit(m.Run())
}

// testFLV writes an FLV file of n H.264 frames (30 fps, a keyframe every
// 30, sizes from 2 to 11 KB, each frame distinct) with an AAC frame after
// each, and loads it.
func testFLV(t testing.TB, n int) *replay.File {
	t.Helper()
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	tag := func(typ uint8, ts uint32, body []byte) {
		n := len(body)
		b = append(b, typ, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
		b = append(b, body...)
		b = binary.BigEndian.AppendUint32(b, uint32(11+n))
	}
	tag(replay.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 4, 0x68, 0xee, 0x3c, 0x80})
	tag(replay.TagAudio, 0, []byte{0xaf, 0, 0x12, 0x10})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		ts := uint32(i * 33)
		hdr, nalHdr := byte(0x27), byte(0x41)
		if i%30 == 0 {
			hdr, nalHdr = 0x17, 0x65
		}
		nal := make([]byte, 2000+(i*7919)%9000)
		nal[0] = nalHdr
		for j := 1; j < len(nal); j++ {
			nal[j] = byte(rng.Uint32())
		}
		body := append([]byte{hdr, 1, 0, 0, 0}, binary.BigEndian.AppendUint32(nil, uint32(len(nal)))...)
		tag(replay.TagVideo, ts, append(body, nal...))
		audio := make([]byte, 200)
		audio[0], audio[1] = 0xaf, 1
		for j := 2; j < len(audio); j++ {
			audio[j] = byte(rng.Uint32())
		}
		tag(replay.TagAudio, ts+10, audio)
	}
	path := filepath.Join(t.TempDir(), "test.flv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := replay.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRTMPReaderNoAlloc checks that reading, acknowledging and accounting
// messages allocates nothing once the buffers have grown.
func TestRTMPReaderNoAlloc(t *testing.T) {
	f := testFLV(t, 60)
	sc := &script{chunk: 128}
	sc.control(rtmpSetChunkSize, binary.BigEndian.AppendUint32(nil, 4096))
	sc.chunk = 4096
	const rounds = 3 // one to grow the buffers, AllocsPerRun's warm-up, one measured
	started := map[byte]bool{}
	for range rounds {
		for _, tg := range f.Tags {
			cs := byte(4)
			if tg.Type == replay.TagVideo {
				cs = 6
			}
			fmtType := byte(1)
			if !started[cs] {
				fmtType, started[cs] = 0, true
			}
			sc.add(sc.chunks(fmtType, cs, 16, tg.Type, tg.Payload, false)...)
		}
	}
	win := &window{}
	pl := &player{url: "rtmp://x/live/s", file: f, clock: &pushClock{sent: make([]atomic.Int64, len(f.Tags))}, win: win}
	rx := &countingReader{r: bytes.NewReader(sc.b)}
	p := &rtmpPull{conn: discardConn{}, rx: rx, cr: newRTMPReader(rx), window: 50000,
		onMsg: func(typ uint8, _ uint32, payload []byte) { pl.onMessage(typ, payload) }}
	read := func() {
		for range f.Tags {
			m, err := p.cr.next()
			if err != nil {
				t.Fatal(err)
			}
			if err := p.control(m); err != nil {
				t.Fatal(err)
			}
			p.media(m)
		}
	}
	read() // the buffers grow
	if a := testing.AllocsPerRun(1, read); a != 0 {
		t.Fatalf("%.1f allocations per %d messages", a, len(f.Tags))
	}
	if s := pl.stats(); s.unknown != 0 || s.first == 0 {
		t.Fatalf("frames not recognised: %+v", s)
	}
	if p.lastAck == 0 {
		t.Fatal("no acknowledgement sent")
	}
}

type gotMsg struct {
	typ     uint8
	ts      uint32
	payload []byte
}

// recorder keeps copies of the messages a client hands over.
type recorder struct {
	mu   sync.Mutex
	msgs []gotMsg
}

func (r *recorder) on(typ uint8, ts uint32, payload []byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, gotMsg{typ, ts, append([]byte(nil), payload...)})
	r.mu.Unlock()
}

func (r *recorder) get() []gotMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gotMsg(nil), r.msgs...)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func compareMsgs(t *testing.T, got, want []gotMsg) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d messages, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.typ != w.typ || g.ts != w.ts || !bytes.Equal(g.payload, w.payload) {
			t.Fatalf("message %d: got type %d ts %d len %d, want type %d ts %d len %d (payload equal: %v)",
				i, g.typ, g.ts, len(g.payload), w.typ, w.ts, len(w.payload), bytes.Equal(g.payload, w.payload))
		}
	}
}

// lalRelay is a one-stream lal RTMP server: every audio/video message of
// the publisher goes to every player as lal's chunk divider cuts it.
type lalRelay struct {
	mu     sync.Mutex
	subs   []*rtmp.ServerSession
	subbed chan struct{}
}

func (r *lalRelay) OnRtmpConnect(*rtmp.ServerSession, rtmp.ObjectPairArray) {}
func (r *lalRelay) OnNewRtmpPubSession(s *rtmp.ServerSession) error {
	s.SetPubSessionObserver(r)
	return nil
}
func (r *lalRelay) OnDelRtmpPubSession(*rtmp.ServerSession) {}
func (r *lalRelay) OnNewRtmpSubSession(s *rtmp.ServerSession) error {
	r.mu.Lock()
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	r.subbed <- struct{}{}
	return nil
}
func (r *lalRelay) OnDelRtmpSubSession(*rtmp.ServerSession) {}
func (r *lalRelay) OnReadRtmpAvMsg(m base.RtmpMsg) {
	chunks := rtmp.Message2Chunks(m.Payload, &m.Header)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.subs {
		_ = s.Write(chunks)
	}
}

// pushClock is the send clock of the test's publisher.
type pushClock struct{ sent []atomic.Int64 }

func (c *pushClock) sentAt(i int, now int64) (int64, bool) {
	t := c.sent[i].Load()
	return t, t != 0 && t <= now
}

// TestRTMPPullLal plays a stream that lal's RTMP push session publishes to
// an in-process lal RTMP server: every message arrives intact, in order,
// with its timestamp (across the 24-bit extended timestamp boundary), and
// the player's accounting recognises every video frame.
func TestRTMPPullLal(t *testing.T) {
	f := testFLV(t, 60)
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	relay := &lalRelay{subbed: make(chan struct{}, 2)}
	srv := rtmp.NewServer(addr, relay)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.RunLoop() }()
	defer srv.Dispose()

	url := "rtmp://" + addr + "/live/test?token=x"
	push := rtmp.NewPushSession(func(o *rtmp.PushSessionOption) { o.PushTimeoutMs = 5000 })
	if err := push.Push(url); err != nil {
		t.Fatal(err)
	}
	defer push.Dispose()

	ctx := context.Background()
	rec := &recorder{}
	c, err := dialRTMP(ctx, url, rec.on)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	clock := &pushClock{sent: make([]atomic.Int64, len(f.Tags))}
	win := &window{}
	win.t0.Store(1)
	p := &player{url: url, file: f, clock: clock, win: win}
	if err := p.pull(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for range 2 {
		select {
		case <-relay.subbed:
		case <-time.After(5 * time.Second):
			t.Fatal("players not registered")
		}
	}

	// Timestamps start just below 2^24 ms, so the second half of the file
	// needs the extended timestamp.
	const tsBase = 0xffffff - 1001 // lal's writer gets exactly 0xffffff wrong
	var want []gotMsg
	var frames int
	for i, tg := range f.Tags {
		h := base.RtmpHeader{Csid: csid(tg.Type), MsgLen: uint32(len(tg.Payload)), MsgTypeId: tg.Type,
			MsgStreamId: rtmp.Msid1, TimestampAbs: tsBase + tg.TS}
		clock.sent[i].Store(time.Now().UnixNano())
		if err := push.Write(rtmp.Message2Chunks(tg.Payload, &h)); err != nil {
			t.Fatal(err)
		}
		// lal's push session buffers 4 KiB (WriteBufSize 0 gives a bufio
		// writer of the default size): send each message now.
		if err := push.Flush(); err != nil {
			t.Fatal(err)
		}
		want = append(want, gotMsg{tg.Type, tsBase + tg.TS, tg.Payload})
		if tg.Frame {
			frames++
		}
	}
	waitFor(t, "all messages", 10*time.Second, func() bool { return len(rec.get()) >= len(want) })
	compareMsgs(t, rec.get(), want)
	if want[len(want)-1].ts <= 0xffffff {
		t.Fatal("the test does not reach extended timestamps")
	}

	waitFor(t, "the player's frames", 10*time.Second, func() bool { return p.stats().frames >= int64(frames) })
	s := p.stats()
	if s.err != nil || s.first <= 0 || s.unknown != 0 || s.frames != int64(frames) || s.frameBytes != f.VideoBytes || len(s.lat) != frames {
		t.Fatalf("player: err %v first %v unknown %d frames %d/%d frameBytes %d/%d latency samples %d",
			s.err, s.first, s.unknown, s.frames, frames, s.frameBytes, f.VideoBytes, len(s.lat))
	}
	if p.ended() {
		t.Fatalf("player ended: %v", p.stats().err)
	}
}

// script builds what a server sends: chunks with chosen headers, and the
// messages the client must make of them.
type script struct {
	b     []byte
	chunk int
	want  []gotMsg
}

// header appends a chunk header; tsField is the timestamp or delta, sent
// as an extended timestamp when it does not fit in 24 bits (fmt 3: ext
// only says whether to append it).
func (s *script) header(fmtType, csid byte, tsField uint32, length int, typ uint8, msid uint32, ext bool) {
	b := append(s.b, fmtType<<6|csid)
	f := min(tsField, 0xffffff)
	if fmtType <= 2 {
		b = append(b, byte(f>>16), byte(f>>8), byte(f))
		ext = tsField >= 0xffffff
	}
	if fmtType <= 1 {
		b = append(b, byte(length>>16), byte(length>>8), byte(length), typ)
	}
	if fmtType == 0 {
		b = binary.LittleEndian.AppendUint32(b, msid)
	}
	if ext {
		b = binary.BigEndian.AppendUint32(b, tsField)
	}
	s.b = b
}

// chunks returns the chunks of one message: the first with the given
// header, then fmt 3 ones (with the extended timestamp unless omitExt).
func (s *script) chunks(fmtType, csid byte, tsField uint32, typ uint8, body []byte, omitExt bool) [][]byte {
	var out [][]byte
	save := s.b
	for first := true; first || len(body) > 0; first = false {
		s.b = nil
		if first {
			s.header(fmtType, csid, tsField, len(body), typ, 1, tsField >= 0xffffff)
		} else {
			s.header(3, csid, tsField, 0, 0, 0, tsField >= 0xffffff && !omitExt)
		}
		k := min(len(body), s.chunk)
		out = append(out, append(s.b, body[:k]...))
		body = body[k:]
	}
	s.b = save
	return out
}

func (s *script) add(chunks ...[]byte) {
	for _, c := range chunks {
		s.b = append(s.b, c...)
	}
}

func (s *script) msg(fmtType, csid byte, tsField uint32, typ uint8, body []byte, ts uint32) {
	s.add(s.chunks(fmtType, csid, tsField, typ, body, false)...)
	s.expect(typ, ts, body)
}

func (s *script) expect(typ uint8, ts uint32, body []byte) {
	if typ == rtmpAudio || typ == rtmpVideo || typ == rtmpDataAMF0 {
		s.want = append(s.want, gotMsg{typ, ts, body})
	}
}

func (s *script) control(typ uint8, body []byte) {
	save := s.chunk
	s.chunk = 1 << 30
	s.add(s.chunks(0, 2, 0, typ, body, false)...)
	s.chunk = save
}

func (s *script) command(vals ...[]byte) {
	var body []byte
	for _, v := range vals {
		body = append(body, v...)
	}
	s.add(s.chunks(0, 3, 0, rtmpCommandAMF0, body, false)...)
}

func (s *script) flush(c net.Conn) (int, error) {
	n, err := c.Write(s.b)
	s.b = s.b[:0]
	return n, err
}

func body(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestRTMPPullScripted runs the client against a scripted server that uses
// every chunk header type, extended timestamps and deltas, interleaved
// chunk streams, chunk size changes, Abort and an aggregate message, and
// checks the messages, their timestamps, the acknowledgements and the
// ping response.
func TestRTMPPullScripted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const window = 20000
	rng := rand.New(rand.NewPCG(3, 4))
	sc := &script{chunk: 128}
	type srvResult struct {
		err     error
		acks    []uint32
		pong    bool
		written int
		tcURL   string
		play    string
	}
	done := make(chan srvResult, 1)
	go func() {
		var res srvResult
		defer func() { done <- res }()
		c, err := ln.Accept()
		if err != nil {
			res.err = err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fail := func(format string, args ...any) { res.err = fmt.Errorf(format, args...) }
		c0c1 := make([]byte, 1537)
		if _, err := io.ReadFull(c, c0c1); err != nil || c0c1[0] != 3 {
			fail("c0c1: %v", err)
			return
		}
		s1 := body(rng, 1536)
		hs := append(append([]byte{3}, s1...), c0c1[1:]...) // S0, S1, S2 = C1
		n, err := c.Write(hs)
		res.written += n
		if err != nil {
			fail("s0s1s2: %v", err)
			return
		}
		cr := newRTMPReader(c)
		c2 := make([]byte, 1536)
		if _, err := io.ReadFull(cr.r, c2); err != nil || !bytes.Equal(c2, s1) {
			fail("c2 is not S1: %v", err)
			return
		}
		flush := func() bool {
			n, err := sc.flush(c)
			res.written += n
			if err != nil {
				fail("write: %v", err)
			}
			return err == nil
		}
		command := func(name string) []any {
			for {
				m, err := cr.next()
				if err != nil {
					fail("waiting for %s: %v", name, err)
					return nil
				}
				if m.typ != rtmpCommandAMF0 {
					continue
				}
				vals, _ := amfDecodeAll(m.payload, 8)
				if len(vals) > 0 && vals[0] == name {
					return vals
				}
			}
		}
		vals := command("connect")
		if vals == nil {
			return
		}
		res.tcURL = amfField(vals, "tcUrl")
		// Window, chunk size 100 before the _result, so that it comes in
		// two chunks.
		sc.control(rtmpWindowAckSize, binary.BigEndian.AppendUint32(nil, window))
		sc.control(rtmpPeerBandwidth, []byte{0, 0, 0x4e, 0x20, 2})
		sc.control(rtmpSetChunkSize, binary.BigEndian.AppendUint32(nil, 100))
		sc.chunk = 100
		sc.command(amfString(nil, "_result"), amfNumber(nil, 1),
			amfObject(nil, []amfPair{{"fmsVer", "FMS/3,5,3,888"}, {"capabilities", 127.0}}),
			amfObject(nil, []amfPair{{"level", "status"}, {"code", "NetConnection.Connect.Success"}, {"description", "Connection succeeded."}}))
		if !flush() {
			return
		}
		if vals = command("createStream"); vals == nil {
			return
		}
		sc.command(amfString(nil, "_result"), amfNumber(nil, vals[1].(float64)), []byte{amfNull}, amfNumber(nil, 1))
		if !flush() {
			return
		}
		if vals = command("play"); vals == nil {
			return
		}
		res.play, _ = vals[3].(string)
		sc.control(rtmpUserControl, []byte{0, 0, 0, 0, 0, 1})
		sc.command(amfString(nil, "onStatus"), amfNumber(nil, 0), []byte{amfNull},
			amfObject(nil, []amfPair{{"level", "status"}, {"code", "NetStream.Play.Start"}, {"description", "Started playing."}}))
		if !flush() {
			return
		}

		// The client's acknowledgements and ping response, from here on.
		pong := make(chan struct{})
		var mu sync.Mutex
		var acks []uint32
		go func() {
			for {
				m, err := cr.next()
				if err != nil {
					return
				}
				switch {
				case m.typ == rtmpAck && len(m.payload) == 4:
					mu.Lock()
					acks = append(acks, binary.BigEndian.Uint32(m.payload))
					mu.Unlock()
				case m.typ == rtmpUserControl && bytes.Equal(m.payload, []byte{0, 7, 0, 0, 0x30, 0x39}):
					close(pong)
				}
			}
		}()

		const v, a = 6, 4 // video and audio chunk streams
		sc.msg(0, 18, 0, rtmpDataAMF0, append(amfString(nil, "onMetaData"), amfObject(nil, []amfPair{{"width", 1280.0}})...), 0)
		sc.msg(0, v, 1000, rtmpVideo, body(rng, 250), 1000) // 3 chunks
		sc.msg(0, a, 1010, rtmpAudio, body(rng, 50), 1010)
		sc.msg(1, v, 33, rtmpVideo, body(rng, 180), 1033) // new length
		sc.msg(2, v, 33, rtmpVideo, body(rng, 180), 1066) // same length
		sc.msg(3, v, 0, rtmpVideo, body(rng, 180), 1099)  // new message, same delta
		sc.msg(1, a, 23, rtmpAudio, body(rng, 60), 1033)
		// Interleaved: an audio message between the chunks of a video one.
		vb := body(rng, 300)
		vc := sc.chunks(1, v, 33, rtmpVideo, vb, false)
		ab := body(rng, 60)
		sc.add(vc[0])
		sc.msg(2, a, 23, rtmpAudio, ab, 1056)
		sc.add(vc[1:]...)
		sc.expect(rtmpVideo, 1132, vb)
		// Abort a video message half-way; the next one replaces it.
		sc.add(sc.chunks(1, v, 33, rtmpVideo, body(rng, 300), false)[0])
		sc.control(rtmpAbort, binary.BigEndian.AppendUint32(nil, v))
		sc.msg(0, v, 1165, rtmpVideo, body(rng, 120), 1165)
		// A bigger chunk size mid-stream.
		sc.control(rtmpSetChunkSize, binary.BigEndian.AppendUint32(nil, 4096))
		sc.chunk = 4096
		sc.msg(1, v, 33, rtmpVideo, body(rng, 10000), 1198)
		// Extended timestamps: absolute (repeated in fmt 3 chunks), then a
		// small delta, then a writer that leaves it out of continuation
		// chunks, then an extended delta reused by a fmt 3 message.
		sc.msg(0, v, 0x01000005, rtmpVideo, body(rng, 5000), 0x01000005)
		sc.msg(1, v, 33, rtmpVideo, body(rng, 5000), 0x01000026)
		eb := body(rng, 9000)
		sc.add(sc.chunks(0, v, 0x01000100, rtmpVideo, eb, true)...)
		sc.expect(rtmpVideo, 0x01000100, eb)
		sc.msg(2, a, 0x01000000, rtmpAudio, body(rng, 60), 0x01000000+1056) // fmt 2 and 3 keep the length
		sc.msg(3, a, 0x01000000, rtmpAudio, body(rng, 60), 0x02000000+1056)
		// An aggregate message of a video and an audio tag.
		sub1, sub2 := body(rng, 700), body(rng, 40)
		var agg []byte
		for _, st := range []struct {
			typ  uint8
			ts   uint32
			data []byte
		}{{rtmpVideo, 5000, sub1}, {rtmpAudio, 5010, sub2}} {
			n := len(st.data)
			agg = append(agg, st.typ, byte(n>>16), byte(n>>8), byte(n), byte(st.ts>>16), byte(st.ts>>8), byte(st.ts), byte(st.ts>>24), 0, 0, 0)
			agg = append(agg, st.data...)
			agg = binary.BigEndian.AppendUint32(agg, uint32(11+n))
		}
		sc.add(sc.chunks(0, v, 7000, rtmpAggregate, agg, false)...)
		sc.expect(rtmpVideo, 7000, sub1)
		sc.expect(rtmpAudio, 7010, sub2)
		// Enough bytes for several acknowledgement windows.
		ts := uint32(7000)
		for range 40 {
			ts += 33
			sc.msg(1, v, 33, rtmpVideo, body(rng, 5000), ts)
		}
		sc.control(rtmpUserControl, []byte{0, 6, 0, 0, 0x30, 0x39}) // ping 12345
		if !flush() {
			return
		}
		select {
		case <-pong:
		case <-time.After(10 * time.Second):
			fail("no ping response")
			return
		}
		res.pong = true
		mu.Lock()
		res.acks = append([]uint32(nil), acks...)
		mu.Unlock()
	}()

	rec := &recorder{}
	c, err := dialRTMP(context.Background(), "rtmp://"+ln.Addr().String()+"/app/sub/s?k=v", rec.on)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	res := <-done
	if res.err != nil {
		select {
		case err := <-c.done:
			t.Logf("client ended: %v", err)
		default:
		}
		got := rec.get()
		t.Logf("client got %d of %d messages", len(got), len(sc.want))
		compareMsgs(t, got, sc.want)
		t.Fatal(res.err)
	}
	if want := "rtmp://" + ln.Addr().String() + "/app/sub"; res.tcURL != want || res.play != "s?k=v" {
		t.Errorf("tcUrl %q, play %q; want %q, %q", res.tcURL, res.play, want, "s?k=v")
	}
	select {
	case err := <-c.done:
		if err == nil {
			t.Error("session ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end with the connection")
	}
	compareMsgs(t, rec.get(), sc.want)

	// Acknowledgements: a window apart, none beyond what was sent, the last
	// less than a window short of everything.
	if len(res.acks) < 2 {
		t.Fatalf("%d acknowledgements for %d bytes with a %d-byte window", len(res.acks), res.written, window)
	}
	for i, a := range res.acks {
		if int(a) > res.written || (i > 0 && a < res.acks[i-1]+window) {
			t.Fatalf("acknowledgements %v for %d bytes sent, window %d", res.acks, res.written, window)
		}
	}
	if last := res.acks[len(res.acks)-1]; res.written-int(last) >= window {
		t.Fatalf("last acknowledgement %d for %d bytes sent, window %d", last, res.written, window)
	}
}

type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) Close() error                { return nil }

func TestParseRTMPURL(t *testing.T) {
	for _, c := range []struct{ url, host, app, name string }{
		{"rtmp://127.0.0.1:1935/live/bench", "127.0.0.1:1935", "live", "bench"},
		{"rtmp://h/live/ll?vhost=lowlat", "h", "live", "ll?vhost=lowlat"},
		{"rtmp://h:1/a/b/c", "h:1", "a/b", "c"},
	} {
		host, app, name, err := parseRTMPURL(c.url)
		if err != nil || host != c.host || app != c.app || name != c.name {
			t.Errorf("%s: %q %q %q %v", c.url, host, app, name, err)
		}
	}
	for _, bad := range []string{"http://h/live/x", "rtmp://h/live", "rtmp://h/live/", "rtmp:///live/x"} {
		if _, _, _, err := parseRTMPURL(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
