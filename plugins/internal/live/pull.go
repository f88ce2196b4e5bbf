package live

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// Puller is one reader of a tap's stream that takes packets one at a time
// on its own goroutine (an SRT or WebRTC player): a Join with a bounded
// Queue behind it. A puller that falls behind loses its backlog and resumes
// at the next keyframe (q.OnDrop tells why); the tap and the other readers
// never wait for it.
type Puller struct {
	rd  *Reader
	q   *Queue
	buf []media.Packet
	i   int
}

// DefaultGopMaxFrames bounds a GOP cache as SRS's gop_cache_max_frames.
const DefaultGopMaxFrames = 2500

// Pull joins ref with opts behind a queue of the default bounds and waits
// until the stream is subscribed or ctx ends. A drop of the queue (the
// reader fell behind) is logged to log, with why. The error is the
// subscription's (errors.Is sees sdk.ErrNotFound, sdk.ErrForbidden).
func (t *Tap) Pull(ctx context.Context, ref sdk.StreamRef, opts Options, log hclog.Logger) (*Puller, error) {
	return t.PullBounded(ctx, ref, opts, 0, 0, log)
}

// PullBounded is Pull behind a queue of at most max packets and maxBytes
// (0: the defaults): a realtime player (WebRTC) bounds its backlog to
// seconds, not the default minute.
func (t *Tap) PullBounded(ctx context.Context, ref sdk.StreamRef, opts Options, max, maxBytes int, log hclog.Logger) (*Puller, error) {
	q := NewQueue(max, maxBytes)
	if log != nil {
		q.OnDrop = func(lost int, why string) {
			log.Warn("player behind, skipping to the next keyframe", "packets", lost, "reason", why)
		}
	}
	rd := t.Join(ref, opts, q)
	select {
	case <-rd.Stream().Ready():
	case <-ctx.Done():
		rd.Leave()
		return nil, ctx.Err()
	}
	if err := rd.Stream().Err(); err != nil {
		rd.Leave()
		return nil, err
	}
	return &Puller{rd: rd, q: q}, nil
}

// Read returns the next packet, valid until the next Read: first the
// stream's metadata and codec configurations, then the GOP cache, then live
// packets; the stream's end (io.EOF) once all were read.
func (p *Puller) Read(ctx context.Context) (media.Packet, error) {
	for p.i >= len(p.buf) {
		ps, err := p.q.Next(ctx, p.buf)
		if err != nil {
			return media.Packet{}, err
		}
		p.buf, p.i = ps, 0
	}
	pkt := p.buf[p.i]
	p.i++
	return pkt, nil
}

// Close leaves the stream; the last reader's leave ends the subscription.
func (p *Puller) Close() error {
	p.rd.Leave()
	return nil
}
