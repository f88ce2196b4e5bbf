package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"

	"github.com/rill-media/rill/sdk/media"
)

// VP8 and VP9 pass through RTC to RTC: a WebRTC publisher's frames go into
// the hub as they are (media.CodecVP8/VP9, no config packet) and a WebRTC
// player of the stream gets a track in that codec. RTMP, HTTP-FLV and HLS
// cannot carry them and skip them.

// passthroughCodecs maps the WebRTC video MIME types passed through to the
// hub codec.
var passthroughCodecs = map[string]media.Codec{
	strings.ToLower(webrtc.MimeTypeVP8): media.CodecVP8,
	strings.ToLower(webrtc.MimeTypeVP9): media.CodecVP9,
}

// registerPassthrough offers VP8 and VP9 (profile 0) after H.264.
func registerPassthrough(me *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: fb}, PayloadType: 98},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return err
		}
	}
	return nil
}

// vpxKey tells a VP8 or VP9 keyframe from the frame's first bytes.
func vpxKey(c media.Codec, f []byte) bool {
	if len(f) == 0 {
		return false
	}
	switch c {
	case media.CodecVP8:
		// RFC 6386 §9.1: frame tag bit 0 is 0 for a key frame.
		return f[0]&1 == 0
	case media.CodecVP9:
		// VP9 bitstream §6.2: frame_marker(2) profile_low profile_high
		// [reserved_zero if profile 3] show_existing_frame frame_type.
		b, pos := f[0], 2
		if b>>6 != 2 {
			return false
		}
		profile := (b>>5)&1 | (b>>4)&1<<1
		pos += 2
		if profile == 3 {
			pos++
		}
		if b>>(7-pos)&1 == 1 { // show_existing_frame
			return false
		}
		pos++
		return b>>(7-pos)&1 == 0
	}
	return false
}

// readVPx reads a published VP8 or VP9 track into the hub, starting at a
// keyframe; RTP timestamps become hub times.
func (ss *session) readVPx(track *webrtc.TrackRemote, codec media.Codec) {
	ss.mu.Lock()
	pub := ss.pub
	ss.mu.Unlock()
	if pub == nil {
		ss.drain(track)
		return
	}
	var dep rtp.Depacketizer = &codecs.VP8Packet{}
	if codec == media.CodecVP9 {
		dep = &codecs.VP9Packet{}
	}
	sb := samplebuilder.New(maxLatePackets, dep, 90000)
	keyFrames := make(chan struct{}, 1)
	ss.videoSSRC.Store(uint32(track.SSRC()))
	ss.s.wg.Add(1)
	go ss.askKeyframes(uint32(track.SSRC()), keyFrames)
	var last uint32
	var ext int64
	started, keySeen := false, false
	for {
		_ = track.SetReadDeadline(time.Now().Add(ss.opts.StunTimeout))
		pkt, _, err := track.ReadRTP()
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				ss.close("no video from the publisher within stun_timeout " + ss.opts.StunTimeout.String())
			case errors.Is(err, io.EOF):
				ss.close("publisher track ended")
			default:
				ss.close("publisher track ended: " + err.Error())
			}
			return
		}
		ss.recvBytes.Add(uint64(len(pkt.Payload) + 12))
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			if !started {
				started, last = true, s.PacketTimestamp
			} else {
				ext += int64(int32(s.PacketTimestamp - last)) // wraps at 2^32
				last = s.PacketTimestamp
			}
			key := vpxKey(codec, s.Data)
			if !keySeen && !key {
				continue
			}
			keySeen = true
			ts := time.Duration(ext) * time.Second / 90000
			p := media.Packet{Kind: media.KindVideo, Codec: codec, DTS: ts, PTS: ts, Payload: s.Data}
			if key {
				p.Flags |= media.FlagKey
				select {
				case keyFrames <- struct{}{}:
				default:
				}
			}
			if err := pub.Write(p); err != nil {
				ss.close("write to hub: " + err.Error())
				return
			}
		}
	}
}

// passthroughTrack returns the video track a player of ref gets when a
// WebRTC publisher of this process sends VP8 or VP9, else nil (H.264).
func (ss *session) passthroughTrack() (*webrtc.TrackLocalStaticRTP, media.Codec, rtp.Packetizer, error) {
	pub := ss.s.publisherOf(ss.ref.Key())
	if pub == nil {
		return nil, 0, nil, nil
	}
	c := media.Codec(pub.videoCodec.Load())
	var cap webrtc.RTPCodecCapability
	var pay rtp.Payloader
	switch c {
	case media.CodecVP8:
		cap, pay = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, &codecs.VP8Payloader{EnablePictureID: true}
	case media.CodecVP9:
		cap, pay = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, &codecs.VP9Payloader{}
	default:
		return nil, 0, nil, nil
	}
	tr, err := webrtc.NewTrackLocalStaticRTP(cap, "video", "rill")
	if err != nil {
		return nil, 0, nil, err
	}
	return tr, c, rtp.NewPacketizer(rtpMTU, 0, 0, pay, rtp.NewRandomSequencer(), 90000), nil
}
