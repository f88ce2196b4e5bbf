package main

import (
	"bytes"
	"time"

	"github.com/q191201771/lal/pkg/avc"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/hevc"
	"github.com/q191201771/lal/pkg/sdp"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// inConverter turns lal's unpacked RTP frames (AVCC video, raw AAC) into
// hub packets, with decoder configurations from the SDP's parameter sets
// and from in-band ones when they change.
type inConverter struct {
	vps, sps, pps, asc []byte
	videoSent          []byte // the video config last written
	audioSent          bool
	buf                []byte
}

// setSDP takes the parameter sets and AudioSpecificConfig of an ANNOUNCE.
func (c *inConverter) setSDP(ctx sdp.LogicContext) {
	c.vps, c.sps, c.pps = clone(ctx.Vps), clone(ctx.Sps), clone(ctx.Pps)
	c.asc = clone(ctx.Asc)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// convert calls emit with the packets of one frame: a config first when
// the stream's configuration is new or changed. Frames before the first
// configuration are dropped (a decoder cannot use them).
func (c *inConverter) convert(pkt base.AvPacket, emit func(media.Packet) error) error {
	dts := time.Duration(pkt.Timestamp) * time.Millisecond
	pts := time.Duration(pkt.Pts) * time.Millisecond
	if pts < dts {
		pts = dts
	}
	switch pkt.PayloadType {
	case base.AvPacketPtAac:
		if len(c.asc) < 2 {
			return nil
		}
		if !c.audioSent {
			c.audioSent = true
			if err := emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, DTS: dts, PTS: dts, Payload: c.asc}); err != nil {
				return err
			}
		}
		return emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: dts, PTS: dts, Payload: pkt.Payload})
	case base.AvPacketPtAvc, base.AvPacketPtHevc:
		hevcCodec := pkt.PayloadType == base.AvPacketPtHevc
		key := false
		_ = media.SplitAVCC(pkt.Payload, func(n []byte) bool {
			if len(n) == 0 {
				return true
			}
			if hevcCodec {
				switch t := n[0] >> 1 & 0x3f; {
				case t == 32:
					c.vps = append(c.vps[:0], n...)
				case t == 33:
					c.sps = append(c.sps[:0], n...)
				case t == 34:
					c.pps = append(c.pps[:0], n...)
				case t >= 16 && t <= 21:
					key = true
				}
				return true
			}
			switch n[0] & 0x1f {
			case 7:
				c.sps = append(c.sps[:0], n...)
			case 8:
				c.pps = append(c.pps[:0], n...)
			case 5:
				key = true
			}
			return true
		})
		codec := media.CodecH264
		if hevcCodec {
			codec = media.CodecH265
		}
		if cfg := c.videoConfig(hevcCodec); cfg != nil && !bytes.Equal(cfg, c.videoSent) {
			c.videoSent = cfg
			if err := emit(media.Packet{Kind: media.KindVideo, Codec: codec, Flags: media.FlagConfig, DTS: dts, PTS: dts, Payload: cfg}); err != nil {
				return err
			}
		}
		if c.videoSent == nil {
			return nil
		}
		var f media.Flags
		if key {
			f = media.FlagKey
		}
		return emit(media.Packet{Kind: media.KindVideo, Codec: codec, Flags: f, DTS: dts, PTS: pts, Payload: pkt.Payload})
	}
	return nil
}

// videoConfig is the decoder configuration record of the parameter sets
// (lal builds it as an FLV sequence header: its 5-byte tag header is cut).
func (c *inConverter) videoConfig(hevcCodec bool) []byte {
	var sh []byte
	var err error
	if hevcCodec {
		if len(c.vps) == 0 || len(c.sps) == 0 || len(c.pps) == 0 {
			return nil
		}
		sh, err = hevc.BuildSeqHeaderFromVpsSpsPps(c.vps, c.sps, c.pps)
	} else {
		if len(c.sps) < 4 || len(c.pps) == 0 {
			return nil
		}
		sh, err = avc.BuildSeqHeaderFromSpsPps(c.sps, c.pps)
	}
	if err != nil || len(sh) <= 5 {
		return nil
	}
	return sh[5:]
}

// rtmpMsg is p as the RTMP message lal's RTMP-to-RTSP remuxer takes (H.265
// as a legacy codec id 12 tag, which lal reads); ok is false for what RTSP
// does not carry.
func rtmpMsg(buf []byte, p media.Packet) (base.RtmpMsg, []byte, bool) {
	if p.Kind == media.KindData {
		return base.RtmpMsg{}, buf, false
	}
	body, typ, ts, err := flv.AppendTagLegacyHEVC(buf[:0], p)
	if err != nil || len(body) == 0 {
		return base.RtmpMsg{}, buf, false
	}
	return base.RtmpMsg{
		Header:  base.RtmpHeader{Csid: 6, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: 1, TimestampAbs: ts},
		Payload: body,
	}, body, true
}
