package live

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk"
)

// TestPull: two pullers of a stream share one subscription; a late one
// starts at the cached keyframe; both read to the end; the last Close
// ends the subscription; a refused subscription is Pull's error.
func TestPull(t *testing.T) {
	r := newFakeRing()
	o := &opener{rings: []*fakeRing{r}}
	tap := New(context.Background(), o.open, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := Options{GopCache: true}
	a, err := tap.Pull(ctx, ref, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Write(vcfg())
	r.Write(frame(0, true))
	r.Write(frame(40, false))
	readN := func(p *Puller, n int) []int {
		var got []int
		for len(got) < n {
			pkt, err := p.Read(ctx)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !pkt.IsConfig() {
				got = append(got, int(pkt.DTS/time.Millisecond))
			}
		}
		return got
	}
	if got := readN(a, 2); !equal(got, []int{0, 40}) {
		t.Fatalf("first puller read %v", got)
	}
	b, err := tap.Pull(ctx, ref, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.count() != 1 {
		t.Fatalf("%d subscriptions for two pullers", o.count())
	}
	r.Write(frame(80, false))
	if got := readN(b, 3); !equal(got, []int{0, 40, 80}) {
		t.Fatalf("late puller read %v, want the GOP from the keyframe then live", got)
	}
	if got := readN(a, 1); !equal(got, []int{80}) {
		t.Fatalf("first puller read %v", got)
	}
	r.End()
	for _, p := range []*Puller{a, b} {
		if _, err := p.Read(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("end: %v, want EOF", err)
		}
		p.Close()
	}
	tap.Wait()

	refused := New(context.Background(), (&opener{err: sdk.ErrForbidden}).open, nil)
	if _, err := refused.Pull(ctx, ref, opts, nil); !errors.Is(err, sdk.ErrForbidden) {
		t.Fatalf("refused pull: %v", err)
	}
	refused.Wait()
}
