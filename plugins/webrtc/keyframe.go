package main

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
)

// minPLIInterval is the rate limit of the keyframe requests forwarded to
// one publisher: many viewers asking at once cost the publisher one
// keyframe (SRS's pli forwarding does the same per publish stream).
const minPLIInterval = 500 * time.Millisecond

// pliLimiter lets one request through per interval; safe for concurrent use.
type pliLimiter struct{ last atomic.Int64 }

func (l *pliLimiter) allow(now time.Time, every time.Duration) bool {
	for {
		last := l.last.Load()
		if last != 0 && now.UnixNano()-last < int64(every) {
			return false
		}
		if l.last.CompareAndSwap(last, now.UnixNano()) {
			return true
		}
	}
}

// publisherOf returns the WebRTC session of this process publishing the
// stream key, or nil (an RTMP or SRT publisher has no keyframe request
// channel: its encoder's GOP decides).
func (s *Server) publisherOf(key string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		if ss.publish && ss.videoSSRC.Load() != 0 && ss.ref.Key() == key {
			return ss
		}
	}
	return nil
}

// askPublisherKeyframe sends a PLI to the WebRTC publisher of the player's
// stream (a viewer's PLI or FIR, or a viewer joining), at most one per
// minPLIInterval per publisher.
func (ss *session) askPublisherKeyframe(why string) {
	pub := ss.s.publisherOf(ss.ref.Key())
	if pub == nil {
		return
	}
	if !pub.pli.allow(time.Now(), minPLIInterval) {
		ss.s.pliLimited.Add(1)
		return
	}
	pub.mu.Lock()
	pc := pub.pc
	pub.mu.Unlock()
	if pc == nil {
		return
	}
	if err := pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: pub.videoSSRC.Load()}}); err != nil {
		pub.log.Debug("forward keyframe request", "error", err)
		return
	}
	ss.s.pliForwarded.Add(1)
	pub.log.Debug("keyframe requested from the publisher", "why", why, "viewer", ss.id)
}

// readViewerRTCP reads a player's RTCP (NACK and reports go through the
// interceptors as it is read); a PLI or FIR on the video sender is
// forwarded to a WebRTC publisher of the stream.
func (ss *session) readViewerRTCP(s *webrtc.RTPSender, video bool) {
	defer ss.s.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		if !video {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication:
				ss.askPublisherKeyframe("viewer pli")
			case *rtcp.FullIntraRequest:
				ss.askPublisherKeyframe("viewer fir")
			}
		}
	}
}
