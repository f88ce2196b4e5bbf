package main

import (
	"encoding/binary"
	"time"

	"github.com/q191201771/lal/pkg/rtprtcp"
	"github.com/q191201771/lal/pkg/sdp"
)

// srInterval is how often a stream's TCP players get RTCP sender reports
// (RFC 3550 §6.4.1), which RTSP clients (live555 in VLC, FFmpeg) use to
// put the audio and video tracks on one clock.
const srInterval = 2 * time.Second

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// senderClock maps the stream's media time to the wall clock for the
// sender reports, and counts what each track sent.
type senderClock struct {
	lastDTS  time.Duration // the newest frame's media time
	lastWall time.Time     // when it was pushed
	lastSR   time.Time
	tracks   [2]srTrack // video, audio
}

type srTrack struct {
	seen    bool
	ssrc    uint32
	packets uint32
	octets  uint32
}

// count notes a frame's packets; video says which track.
func (k *senderClock) count(f *rtpFrame, now time.Time) {
	i := 1
	if f.video {
		i = 0
	}
	t := &k.tracks[i]
	for _, p := range f.pkts {
		t.seen, t.ssrc = true, p.Header.Ssrc
		t.packets++
		t.octets += uint32(len(p.Raw) - rtprtcp.RtpFixedHeaderLength)
	}
	if f.ts >= k.lastDTS || k.lastWall.IsZero() {
		k.lastDTS, k.lastWall = f.ts, now
	}
}

// reports returns the interleaved sender reports of the tracks seen on
// ch's RTCP channels at now (nil when none is set up).
func (k *senderClock) reports(ch chans, sd sdp.LogicContext, now time.Time) []byte {
	if k.lastWall.IsZero() {
		return nil
	}
	media := k.lastDTS + now.Sub(k.lastWall)
	var b []byte
	for i, t := range k.tracks {
		rtcpCh, clock := ch.videoRTCP, sd.VideoClockRate
		if i == 1 {
			rtcpCh, clock = ch.audioRTCP, sd.AudioClockRate
		}
		if !t.seen || rtcpCh < 0 || clock <= 0 {
			continue
		}
		// lal's packer stamps a frame of media time m milliseconds with
		// uint32(m * clock / 1000): the same line, at now.
		rtpTS := uint32(int64(float64(media) / float64(time.Second) * float64(clock)))
		b = append(b, '$', byte(rtcpCh), 0, 28)
		b = append(b, senderReport(t.ssrc, now, rtpTS, t.packets, t.octets)...)
	}
	return b
}

// senderReport is an RTCP SR without report blocks (RFC 3550 §6.4.1).
func senderReport(ssrc uint32, ntp time.Time, rtpTS, packets, octets uint32) []byte {
	b := make([]byte, 28)
	b[0], b[1] = 0x80, 200
	binary.BigEndian.PutUint16(b[2:], 6) // length in 32-bit words, minus one
	binary.BigEndian.PutUint32(b[4:], ssrc)
	binary.BigEndian.PutUint32(b[8:], uint32(ntp.Unix()+ntpEpochOffset))
	binary.BigEndian.PutUint32(b[12:], uint32((uint64(ntp.Nanosecond())<<32)/uint64(time.Second)))
	binary.BigEndian.PutUint32(b[16:], rtpTS)
	binary.BigEndian.PutUint32(b[20:], packets)
	binary.BigEndian.PutUint32(b[24:], octets)
	return b
}
