package live

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// fakeRing is an in-memory stream: Write appends, End ends it.
type fakeRing struct {
	mu     sync.Mutex
	pkts   []media.Packet
	pos    int
	ended  bool
	closed bool
	wake   chan struct{}
}

func newFakeRing() *fakeRing { return &fakeRing{wake: make(chan struct{}, 1)} }

func (f *fakeRing) Write(p media.Packet) {
	f.mu.Lock()
	f.pkts = append(f.pkts, p.Clone())
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeRing) End() {
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fakeRing) TryRead() (media.Packet, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pos < len(f.pkts) {
		p := f.pkts[f.pos]
		f.pos++
		return p, true, nil
	}
	if f.ended {
		return media.Packet{}, false, io.EOF
	}
	return media.Packet{}, false, nil
}

func (f *fakeRing) Read(ctx context.Context) (media.Packet, error) {
	for {
		p, ok, err := f.TryRead()
		if err != nil || ok {
			return p, err
		}
		select {
		case <-f.wake:
		case <-ctx.Done():
			return media.Packet{}, ctx.Err()
		}
	}
}

func (f *fakeRing) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeRing) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// opener hands out rings in order and counts subscriptions.
type opener struct {
	mu    sync.Mutex
	rings []*fakeRing
	opens int
	err   error
}

func (o *opener) open(context.Context, sdk.ClientInfo, sdk.StreamRef, sdk.SubscribeOptions) (Source, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return nil, o.err
	}
	r := o.rings[o.opens]
	o.opens++
	return r, nil
}

func (o *opener) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opens
}

var ref = sdk.StreamRef{Vhost: "v", App: "live", Stream: "s"}

func vcfg() media.Packet {
	return media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: []byte{1, 2}}
}
func frame(ms int, key bool) media.Packet {
	p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: time.Duration(ms) * time.Millisecond, Payload: []byte{byte(ms)}}
	p.PTS = p.DTS
	if key {
		p.Flags |= media.FlagKey
	}
	return p
}

// next reads packets from q until n have come or the stream ended.
func next(t *testing.T, q *Queue, n int) ([]media.Packet, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []media.Packet
	for len(out) < n {
		ps, err := q.Next(ctx, nil)
		out = append(out, ps...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func dtsList(ps []media.Packet) []int {
	var out []int
	for _, p := range ps {
		if !p.IsConfig() {
			out = append(out, int(p.DTS/time.Millisecond))
		}
	}
	return out
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTap(t *testing.T) {
	for _, pace := range []time.Duration{0, 20 * time.Millisecond} {
		t.Run("pace="+pace.String(), func(t *testing.T) {
			t.Run("late joiner gets the gop from the keyframe", func(t *testing.T) { testLateJoiner(t, pace) })
			t.Run("slow reader is isolated", func(t *testing.T) { testSlowReader(t, pace) })
			t.Run("last reader closes the subscription", func(t *testing.T) { testLastReader(t, pace) })
			t.Run("stream end and republish", func(t *testing.T) { testRepublish(t, pace) })
		})
	}
	t.Run("subscribe error", testSubscribeError)
}

func testLateJoiner(t *testing.T, pace time.Duration) {
	ring := newFakeRing()
	o := &opener{rings: []*fakeRing{ring}}
	tap := New(context.Background(), o.open, nil)
	opts := Options{Pace: pace, GopCache: true}
	first := NewQueue(0, 0)
	r1 := tap.Join(ref, opts, first)
	ring.Write(vcfg())
	for i, key := range []bool{true, false, false, true, false} {
		ring.Write(frame(i*10, key))
	}
	if _, err := next(t, first, 6); err != nil {
		t.Fatal(err)
	}
	late := NewQueue(0, 0)
	r2 := tap.Join(ref, opts, late)
	ring.Write(frame(50, false))
	got, err := next(t, late, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].IsConfig() {
		t.Fatalf("late joiner's first packet %v, want the sequence header", got[0])
	}
	if want := []int{30, 40, 50}; !equal(dtsList(got), want) {
		t.Fatalf("late joiner got %v, want %v (gop from the last keyframe, then live)", dtsList(got), want)
	}
	if o.count() != 1 {
		t.Fatalf("%d subscriptions, want 1", o.count())
	}
	r1.Leave()
	r2.Leave()
	tap.Wait()
}

func testSlowReader(t *testing.T, pace time.Duration) {
	ring := newFakeRing()
	o := &opener{rings: []*fakeRing{ring}}
	tap := New(context.Background(), o.open, nil)
	opts := Options{Pace: pace, GopCache: true}
	var drops []string
	var dmu sync.Mutex
	slow := NewQueue(8, 0)
	slow.OnDrop = func(lost int, why string) {
		dmu.Lock()
		drops = append(drops, why)
		dmu.Unlock()
	}
	fast := NewQueue(0, 0)
	rs := tap.Join(ref, opts, slow) // never read until the end
	rf := tap.Join(ref, opts, fast)
	const n = 100
	for i := range n {
		ring.Write(frame(i*10, i%25 == 0))
	}
	got, err := next(t, fast, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("fast reader got %d packets, want %d", len(got), n)
	}
	ring.Write(frame(n*10, true))
	ring.End()
	if _, err := next(t, fast, 1<<30); !errors.Is(err, io.EOF) {
		t.Fatalf("fast reader's end %v, want EOF", err)
	}
	left, err := next(t, slow, 1<<30)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("slow reader's end %v, want EOF", err)
	}
	dmu.Lock()
	nd := len(drops)
	dmu.Unlock()
	if nd == 0 || slow.Dropped() == 0 {
		t.Fatal("slow reader was never dropped")
	}
	if len(left) == 0 || len(left) > 8 {
		t.Fatalf("slow reader kept %d packets, want 1..8", len(left))
	}
	if !left[0].IsKey() {
		t.Fatalf("slow reader resumed at %v, want a keyframe", left[0])
	}
	rs.Leave()
	rf.Leave()
	tap.Wait()
}

func testLastReader(t *testing.T, pace time.Duration) {
	ring := newFakeRing()
	o := &opener{rings: []*fakeRing{ring}}
	tap := New(context.Background(), o.open, nil)
	opts := Options{Pace: pace}
	a, b := NewQueue(0, 0), NewQueue(0, 0)
	ra := tap.Join(ref, opts, a)
	rb := tap.Join(ref, opts, b)
	ring.Write(frame(0, true))
	if _, err := next(t, a, 1); err != nil {
		t.Fatal(err)
	}
	ra.Leave()
	if tap.Len() != 1 {
		t.Fatal("stream closed with a reader left")
	}
	rb.Leave()
	rb.Leave() // idempotent
	tap.Wait()
	if !ring.isClosed() {
		t.Fatal("subscription not closed after the last reader left")
	}
	if tap.Len() != 0 {
		t.Fatal("stream still listed")
	}
}

func testRepublish(t *testing.T, pace time.Duration) {
	r1, r2 := newFakeRing(), newFakeRing()
	o := &opener{rings: []*fakeRing{r1, r2}}
	tap := New(context.Background(), o.open, nil)
	opts := Options{Pace: pace, GopCache: true}
	q := NewQueue(0, 0)
	tap.Join(ref, opts, q)
	r1.Write(vcfg())
	r1.Write(frame(1000, true))
	r1.End()
	got, err := next(t, q, 1<<30)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end %v, want EOF", err)
	}
	if want := []int{1000}; !equal(dtsList(got), want) {
		t.Fatalf("got %v, want %v", dtsList(got), want)
	}
	tap.Wait()
	// The republished stream: a new subscription, no stale GOP.
	q2 := NewQueue(0, 0)
	rr := tap.Join(ref, opts, q2)
	r2.Write(frame(0, true))
	got, err = next(t, q2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0}; !equal(dtsList(got), want) {
		t.Fatalf("after republish got %v, want %v", dtsList(got), want)
	}
	if o.count() != 2 {
		t.Fatalf("%d subscriptions, want 2", o.count())
	}
	rr.Leave()
	tap.Wait()
}

func testSubscribeError(t *testing.T) {
	o := &opener{err: sdk.ErrNotFound}
	tap := New(context.Background(), o.open, nil)
	q := NewQueue(0, 0)
	tap.Join(ref, Options{}, q)
	_, err := next(t, q, 1<<30)
	var se *SubscribeError
	if !errors.As(err, &se) || !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("end %v, want a SubscribeError wrapping ErrNotFound", err)
	}
	tap.Wait()
}

// TestMarks checks the GOP marks a reader mirrors its encoded cache with.
func TestMarks(t *testing.T) {
	s := &Stream{opts: Options{GopCache: true, GopMaxFrames: 3, GopMaxBytes: DefaultGopMaxBytes}, log: New(context.Background(), nil, nil).log}
	cases := []struct {
		p    media.Packet
		want Mark
	}{
		{vcfg(), Mark{}},
		{frame(0, false), Mark{}}, // before a keyframe: not cached
		{frame(10, true), Mark{Cached: true}},
		{frame(20, false), Mark{Cached: true}},
		{frame(30, true), Mark{Reset: true, Cached: true}},
		{frame(40, false), Mark{Cached: true}},
		{frame(50, false), Mark{Cached: true}},
		{frame(60, false), Mark{Reset: true}}, // overflow
		{frame(70, false), Mark{}},
	}
	for i, c := range cases {
		if got := s.updateLocked(c.p); got != c.want {
			t.Fatalf("packet %d: mark %+v, want %+v", i, got, c.want)
		}
	}
}

// TestAudioOnlyMarks checks the rolling cache of an audio-only stream.
func TestAudioOnlyMarks(t *testing.T) {
	s := &Stream{opts: Options{GopCache: true, GopMaxBytes: DefaultGopMaxBytes}, log: New(context.Background(), nil, nil).log}
	audio := media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Payload: []byte{1}}
	for i := range maxAudioOnlyCache {
		if m := s.updateLocked(audio); m != (Mark{Cached: true}) {
			t.Fatalf("frame %d: mark %+v", i, m)
		}
	}
	if m := s.updateLocked(audio); m != (Mark{Trim: 1, Cached: true}) {
		t.Fatalf("frame past the cache: mark %+v, want a trim of 1", m)
	}
	if len(s.gop) != maxAudioOnlyCache {
		t.Fatalf("cache holds %d frames, want %d", len(s.gop), maxAudioOnlyCache)
	}
}

// TestForgetAndReady: a publish event makes the next Join subscribe anew
// while the old stream still runs; Ready and Err report the subscription.
func TestForgetAndReady(t *testing.T) {
	r1, r2 := newFakeRing(), newFakeRing()
	o := &opener{rings: []*fakeRing{r1, r2}}
	tap := New(context.Background(), o.open, nil)
	a := NewQueue(0, 0)
	ra := tap.Join(ref, Options{}, a)
	<-ra.Stream().Ready()
	if err := ra.Stream().Err(); err != nil {
		t.Fatal(err)
	}
	tap.Forget(ref)
	b := NewQueue(0, 0)
	rb := tap.Join(ref, Options{}, b)
	if rb.Stream() == ra.Stream() {
		t.Fatal("join after Forget shares the old stream")
	}
	r2.Write(frame(0, true))
	if _, err := next(t, b, 1); err != nil {
		t.Fatal(err)
	}
	r1.End()
	if _, err := next(t, a, 1<<30); !errors.Is(err, io.EOF) {
		t.Fatalf("old stream's end %v, want EOF", err)
	}
	if tap.Len() != 1 {
		t.Fatalf("%d streams, want the new one", tap.Len())
	}
	rb.Leave()
	ra.Leave()
	tap.Wait()
}

// nopHandler counts packets, as a fan-out would encode them.
type nopHandler struct{ n int }

func (h *nopHandler) Start(Init)                          {}
func (h *nopHandler) Packets(ps []media.Packet, _ []Mark) { h.n += len(ps) }
func (h *nopHandler) Flush()                              {}
func (h *nopHandler) End(error)                           {}

// BenchmarkDeliver is the tap's cost per packet of a batch: state, GOP
// cache and the hand-off to a reader (allocs/op: the GOP cache's clone).
func BenchmarkDeliver(b *testing.B) {
	s := &Stream{opts: Options{GopCache: true, GopMaxBytes: DefaultGopMaxBytes, Pace: time.Millisecond}, log: New(context.Background(), nil, nil).log}
	h := &nopHandler{}
	s.readers = []*Reader{{s: s, h: h}}
	ps := make([]media.Packet, 30)
	for i := range ps {
		ps[i] = frame(i*33, i == 0)
		ps[i].Payload = make([]byte, 10000)
	}
	ms := make([]Mark, len(ps))
	b.ReportAllocs()
	b.SetBytes(int64(len(ps) * 10000))
	for b.Loop() {
		s.deliver(ps, ms)
	}
}

// TestJoinWhileReading: readers joining while the loop delivers get every
// packet once, from a keyframe on, without a gap or a repeat.
func TestJoinWhileReading(t *testing.T) {
	for _, pace := range []time.Duration{0, time.Millisecond} {
		t.Run("pace="+pace.String(), func(t *testing.T) {
			ring := newFakeRing()
			o := &opener{rings: []*fakeRing{ring}}
			tap := New(context.Background(), o.open, nil)
			opts := Options{Pace: pace, GopCache: true}
			const n = 2000
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range n {
					ring.Write(frame(i, i%50 == 0))
				}
				ring.End()
			}()
			qs := make([]*Queue, 8)
			for i := range qs {
				qs[i] = NewQueue(1<<20, 1<<30)
				tap.Join(ref, opts, qs[i])
			}
			wg.Wait()
			for i, q := range qs {
				got, err := next(t, q, 1<<30)
				if !errors.Is(err, io.EOF) {
					t.Fatalf("reader %d: end %v", i, err)
				}
				d := dtsList(got)
				if len(d) == 0 {
					continue // joined at the end
				}
				if d[0]%50 != 0 {
					t.Fatalf("reader %d starts at %d, not a keyframe", i, d[0])
				}
				for j := 1; j < len(d); j++ {
					if d[j] != d[j-1]+1 {
						t.Fatalf("reader %d: %d after %d", i, d[j], d[j-1])
					}
				}
				if d[len(d)-1] != n-1 {
					t.Fatalf("reader %d ends at %d", i, d[len(d)-1])
				}
			}
			tap.Wait()
		})
	}
}
