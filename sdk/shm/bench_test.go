package shm

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// BenchmarkThroughput measures the ring on heap memory (default options):
// the writer alone, a write followed by a read in one goroutine (the copy
// cost of both sides), and a writer racing one concurrent reader that
// waits on the ring's futex word when it catches up.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			p := make([]byte, size)
			pattern(p, 1)
			b.Run("write", func(b *testing.B) {
				r := newHeapRing(b, Options{})
				w := NewWriter(r)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					w.Write(Meta{Flags: FlagSync}, p)
				}
			})
			b.Run("write+read", func(b *testing.B) {
				r := newHeapRing(b, Options{})
				w := NewWriter(r)
				rd := NewReader(r, StartLive)
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					w.Write(Meta{Flags: FlagSync}, p)
					if _, err := rd.Next(buf); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("concurrent", func(b *testing.B) {
				r := newHeapRing(b, Options{})
				w := NewWriter(r)
				rd := NewReader(r, StartLive)
				done := make(chan [2]uint64)
				go func() {
					buf := make([]byte, size)
					var n uint64
					for {
						_, err := rd.Next(buf)
						switch {
						case err == nil:
							n++
						case errors.Is(err, ErrEmpty):
							rd.Wait(context.Background())
						default:
							done <- [2]uint64{n, rd.Dropped()}
							return
						}
					}
				}()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					w.Write(Meta{Flags: FlagSync}, p)
				}
				r.End()
				res := <-done
				b.ReportMetric(float64(res[1])/float64(b.N), "dropped/op")
			})
		})
	}
}
