package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pion/rtcp"
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

// srCorrection is the smallest difference between the arrival-time tie
// and the sender-report tie that moves the audio once the reports came.
const srCorrection = 5 * time.Millisecond

// senderReport is one RTCP SR's clock pair (RFC 3550 §6.4.1).
type senderReport struct {
	ntp time.Duration // NTP wall clock as a duration since 1900
	rtp uint32
	ok  bool
}

func ntpDuration(ntp uint64) time.Duration {
	return time.Duration(ntp>>32)*time.Second + time.Duration((ntp&0xffffffff)*uint64(time.Second)>>32)
}

// avSync puts a publisher's audio on its video's timeline. Video starts at
// hub time 0 at its first RTP timestamp (h264Depacketizer). With a sender
// report for each track the two RTP clocks are tied through the sender's
// NTP clock (RFC 3550 §6.4.1, as lip sync does); without them, by the
// arrival time of each track's first packet.
type avSync struct {
	mu        sync.Mutex
	video     time.Time // arrival of the first video packet
	videoBase uint32    // its RTP timestamp
	srVideo   senderReport
	srAudio   senderReport
}

func (a *avSync) markVideo(rtpTS uint32) {
	a.mu.Lock()
	if a.video.IsZero() {
		a.video, a.videoBase = time.Now(), rtpTS
	}
	a.mu.Unlock()
}

func (a *avSync) report(video bool, sr *rtcp.SenderReport) {
	a.mu.Lock()
	r := senderReport{ntp: ntpDuration(sr.NTPTime), rtp: sr.RTPTime, ok: true}
	if video {
		a.srVideo = r
	} else {
		a.srAudio = r
	}
	a.mu.Unlock()
}

// audioStart is the hub time of the audio RTP timestamp rtpTS, arriving
// now: through the sender reports when both came (bySR), else by arrival
// times. ok is false while there is no video yet.
func (a *avSync) audioStart(rtpTS uint32) (at time.Duration, ok, bySR bool) {
	if at, ok := a.bySR(rtpTS); ok {
		return at, true, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.video.IsZero() {
		return 0, false, false
	}
	return time.Since(a.video), true, false
}

// bySR is the hub time of the audio RTP timestamp rtpTS through both
// tracks' sender reports; false until video started and both came.
func (a *avSync) bySR(rtpTS uint32) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.video.IsZero() || !a.srVideo.ok || !a.srAudio.ok {
		return 0, false
	}
	// NTP time of this audio sample and of the first video frame.
	ta := a.srAudio.ntp + time.Duration(int32(rtpTS-a.srAudio.rtp))*time.Second/48000
	tv := a.srVideo.ntp + time.Duration(int32(a.videoBase-a.srVideo.rtp))*time.Second/90000
	return ta - tv, true
}

// readReports reads a published track's RTCP, keeping its sender reports
// for avSync (reading also feeds pion's interceptors).
func (ss *session) readReports(r *webrtc.RTPReceiver, video bool) {
	defer ss.s.wg.Done()
	for range 1 << 30 { // ends with the receiver
		pkts, _, err := r.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				ss.avsync.report(video, sr)
			}
		}
	}
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
		offset     time.Duration // hub time of the first audio RTP timestamp
		firstTS    uint32
		synced     bool // offset comes from the sender reports
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
			off, ok, bySR := ss.avsync.audioStart(pkt.Timestamp)
			if !ok {
				continue // no video timeline yet
			}
			started, offset, lastTS, synced = true, off, pkt.Timestamp, bySR
			firstTS = pkt.Timestamp
			ss.log.Info("publisher audio on the video timeline", "offset", off.String(), "by_sender_reports", bySR)
		} else if !synced {
			// Started by arrival times: once both sender reports came,
			// move the audio where they put it (once).
			if at, ok := ss.avsync.bySR(firstTS); ok {
				synced = true
				d := at - offset
				if d > srCorrection || d < -srCorrection {
					offset = at
					tr.Shift(d)
				}
				ss.log.Info("publisher audio on the video timeline", "offset", at.String(), "by_sender_reports", true,
					"correction", d.String())
			}
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
