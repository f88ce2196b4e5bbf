package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"

	"github.com/rill-media/rill/internal/avcodec"
	"github.com/rill-media/rill/sdk/media"
)

// publishAAC is the format a WebRTC publisher's Opus becomes in the hub.
// 48 kHz is kept: Opus is always 48 kHz inside, so no resampling step (no
// added delay or filtering), and FLV, HLS and every RTMP player read the
// rate from the AudioSpecificConfig (OBS and browsers publish 48 kHz AAC
// over RTMP every day). Stereo, as WebRTC signals Opus.
var publishAAC = avcodec.Format{Rate: 48000, Channels: 2}

const publishAACBitrate = 128000

// avSync puts a publisher's audio on its video's timeline. The plugin does
// not read RTCP sender reports, so the two RTP clocks are tied by the
// arrival time of each track's first packet: video starts at hub time 0
// (h264Depacketizer), audio at the wall-clock distance from it.
type avSync struct {
	mu    sync.Mutex
	video time.Time // arrival of the first video packet
}

func (a *avSync) markVideo() {
	a.mu.Lock()
	if a.video.IsZero() {
		a.video = time.Now()
	}
	a.mu.Unlock()
}

// audioOffset is the hub time of an audio packet arriving now, false until
// video started.
func (a *avSync) audioOffset() (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.video.IsZero() {
		return 0, false
	}
	return time.Since(a.video), true
}

// readOpus transcodes a published Opus track to AAC into the hub, so RTMP,
// HTTP-FLV, HLS and DVR players get the audio.
func (ss *session) readOpus(track *webrtc.TrackRemote) {
	ss.mu.Lock()
	pub := ss.pub
	ss.mu.Unlock()
	if pub == nil {
		ss.drain(track)
		return
	}
	tr, err := avcodec.NewTranscoder(media.CodecOpus, nil, avcodec.Format{Rate: 48000, Channels: 2}, media.CodecAAC, publishAAC, publishAACBitrate)
	if err != nil {
		ss.log.Error("opus to aac transcoder not started, publisher audio dropped", "error", err)
		ss.drain(track)
		return
	}
	defer tr.Close()
	sb := samplebuilder.New(maxLatePackets, &codecs.OpusPacket{}, 48000)
	var (
		ext        int64 // unwrapped RTP time since the first audio packet
		lastTS     uint32
		started    bool
		offset     time.Duration
		configSent bool
		frames     []avcodec.TimedFrame
		bad        int
	)
	for {
		// The video track's deadline cuts a silent publisher; this one
		// only bounds the read so a session's end is seen.
		_ = track.SetReadDeadline(time.Now().Add(ss.opts.StunTimeout))
		pkt, _, err := track.ReadRTP()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				select {
				case <-ss.done:
					return
				default:
					continue // the video side decides when a publisher is silent
				}
			}
			if !errors.Is(err, io.EOF) {
				ss.log.Debug("publisher audio track ended", "error", err)
			}
			return
		}
		ss.recvBytes.Add(uint64(len(pkt.Payload) + 12))
		if !started {
			off, ok := ss.avsync.audioOffset()
			if !ok {
				continue // audio before the first video packet: no timeline yet
			}
			started, offset, lastTS = true, off, pkt.Timestamp
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			ext += int64(int32(s.PacketTimestamp - lastTS)) // wraps at 2^32
			lastTS = s.PacketTimestamp
			dts := offset + time.Duration(ext)*time.Second/48000
			frames, err = tr.Feed(frames[:0], s.Data, dts)
			if err != nil {
				bad++
				if bad == 1 || bad%100 == 0 {
					ss.log.Warn("undecodable opus frame dropped", "error", err, "dropped", bad)
				}
				continue
			}
			if !configSent && len(frames) > 0 {
				if err := pub.Write(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig,
					DTS: frames[0].DTS, PTS: frames[0].DTS, Payload: tr.Config()}); err != nil {
					ss.close("write to hub: " + err.Error())
					return
				}
				configSent = true
				ss.log.Info("publisher opus transcoded to aac", "rate", publishAAC.Rate, "channels", publishAAC.Channels)
			}
			for _, f := range frames {
				if f.DTS < 0 {
					continue // the encoder's priming frame before the stream's start
				}
				if err := pub.Write(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: f.DTS, PTS: f.DTS, Payload: f.Data}); err != nil {
					ss.close("write to hub: " + err.Error())
					return
				}
			}
		}
	}
}
