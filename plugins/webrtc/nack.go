package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// The NACK responder answers a viewer's retransmission requests from a
// bounded history of what was sent to it, as pion's does, with the limits a
// fan-out server needs and pion's lacks (its responder resends every packet
// named by every NACK, each in a new goroutine: at 200 HD viewers on a
// loaded machine the resends were 17 times the media itself and took 85 %
// of the plugin's CPU, which made more loss, which made more NACKs):
//
//   - a packet is resent at most nackMaxResends times, and not again
//     within nackMinInterval of its last resend (a receiver repeats its
//     NACK every 100 ms until the packet arrives);
//   - a packet older than nackMaxAge is not resent: a live player has
//     given up on it (its jitter buffer is a few hundred ms);
//   - the resent bytes of a stream are capped by a budget that each first
//     send fills by half its size (up to nackBurst): retransmissions never
//     exceed half the media's own rate plus a burst, whatever a viewer asks;
//   - resends run in the RTCP reader of the session, one at a time.
//
// A hostile viewer NACKing everything therefore costs at most 1.5 times
// its stream, never a storm (docs/THREATS.md: amplification).
const (
	nackHistory     = 512 // packets kept per sent stream, a power of 2
	nackMaxResends  = 4
	nackMinInterval = 40 * time.Millisecond
	nackMaxAge      = time.Second
	nackBudgetShare = 2 // a first send of n bytes adds n/nackBudgetShare to the budget
	nackBurst       = 256 << 10
)

// nackStats counts one session's retransmission requests and answers.
type nackStats struct {
	asked    atomic.Uint64 // packets named by the viewer's NACKs
	resent   atomic.Uint64
	unknown  atomic.Uint64 // not (or no longer) in the history
	tooOld   atomic.Uint64
	repeated atomic.Uint64 // resent too recently or too often already
	budget   atomic.Uint64 // refused because the stream's budget was spent
}

// nackResponderFactory makes the session's responder (one per peer
// connection, as pion asks one factory per API).
type nackResponderFactory struct {
	stats *nackStats
	now   func() time.Time
}

func (f *nackResponderFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	now := f.now
	if now == nil {
		now = time.Now
	}
	return &nackResponder{stats: f.stats, now: now, streams: map[uint32]*sentHistory{}}, nil
}

type nackResponder struct {
	interceptor.NoOp
	stats *nackStats
	now   func() time.Time

	mu      sync.Mutex
	streams map[uint32]*sentHistory
}

// sentPacket is one sent RTP packet, marshalled (header and payload) into
// a buffer the slot keeps and reuses.
type sentPacket struct {
	raw        []byte
	seq        uint16
	valid      bool
	sentAt     time.Time
	lastResend time.Time
	resends    uint8
}

type sentHistory struct {
	mu     sync.Mutex
	writer interceptor.RTPWriter
	slots  [nackHistory]sentPacket
	budget int
}

func supportsNack(info *interceptor.StreamInfo) bool {
	for _, fb := range info.RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			return true
		}
	}
	return false
}

func (n *nackResponder) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	if !supportsNack(info) {
		return writer
	}
	h := &sentHistory{writer: writer, budget: nackBurst}
	n.mu.Lock()
	n.streams[info.SSRC] = h
	n.mu.Unlock()
	return interceptor.RTPWriterFunc(func(header *rtp.Header, payload []byte, attr interceptor.Attributes) (int, error) {
		h.remember(header, payload, n.now())
		return writer.Write(header, payload, attr)
	})
}

func (n *nackResponder) UnbindLocalStream(info *interceptor.StreamInfo) {
	n.mu.Lock()
	delete(n.streams, info.SSRC)
	n.mu.Unlock()
}

func (n *nackResponder) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		i, attr, err := reader.Read(b, a)
		if err != nil {
			return 0, nil, err
		}
		if attr == nil {
			attr = make(interceptor.Attributes)
		}
		pkts, err := attr.GetRTCPPackets(b[:i])
		if err != nil {
			return 0, nil, err
		}
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				n.answer(nack)
			}
		}
		return i, attr, nil
	})
}

func (n *nackResponder) answer(nack *rtcp.TransportLayerNack) {
	n.mu.Lock()
	h := n.streams[nack.MediaSSRC]
	n.mu.Unlock()
	for _, pair := range nack.Nacks {
		pair.Range(func(seq uint16) bool {
			n.stats.asked.Add(1)
			if h == nil {
				n.stats.unknown.Add(1)
				return true
			}
			h.resend(seq, n.now(), n.stats)
			return true
		})
	}
}

func (h *sentHistory) remember(header *rtp.Header, payload []byte, now time.Time) {
	size := header.MarshalSize() + len(payload)
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.slots[header.SequenceNumber%nackHistory]
	if cap(s.raw) < size {
		s.raw = make([]byte, size)
	}
	s.raw = s.raw[:size]
	hn, err := header.MarshalTo(s.raw)
	if err != nil {
		s.valid = false
		return
	}
	copy(s.raw[hn:], payload)
	s.seq, s.valid, s.sentAt, s.resends, s.lastResend = header.SequenceNumber, true, now, 0, time.Time{}
	h.budget = min(h.budget+size/nackBudgetShare, nackBurst)
}

// resend sends seq again if the limits allow it.
func (h *sentHistory) resend(seq uint16, now time.Time, st *nackStats) {
	h.mu.Lock()
	s := &h.slots[seq%nackHistory]
	switch {
	case !s.valid || s.seq != seq:
		h.mu.Unlock()
		st.unknown.Add(1)
		return
	case now.Sub(s.sentAt) > nackMaxAge:
		h.mu.Unlock()
		st.tooOld.Add(1)
		return
	case s.resends >= nackMaxResends || (!s.lastResend.IsZero() && now.Sub(s.lastResend) < nackMinInterval):
		h.mu.Unlock()
		st.repeated.Add(1)
		return
	case h.budget < len(s.raw):
		h.mu.Unlock()
		st.budget.Add(1)
		return
	}
	h.budget -= len(s.raw)
	s.resends++
	s.lastResend = now
	// The write happens outside the lock, from a copy: a first send may
	// reuse the slot meanwhile (and the parsed header's extensions point
	// into the bytes it was parsed from).
	raw := append([]byte(nil), s.raw...)
	h.mu.Unlock()
	var hdr rtp.Header
	hn, err := hdr.Unmarshal(raw)
	if err != nil {
		st.unknown.Add(1)
		return
	}
	if _, err := h.writer.Write(&hdr, raw[hn:], interceptor.Attributes{}); err == nil {
		st.resent.Add(1)
	}
}
