// Package fanout writes one stream's bytes to many player sockets, the way
// the RTMP and HTTP streaming plugins serve a stream to thousands of
// players.
//
// The items of one merge window (SRS's mw_latency) are gathered once per
// stream into one shared buffer (a batch). At the end of the window the
// batch is handed to every player: while a player's socket can take it,
// the dispatching goroutine writes it there at once with one non-blocking
// writev, so a player costs one system call per window and no goroutine
// wake-up. Only a player whose socket is full gets a goroutine of its own,
// which drains its queue with blocking writes; that queue is bounded in
// bytes and in media time, and a player past the bounds is closed, so one
// slow player never holds memory without limit nor slows the others
// (docs/THREATS.md: slow readers).
package fanout

import (
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Item is one message of the stream, encoded for the wire.
type Item struct {
	B []byte
	// TS is the item's media time; Timed says it has one (codec
	// configurations and headers have none). It bounds queue_length.
	TS    time.Duration
	Timed bool
	// Video marks a coded video frame (not a configuration), Key a
	// keyframe: a player that must start on a keyframe skips the video
	// frames before it.
	Video bool
	Key   bool
}

// batch is the items of one window in one shared buffer.
type batch struct {
	first uint64 // sequence number of items[0]
	items []Item
	offs  []int // offset of each item in flat
	flat  []byte
}

func newBatch(first uint64, items []Item) *batch {
	b := &batch{first: first, items: items, offs: make([]int, len(items))}
	if len(items) == 1 {
		b.flat = items[0].B
		return b
	}
	n := 0
	for _, it := range items {
		n += len(it.B)
	}
	b.flat = make([]byte, 0, n)
	for i, it := range items {
		b.offs[i] = len(b.flat)
		b.flat = append(b.flat, it.B...)
	}
	return b
}

func (b *batch) end() uint64 { return b.first + uint64(len(b.items)) }

// Group is the players of one stream that receive the same bytes.
type Group struct {
	mw time.Duration

	dmu sync.Mutex // one dispatch at a time, in order

	mu     sync.Mutex
	sinks  []*Sink // replaced, never modified in place (dispatches read it unlocked)
	pend   []Item
	pendTS time.Duration // media time of the first timed item pending
	timed  bool          // pendTS is set
	seq    uint64        // sequence number of the next item pushed
	timer  *time.Timer
	armed  bool
	closed bool
}

// NewGroup returns a group writing once per mw (0: every item at once).
func NewGroup(mw time.Duration) *Group { return &Group{mw: mw} }

// Push adds an item for every member. With a merge window the item waits
// for the end of the window (mw after the first item pending, or the item
// that makes the pending ones span mw of media time); without, it is
// written at once, by another goroutine.
// Push and Add must be called under one lock of the caller's (the one that
// guards its GOP cache), so that a joining player's start and the items
// pushed after it meet without a gap or a repeat.
func (g *Group) Push(it Item) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.pend = append(g.pend, it)
	g.seq++
	if it.Timed && !g.timed {
		g.pendTS, g.timed = it.TS, true
	}
	// As SRS's consumer: the window also ends once it spans mw of media
	// time, so a backlog read at once (a new subscription replaying the
	// GOP from the ring) goes out at once instead of a window later.
	now := g.mw <= 0 || (it.Timed && it.TS-g.pendTS >= g.mw)
	if !now && !g.armed {
		g.armed = true
		if g.timer == nil {
			g.timer = time.AfterFunc(g.mw, g.Flush)
		} else {
			g.timer.Reset(g.mw)
		}
	}
	g.mu.Unlock()
	if now {
		// Not on the caller's goroutine: it holds the lock that joins
		// need, and a dispatch to thousands of sockets takes a while.
		// Dispatches still go out in order (Flush).
		go g.Flush()
	}
}

// Queue adds an item for every member without a window of its own: it
// waits for the caller's next Flush. For a caller that reads its source in
// batches, once per merge window, and flushes after each batch.
func (g *Group) Queue(it Item) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.pend = append(g.pend, it)
		g.seq++
	}
}

// Flush writes what is pending to every member now.
func (g *Group) Flush() {
	g.dmu.Lock()
	defer g.dmu.Unlock()
	g.mu.Lock()
	items, sinks := g.pend, g.sinks
	first := g.seq - uint64(len(items))
	g.pend, g.armed, g.timed = nil, false, false
	g.mu.Unlock()
	if len(items) == 0 || len(sinks) == 0 {
		return
	}
	dispatch(newBatch(first, items), sinks)
}

// shardMin is the fewest players worth a goroutine of their own in a
// dispatch.
const shardMin = 128

// dispatch hands b to every sink, spread over the CPUs when there are many.
func dispatch(b *batch, sinks []*Sink) {
	shards := min(runtime.GOMAXPROCS(0), len(sinks)/shardMin)
	if shards <= 1 {
		for _, s := range sinks {
			s.deliver(b)
		}
		return
	}
	var wg sync.WaitGroup
	per := (len(sinks) + shards - 1) / shards
	for i := 0; i < len(sinks); i += per {
		part := sinks[i:min(i+per, len(sinks))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range part {
				s.deliver(b)
			}
		}()
	}
	wg.Wait()
}

// Add makes s a member. init (container header, codec configurations, the
// GOP cache) is written first, then every item pushed after this call.
// With waitKey, s skips video frames until the next keyframe.
func (g *Group) Add(s *Sink, init [][]byte, waitKey bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s.mu.Lock()
	s.next, s.waitKey = g.seq, waitKey
	s.mu.Unlock()
	if len(init) > 0 {
		s.Write(init...)
	}
	sinks := make([]*Sink, len(g.sinks), len(g.sinks)+1)
	copy(sinks, g.sinks)
	g.sinks = append(sinks, s)
}

// Remove takes s out of the group (it is not closed).
func (g *Group) Remove(s *Sink) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.sinks {
		if x == s {
			sinks := make([]*Sink, 0, len(g.sinks)-1)
			sinks = append(sinks, g.sinks[:i]...)
			g.sinks = append(sinks, g.sinks[i+1:]...)
			return
		}
	}
}

// Len is the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sinks)
}

// Sinks returns the members.
func (g *Group) Sinks() []*Sink {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sinks
}

// Close writes what is pending and stops the group; later pushes are
// dropped. The members stay open: end or close them.
func (g *Group) Close() {
	g.Flush()
	g.mu.Lock()
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Unlock()
}

// SinkOptions configure one player's socket.
type SinkOptions struct {
	// Lock, when set, is held around every write to the connection, so
	// that other writers of the same socket (RTMP command replies) never
	// interleave with a message half written. It stays locked from a
	// partial write until the rest is written.
	Lock *sync.Mutex
	// Chunked frames every write as an HTTP/1.1 chunk.
	Chunked bool
	// MaxBytes and MaxDur bound what waits for a slow socket: past either
	// the player is closed. MaxDur counts media time (Item.TS).
	MaxBytes int
	MaxDur   time.Duration
	// WriteTimeout bounds one blocking write of a queued player.
	WriteTimeout time.Duration
	// Sent, when set, counts the bytes written (else the sink's own
	// counter does, see Sent).
	Sent *atomic.Uint64
	// OnClose is called once, from whatever goroutine closes the sink,
	// with the reason; the connection is already closed then.
	OnClose func(reason string)
}

// Sink is one player's connection.
type Sink struct {
	conn net.Conn
	raw  syscall.RawConn
	o    SinkOptions
	sent atomic.Uint64

	mu      sync.Mutex
	next    uint64 // first group sequence number this sink wants
	waitKey bool
	paused  bool
	q       net.Buffers // bytes ready for the wire, waiting for the socket
	qBytes  int
	qFirst  time.Duration
	qTimed  bool
	busy    bool // a writer owns the socket (and o.Lock)
	locked  bool // o.Lock is held for a partial write
	final   bool // close once the queue is written
	why     string
	closed  bool
}

// NewSink wraps a player's connection.
func NewSink(conn net.Conn, o SinkOptions) *Sink {
	s := &Sink{conn: conn, o: o}
	if s.o.Sent == nil {
		s.o.Sent = &s.sent
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
		}
	}
	if s.o.WriteTimeout <= 0 {
		s.o.WriteTimeout = 30 * time.Second
	}
	return s
}

// Sent is the bytes written to the connection so far.
func (s *Sink) Sent() uint64 { return s.o.Sent.Load() }

// Closed reports whether the sink is closed (or ending).
func (s *Sink) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.final
}

// SetPaused stops (true) or resumes (false) the group's items for this
// sink; on resume it waits for a keyframe.
func (s *Sink) SetPaused(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paused = paused
	if !paused {
		s.waitKey = true
	}
}

// Write queues bytes outside the group's items (as one write, framed as one
// chunk when Chunked); it never blocks on the socket.
func (s *Sink) Write(bufs ...[]byte) {
	s.send(append([][]byte(nil), bufs...), 0, false, false, "")
}

// End writes raw (unframed, e.g. the last chunk of a chunked response or
// an RTMP end of stream) after what is queued, then closes with why.
func (s *Sink) End(raw []byte, why string) {
	var bufs [][]byte
	if len(raw) > 0 {
		bufs = [][]byte{raw}
	}
	s.send(bufs, 0, false, true, why)
}

// Close closes the sink and its connection now.
func (s *Sink) Close(why string) { s.fail(why) }

// deliver hands a batch of the group to s.
func (s *Sink) deliver(b *batch) {
	s.mu.Lock()
	if s.closed || s.final || s.paused || s.next >= b.end() {
		s.next = max(s.next, b.end())
		s.mu.Unlock()
		return
	}
	start := 0
	if s.next > b.first {
		start = int(s.next - b.first)
	}
	s.next = b.end()
	var pieces [][]byte
	if s.waitKey {
		pieces = make([][]byte, 0, 4)
		for i := start; i < len(b.items); i++ {
			it := b.items[i]
			if it.Video && it.Key {
				s.waitKey = false
				pieces = append(pieces, b.flat[b.offs[i]:])
				break
			}
			if !it.Video {
				pieces = append(pieces, it.B)
			}
		}
	} else {
		pieces = [][]byte{b.flat[b.offs[start]:]}
	}
	s.mu.Unlock()
	if len(pieces) == 0 {
		return
	}
	// The batch's last media time is checked against the queue's first.
	var ts time.Duration
	timed := false
	for i := len(b.items) - 1; i >= start; i-- {
		if b.items[i].Timed {
			ts, timed = b.items[i].TS, true
			break
		}
	}
	s.send(pieces, ts, timed, false, "")
}

var crlf = []byte("\r\n")

// send writes pieces now if the socket takes them, else queues them for
// the sink's drain goroutine. ts is the media time of the pieces' last
// timed item. end closes the sink after them.
func (s *Sink) send(pieces [][]byte, ts time.Duration, timed, end bool, why string) {
	s.mu.Lock()
	if s.closed || s.final {
		s.mu.Unlock()
		return
	}
	if s.o.Chunked && !end {
		n := 0
		for _, p := range pieces {
			n += len(p)
		}
		if n == 0 {
			s.mu.Unlock()
			return
		}
		hdr := append(strconv.AppendInt(make([]byte, 0, 12), int64(n), 16), '\r', '\n')
		framed := make([][]byte, 0, len(pieces)+2)
		framed = append(append(append(framed, hdr), pieces...), crlf)
		pieces = framed
	}
	if end {
		s.final, s.why = true, why
	}
	if s.busy {
		over := s.queueLocked(pieces, ts, timed)
		s.mu.Unlock()
		if over != "" {
			s.fail(over)
		}
		return
	}
	s.busy = true
	s.mu.Unlock()

	n, locked, err := s.tryWrite(pieces)
	if err != nil {
		if locked {
			s.o.Lock.Unlock()
		}
		s.fail("write: " + reason(err))
		return
	}
	rest := consume(pieces, n)
	s.mu.Lock()
	if len(rest) == 0 && len(s.q) == 0 {
		s.busy = false
		if locked {
			s.o.Lock.Unlock()
		}
		final, why := s.final, s.why
		s.mu.Unlock()
		if final {
			s.fail(why)
		}
		return
	}
	// The socket is full: what is left goes first in the queue, and a
	// goroutine writes the queue with blocking writes.
	s.locked = locked
	q := make(net.Buffers, 0, len(rest)+len(s.q))
	s.q = append(append(q, rest...), s.q...)
	for _, p := range rest {
		s.qBytes += len(p)
	}
	if timed {
		s.qFirst, s.qTimed = ts, true // older than what others queued meanwhile
	}
	over := s.overLocked(ts, timed)
	if over != "" {
		s.locked = false
		s.mu.Unlock()
		if locked {
			s.o.Lock.Unlock()
		}
		s.fail(over)
		return
	}
	s.mu.Unlock()
	go s.drain()
}

// queueLocked appends pieces to the queue and reports a bound passed.
func (s *Sink) queueLocked(pieces [][]byte, ts time.Duration, timed bool) string {
	s.q = append(s.q, pieces...)
	for _, p := range pieces {
		s.qBytes += len(p)
	}
	if timed && !s.qTimed {
		s.qFirst, s.qTimed = ts, true
	}
	return s.overLocked(ts, timed)
}

// TooSlow starts the reason of a sink closed for its queue's bounds.
const TooSlow = "player too slow"

// overLocked reports a bound of the queue passed, ts being the media time
// just queued.
func (s *Sink) overLocked(ts time.Duration, timed bool) string {
	switch {
	case s.o.MaxBytes > 0 && s.qBytes > s.o.MaxBytes:
		return TooSlow + ": " + strconv.Itoa(s.qBytes) + " bytes queued, limit " + strconv.Itoa(s.o.MaxBytes)
	case s.o.MaxDur > 0 && timed && s.qTimed && ts-s.qFirst > s.o.MaxDur:
		return TooSlow + ": " + (ts - s.qFirst).String() + " queued, limit " + s.o.MaxDur.String()
	}
	return ""
}

// maxIovecs keeps a direct write under IOV_MAX (1024); longer lists go
// through the drain goroutine, whose net.Buffers splits them.
const maxIovecs = 512

// tryWrite writes what the socket takes now, without waiting. locked
// reports o.Lock held (it must stay held if the write was partial).
func (s *Sink) tryWrite(pieces [][]byte) (n int, locked bool, err error) {
	if s.raw == nil || len(pieces) > maxIovecs {
		return 0, false, nil
	}
	if s.o.Lock != nil {
		if !s.o.Lock.TryLock() {
			return 0, false, nil // another writer: queue behind it
		}
		locked = true
	}
	var werr error
	rerr := s.raw.Write(func(fd uintptr) bool {
		n, werr = unix.Writev(int(fd), pieces)
		return true
	})
	if n < 0 {
		n = 0
	}
	if n > 0 {
		s.o.Sent.Add(uint64(n))
	}
	switch {
	case rerr != nil:
		return n, locked, rerr
	case werr == nil, errors.Is(werr, unix.EAGAIN), errors.Is(werr, unix.EINTR):
		return n, locked, nil
	}
	return n, locked, werr
}

// consume drops the first n bytes of pieces, copying the slice headers so
// that shared buffers are never modified.
func consume(pieces [][]byte, n int) [][]byte {
	for i, p := range pieces {
		if n < len(p) {
			rest := make([][]byte, 0, len(pieces)-i)
			rest = append(rest, p[n:])
			return append(rest, pieces[i+1:]...)
		}
		n -= len(p)
	}
	return nil
}

// drain writes the queue with blocking writes until it is empty.
func (s *Sink) drain() {
	s.mu.Lock()
	locked := s.locked
	s.locked = false
	s.mu.Unlock()
	defer func() {
		if locked {
			s.o.Lock.Unlock()
		}
	}()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if len(s.q) == 0 {
			s.busy = false
			final, why := s.final, s.why
			s.mu.Unlock()
			if final {
				s.fail(why)
			}
			return
		}
		q := s.q
		s.q, s.qBytes, s.qTimed = nil, 0, false
		s.mu.Unlock()
		if s.o.Lock != nil && !locked {
			s.o.Lock.Lock()
			locked = true
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
		n, err := q.WriteTo(s.conn)
		_ = s.conn.SetWriteDeadline(time.Time{})
		s.o.Sent.Add(uint64(n))
		if err != nil {
			s.fail("write: " + reason(err))
			return
		}
	}
}

// fail closes the sink and its connection once and reports why.
func (s *Sink) fail(why string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.q, s.qBytes = nil, 0
	s.mu.Unlock()
	if tcp, ok := s.conn.(*net.TCPConn); ok && strings.HasPrefix(why, TooSlow) {
		_ = tcp.SetLinger(0) // reset: drop what the kernel still holds for it
	}
	_ = s.conn.Close()
	if s.o.OnClose != nil {
		s.o.OnClose(why)
	}
}

func reason(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}
