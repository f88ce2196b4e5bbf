package main

import (
	"os"
	"testing"
	"time"
)

type released struct {
	seq  uint16
	lost bool
}

func pushAll(r *reorder, now time.Time, seqs ...uint16) []released {
	var out []released
	for _, s := range seqs {
		r.push(s, 0, false, []byte{byte(s)}, now, func(p *rtpPacket, lost bool) {
			if p.payload[0] != byte(p.seq) {
				panic("payload of another packet")
			}
			out = append(out, released{p.seq, lost})
		})
	}
	return out
}

func seqsOf(rs []released) (seqs []uint16, lost []uint16) {
	for _, r := range rs {
		seqs = append(seqs, r.seq)
		if r.lost {
			lost = append(lost, r.seq)
		}
	}
	return
}

func equalSeqs(a, b []uint16) bool {
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

func TestReorder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t.Run("in order and swapped", func(t *testing.T) {
		got, lost := seqsOf(pushAll(newReorder(8, time.Second), t0, 65534, 0, 65535, 1, 3, 2, 2, 1))
		if want := []uint16{65534, 65535, 0, 1, 2, 3}; !equalSeqs(got, want) || lost != nil {
			t.Fatalf("released %v lost %v, want %v and no loss", got, lost, want)
		}
	})
	t.Run("loss given up after the window", func(t *testing.T) {
		r := newReorder(8, time.Hour)
		out := pushAll(r, t0, 10, 11) // 12 is lost
		for s := uint16(13); s < 13+7; s++ {
			out = append(out, pushAll(r, t0, s)...)
		}
		if got, _ := seqsOf(out); !equalSeqs(got, []uint16{10, 11}) {
			t.Fatalf("released %v before the window filled", got)
		}
		out = append(out, pushAll(r, t0, 20)...) // 8 packets past the gap
		got, lost := seqsOf(out)
		if len(got) != 10 || got[2] != 13 || !equalSeqs(lost, []uint16{13}) {
			t.Fatalf("released %v lost %v, want 10..20 without 12, loss flagged on 13", got, lost)
		}
	})
	t.Run("loss given up after the wait", func(t *testing.T) {
		r := newReorder(64, 50*time.Millisecond)
		out := pushAll(r, t0, 1, 3, 4)
		out = append(out, pushAll(r, t0.Add(20*time.Millisecond), 5)...)
		if got, _ := seqsOf(out); !equalSeqs(got, []uint16{1}) {
			t.Fatalf("released %v within the wait", got)
		}
		out = append(out, pushAll(r, t0.Add(60*time.Millisecond), 6)...)
		got, lost := seqsOf(out)
		if !equalSeqs(got, []uint16{1, 3, 4, 5, 6}) || !equalSeqs(lost, []uint16{3}) {
			t.Fatalf("released %v lost %v after the wait", got, lost)
		}
		// A late 2 is now stale: dropped.
		if out := pushAll(r, t0.Add(70*time.Millisecond), 2); len(out) != 0 {
			t.Fatalf("stale packet released: %v", out)
		}
	})
	t.Run("expire without more packets", func(t *testing.T) {
		r := newReorder(64, 50*time.Millisecond)
		out := pushAll(r, t0, 1, 3, 4)
		collect := func(p *rtpPacket, lost bool) { out = append(out, released{p.seq, lost}) }
		r.expire(t0.Add(10*time.Millisecond), collect)
		if got, _ := seqsOf(out); !equalSeqs(got, []uint16{1}) || !r.pending() {
			t.Fatalf("released %v before the wait", got)
		}
		r.expire(t0.Add(50*time.Millisecond), collect)
		if got, lost := seqsOf(out); !equalSeqs(got, []uint16{1, 3, 4}) || !equalSeqs(lost, []uint16{3}) || r.pending() {
			t.Fatalf("released %v lost %v after the wait", got, lost)
		}
	})
	t.Run("sequence restart", func(t *testing.T) {
		r := newReorder(4, time.Hour)
		pushAll(r, t0, 1000, 1001, 1002)
		var seqs []uint16
		for s := uint16(5); s < 15; s++ {
			for _, x := range pushAll(r, t0, s) {
				seqs = append(seqs, x.seq)
			}
		}
		if len(seqs) == 0 || seqs[len(seqs)-1] != 14 {
			t.Fatalf("after a restart of the sequence: released %v, want up to 14", seqs)
		}
	})
	t.Run("jump", func(t *testing.T) {
		got, lost := seqsOf(pushAll(newReorder(4, time.Hour), t0, 1, 2, 30000, 30001))
		if !equalSeqs(got, []uint16{1, 2, 30000, 30001}) || !equalSeqs(lost, []uint16{30000}) {
			t.Fatalf("released %v lost %v", got, lost)
		}
	})
}

// lossStream is testsrc.h264 as PS over RTP, two loops, with the index of
// the frame each packet carries.
func lossStream(t *testing.T) (pkts [][]byte, frameOf []int, frames int, keyFrame []bool) {
	b, err := os.ReadFile("testdata/testsrc.h264")
	if err != nil {
		t.Fatal(err)
	}
	aus := splitAUs(b)
	var seq uint16 = 65500
	for l := range 2 {
		for i, au := range aus {
			k := l*len(aus) + i
			ts := uint64(k) * 3600
			ps := rtpPackets(psPack(au, ts, isKeyAU(au), 0x1b), &seq, uint32(ts), 1234)
			for range ps {
				frameOf = append(frameOf, k)
			}
			pkts = append(pkts, ps...)
			keyFrame = append(keyFrame, isKeyAU(au))
		}
	}
	return pkts, frameOf, 2 * len(aus), keyFrame
}

// TestDemuxLossCostsOneFrame drops one packet at a time, anywhere after
// the first GOP, of a stream sent at 25 frames/s (a simulated clock):
// exactly the frame it carried is missing, every other frame comes out
// whole, and the frame after the loss comes out within the reorder wait
// and a frame or two, instead of after lal's 1024 packets (40 s here).
func TestDemuxLossCostsOneFrame(t *testing.T) {
	pkts, frameOf, frames, keyFrame := lossStream(t)
	firstGOP := 0
	for i := 1; i < len(keyFrame); i++ {
		if keyFrame[i] {
			firstGOP = i
			break
		}
	}
	tried := 0
	for lost := range pkts {
		if frameOf[lost] < firstGOP || frameOf[lost] >= frames-6 || lost%3 != 0 {
			continue
		}
		tried++
		var c collected
		d := newDemux(c.emit)
		lostFrame := frameOf[lost]
		releasedAt := -1 // the frame being sent when the frame after the loss came out
		t0 := time.Unix(1000, 0)
		for i, p := range pkts {
			if i == lost {
				continue
			}
			if err := d.feedRTPAt(p, t0.Add(time.Duration(frameOf[i])*40*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if releasedAt < 0 {
				for _, q := range c.pkts {
					if !q.IsConfig() && q.DTS > time.Duration(lostFrame)*40*time.Millisecond {
						releasedAt = frameOf[i]
					}
				}
			}
		}
		_ = d.Flush()
		seen := map[int]bool{}
		for _, q := range c.pkts {
			if !q.IsConfig() {
				seen[int(q.DTS/(40*time.Millisecond))] = true
			}
		}
		for f := 0; f < frames-4; f++ { // the last ones wait for packets that never come
			if seen[f] == (f == lostFrame) {
				t.Fatalf("packet %d lost (frame %d, key %v): frame %d emitted=%v; emitted %d of %d frames",
					lost, lostFrame, keyFrame[lostFrame], f, seen[f], len(seen), frames)
			}
		}
		// lal emits a frame when the next one begins; the reorder wait
		// (50 ms) adds at most two frame intervals at 25 frames/s.
		if releasedAt < 0 || releasedAt-lostFrame > 4 {
			t.Fatalf("packet %d lost (frame %d): the next frame came out while frame %d was sent", lost, lostFrame, releasedAt)
		}
	}
	if tried < 10 {
		t.Fatalf("only %d losses tried", tried)
	}
}

func TestPSFramerResync(t *testing.T) {
	var f psFramer
	var units []byte
	unit := func(code byte, u []byte) { units = append(units, code) }
	pack := psPack([]byte{0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1, 0x41, 1, 2, 3}, 3600, false, 0x1b)
	f.feed(pack[:20], false, unit)
	f.feed(pack[20:], false, unit)
	if string(units) != "\xba\xe0" {
		t.Fatalf("units % x, want ba e0", units)
	}
	units = nil
	// A loss in the middle of a unit: what follows until the next pack
	// header is skipped.
	f.feed(pack[:25], false, unit)
	f.feed(pack[30:], true, unit)
	f.feed(pack, false, unit)
	if string(units) != "\xba\xba\xe0" || f.junk == 0 {
		t.Fatalf("after a loss: units % x junk %d, want the first pack header, then ba e0 from the next pack only", units, f.junk)
	}
}
