package tsdemux

import (
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// Interleaving. A TS muxer writes each track's PES when it is full, so an
// audio PES of eight AAC frames (FFmpeg's default) arrives after video
// frames that come later in time: pushed into the hub as they complete,
// audio and video would go backwards against each other. The interleaver
// holds each track's packets and hands on the one with the lowest DTS once
// both tracks have one; a track that falls silent holds the other back at
// most maxSkew (or maxQueued packets).
const (
	maxSkew   = time.Second
	maxQueued = 512
)

type interleaver struct {
	out  func(media.Packet) error
	both bool              // the PMT lists a video and an audio track
	q    [2][]media.Packet // video, audio; payloads owned
	free [][]byte          // payload buffers to reuse
}

func (il *interleaver) tracks(video, audio bool) { il.both = video && audio }

func trackOf(p media.Packet) int {
	if p.Kind == media.KindVideo {
		return 0
	}
	return 1
}

// push queues a copy of p and hands on what is due.
func (il *interleaver) push(p media.Packet) error {
	if !il.both && len(il.q[0]) == 0 && len(il.q[1]) == 0 {
		return il.out(p)
	}
	var buf []byte
	if n := len(il.free); n > 0 {
		buf, il.free = il.free[n-1][:0], il.free[:n-1]
	}
	p.Payload = append(buf, p.Payload...)
	t := trackOf(p)
	il.q[t] = append(il.q[t], p)
	return il.drain(false)
}

// drain hands on packets in DTS order while both tracks have one, or a
// track's queue spans more than maxSkew; all of them with force.
func (il *interleaver) drain(force bool) error {
	for {
		v, a := il.q[0], il.q[1]
		var t int
		switch {
		case len(v) > 0 && len(a) > 0:
			switch {
			// A track whose timestamps jumped far ahead of the other's
			// (a discontinuity, a hostile publisher) would wait, and
			// grow, for ever: its queue is bounded too.
			case overdue(a):
				t = 1
			case overdue(v):
				t = 0
			case a[0].DTS < v[0].DTS:
				t = 1
			}
		case len(v) == 0 && len(a) == 0:
			return nil
		case len(v) > 0 && (force || !il.both || overdue(v)):
			t = 0
		case len(a) > 0 && (force || !il.both || overdue(a)):
			t = 1
		default:
			return nil
		}
		p := il.q[t][0]
		copy(il.q[t], il.q[t][1:])
		il.q[t][len(il.q[t])-1] = media.Packet{}
		il.q[t] = il.q[t][:len(il.q[t])-1]
		err := il.out(p)
		if len(il.free) < maxQueued {
			il.free = append(il.free, p.Payload)
		}
		if err != nil {
			return err
		}
	}
}

func overdue(q []media.Packet) bool {
	return len(q) >= maxQueued || q[len(q)-1].DTS-q[0].DTS > maxSkew
}
