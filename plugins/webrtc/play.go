package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"

	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk/media"
)

const rtpMTU = 1200

// player sends one hub stream to a WebRTC peer: H.264 packetized (SPS and
// PPS before every keyframe, B-frames dropped unless keep_bframe), Opus
// passed through, AAC transcoded to Opus (audio_play.go).
type player struct {
	ss     *session
	video  *webrtc.TrackLocalStaticRTP
	audio  *webrtc.TrackLocalStaticRTP
	vpack  rtp.Packetizer
	apack  rtp.Packetizer
	vbase  uint32
	vcodec media.Codec // H.264, or VP8/VP9 passed through from a WebRTC publisher
	abase  uint32
	warned map[string]bool
	opus   *sharedOpus // the stream's AAC->Opus transcoder, once AAC came
}

func (ss *session) preparePlay(_ *sdp.SessionDescription) (*player, error) {
	v, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "rill")
	if err != nil {
		return nil, err
	}
	a, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "rill")
	if err != nil {
		return nil, err
	}
	p := &player{ss: ss, video: v, audio: a, warned: map[string]bool{},
		vpack: rtp.NewPacketizer(rtpMTU, 0, 0, &codecs.H264Payloader{}, rtp.NewRandomSequencer(), 90000),
		apack: rtp.NewPacketizer(rtpMTU, 0, 0, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), 48000),
		vbase: uint32(time.Now().UnixNano()), abase: uint32(time.Now().UnixNano() >> 8)}
	p.vcodec = media.CodecH264
	if tr, c, pk, err := ss.passthroughTrack(); err != nil {
		return nil, err
	} else if tr != nil {
		p.video, p.vcodec, p.vpack = tr, c, pk
	}
	ss.player = p
	return p, nil
}

// addPlayTracks adds the tracks the offer has room for (after the remote
// description, so they take the offer's transceivers).
func (ss *session) addPlayTracks(offer *sdp.SessionDescription) error {
	p := ss.player
	hasAudio := false
	for _, m := range offer.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			hasAudio = true
		}
	}
	senders := []*webrtc.RTPSender{}
	s, err := ss.pc.AddTrack(p.video)
	if err != nil {
		return badRequest("offer cannot receive %s video: %v", p.vcodec, err)
	}
	senders = append(senders, s)
	if hasAudio {
		s, err := ss.pc.AddTrack(p.audio)
		if err != nil {
			return badRequest("offer cannot receive Opus audio: %v", err)
		}
		senders = append(senders, s)
	}
	for i, s := range senders {
		ss.s.wg.Add(1)
		go ss.readViewerRTCP(s, i == 0) // senders[0] is the video
	}
	return nil
}

func (p *player) warnOnce(key, msg string, args ...any) {
	if p.warned[key] {
		return
	}
	p.warned[key] = true
	p.ss.log.Warn(msg+" (logged once per session)", args...)
}

// run reads the stream and sends it until the stream or the session ends.
func (p *player) run() {
	ss := p.ss
	ctx, cancel := context.WithCancel(ss.s.ctx)
	defer cancel()
	go func() {
		select {
		case <-ss.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	src, err := ss.s.src.Open(ctx, ss.info, ss.ref, ss.opts.StunTimeout)
	if err != nil {
		ss.close("open stream: " + err.Error())
		return
	}
	defer src.Close()
	defer p.closeAudio()
	ss.log.Info("webrtc play started")
	ss.askPublisherKeyframe("viewer joined")
	var sps, pps []byte
	started := false
	for {
		pkt, err := src.Read(ctx)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				ss.close("stream unpublished")
			case ctx.Err() != nil:
			default:
				ss.close("read stream: " + err.Error())
			}
			return
		}
		switch {
		case pkt.Kind == media.KindVideo && pkt.Codec == media.CodecH264 && p.vcodec == media.CodecH264:
			if pkt.IsConfig() {
				sets, err := tsmux.ParamSets(pkt.Payload, false)
				if err != nil {
					p.warnOnce("avc-config", "bad AVC config ignored", "error", err)
					continue
				}
				sps, pps = nil, nil
				for _, s := range sets {
					switch s[0] & 0x1f {
					case naluSPS:
						sps = append([]byte(nil), s...)
					case naluPPS:
						pps = append([]byte(nil), s...)
					}
				}
				continue
			}
			if !started && (!pkt.IsKey() || sps == nil || pps == nil) {
				continue // start at a keyframe, with its parameter sets
			}
			started = true
			if err := p.sendH264(pkt, sps, pps); err != nil {
				ss.close("send video: " + err.Error())
				return
			}
		case pkt.Kind == media.KindVideo && pkt.Codec == p.vcodec:
			if !started && !pkt.IsKey() {
				continue
			}
			started = true
			if err := p.send(p.video, p.vpack, pkt.Payload, p.vbase+rtpTime(pkt.PTS, 90000)); err != nil {
				ss.close("send video: " + err.Error())
				return
			}
		case pkt.Kind == media.KindVideo:
			p.warnOnce("video-codec", "video codec not sent over webrtc", "codec", pkt.Codec.String())
		case pkt.Kind == media.KindAudio && pkt.Codec == media.CodecOpus && !pkt.IsConfig():
			if err := p.send(p.audio, p.apack, pkt.Payload, p.abase+rtpTime(pkt.PTS, 48000)); err != nil {
				ss.close("send audio: " + err.Error())
				return
			}
		case pkt.Kind == media.KindAudio && pkt.Codec == media.CodecAAC:
			if err := p.sendAAC(pkt); err != nil {
				ss.close("send audio: " + err.Error())
				return
			}
		case pkt.Kind == media.KindAudio && !pkt.IsConfig():
			p.warnOnce("audio-codec", "audio not sent over webrtc: no transcoder to Opus for this codec", "codec", pkt.Codec.String())
		}
	}
}

func (p *player) sendH264(pkt media.Packet, sps, pps []byte) error {
	var nals [][]byte
	bframe := false
	if err := media.SplitAVCC(pkt.Payload, func(n []byte) bool {
		switch n[0] & 0x1f {
		case naluAUD, naluSPS, naluPPS:
			return true // ours go before the keyframe
		}
		if isBSlice(n) {
			bframe = true
		}
		nals = append(nals, n)
		return true
	}); err != nil {
		p.warnOnce("avcc", "malformed video frame dropped", "error", err)
		return nil
	}
	if bframe && !p.ss.opts.KeepBframe {
		return nil // rtc { keep_bframe off }: browsers play without them
	}
	if pkt.IsKey() {
		nals = append([][]byte{sps, pps}, nals...)
	}
	var au []byte
	for _, n := range nals {
		au = append(append(au, startCode...), n...)
	}
	return p.send(p.video, p.vpack, au, p.vbase+rtpTime(pkt.PTS, 90000))
}

// send packetizes one access unit with its RTP timestamp.
func (p *player) send(track *webrtc.TrackLocalStaticRTP, pk rtp.Packetizer, payload []byte, ts uint32) error {
	for _, rp := range pk.Packetize(payload, 0) {
		rp.Timestamp = ts
		if err := track.WriteRTP(rp); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return fmt.Errorf("peer connection closed")
			}
			return err
		}
		p.ss.sendBytes.Add(uint64(len(rp.Payload) + 12))
	}
	return nil
}

// rtpTime converts a hub time to RTP clock units (wrapping at 2^32 as RTP
// timestamps do).
func rtpTime(d time.Duration, rate int64) uint32 {
	return uint32(int64(d/time.Microsecond) * rate / 1e6)
}
