package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	pmedia "github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"

	"github.com/rill-media/rill/sdk/media"
)

// maxLatePackets is how far the sample builder reorders (SRS's jitter
// buffer): a frame whose packets are still missing this many packets later
// is dropped.
const maxLatePackets = 512

// onTrack reads one published track. H.264 is depacketized into hub
// packets; Opus is transcoded to AAC (audio_publish.go) so FLV, HLS and
// DVR players get it.
func (ss *session) onTrack(track *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	ss.s.wg.Add(2)
	defer ss.s.wg.Done()
	go ss.readReports(r, track.Kind() == webrtc.RTPCodecTypeVideo)
	codec := track.Codec().MimeType
	ss.log.Info("webrtc track", "kind", track.Kind().String(), "codec", codec, "ssrc", uint32(track.SSRC()))
	switch {
	case track.Kind() == webrtc.RTPCodecTypeVideo && codec == webrtc.MimeTypeH264:
		ss.videoCodec.Store(uint32(media.CodecH264))
		ss.readH264(track)
	case track.Kind() == webrtc.RTPCodecTypeVideo && passthroughCodecs[strings.ToLower(codec)] != 0:
		c := passthroughCodecs[strings.ToLower(codec)]
		ss.videoCodec.Store(uint32(c))
		ss.readVPx(track, c)
	case track.Kind() == webrtc.RTPCodecTypeAudio && codec == webrtc.MimeTypeOpus:
		ss.readOpus(track)
	default:
		ss.log.Warn("webrtc track codec not supported, dropped", "codec", codec)
		ss.drain(track)
	}
}

func (ss *session) drain(track *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		ss.recvBytes.Add(uint64(n))
	}
}

// h264Depacketizer turns samples (Annex-B access units) into hub packets.
type h264Depacketizer struct {
	sps, pps []byte
	config   bool // a config packet went out
	keySeen  bool
	baseTS   uint32
	lastTS   uint32
	ext      int64 // unwrapped RTP time relative to baseTS
	started  bool
	warned   bool
}

// packets converts one access unit; RTP timestamps become hub times.
func (d *h264Depacketizer) packets(s *pmedia.Sample) ([]media.Packet, error) {
	if !d.started {
		d.started, d.baseTS, d.lastTS = true, s.PacketTimestamp, s.PacketTimestamp
	} else {
		d.ext += int64(int32(s.PacketTimestamp - d.lastTS)) // wraps at 2^32 (docs/THREATS.md row 4)
		d.lastTS = s.PacketTimestamp
	}
	ts := time.Duration(d.ext) * time.Second / 90000
	var out []media.Packet
	var frame []byte
	key, cfgChanged := false, false
	for _, n := range splitAnnexB(s.Data) {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case naluSPS:
			if !sameBytes(n, d.sps) {
				d.sps, cfgChanged = append([]byte(nil), n...), true
			}
		case naluPPS:
			if !sameBytes(n, d.pps) {
				d.pps, cfgChanged = append([]byte(nil), n...), true
			}
		case naluAUD:
		default:
			if n[0]&0x1f == naluIDR {
				key = true
			}
			frame = appendAVCC(frame, n)
		}
	}
	if cfgChanged && d.sps != nil && d.pps != nil {
		rec, err := avcConfig(d.sps, d.pps)
		if err != nil {
			return nil, err
		}
		d.config = true
		out = append(out, media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, DTS: ts, PTS: ts, Payload: rec})
	}
	if len(frame) == 0 || !d.config {
		return out, nil
	}
	if !d.keySeen && !key {
		return out, nil // start at a keyframe
	}
	d.keySeen = true
	p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: ts, PTS: ts, Payload: frame}
	if key {
		p.Flags |= media.FlagKey
	}
	return append(out, p), nil
}

func (ss *session) readH264(track *webrtc.TrackRemote) {
	ss.mu.Lock()
	pub := ss.pub
	ss.mu.Unlock()
	if pub == nil {
		ss.drain(track)
		return
	}
	sb := samplebuilder.New(maxLatePackets, &codecs.H264Packet{}, 90000)
	var d h264Depacketizer
	keyFrames := make(chan struct{}, 1)
	ss.videoSSRC.Store(uint32(track.SSRC()))
	ss.s.wg.Add(1)
	go ss.askKeyframes(uint32(track.SSRC()), keyFrames)
	for {
		// A publisher whose video stops (its ICE kept alive) is cut after
		// stun_timeout, as SRS's publish normal_timeout does.
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
		ss.avsync.markVideo(pkt.Timestamp)
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			pkts, err := d.packets(s)
			if err != nil {
				ss.log.Warn("bad h264 access unit dropped", "error", err)
				continue
			}
			for _, p := range pkts {
				if p.IsKey() {
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
}

// askKeyframes sends a PLI when the track starts and every second until
// the first keyframe came (at most 30), so the stream starts soon.
func (ss *session) askKeyframes(ssrc uint32, got <-chan struct{}) {
	defer ss.s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for range 30 {
		ss.mu.Lock()
		pc := ss.pc
		ss.mu.Unlock()
		if pc != nil {
			_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
		}
		select {
		case <-got:
			return
		case <-ss.done:
			return
		case <-t.C:
		}
	}
}
