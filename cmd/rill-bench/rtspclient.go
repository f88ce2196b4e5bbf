package main

import (
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/rtprtcp"
	"github.com/q191201771/lal/pkg/rtsp"
	"github.com/q191201771/lal/pkg/sdp"

	"github.com/rill-media/rill/bench/replay"
)

// rtspPlayer is an RTSP player on lal's rtsp.PullSession, RTP interleaved
// in the TCP connection. Its frames reach onMessage as FLV video/audio tag
// bodies (a 5-byte AVC header before the AVCC frame) so that the player's
// accounting (Identify by the first slice NAL unit) is the RTMP one.
type rtspPlayer struct {
	s         *rtsp.PullSession
	onMessage func(typ uint8, payload []byte)
	buf       []byte
}

func dialRTSP(url string, onMessage func(typ uint8, payload []byte)) (*rtspPlayer, error) {
	p := &rtspPlayer{onMessage: onMessage}
	p.s = rtsp.NewPullSession(p, func(o *rtsp.PullSessionOption) {
		o.PullTimeoutMs = 10000
		o.OverTcp = true
	})
	if err := p.s.Pull(url); err != nil {
		_ = p.s.Dispose()
		return nil, err
	}
	return p, nil
}

func (p *rtspPlayer) close()                        { _ = p.s.Dispose() }
func (p *rtspPlayer) done() <-chan error            { return p.s.WaitChan() }
func (p *rtspPlayer) OnSdp(sdp.LogicContext)        {}
func (p *rtspPlayer) OnRtpPacket(rtprtcp.RtpPacket) {}

func (p *rtspPlayer) OnAvPacket(pkt base.AvPacket) {
	switch pkt.PayloadType {
	case base.AvPacketPtAvc:
		p.buf = append(append(p.buf[:0], 0x27, 1, 0, 0, 0), pkt.Payload...)
		p.onMessage(replay.TagVideo, p.buf)
	case base.AvPacketPtAac:
		p.buf = append(append(p.buf[:0], 0xaf, 1), pkt.Payload...)
		p.onMessage(replay.TagAudio, p.buf)
	}
}
