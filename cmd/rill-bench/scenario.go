package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rill-media/rill/bench/replay"
)

// timing bounds every phase of a row.
type timing struct {
	// ramp spreads the joins of each stream's players evenly over this
	// long (0: they all start at the same instant).
	ramp   time.Duration
	join   time.Duration // after the last player started, players have this long to see their first frame
	settle time.Duration // after the joins, before the window
	window time.Duration // the steady-state measurement window
	grace  time.Duration // after the window, for frames sent inside it
}

// result is one row of a table.
type result struct {
	server  string
	failed  string // non-empty: the row failed, the figures are absent
	players int    // players started
	playing int    // players that got a video frame
	dropped int    // players whose session ended before the end of the window
	usage   usage
	// full is the share of players that received ≥ 95 % of the video
	// bytes published during the window.
	full               float64
	first50, first99   time.Duration
	lat50, lat99       time.Duration
	samples            int     // latency samples
	unknown            float64 // share of video frames not recognised
	client             float64 // CPU % of this load tool over the window
	published          int64   // video bytes published in the window (per stream)
	received, expected int64   // summed over players
	late               time.Duration
}

// stream is one published stream and the players of it: a publisher (send
// clock from its own records) or the floor (send clock from its schedule).
type stream struct {
	playURL string
	file    *replay.File
	clock   sendClock
	// publishedBetween is the video bytes sent in [t0, t1].
	published func(t0, t1 time.Time) int64
	players   int
}

// measure joins the players of every stream (all at once, or over
// tm.ramp), waits for their first frames, settles, then measures the server
// over the window, which therefore starts after every player has joined.
// It never panics on a bad server: a failure ends up in result.failed.
func measure(ctx context.Context, srv *server, streams []stream, tm timing) result {
	r := result{server: srv.name}
	win := &window{}
	var all []*player
	groups := make([][]*player, len(streams))
	defer func() { closePlayers(all) }()

	// The streams' players join side by side, each stream's over tm.ramp.
	type joined struct {
		i  int
		ps []*player
	}
	ch := make(chan joined, len(streams))
	for i, st := range streams {
		go func() { ch <- joined{i, startPlayers(ctx, st.players, st.playURL, st.file, st.clock, win, tm.ramp)} }()
	}
	for range streams {
		j := <-ch
		groups[j.i] = j.ps
		all = append(all, j.ps...)
	}
	r.players = len(all)
	waitFirstFrames(all, tm.join)
	if !srv.alive() {
		r.failed = "server exited: " + srv.logTail()
		return r
	}
	if !sleepCtx(ctx, tm.settle) {
		r.failed = ctx.Err().Error()
		return r
	}

	smp := startSampler(srv.procs, 250*time.Millisecond)
	self := startSampler(procSet{pids: []int{os.Getpid()}, alone: true}, time.Second)
	t0 := time.Now()
	win.t0.Store(t0.UnixNano())
	ok := sleepCtx(ctx, tm.window)
	t1 := time.Now()
	win.t1.Store(t1.UnixNano())
	r.usage = smp.finish()
	r.client = self.finish().cpu
	if !ok {
		r.failed = ctx.Err().Error()
		return r
	}
	if !srv.alive() {
		r.failed = "server exited: " + srv.logTail()
		return r
	}
	sleepCtx(ctx, tm.grace)

	for _, p := range all {
		if p.ended() {
			r.dropped++
		}
	}
	var firsts []time.Duration
	var lat []int32
	var frames, unknown int64
	var full int
	for i, st := range streams {
		pub := st.published(t0, t1)
		r.published = pub
		for _, p := range groups[i] {
			s := p.stats()
			if s.first > 0 {
				firsts = append(firsts, s.first)
				r.playing++
			}
			lat = append(lat, s.lat...)
			frames += s.frames
			unknown += s.unknown
			r.received += s.frameBytes
			r.expected += pub
			if pub > 0 && float64(s.frameBytes) >= 0.95*float64(pub) {
				full++
			}
		}
	}
	if r.players > 0 {
		r.full = float64(full) / float64(r.players)
	}
	if frames+unknown > 0 {
		r.unknown = float64(unknown) / float64(frames+unknown)
	}
	r.first50, r.first99 = percentiles(firsts)
	r.samples = len(lat)
	slices.Sort(lat)
	if len(lat) > 0 {
		r.lat50 = time.Duration(lat[len(lat)/2]) * time.Microsecond
		r.lat99 = time.Duration(lat[min(len(lat)-1, len(lat)*99/100)]) * time.Microsecond
	}
	if r.playing == 0 {
		r.failed = "no player got a video frame"
		for _, p := range all {
			if s := p.stats(); s.err != nil {
				r.failed += ": " + s.err.Error()
				break
			}
		}
	}
	return r
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// publishOne starts a publisher to url and waits until the server has its
// first GOP (so that players get a fast start).
func publishOne(ctx context.Context, f *replay.File, url string) (*publisher, error) {
	p := newPublisher(f, url)
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *publisher) stream(playURL string, players int) stream {
	return stream{
		playURL: playURL, file: p.file, clock: p, players: players,
		published: func(t0, t1 time.Time) int64 {
			// The publisher counts what it sent; sample the counter
			// through its send records instead of at t0/t1 so that the
			// function can be called after the window.
			return p.sentBetween(t0, t1)
		},
	}
}

// sentBetween sums the payload bytes of the frames whose newest send lies
// in [t0, t1]. Frames are sent once per pass (Loop ≥ 30 s, longer than any
// window), so the newest send of each frame is the one that matters.
func (p *publisher) sentBetween(t0, t1 time.Time) int64 {
	var n int64
	a, b := t0.UnixNano(), t1.UnixNano()
	for i, t := range p.file.Tags {
		if !t.Frame {
			continue
		}
		if s := p.lastSent[i].Load(); s >= a && s <= b {
			n += int64(len(t.Payload))
		}
	}
	return n
}

func floorStream(srv *server, f *replay.File, players int) stream {
	sched := replay.Schedule{File: f, Start: srv.start}
	return stream{
		playURL: srv.flvURL("floor"), file: f, clock: floorClock{sched}, players: players,
		published: sched.FrameBytesDue,
	}
}

func (r result) String() string {
	if r.failed != "" {
		return fmt.Sprintf("%-10s failed: %s", r.server, r.failed)
	}
	return fmt.Sprintf("%-10s players=%d/%d dropped=%d late=%v cpu=%.1f%% rss=%.1fMiB pss=%.1fMiB full=%.0f%% first=%v/%v lat=%v/%v samples=%d unknown=%.1f%% client=%.0f%%",
		r.server, r.playing, r.players, r.dropped, r.late.Round(time.Millisecond), r.usage.cpu, float64(r.usage.peakRSS)/1024, float64(r.usage.peakPSS)/1024,
		r.full*100, r.first50.Round(time.Millisecond), r.first99.Round(time.Millisecond),
		r.lat50.Round(time.Millisecond), r.lat99.Round(time.Millisecond), r.samples, r.unknown*100, r.client)
}
