package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/q191201771/lal/pkg/avc"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/mpegts"
	"github.com/q191201771/lal/pkg/remux"

	"github.com/rill-media/rill/bench/replay"
)

// SRT clients of the load tool, on gosrt: a player that reads the
// server's MPEG-TS and hands each video frame on as an FLV video tag body
// (so replay.File.Identify recognises it by its first coded slice), and a
// publisher sink that muxes the replayed FLV tags with lal's RTMP-to-TS
// remuxer (not the server's own muxer).

// dialSRT connects to an srt://host:port?streamid=...&latency=... URL
// (gosrt's URL options; %23 for the '#' of "#!::").
func dialSRT(rawURL string) (srt.Conn, error) {
	cfg := srt.DefaultConfig()
	addr, err := cfg.UnmarshalURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("srt url %q: %w", rawURL, err)
	}
	cfg.ConnectionTimeout = 10 * time.Second
	// gosrt's default of 2 s ended players whenever the loaded load tool
	// stalled that long; the server's peer_idle_timeout is 10 s.
	cfg.PeerIdleTimeout = 10 * time.Second
	c, err := srt.Dial("srt", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("srt dial %s: %w", addr, err)
	}
	return c, nil
}

// srtPull is one SRT player.
type srtPull struct {
	conn srt.Conn
	done chan error
	once sync.Once
}

// srtResyncs counts TS resynchronisations of every SRT player (reported).
var srtResyncs atomic.Int64

func dialSRTPlay(ctx context.Context, rawURL string, onTag func(typ uint8, payload []byte)) (*srtPull, error) {
	c, err := dialSRT(rawURL)
	if err != nil {
		return nil, err
	}
	s := &srtPull{conn: c, done: make(chan error, 1)}
	go func() {
		s.done <- s.read(onTag)
	}()
	return s, nil
}

func (s *srtPull) close() { s.once.Do(func() { _ = s.conn.Close() }) }

// read demuxes the video PES of the first H.264 stream of the PMT.
func (s *srtPull) read(onTag func(typ uint8, payload []byte)) error {
	buf := make([]byte, 1500)
	var carry []byte
	var pat mpegts.Pat
	havePat := false
	videoPID, audioPID := -1, -1
	var pes []byte
	want := 0
	var tag []byte
	emit := func() {
		if len(pes) < 9 {
			pes = pes[:0]
			return
		}
		_, n := mpegts.ParsePes(pes)
		if n <= 0 || n > len(pes) {
			pes = pes[:0]
			return
		}
		nalus, err := avc.SplitNaluAnnexb(pes[n:])
		pes = pes[:0]
		if err != nil {
			return
		}
		tag = append(tag[:0], 0x27, 1, 0, 0, 0)
		for _, nal := range nalus {
			if len(nal) == 0 {
				continue
			}
			switch t := nal[0] & 0x1f; t {
			case 7, 8, 9:
				continue
			case 5:
				tag[0] = 0x17
			}
			tag = binary.BigEndian.AppendUint32(tag, uint32(len(nal)))
			tag = append(tag, nal...)
		}
		if len(tag) > 5 {
			onTag(replay.TagVideo, tag)
		}
	}
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return err
		}
		b := buf[:n]
		if len(carry) > 0 {
			b = append(carry, b...)
			carry = carry[:0]
		}
		for len(b) >= 188 {
			if b[0] != 0x47 {
				// Lost sync: resynchronise on the next sync byte, drop
				// the PES being reassembled, count it.
				srtResyncs.Add(1)
				pes = pes[:0]
				i := bytes.IndexByte(b, 0x47)
				if i < 0 {
					b = b[:0]
					break
				}
				b = b[i:]
				continue
			}
			pkt := b[:188]
			b = b[188:]
			h := mpegts.ParseTsPacketHeader(pkt)
			payload := pkt[4:]
			if h.Adaptation&2 != 0 {
				afl := int(pkt[4])
				if 5+afl > 188 {
					continue
				}
				payload = pkt[5+afl:]
			}
			if h.Adaptation == 2 || len(payload) == 0 {
				continue
			}
			pid := int(h.Pid)
			switch {
			case pid == 0 && h.PayloadUnitStart == 1 && len(payload) > 1+int(payload[0]):
				pat, havePat = mpegts.ParsePat(payload[1+int(payload[0]):]), true
			case pid != 0 && havePat && pat.SearchPid(uint16(pid)) && h.PayloadUnitStart == 1 && len(payload) > 1+int(payload[0]):
				pmt := mpegts.ParsePmt(payload[1+int(payload[0]):])
				videoPID, audioPID = -1, -1
				for _, e := range pmt.ProgramElements {
					switch {
					case e.StreamType == 0x1b && videoPID < 0:
						videoPID = int(e.Pid)
					case e.StreamType != 0x1b && audioPID < 0:
						audioPID = int(e.Pid)
					}
				}
			case pid == audioPID:
				onTag(replay.TagAudio, payload) // counted as bytes only
			case pid == videoPID:
				if h.PayloadUnitStart == 1 {
					if len(pes) > 0 {
						emit()
					}
					want = 0
					if len(payload) >= 6 {
						if l := int(binary.BigEndian.Uint16(payload[4:6])); l > 0 {
							want = 6 + l
						}
					}
				} else if len(pes) == 0 {
					continue
				}
				pes = append(pes, payload...)
				if want > 0 && len(pes) >= want {
					pes = pes[:want]
					emit()
					want = 0
				}
			}
		}
		carry = append(carry, b...)
	}
}

// srtSink publishes replayed FLV tags over SRT as MPEG-TS.
type srtSink struct {
	conn  srt.Conn
	remux *remux.Rtmp2MpegtsRemuxer
	out   []byte
	err   error
}

func newSRTSink(rawURL string) (*srtSink, error) {
	c, err := dialSRT(rawURL)
	if err != nil {
		return nil, err
	}
	s := &srtSink{conn: c}
	s.remux = remux.NewRtmp2MpegtsRemuxer(s)
	return s, nil
}

func (s *srtSink) OnPatPmt(b []byte) { s.out = append(s.out, b...) }

func (s *srtSink) OnTsPackets(ts []byte, _ *mpegts.Frame, _ bool) { s.out = append(s.out, ts...) }

// write muxes one tag and sends what it produced (a video frame at once;
// lal's remuxer holds audio back until a video frame or a full PES).
func (s *srtSink) write(t replay.Tag, ts uint32) error {
	if t.Type != replay.TagVideo && t.Type != replay.TagAudio {
		return nil
	}
	s.remux.FeedRtmpMessage(base.RtmpMsg{
		Header:  base.RtmpHeader{MsgTypeId: t.Type, MsgLen: uint32(len(t.Payload)), TimestampAbs: ts},
		Payload: t.Payload,
	})
	if len(s.out) == 0 {
		return nil
	}
	_, err := s.conn.Write(s.out)
	s.out = s.out[:0]
	return err
}

func (s *srtSink) close() { _ = s.conn.Close() }
