package main

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	fo "github.com/rill-media/rill/plugins/internal/fanout"
)

// chunk is one encoded packet (or header) shared read-only by every player
// of a feed.
type chunk struct {
	b   []byte
	dts time.Duration
	seq uint64 // of the cached packet it encodes (source.gopSeq)
}

// player is one HTTP streaming connection (hijacked from net/http). Its
// socket is a member of its feed's fan-out group: the feed's bytes reach it
// with one writev per merged-write window, written straight from the
// dispatching goroutine while the socket takes them; a slow socket gets a
// bounded queue and is dropped past it, so it never blocks the source or
// other players (docs/THREATS.md #23). A player has no goroutine of its own
// while it keeps up.
type player struct {
	id      string
	remote  string
	format  format
	url     string
	log     hclog.Logger
	started time.Time
	sink    *fo.Sink
	chunked bool

	mu       sync.Mutex
	reason   string
	attached bool // to its source
	detached bool
	done     chan struct{}
	// onDone runs once after the connection closed (detach, reports).
	onDone func(reason string)
}

func newPlayer(id, remote string, f format, conn net.Conn, chunked bool, cfg *config, log hclog.Logger) *player {
	p := &player{
		id: id, remote: remote, format: f, log: log, started: time.Now(), chunked: chunked,
		done: make(chan struct{}),
	}
	p.sink = fo.NewSink(conn, fo.SinkOptions{
		Chunked:      chunked,
		MaxBytes:     int(min(cfg.QueueBytes, 1<<40)),
		MaxDur:       cfg.QueueDuration,
		WriteTimeout: cfg.QueueDuration + 10*time.Second,
		OnClose: func(why string) {
			p.mu.Lock()
			p.reason = why
			onDone := p.onDone
			p.mu.Unlock()
			close(p.done)
			if len(why) >= len(fo.TooSlow) && why[:len(fo.TooSlow)] == fo.TooSlow {
				log.Warn("player dropped, it does not read fast enough", "reason", why, "sent_bytes", p.sink.Sent())
			}
			if onDone != nil {
				// Not on the caller's goroutine: it may hold the
				// source's lock (a write failing inside a push).
				go onDone(why)
			}
		},
	})
	return p
}

// end flushes what is queued, finishes the response and closes.
func (p *player) end() {
	var last []byte
	if p.chunked {
		last = []byte("0\r\n\r\n")
	}
	p.sink.End(last, "stream ended")
}

// close drops the player now.
func (p *player) close(reason string) { p.sink.Close(reason) }

// takeDetach reports (once) that the player is closed and attached, so
// that it is detached from its source exactly once.
func (p *player) takeDetach() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.attached && !p.detached && p.reason != ""
	if ok {
		p.detached = true
	}
	return ok
}
