package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/bench/replay"
)

// window is the steady-state measurement window shared by the players of a
// row: frames sent inside it are counted and timed.
type window struct {
	t0, t1 atomic.Int64 // Unix ns; 0: not started / not ended
}

func (w *window) contains(sent int64) bool {
	t0, t1 := w.t0.Load(), w.t1.Load()
	return t0 != 0 && sent >= t0 && (t1 == 0 || sent <= t1)
}

// lalRTMPPlayers makes the RTMP players lal's rtmp.PullSession instead of
// the built-in client (rtmpclient.go), to compare the two (-lal-rtmp).
var lalRTMPPlayers bool

// player is one RTMP, HTTP-FLV, SRT, RTSP or WHEP pull session.
type player struct {
	url   string
	file  *replay.File
	clock sendClock
	win   *window

	begin time.Time // when the pull started

	mu         sync.Mutex
	first      time.Duration // to the first video frame; 0: none yet
	bytes      int64         // every payload byte received
	frameBytes int64         // payload bytes (as published) of frames sent in the window
	frames     int64         // frames received that were sent in the window
	unknown    int64         // video frames Identify did not recognise
	lat        []int32       // µs, for frames sent in the window
	err        error

	dispose func()
	done    <-chan error
}

// pull connects the player (RTMP or HTTP-FLV by URL scheme) and returns
// once it plays or fails.
func (p *player) pull(ctx context.Context) error {
	p.begin = time.Now()
	switch {
	case strings.HasPrefix(p.url, "rtmp://") && !lalRTMPPlayers:
		s, err := dialRTMP(ctx, p.url, func(typ uint8, _ uint32, payload []byte) { p.onMessage(typ, payload) })
		if err != nil {
			p.fail(err)
			return err
		}
		p.dispose, p.done = s.close, s.done
	case strings.HasPrefix(p.url, "rtmp://"):
		s := rtmp.NewPullSession(func(o *rtmp.PullSessionOption) {
			o.PullTimeoutMs = 10000
			o.ReadBufSize = 16 << 10
		})
		s.WithOnReadRtmpAvMsg(func(m base.RtmpMsg) { p.onMessage(m.Header.MsgTypeId, m.Payload) })
		p.dispose = func() { _ = s.Dispose() }
		if err := s.Pull(p.url); err != nil {
			p.fail(err)
			return err
		}
		p.done = s.WaitChan()
	case strings.HasPrefix(p.url, "http://"):
		s, err := dialFLV(ctx, p.url, p.onMessage)
		if err != nil {
			p.fail(err)
			return err
		}
		p.dispose, p.done = s.close, s.done
	case strings.HasPrefix(p.url, "srt://"):
		s, err := dialSRTPlay(ctx, p.url, p.onMessage)
		if err != nil {
			p.fail(err)
			return err
		}
		p.dispose, p.done = s.close, s.done
	case strings.HasPrefix(p.url, "rtsp://"):
		s, err := dialRTSP(p.url, p.onMessage)
		if err != nil {
			p.fail(err)
			return err
		}
		p.dispose, p.done = s.close, s.done()
	case strings.HasPrefix(p.url, "whep://"):
		s, err := dialWHEP(ctx, p.url, p.onMessage)
		if err != nil {
			p.fail(err)
			return err
		}
		p.dispose, p.done = s.close, s.doneCh
	default:
		return fmt.Errorf("player url %q: want rtmp://, http://, srt://, rtsp:// or whep://", p.url)
	}
	return nil
}

func (p *player) onMessage(typ uint8, payload []byte) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += int64(len(payload))
	if typ != replay.TagVideo || len(payload) < 2 || payload[1] != 1 {
		return // audio, data, sequence headers
	}
	if p.first == 0 {
		p.first = max(now.Sub(p.begin), time.Nanosecond)
	}
	i, ok := p.file.Identify(payload)
	if !ok {
		p.unknown++
		return
	}
	ns := now.UnixNano()
	sent, ok := p.clock.sentAt(i, ns)
	if !ok || !p.win.contains(sent) {
		return
	}
	p.frames++
	p.frameBytes += int64(len(p.file.Tags[i].Payload))
	p.lat = append(p.lat, int32(min((ns-sent)/1e3, 1<<31-1)))
}

func (p *player) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// ended reports whether the session ended (and records why).
func (p *player) ended() bool {
	if p.done == nil {
		return true
	}
	select {
	case err := <-p.done:
		if err == nil {
			err = errors.New("closed by server")
		}
		p.fail(err)
		p.done = nil
		return true
	default:
		return false
	}
}

func (p *player) close() {
	if p.dispose != nil {
		p.dispose()
	}
}

// playerStats is a consistent copy of a player's counters.
type playerStats struct {
	first             time.Duration
	bytes, frameBytes int64
	frames, unknown   int64
	lat               []int32
	err               error
}

func (p *player) stats() playerStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return playerStats{first: p.first, bytes: p.bytes, frameBytes: p.frameBytes, frames: p.frames,
		unknown: p.unknown, lat: append([]int32(nil), p.lat...), err: p.err}
}

// startPlayers starts n players of url, evenly spaced over ramp (0: all at
// the same instant; player i starts at i*ramp/n), and waits until each
// plays or fails (bounded by the pull timeout). A player's first frame is
// timed from its own start.
func startPlayers(ctx context.Context, n int, url string, f *replay.File, clock sendClock, win *window, ramp time.Duration) []*player {
	ps := make([]*player, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range ps {
		p := &player{url: url, file: f, clock: clock, win: win}
		ps[i] = p
		if ramp > 0 && i > 0 {
			at := t0.Add(ramp * time.Duration(i) / time.Duration(n))
			if d := time.Until(at); d > 0 && !sleepCtx(ctx, d) {
				// Cut short: the players not started count as failed.
				for j := i; j < n; j++ {
					ps[j] = &player{url: url, file: f, clock: clock, win: win, err: ctx.Err()}
				}
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.pull(ctx)
		}()
	}
	wg.Wait()
	return ps
}

// waitFirstFrames waits until every player has seen a video frame, or
// failed, or the timeout.
func waitFirstFrames(ps []*player, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		all := true
		for _, p := range ps {
			p.mu.Lock()
			ok := p.first != 0 || p.err != nil
			p.mu.Unlock()
			if !ok && !p.ended() {
				all = false
				break
			}
		}
		if all {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func closePlayers(ps []*player) {
	var wg sync.WaitGroup
	for _, p := range ps {
		p.ended()
		wg.Add(1)
		go func() { defer wg.Done(); p.close() }()
	}
	wg.Wait()
}
