package main

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// chunk is one encoded packet (or header) shared read-only by every player
// of a feed.
type chunk struct {
	b   []byte
	dts time.Duration
	// timed says dts is meaningful (headers are not).
	timed bool
}

// player is one HTTP streaming connection. The source pushes chunks into
// its bounded queue; the player's own goroutine writes them in one writev
// per merged-write window, so a slow socket never blocks the source or
// other players (THREATS.md #23).
type player struct {
	id      string
	remote  string
	format  format
	url     string
	log     hclog.Logger
	conn    net.Conn
	chunked bool
	started time.Time

	mw       time.Duration
	maxBytes int64
	maxDur   time.Duration

	mu       sync.Mutex
	queue    []chunk
	spare    []chunk
	qBytes   int64
	qFirst   time.Duration
	qHasTime bool
	ending   bool // flush what is queued, then end the response
	closed   bool
	reason   string

	wake chan struct{}
	done chan struct{}
	sent atomic.Uint64
}

func newPlayer(id, remote string, f format, conn net.Conn, chunked bool, cfg *config, log hclog.Logger) *player {
	return &player{
		id: id, remote: remote, format: f, conn: conn, chunked: chunked, log: log, started: time.Now(),
		mw: cfg.MWLatency, maxBytes: cfg.QueueBytes, maxDur: cfg.QueueDuration,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// push queues chunks; it reports false when the player is gone (closed, or
// dropped now because its queue overflowed).
func (p *player) push(cs ...chunk) bool {
	p.mu.Lock()
	if p.closed || p.ending {
		p.mu.Unlock()
		return false
	}
	for _, c := range cs {
		p.queue = append(p.queue, c)
		p.qBytes += int64(len(c.b))
		if c.timed {
			if !p.qHasTime {
				p.qFirst, p.qHasTime = c.dts, true
			}
		}
	}
	var over string
	if p.qBytes > p.maxBytes {
		over = "queue bytes"
	} else if n := len(p.queue); p.qHasTime && n > 0 && p.queue[n-1].timed && p.queue[n-1].dts-p.qFirst > p.maxDur {
		over = "queue duration"
	}
	if over != "" {
		p.closeLocked("slow reader: " + over + " exceeded")
		queued, first := p.qBytes, p.qFirst
		p.mu.Unlock()
		p.log.Warn("player dropped, it does not read fast enough", "limit", over, "queued_bytes", queued,
			"queued_duration", cs[len(cs)-1].dts-first, "sent_bytes", p.sent.Load())
		return false
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

// end asks the writer to flush what is queued and finish the response.
func (p *player) end() {
	p.mu.Lock()
	p.ending = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// close drops the player now.
func (p *player) close(reason string) {
	p.mu.Lock()
	p.closeLocked(reason)
	p.mu.Unlock()
}

func (p *player) closeLocked(reason string) {
	if p.closed {
		return
	}
	p.closed, p.reason = true, reason
	p.queue, p.qBytes = nil, 0
	_ = p.conn.Close() // unblocks a writer stuck in writev
	close(p.done)
}

var crlf = []byte("\r\n")

// run writes queued chunks until the player is closed or ended. It waits
// on a channel (never a busy loop) and, with merged writes, at most once
// per window.
func (p *player) run() {
	var last time.Time
	bufs := make(net.Buffers, 0, 64)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-p.wake:
		case <-p.done:
			return
		}
		if wait := p.mw - time.Since(last); p.mw > 0 && wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.done:
				return
			}
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		q := p.queue
		p.queue, p.spare = p.spare[:0], q
		p.qBytes, p.qHasTime = 0, false
		ending := p.ending
		p.mu.Unlock()

		bufs = bufs[:0]
		var n int
		for _, c := range q {
			n += len(c.b)
		}
		if n > 0 {
			if p.chunked {
				bufs = append(bufs, []byte(strconv.FormatInt(int64(n), 16)+"\r\n"))
			}
			for _, c := range q {
				bufs = append(bufs, c.b)
			}
			if p.chunked {
				bufs = append(bufs, crlf)
			}
		}
		if ending && p.chunked {
			bufs = append(bufs, []byte("0\r\n\r\n"))
		}
		clear(q) // let the shared chunks go
		last = time.Now()
		if len(bufs) > 0 {
			_ = p.conn.SetWriteDeadline(last.Add(p.maxDur + 10*time.Second))
			w := bufs // WriteTo consumes the slice header it is given
			if _, err := w.WriteTo(p.conn); err != nil {
				p.close("write: " + err.Error())
				return
			}
			p.sent.Add(uint64(n))
		}
		if ending {
			p.close("stream ended")
			return
		}
	}
}
