package main

import (
	"errors"
	"os"
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

func testStream(t testing.TB) [][]byte { return testStreamLoops(t, 1) }

// testStreamLoops is the test file sent loops times in a row, with
// continuing RTP sequence numbers and timestamps.
func testStreamLoops(t testing.TB, loops int) [][]byte {
	b, err := os.ReadFile("testdata/testsrc.h264")
	if err != nil {
		t.Fatal(err)
	}
	aus := splitAUs(b)
	var seq uint16 = 65000 // wraps during the stream
	var pkts [][]byte
	for l := range loops {
		for i, au := range aus {
			ts := uint64(l*len(aus)+i) * 3600
			pkts = append(pkts, rtpPackets(psPack(au, ts, isKeyAU(au), 0x1b), &seq, uint32(ts), 1234)...)
		}
	}
	return pkts
}

type collected struct {
	pkts []media.Packet
}

func (c *collected) emit(p media.Packet) error {
	c.pkts = append(c.pkts, p.Clone())
	return nil
}

func (c *collected) frames() (n, keys, configs int) {
	for _, p := range c.pkts {
		switch {
		case p.IsConfig():
			configs++
		case p.Kind == media.KindVideo:
			n++
			if p.IsKey() {
				keys++
			}
		}
	}
	return
}

func TestDemuxInOrder(t *testing.T) {
	pkts := testStream(t)
	var c collected
	d := newDemux(c.emit)
	for _, p := range pkts {
		if err := d.FeedRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	n, keys, configs := c.frames()
	// 30 frames, GOP 10; the last one may still wait for the next pack in
	// lal, the rest must all come out.
	if n < 29 || keys != 3 || configs != 1 {
		t.Fatalf("frames=%d keys=%d configs=%d, want 29-30, 3, 1", n, keys, configs)
	}
	var last = c.pkts[0].DTS
	for _, p := range c.pkts {
		if p.DTS < last {
			t.Fatalf("dts went back: %v after %v", p.DTS, last)
		}
		last = p.DTS
		if p.Kind != media.KindVideo || p.Codec != media.CodecH264 {
			t.Fatalf("unexpected packet %v", p)
		}
		if p.IsConfig() && (len(p.Payload) < 7 || p.Payload[0] != 1) {
			t.Fatalf("config is not an AVCDecoderConfigurationRecord: % x", p.Payload[:min(8, len(p.Payload))])
		}
		if !p.IsConfig() {
			if err := media.SplitAVCC(p.Payload, func([]byte) bool { return true }); err != nil {
				t.Fatalf("payload not AVCC: %v", err)
			}
		}
	}
}

func feedAll(t *testing.T, pkts [][]byte) (n, keys int) {
	t.Helper()
	var c collected
	d := newDemux(c.emit)
	for _, p := range pkts {
		if err := d.FeedRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	n, keys, _ = c.frames()
	return n, keys
}

func TestDemuxReorder(t *testing.T) {
	pkts := testStream(t)
	// Swap neighbours every 7 packets and send every 5th twice.
	re := make([][]byte, 0, len(pkts)*2)
	for i := 0; i < len(pkts); i++ {
		switch {
		case i%7 == 3 && i+1 < len(pkts):
			re = append(re, pkts[i+1], pkts[i])
			i++
		case i%5 == 0:
			re = append(re, pkts[i], pkts[i])
		default:
			re = append(re, pkts[i])
		}
	}
	if n, keys := feedAll(t, re); n < 29 || keys != 3 {
		t.Fatalf("reordered and duplicated: frames=%d keys=%d, want 29-30, 3", n, keys)
	}
}

func TestDemuxLoss(t *testing.T) {
	// lal's reorder buffer gives up on a lost packet when it holds 1024
	// packets: send enough after the loss for that to happen, then expect
	// the frames after it to come out again.
	const loops = 60
	pkts := testStreamLoops(t, loops)
	lost := len(pkts) / 10
	pkts = append(pkts[:lost:lost], pkts[lost+1:]...)
	n, keys := feedAll(t, pkts)
	if n < 30*loops/2 || keys < 3*loops/2 {
		t.Fatalf("after one lost packet: frames=%d keys=%d of %d, %d", n, keys, 30*loops, 3*loops)
	}
}

func TestDemuxJunk(t *testing.T) {
	cases := map[string][]byte{
		"short":     {0x80, 96, 0},
		"version 0": make([]byte, 40),
		"huge":      make([]byte, maxRTPPacket+1),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var c collected
			if err := newDemux(c.emit).FeedRTP(b); !errors.Is(err, errJunk) {
				t.Fatalf("err = %v, want errJunk", err)
			}
		})
	}
}

func FuzzDemux(f *testing.F) {
	pkts := testStream(f)
	for _, p := range pkts[:8] {
		f.Add(p, p)
	}
	f.Add([]byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0xbc, 0xff, 0xff}, []byte{0x80, 96, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var c collected
		d := newDemux(c.emit)
		_ = d.FeedRTP(a)
		_ = d.FeedRTP(b)
		_ = d.Flush()
		for _, p := range c.pkts {
			if p.Kind == media.KindVideo && !p.IsConfig() {
				if err := media.SplitAVCC(p.Payload, func([]byte) bool { return true }); err != nil {
					t.Fatalf("emitted a bad AVCC payload: %v", err)
				}
			}
		}
	})
}
