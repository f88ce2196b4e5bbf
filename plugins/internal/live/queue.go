package live

import (
	"context"
	"sync"

	"github.com/rill-media/rill/sdk/media"
)

// Queue (made by NewQueue) is a Handler for a reader that consumes packets on a goroutine of
// its own (an HLS muxer writing files, a recorder, a WebRTC or SRT
// packetizer): it copies what the tap delivers into a bounded queue that
// Next drains. A reader that falls more than Max packets or MaxBytes
// behind loses the queue and resumes at the next video keyframe (audio-only
// streams: at once), with OnDrop told why; the tap and the other readers
// never wait for it.
type Queue struct {
	// Max and MaxBytes bound the backlog (0: 4096 packets, 64 MiB).
	Max      int
	MaxBytes int
	// OnDrop, when set, is called (on the tap's goroutine) when the queue
	// is dropped, with the number of packets lost.
	OnDrop func(lost int, why string)

	mu       sync.Mutex
	q        []media.Packet
	bytes    int
	waitKey  bool
	sawVideo bool
	end      error
	done     bool
	wake     chan struct{}
	dropped  uint64
}

// NewQueue returns a queue of at most max packets and maxBytes of payload.
func NewQueue(max, maxBytes int) *Queue {
	return &Queue{Max: max, MaxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

func (q *Queue) limits() (int, int) {
	n, b := q.Max, q.MaxBytes
	if n <= 0 {
		n = 4096
	}
	if b <= 0 {
		b = 64 << 20
	}
	return n, b
}

func (q *Queue) push(p media.Packet) {
	n, b := q.limits()
	if len(q.q) >= n || q.bytes+len(p.Payload) > b {
		lost := len(q.q)
		why := "queue full"
		q.dropped += uint64(lost)
		clear(q.q)
		q.q, q.bytes = q.q[:0], 0
		q.waitKey = q.sawVideo
		if q.OnDrop != nil {
			q.OnDrop(lost, why)
		}
	}
	if p.Kind == media.KindVideo && !p.IsConfig() {
		q.sawVideo = true
		if q.waitKey && !p.IsKey() {
			q.dropped++
			return
		}
		q.waitKey = false
	}
	q.q = append(q.q, p.Clone())
	q.bytes += len(p.Payload)
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Start implements Handler: the configurations and the GOP cache come first.
func (q *Queue) Start(init Init) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range []*media.Packet{init.Meta, init.Video, init.Audio} {
		if c != nil {
			q.push(*c)
		}
	}
	q.sawVideo = init.SawVideo
	q.waitKey = init.SawVideo && len(init.GOP) == 0
	for _, p := range init.GOP {
		q.push(p)
	}
	q.signal()
}

// Packets implements Handler.
func (q *Queue) Packets(ps []media.Packet, _ []Mark) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range ps {
		q.push(p)
	}
}

// Flush implements Handler.
func (q *Queue) Flush() { q.signal() }

// End implements Handler: Next returns err once the queue is drained.
func (q *Queue) End(err error) {
	q.mu.Lock()
	q.end, q.done = err, true
	q.mu.Unlock()
	q.signal()
}

// Dropped is the number of packets this queue skipped.
func (q *Queue) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Next returns the queued packets (owned by the caller), blocking until
// there are some, the stream ends (its error) or ctx ends. buf is reused
// for the result.
func (q *Queue) Next(ctx context.Context, buf []media.Packet) ([]media.Packet, error) {
	for {
		q.mu.Lock()
		if len(q.q) > 0 {
			out := append(buf[:0], q.q...)
			clear(q.q)
			q.q, q.bytes = q.q[:0], 0
			q.mu.Unlock()
			return out, nil
		}
		if q.done {
			err := q.end
			q.mu.Unlock()
			return buf[:0], err
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return buf[:0], ctx.Err()
		}
	}
}
