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
//
// lal's depacketizer hands over one NAL unit at a time, not access units:
// an x264 CBR frame arrives as SEI, slice and filler NAL units, each its
// own AvPacket. The player puts the NAL units of one RTP timestamp back
// together and delivers the frame when its first slice arrives (what
// Identify reads), so a parameter set, SEI or filler NAL unit is not
// counted as a frame of its own ("unknown"), and no latency is added by
// waiting for the next frame.
type rtspPlayer struct {
	s         *rtsp.PullSession
	onMessage func(typ uint8, payload []byte)
	buf       []byte

	auTS   int64  // RTP timestamp (ms) of the access unit being assembled
	auSent bool   // its first slice went out
	au     []byte // its NAL units before the first slice, AVCC
}

func dialRTSP(url string, onMessage func(typ uint8, payload []byte)) (*rtspPlayer, error) {
	p := &rtspPlayer{onMessage: onMessage, auTS: -1}
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
		p.onNAL(pkt.Timestamp, pkt.Payload)
	case base.AvPacketPtAac:
		p.buf = append(append(p.buf[:0], 0xaf, 1), pkt.Payload...)
		p.onMessage(replay.TagAudio, p.buf)
	}
}

// onNAL takes one AVCC NAL unit (4-byte length first) of RTP timestamp ts.
func (p *rtspPlayer) onNAL(ts int64, nal []byte) {
	if len(nal) < 5 {
		return
	}
	if ts != p.auTS {
		p.auTS, p.auSent, p.au = ts, false, p.au[:0]
	}
	if p.auSent {
		// The rest of a frame already delivered (more slices, filler):
		// its bytes count, as an AVC packet that is not a frame.
		p.buf = append(append(p.buf[:0], 0x27, 2, 0, 0, 0), nal...)
		p.onMessage(replay.TagVideo, p.buf)
		return
	}
	if t := nal[4] & 0x1f; t < 1 || t > 5 {
		p.au = append(p.au, nal...)
		return
	}
	p.auSent = true
	p.buf = append(append(append(p.buf[:0], 0x27, 1, 0, 0, 0), p.au...), nal...)
	p.onMessage(replay.TagVideo, p.buf)
}
