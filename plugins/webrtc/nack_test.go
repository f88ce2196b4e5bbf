package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

type nackRig struct {
	t       *testing.T
	now     time.Time
	stats   nackStats
	send    interceptor.RTPWriter
	rtcp    interceptor.RTCPReader
	pending []byte
	writes  []rtp.Packet // what reached the transport, first sends and resends
}

func newNackRig(t *testing.T) *nackRig {
	r := &nackRig{t: t, now: time.Unix(1000, 0)}
	f := &nackResponderFactory{stats: &r.stats, now: func() time.Time { return r.now }}
	ic, err := f.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	info := &interceptor.StreamInfo{SSRC: 1234, RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}}}
	r.send = ic.BindLocalStream(info, interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, _ interceptor.Attributes) (int, error) {
		r.writes = append(r.writes, rtp.Packet{Header: h.Clone(), Payload: append([]byte(nil), p...)})
		return len(p), nil
	}))
	r.rtcp = ic.BindRTCPReader(interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		return copy(b, r.pending), a, nil
	}))
	return r
}

func (r *nackRig) sendPacket(seq uint16, size int) {
	h := &rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 1234}
	if err := h.SetExtension(3, []byte{byte(seq), byte(seq >> 8)}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.send.Write(h, bytes.Repeat([]byte{byte(seq)}, size), nil); err != nil {
		r.t.Fatal(err)
	}
}

// nack delivers one NACK naming seqs and returns how many packets went out.
func (r *nackRig) nack(seqs ...uint16) int {
	before := len(r.writes)
	b, err := (&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 1234, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}).Marshal()
	if err != nil {
		r.t.Fatal(err)
	}
	r.pending = b
	buf := make([]byte, 1500)
	if _, _, err := r.rtcp.Read(buf, nil); err != nil {
		r.t.Fatal(err)
	}
	return len(r.writes) - before
}

func TestNackResendsWhatWasSent(t *testing.T) {
	r := newNackRig(t)
	for seq := uint16(65530); seq != 10; seq++ { // across the wrap
		r.sendPacket(seq, 1000)
	}
	r.now = r.now.Add(50 * time.Millisecond)
	if n := r.nack(65533, 2); n != 2 {
		t.Fatalf("resent %d packets, want 2", n)
	}
	got := r.writes[len(r.writes)-2:]
	for i, want := range []uint16{65533, 2} {
		p := got[i]
		if p.SequenceNumber != want || p.SSRC != 1234 || p.Timestamp != uint32(want)*3000 ||
			!bytes.Equal(p.Payload, bytes.Repeat([]byte{byte(want)}, 1000)) ||
			!bytes.Equal(p.GetExtension(3), []byte{byte(want), byte(want >> 8)}) {
			t.Fatalf("resent packet %d differs from the one sent: %+v", want, p.Header)
		}
	}
	if n := r.nack(20); n != 0 || r.stats.unknown.Load() != 1 {
		t.Fatalf("a never-sent packet: %d resent, unknown %d", n, r.stats.unknown.Load())
	}
}

func TestNackLimitsRepeats(t *testing.T) {
	r := newNackRig(t)
	r.sendPacket(7, 500)
	if n := r.nack(7); n != 1 {
		t.Fatalf("first NACK resent %d", n)
	}
	if n := r.nack(7); n != 0 {
		t.Fatalf("a NACK within %v of the resend resent %d", nackMinInterval, n)
	}
	total := 1
	for i := 0; i < 10; i++ {
		r.now = r.now.Add(nackMinInterval)
		total += r.nack(7)
	}
	if total != nackMaxResends {
		t.Fatalf("resent %d times in all, want %d", total, nackMaxResends)
	}
	// A resent packet that is sent anew (the sequence came round) is fresh.
	r.sendPacket(7, 500)
	if n := r.nack(7); n != 1 {
		t.Fatalf("after a new send: %d", n)
	}
}

func TestNackRefusesOldPackets(t *testing.T) {
	r := newNackRig(t)
	r.sendPacket(1, 500)
	r.now = r.now.Add(nackMaxAge + time.Millisecond)
	r.sendPacket(2, 500)
	if n := r.nack(1, 2); n != 1 || r.writes[len(r.writes)-1].SequenceNumber != 2 || r.stats.tooOld.Load() != 1 {
		t.Fatalf("resent %d (too old %d), want only packet 2", n, r.stats.tooOld.Load())
	}
	// Overwritten in the history: unknown.
	r.sendPacket(3+nackHistory, 500)
	if n := r.nack(3); n != 0 {
		t.Fatalf("a packet the history no longer holds was resent")
	}
}

// A viewer that NACKs everything it was sent, again and again, gets at most
// the burst plus half of what was sent.
func TestNackBudgetBoundsAmplification(t *testing.T) {
	r := newNackRig(t)
	sentBytes, resentBytes := 0, 0
	var seq uint16
	for round := 0; round < 50; round++ {
		var all []uint16
		for i := 0; i < 100; i++ {
			r.sendPacket(seq, 1200)
			sentBytes += 1200 + 16
			all = append(all, seq)
			seq++
		}
		for rep := 0; rep < 3; rep++ {
			r.now = r.now.Add(nackMinInterval)
			before := len(r.writes)
			r.nack(all...)
			for _, p := range r.writes[before:] {
				resentBytes += len(p.Payload) + p.Header.MarshalSize()
			}
		}
	}
	limit := nackBurst + sentBytes/nackBudgetShare
	if resentBytes > limit {
		t.Fatalf("resent %d bytes for %d sent, limit %d", resentBytes, sentBytes, limit)
	}
	if r.stats.budget.Load() == 0 {
		t.Fatalf("the budget never refused a resend (resent %d of %d bytes)", resentBytes, sentBytes)
	}
	if resentBytes < sentBytes/nackBudgetShare {
		t.Fatalf("resent only %d bytes: the budget should allow %d", resentBytes, sentBytes/nackBudgetShare)
	}
}
