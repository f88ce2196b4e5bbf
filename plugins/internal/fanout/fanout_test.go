package fanout

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection; rcvbuf > 0 sets
// the reading end's receive buffer (before connecting).
func pair(t *testing.T, rcvbuf int) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf) })
		}
	}
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	client, err = d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close(); client.Close() })
	return r.c, client
}

// frame is a self-checking message: length, sequence number, pattern
// bytes derived from the sequence number, CRC.
func frame(seq uint32, n int) []byte {
	b := make([]byte, 8, 12+n)
	binary.BigEndian.PutUint32(b, uint32(n))
	binary.BigEndian.PutUint32(b[4:], seq)
	for i := 0; i < n; i++ {
		b = append(b, byte(int(seq)*7+i))
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[8:]))
}

// readFrames reads frames until EOF or max, checking each one.
func readFrames(r io.Reader, max int) ([]uint32, error) {
	br := bufio.NewReader(r)
	var seqs []uint32
	for len(seqs) < max {
		var h [8]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return seqs, err
		}
		n := binary.BigEndian.Uint32(h[:])
		if n > 1<<24 {
			return seqs, fmt.Errorf("frame %d: length %d: torn stream", len(seqs), n)
		}
		body := make([]byte, n+4)
		if _, err := io.ReadFull(br, body); err != nil {
			return seqs, err
		}
		if crc32.ChecksumIEEE(body[:n]) != binary.BigEndian.Uint32(body[n:]) {
			return seqs, fmt.Errorf("frame %d: bad crc: torn stream", len(seqs))
		}
		seqs = append(seqs, binary.BigEndian.Uint32(h[4:]))
	}
	return seqs, nil
}

func item(seq uint32, n int) Item {
	return Item{B: frame(seq, n), TS: time.Duration(seq) * 10 * time.Millisecond, Timed: true}
}

func TestGroupEveryPlayerGetsEveryItemInOrder(t *testing.T) {
	for _, mw := range []time.Duration{0, 15 * time.Millisecond} {
		t.Run(fmt.Sprint("mw=", mw), func(t *testing.T) {
			const players, items = 300, 400 // 300 players: the dispatch is sharded
			g := NewGroup(mw)
			results := make([]chan []uint32, players)
			for i := range players {
				srv, cli := pair(t, 0)
				g.Add(NewSink(srv, SinkOptions{MaxBytes: 64 << 20}), nil, false)
				results[i] = make(chan []uint32, 1)
				go func() {
					_ = cli.SetReadDeadline(time.Now().Add(30 * time.Second))
					seqs, _ := readFrames(cli, items)
					results[i] <- seqs
				}()
			}
			for i := range items {
				g.Push(item(uint32(i), 100+i*37%3000))
			}
			g.Close()
			for i, ch := range results {
				seqs := <-ch
				if len(seqs) != items {
					t.Fatalf("player %d got %d items, want %d", i, len(seqs), items)
				}
				for j, s := range seqs {
					if s != uint32(j) {
						t.Fatalf("player %d: item %d has seq %d", i, j, s)
					}
				}
			}
		})
	}
}

func TestJoinGetsInitThenOnlyLaterItems(t *testing.T) {
	g := NewGroup(time.Hour) // nothing leaves before Flush
	defer g.Close()
	for i := range 5 {
		g.Push(item(uint32(i), 10)) // pending when the player joins
	}
	srv, cli := pair(t, 0)
	// The caller's GOP cache had 0..4 already: init carries them.
	var init [][]byte
	for i := range 5 {
		init = append(init, frame(uint32(i), 10))
	}
	g.Add(NewSink(srv, SinkOptions{}), init, false)
	for i := 5; i < 8; i++ {
		g.Push(item(uint32(i), 10))
	}
	g.Flush()
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	seqs, err := readFrames(cli, 8)
	if err != nil {
		t.Fatal(err)
	}
	for j, s := range seqs {
		if s != uint32(j) {
			t.Fatalf("got %v, want 0..7 once each", seqs)
		}
	}
}

func TestWaitKeySkipsVideoUntilKeyframe(t *testing.T) {
	g := NewGroup(0)
	srv, cli := pair(t, 0)
	g.Add(NewSink(srv, SinkOptions{}), nil, true)
	push := func(seq uint32, video, key bool) {
		it := item(seq, 20)
		it.Video, it.Key = video, key
		g.Push(it)
	}
	push(0, true, false) // skipped
	push(1, false, false)
	push(2, true, false) // skipped
	push(3, true, true)
	push(4, true, false)
	push(5, false, false)
	g.Close()
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	seqs, err := readFrames(cli, 4)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 3 4 5]" {
		t.Fatalf("got %v, want [1 3 4 5]", seqs)
	}
}

func TestSlowPlayerClosedOthersGoOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    SinkOptions
		want string
	}{
		{"bytes", SinkOptions{MaxBytes: 256 << 10}, "bytes queued"},
		{"duration", SinkOptions{MaxBytes: 1 << 30, MaxDur: 2 * time.Second}, "queued, limit 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGroup(5 * time.Millisecond)
			defer g.Close()
			// The stalled player never reads and has a tiny window.
			ssrv, scli := pair(t, 4096)
			_ = scli
			closed := make(chan string, 1)
			o := tc.o
			o.OnClose = func(why string) { closed <- why }
			g.Add(NewSink(ssrv, o), nil, false)
			srv, cli := pair(t, 0)
			good := NewSink(srv, SinkOptions{MaxBytes: 64 << 20})
			g.Add(good, nil, false)
			const items = 2000
			done := make(chan error, 1)
			go func() {
				_ = cli.SetReadDeadline(time.Now().Add(60 * time.Second))
				seqs, err := readFrames(cli, items)
				if err == nil && len(seqs) != items {
					err = fmt.Errorf("got %d items", len(seqs))
				}
				done <- err
			}()
			var why string
			for i := range items {
				g.Push(item(uint32(i), 4000)) // 8 MB in all, 20 s of media time
				select {
				case why = <-closed:
				default:
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			g.Flush()
			if why == "" {
				select {
				case why = <-closed:
				case <-time.After(10 * time.Second):
					t.Fatal("stalled player not closed")
				}
			}
			if !strings.HasPrefix(why, TooSlow) || !strings.Contains(why, tc.want) {
				t.Fatalf("closed with %q, want %q ... %q", why, TooSlow, tc.want)
			}
			if err := <-done; err != nil {
				t.Fatalf("good player: %v", err)
			}
			if len(g.Sinks()) != 2 {
				t.Fatalf("group has %d members: closing a sink must not remove it (its owner does)", len(g.Sinks()))
			}
		})
	}
}

func TestChunkedFramingAndEnd(t *testing.T) {
	g := NewGroup(3 * time.Millisecond)
	srv, cli := pair(t, 0)
	s := NewSink(srv, SinkOptions{Chunked: true})
	g.Add(s, [][]byte{[]byte("HEAD")}, false)
	var want bytes.Buffer
	want.WriteString("HEAD")
	for i := range 50 {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*13)
		want.Write(b)
		g.Push(Item{B: b})
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	g.Close()
	s.End([]byte("0\r\n\r\n"), "stream ended")
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(cli)
	got, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		t.Fatalf("chunked body: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("body %d bytes, want %d", len(got), want.Len())
	}
	// After the last chunk's trailer the server closed the connection.
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\r\n" {
		t.Fatalf("after the last chunk: %q, %v (want the trailer's CRLF, then EOF)", rest, err)
	}
	if !s.Closed() {
		t.Fatal("sink not closed after End")
	}
}

// TestLockHeldFromPartialWriteToTheEnd: once a write to the socket went
// partial, the sink keeps the caller's lock until the rest is written, so
// another writer of the socket cannot put its bytes in the middle. Each
// round fills the socket with a message bigger than its buffers and checks
// that the lock is taken the moment the dispatch returns; the message then
// reads back whole and the lock is free again. (Releasing the lock at the
// partial write and taking it back in the drain goroutine fails here: the
// lock is free between the two.)
func TestLockHeldFromPartialWriteToTheEnd(t *testing.T) {
	var mu sync.Mutex
	g := NewGroup(time.Hour) // dispatches only on Flush, on this goroutine
	srv, cli := pair(t, 4096)
	if err := srv.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	g.Add(NewSink(srv, SinkOptions{Lock: &mu, MaxBytes: 64 << 20}), nil, false)
	br := bufio.NewReader(cli)
	for round := range 20 {
		g.Queue(item(uint32(round), 512<<10))
		g.Flush()
		if mu.TryLock() {
			mu.Unlock()
			t.Fatalf("round %d: lock free right after a partial write", round)
		}
		_ = cli.SetReadDeadline(time.Now().Add(30 * time.Second))
		seqs, err := readFrames(io.LimitReader(br, int64(len(item(0, 512<<10).B))), 1)
		if err != nil || len(seqs) != 1 || seqs[0] != uint32(round) {
			t.Fatalf("round %d: read %v, %v", round, seqs, err)
		}
		free := false
		for range 1000 { // the drain goroutine lets go once it has written all
			if mu.TryLock() {
				mu.Unlock()
				free = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !free {
			t.Fatalf("round %d: lock still held after the message was written", round)
		}
	}
}

// TestLockedWritesNeverInterleave: another writer of the same socket (RTMP
// command replies) writes whole frames between the group's, even when the
// group's writes are partial (a slow reader).
func TestLockedWritesNeverInterleave(t *testing.T) {
	var mu sync.Mutex
	g := NewGroup(2 * time.Millisecond)
	srv, cli := pair(t, 8192)
	if err := srv.(*net.TCPConn).SetWriteBuffer(4096); err != nil { // writes go partial
		t.Fatal(err)
	}
	g.Add(NewSink(srv, SinkOptions{Lock: &mu, MaxBytes: 256 << 20}), nil, false)
	const items, others = 600, 3000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the other writer: frames numbered from 1<<20
		defer wg.Done()
		for i := range others {
			mu.Lock()
			_, err := srv.Write(frame(1<<20+uint32(i), 300))
			mu.Unlock()
			if err != nil {
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	res := make(chan error, 1)
	go func() {
		_ = cli.SetReadDeadline(time.Now().Add(60 * time.Second))
		r := &slowReader{r: cli}
		seqs, err := readFrames(r, items+others)
		if err == nil {
			var mine []uint32
			for _, s := range seqs {
				if s < 1<<20 {
					mine = append(mine, s)
				}
			}
			for j, s := range mine {
				if s != uint32(j) {
					err = fmt.Errorf("group item %d has seq %d", j, s)
					break
				}
			}
		}
		res <- err
	}()
	for i := range items {
		g.Push(item(uint32(i), 5000))
		time.Sleep(200 * time.Microsecond)
	}
	g.Flush()
	wg.Wait()
	close(stop)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
}

// slowReader reads in small pieces with pauses, so the writer's socket
// fills up and writes go partial.
type slowReader struct {
	r io.Reader
	n int
}

func (s *slowReader) Read(b []byte) (int, error) {
	s.n++
	if s.n%16 == 0 {
		time.Sleep(time.Millisecond)
	}
	return s.r.Read(b[:min(len(b), 1500)])
}

func TestClosedConnectionReportsOnce(t *testing.T) {
	srv, cli := pair(t, 0)
	var n int
	var mu sync.Mutex
	s := NewSink(srv, SinkOptions{OnClose: func(string) { mu.Lock(); n++; mu.Unlock() }})
	cli.Close()
	g := NewGroup(0)
	g.Add(s, nil, false)
	deadline := time.Now().Add(10 * time.Second)
	for !s.Closed() && time.Now().Before(deadline) {
		g.Push(item(1, 60000)) // a write to a reset peer fails
		time.Sleep(5 * time.Millisecond)
	}
	s.Close("again")
	mu.Lock()
	defer mu.Unlock()
	if !s.Closed() || n != 1 {
		t.Fatalf("closed=%v, OnClose called %d times, want once", s.Closed(), n)
	}
	if err := srv.SetDeadline(time.Time{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("connection not closed: %v", err)
	}
}

// TestBacklogGoesOutAtOnce: items spanning the merge window in media time
// (a GOP replayed from the ring) are written without waiting for the
// window's end.
func TestBacklogGoesOutAtOnce(t *testing.T) {
	g := NewGroup(time.Hour)
	defer g.Close()
	srv, cli := pair(t, 0)
	g.Add(NewSink(srv, SinkOptions{}), nil, false)
	g.Push(Item{B: frame(0, 10), TS: 0, Timed: true})
	g.Push(Item{B: frame(1, 10), TS: time.Hour, Timed: true}) // spans the window
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	seqs, err := readFrames(cli, 2)
	if err != nil || len(seqs) != 2 {
		t.Fatalf("got %v, %v: want both items before the window's end", seqs, err)
	}
}

// TestQueueWaitsForFlush: queued items leave only with the caller's Flush,
// in order, once.
func TestQueueWaitsForFlush(t *testing.T) {
	g := NewGroup(time.Millisecond) // Queue ignores the group's own window
	defer g.Close()
	srv, cli := pair(t, 0)
	g.Add(NewSink(srv, SinkOptions{}), nil, false)
	for i := range 3 {
		g.Queue(item(uint32(i), 10))
	}
	_ = cli.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := cli.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes before Flush (err %v)", n, err)
	}
	g.Flush()
	g.Queue(item(3, 10))
	g.Flush()
	_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	seqs, err := readFrames(cli, 4)
	if err != nil || fmt.Sprint(seqs) != "[0 1 2 3]" {
		t.Fatalf("got %v, %v; want [0 1 2 3]", seqs, err)
	}
}
