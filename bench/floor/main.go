// Command floor is the physical floor of the fan-out benchmark: the least a
// server must do to play one stream to N players. It replays an FLV file in
// real time (bench/replay) and writes the same bytes to every connected
// socket with writev, once per frame (-mode frame) or once per merge window
// (-mode merge, -window 350ms as SRS's mw_latency), and little else: no
// protocol state and no copy per player; each connection has a goroutine
// and a bounded queue of shared batches, as a Go server needs so that one
// slow player never blocks the others.
//
// It answers any request on its listener as an HTTP-FLV stream (response
// header, FLV header, codec configs, the current GOP, then live tags), so
// the benchmark's HTTP-FLV players can play from it unchanged and measure it
// as they measure a server.
//
// On start it prints one line to stdout:
//
//	floor listen=127.0.0.1:40123 start_unix_nano=1700000000000000000
//
// and tag i of pass L is due at start + L*loop + ts(i) (replay.Schedule).
// It exits after -for, on SIGINT/SIGTERM, or when stdin closes.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rill-media/rill/bench/replay"
)

func main() {
	var (
		listen = flag.String("listen", "127.0.0.1:0", "listen address (loopback)")
		file   = flag.String("flv", "", "FLV file to replay")
		mode   = flag.String("mode", "merge", "frame: one writev per frame; merge: one writev per -window")
		window = flag.Duration("window", 350*time.Millisecond, "merge window")
		limit  = flag.Duration("for", 10*time.Minute, "exit after this long")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("floor: ")
	if *mode != "frame" && *mode != "merge" {
		log.Fatalf("-mode %q: want frame or merge", *mode)
	}
	f, err := replay.Load(*file)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, *limit)
	defer cancel2()
	go func() { // the parent going away ends us too
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	fl := newFloor(f, *mode == "merge", *window)
	start := time.Now()
	fmt.Printf("floor listen=%s start_unix_nano=%d\n", ln.Addr(), start.UnixNano())

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); fl.pace(ctx, start) }()
	go func() { defer wg.Done(); fl.accept(ctx, ln) }()
	<-ctx.Done()
	ln.Close()
	wg.Wait()
	fl.close()
}

// floor owns the pacer, the acceptor and the connections.
type floor struct {
	file   *replay.File
	merge  bool
	window time.Duration
	joins  chan net.Conn
	conns  []*conn
	wg     sync.WaitGroup
}

func newFloor(f *replay.File, merge bool, window time.Duration) *floor {
	return &floor{file: f, merge: merge, window: window, joins: make(chan net.Conn, 4096)}
}

// accept reads each connection's request and hands it to the pacer.
func (fl *floor) accept(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readRequest(c); err != nil {
				c.Close()
				return
			}
			select {
			case fl.joins <- c:
			case <-ctx.Done():
				c.Close()
			}
		}()
	}
}

const response = "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\nCache-Control: no-cache\r\n\r\n"

// readRequest reads an HTTP request header (any path) and answers it with
// the streaming response header.
func readRequest(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	for n := 0; ; n++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if n > 100 {
			return errors.New("request header too long")
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	if _, err := io.WriteString(c, response); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

// pace replays the file on schedule and hands tags (one by one, or one
// batch per window) to every connection. It alone owns the GOP and the
// pending batch, so a joining connection gets a consistent start.
func (fl *floor) pace(ctx context.Context, start time.Time) {
	sched := replay.Schedule{File: fl.file, Start: start}
	head := [][]byte{fl.file.Header}
	for i, t := range fl.file.Tags {
		if t.Config {
			head = append(head, fl.file.Rebase(i, 0))
		}
	}
	var gop, pending [][]byte
	lastFlush := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := 0; ; loop++ {
		for i, t := range fl.file.Tags {
			if t.Config {
				continue
			}
			due := sched.At(loop, i)
			for {
				wake := due
				if fl.merge && len(pending) > 0 && lastFlush.Add(fl.window).Before(wake) {
					wake = lastFlush.Add(fl.window)
				}
				timer.Reset(time.Until(wake))
				select {
				case <-ctx.Done():
					return
				case c := <-fl.joins:
					// The pending batch reaches this connection with the
					// next flush: leave it out of its start.
					init := append([][]byte(nil), head...)
					if n := len(gop) - len(pending); n > 0 {
						init = append(init, gop[:n]...)
					}
					fl.add(c, init)
					continue
				case now := <-timer.C:
					if fl.merge && len(pending) > 0 && !now.Before(lastFlush.Add(fl.window)) {
						fl.dispatch(pending)
						pending, lastFlush = nil, now
					}
					if now.Before(due) {
						continue
					}
				}
				break
			}
			raw := fl.file.Rebase(i, loop)
			if t.Keyframe {
				gop = gop[:0:0]
			}
			if t.Keyframe || len(gop) > 0 {
				gop = append(gop, raw)
			}
			if fl.merge {
				pending = append(pending, raw)
				continue
			}
			fl.dispatch([][]byte{raw})
		}
	}
}

func (fl *floor) add(c net.Conn, init [][]byte) {
	cn := &conn{c: c, batches: make(chan [][]byte, queueLen)}
	cn.batches <- init
	fl.conns = append(fl.conns, cn)
	fl.wg.Add(1)
	go func() { defer fl.wg.Done(); cn.run() }()
}

// dispatch queues a batch for every connection, without ever waiting: a
// connection whose queue is full is dropped.
func (fl *floor) dispatch(batch [][]byte) {
	kept := fl.conns[:0]
	for _, cn := range fl.conns {
		if cn.dead.Load() {
			close(cn.batches)
			continue
		}
		select {
		case cn.batches <- batch:
			kept = append(kept, cn)
		default:
			close(cn.batches)
		}
	}
	clear(fl.conns[len(kept):])
	fl.conns = kept
}

func (fl *floor) close() {
	for _, cn := range fl.conns {
		close(cn.batches)
	}
	fl.conns = nil
	fl.wg.Wait()
}

// queueLen bounds the batches queued for one connection: several seconds
// of frames.
const queueLen = 512

// conn writes the batches of one connection, each with one writev
// (net.Buffers.WriteTo).
type conn struct {
	c       net.Conn
	batches chan [][]byte
	dead    atomic.Bool
}

func (cn *conn) run() {
	defer cn.c.Close()
	var bufs net.Buffers
	for b := range cn.batches {
		bufs = append(bufs[:0], b...)
		_ = cn.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufs.WriteTo(cn.c); err != nil {
			cn.dead.Store(true) // the pacer drops us
			return
		}
	}
}
