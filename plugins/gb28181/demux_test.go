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
	// A long stream with one packet lost: the frames after it come out
	// (TestDemuxLossCostsOneFrame checks exactly which and how soon).
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

// splitHEVC splits an Annex B H.265 stream written with AUD NAL units
// (x265 aud=1, type 35) into access units, and tells keyframes (IRAP).
func splitHEVC(b []byte) (aus [][]byte, keys []bool) {
	start := -1
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 1 && (b[i+4]>>1)&0x3f == 35 {
			if start >= 0 {
				aus = append(aus, b[start:i])
			}
			start = i
		}
	}
	if start >= 0 {
		aus = append(aus, b[start:])
	}
	for _, au := range aus {
		key := false
		for i := 0; i+3 < len(au); i++ {
			if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 {
				if t := (au[i+3] >> 1) & 0x3f; t >= 16 && t <= 21 {
					key = true
				}
			}
		}
		keys = append(keys, key)
	}
	return aus, keys
}

func TestDemuxH265(t *testing.T) {
	b, err := os.ReadFile("testdata/testsrc.h265")
	if err != nil {
		t.Fatal(err)
	}
	aus, keys := splitHEVC(b)
	var seq uint16
	var c collected
	d := newDemux(c.emit)
	for i, au := range aus {
		ts := uint64(i) * 3600
		for _, p := range rtpPackets(psPack(au, ts, keys[i], 0x24), &seq, uint32(ts), 99) {
			if err := d.FeedRTP(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	n, k, configs := c.frames()
	if n < len(aus)-1 || k != 2 || configs != 1 {
		t.Fatalf("h265: frames=%d keys=%d configs=%d of %d access units", n, k, configs, len(aus))
	}
	for _, p := range c.pkts {
		if p.Codec != media.CodecH265 {
			t.Fatalf("codec %v", p.Codec)
		}
		if p.IsConfig() && (len(p.Payload) < 23 || p.Payload[0] != 1) {
			t.Fatalf("config is not an HEVCDecoderConfigurationRecord: % x", p.Payload[:min(8, len(p.Payload))])
		}
	}
}

// FuzzDemuxStream feeds a stream of RTP packets cut from the input (each
// preceded by a one-byte length), so reordering, losses and PS units
// spanning packets are exercised together.
func FuzzDemuxStream(f *testing.F) {
	pkts := testStream(f)
	var seed []byte
	for _, p := range pkts[:6] {
		n := min(len(p), 255)
		seed = append(seed, byte(n))
		seed = append(seed, p[:n]...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		var c collected
		d := newDemux(c.emit)
		d.setReorder(4, 0)
		for len(b) > 0 {
			n := int(b[0])
			b = b[1:]
			if n > len(b) {
				n = len(b)
			}
			_ = d.FeedRTP(b[:n])
			b = b[n:]
		}
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
