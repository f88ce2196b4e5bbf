package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/bench/replay"
)

// sendClock tells a player when the frame it received was sent.
type sendClock interface {
	// sentAt returns the wall time (Unix ns) at which the newest copy of
	// tag i was sent, at or before now.
	sentAt(i int, now int64) (int64, bool)
}

// publisher replays a file over RTMP in real time, looping, and records
// when it sent each frame.
type publisher struct {
	file *replay.File
	url  string

	lastSent []atomic.Int64 // per tag: Unix ns of its newest send
	sent     atomic.Int64   // payload bytes of frames sent (replay.Tag.Frame)
	maxLate  atomic.Int64   // worst lateness against the schedule, ns
	err      atomic.Pointer[error]
	done     chan struct{}
}

func newPublisher(f *replay.File, url string) *publisher {
	return &publisher{file: f, url: url, lastSent: make([]atomic.Int64, len(f.Tags)), done: make(chan struct{})}
}

func (p *publisher) sentAt(i int, now int64) (int64, bool) {
	t := p.lastSent[i].Load()
	return t, t != 0 && t <= now
}

// start connects and publishes; the replay goes on in the background until
// ctx ends or the connection fails (see failed).
func (p *publisher) start(ctx context.Context) error {
	if strings.HasPrefix(p.url, "srt://") {
		return p.startSRT(ctx)
	}
	s := rtmp.NewPushSession(func(o *rtmp.PushSessionOption) {
		o.PushTimeoutMs = 10000
		o.WriteAvTimeoutMs = 10000
	})
	if err := s.Push(p.url); err != nil {
		_ = s.Dispose()
		close(p.done)
		return fmt.Errorf("publish %s: %w", p.url, err)
	}
	go func() {
		defer close(p.done)
		defer s.Dispose()
		if err := p.run(ctx, func(t replay.Tag, ts uint32) error { return writeRTMP(s, t, ts) }); err != nil {
			p.err.Store(&err)
		}
	}()
	return nil
}

// startSRT publishes over SRT as MPEG-TS (srtclient.go).
func (p *publisher) startSRT(ctx context.Context) error {
	s, err := newSRTSink(p.url)
	if err != nil {
		close(p.done)
		return fmt.Errorf("publish %s: %w", p.url, err)
	}
	go func() {
		defer close(p.done)
		defer s.close()
		if err := p.run(ctx, s.write); err != nil {
			p.err.Store(&err)
		}
	}()
	return nil
}

// failed returns the error that stopped the publisher early, if any.
func (p *publisher) failed() error {
	if e := p.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (p *publisher) run(ctx context.Context, write func(t replay.Tag, ts uint32) error) error {
	f := p.file
	start := time.Now()
	sched := replay.Schedule{File: f, Start: start}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for loop := 0; ; loop++ {
		for i, t := range f.Tags {
			if t.Config && loop > 0 {
				continue
			}
			due := sched.At(loop, i)
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				return nil
			}
			now := time.Now()
			if late := int64(now.Sub(due)); late > p.maxLate.Load() {
				p.maxLate.Store(late)
			}
			p.lastSent[i].Store(now.UnixNano())
			if err := write(t, t.TS+uint32(loop)*f.Loop); err != nil {
				return fmt.Errorf("publish %s: %w", p.url, err)
			}
			if t.Frame {
				p.sent.Add(int64(len(t.Payload)))
			}
		}
	}
}

// writeRTMP sends one tag as an RTMP message and flushes it.
func writeRTMP(s *rtmp.PushSession, t replay.Tag, ts uint32) error {
	h := base.RtmpHeader{
		Csid:         csid(t.Type),
		MsgLen:       uint32(len(t.Payload)),
		MsgTypeId:    t.Type,
		MsgStreamId:  rtmp.Msid1,
		TimestampAbs: ts,
	}
	if err := s.Write(rtmp.Message2Chunks(t.Payload, &h)); err != nil {
		return err
	}
	// lal's push session writes through a 4 KiB bufio.Writer
	// (WriteBufSize 0 still gets one, of the default size) that
	// nothing flushes: without this, a message's tail waited in it
	// for the next messages, up to a frame interval, and counted as
	// the server's latency.
	return s.Flush()
}

func csid(typ uint8) int {
	switch typ {
	case replay.TagVideo:
		return rtmp.CsidVideo
	case replay.TagAudio:
		return rtmp.CsidAudio
	}
	return rtmp.CsidAmf
}

// floorClock is the send clock of the floor program, which follows the
// schedule exactly (its lateness counts against it as latency).
type floorClock struct{ sched replay.Schedule }

func (c floorClock) sentAt(i int, now int64) (int64, bool) {
	t, ok := c.sched.LastDue(i, time.Unix(0, now))
	return t.UnixNano(), ok
}
