package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/q191201771/lal/pkg/avc"
	"github.com/q191201771/lal/pkg/base"
	"github.com/q191201771/lal/pkg/gb28181"
	"github.com/q191201771/lal/pkg/hevc"
	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/sdk/media"
)

// Limits on what one media stream may make the demuxer hold.
const (
	maxRTPPacket = 65535   // RFC 4571 length field
	maxFrame     = 4 << 20 // one access unit of video
)

func init() {
	// lal's PS unpacker logs through naza's global logger, which writes to
	// standard output: the go-plugin handshake channel of this process.
	_ = nazalog.Init(func(o *nazalog.Option) {
		o.IsToStdout = false
		o.Filename = ""
		o.Level = nazalog.LevelLogNothing
		o.AssertBehavior = nazalog.AssertError
	})
}

// errJunk is the error for input that is not PS over RTP.
var errJunk = errors.New("gb28181: malformed ps/rtp")

// demux turns RTP packets carrying an MPEG-PS stream (GB28181 §C) into hub
// packets. It wraps lal's gb28181.PsUnpacker, which reorders RTP by
// sequence number, drops what is lost and splits PES into NAL units; the
// wrapper adds what a server facing hostile input needs: a bound on sizes,
// a recover around lal's parser (it indexes before checking lengths in
// places, THREATS.md row 13), access-unit assembly and AVCC conversion.
type demux struct {
	u    *gb28181.PsUnpacker
	emit func(media.Packet) error

	codec   media.Codec
	nalus   [][]byte
	size    int
	dts     int64 // ms of the access unit being assembled, -1 before the first
	pts     int64
	sps     []byte
	pps     []byte
	vps     []byte
	config  []byte // the last decoder configuration record sent
	asc     []byte // the last AudioSpecificConfig sent
	emitErr error
	frames  uint64

	// Reordering and PS framing in front of lal (reorder.go): lal's own
	// reorder buffer is bypassed, it is fed whole PS units in order.
	ro        *reorder
	fr        psFramer
	lastPTS   int64 // 90 kHz PTS of the last video PES fed, -1 before
	frameDone bool  // an RTP marker came after the last video PES
	dropPTS   int64 // ms PTS of a frame a loss cut short, -1 for none
	losses    uint64
}

func newDemux(emit func(media.Packet) error) *demux {
	d := &demux{emit: emit, dts: -1, lastPTS: -1, dropPTS: -1}
	d.u = gb28181.NewPsUnpacker().WithOnAvPacket(d.onAv)
	d.ro = newReorder(defaultReorderPackets, defaultReorderWait)
	return d
}

// setReorder sets the reorder window (packets) and the longest wait for
// a missing packet.
func (d *demux) setReorder(packets int, wait time.Duration) { d.ro = newReorder(packets, wait) }

// FeedRTP feeds one RTP packet (with its 12+ byte header). It returns an
// error for input that cannot be PS over RTP and for errors of emit.
func (d *demux) FeedRTP(b []byte) (err error) {
	return d.feedRTPAt(b, time.Now())
}

func (d *demux) feedRTPAt(b []byte, now time.Time) (err error) {
	if len(b) > maxRTPPacket {
		return fmt.Errorf("%w: rtp packet of %d bytes", errJunk, len(b))
	}
	seq, ts, marker, payload, err := parseRTP(b)
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: ps parser: %v", errJunk, r)
		}
	}()
	d.ro.push(seq, ts, marker, payload, now, d.onRTP)
	return d.emitErr
}

// Tick releases the packets held behind a gap older than the reorder
// wait; Pending says whether any are held (the caller ticks again).
func (d *demux) Tick(now time.Time) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: ps parser: %v", errJunk, r)
		}
	}()
	d.ro.expire(now, d.onRTP)
	return d.emitErr
}

// Pending reports whether packets wait behind a gap.
func (d *demux) Pending() bool { return d.ro.pending() }

// onRTP takes the packets the reorder buffer releases, in order.
func (d *demux) onRTP(p *rtpPacket, lost bool) {
	if lost {
		d.onLoss()
	}
	d.fr.feed(p.payload, lost, func(code byte, u []byte) { d.onUnit(code, u, p.ts) })
	if p.marker {
		d.frameDone = true
	}
}

// onLoss marks the video frame a loss cut short, so that what lal holds
// of it is dropped rather than emitted truncated: the frame in progress,
// unless the unit being assembled was the first PES of a new frame (then
// lal holds the previous frame whole) or a marker closed the frame.
func (d *demux) onLoss() {
	d.losses++
	part := d.fr.data[d.fr.off:]
	newFrame := len(part) >= 8 && part[0] == 0 && part[1] == 0 && part[2] == 1 &&
		part[3] >= 0xe0 && part[3] <= 0xef && part[7]&0x80 != 0
	if !newFrame && !d.frameDone && d.lastPTS >= 0 {
		d.dropPTS = d.lastPTS / 90
	}
}

// onUnit feeds lal one whole PS unit. Pack and system headers, padding
// and private streams carry nothing lal uses and are not fed.
func (d *demux) onUnit(code byte, u []byte, ts uint32) {
	switch {
	case code == 0xbc, code >= 0xc0 && code <= 0xdf:
	case code >= 0xe0 && code <= 0xef:
		if pts, ok := pesPTS(u); ok {
			d.lastPTS = pts
		}
		d.frameDone = false
	default:
		return
	}
	_ = d.u.FeedRtpBody(u, ts) // lal resets itself on what it cannot parse
}

// Flush emits the access unit being assembled.
func (d *demux) Flush() error {
	d.flushAU()
	return d.emitErr
}

// Frames is the number of video access units emitted.
func (d *demux) Frames() uint64 { return d.frames }

func (d *demux) onAv(p *base.AvPacket) {
	if d.emitErr != nil {
		return
	}
	switch p.PayloadType {
	case base.AvPacketPtAvc, base.AvPacketPtHevc:
		d.onNALU(p)
	case base.AvPacketPtG711A, base.AvPacketPtG711U:
		// Emitted as G.711; the session's audioTranscode (audio.go) makes it AAC.
		c := media.CodecG711A
		if p.PayloadType == base.AvPacketPtG711U {
			c = media.CodecG711U
		}
		ts := time.Duration(p.Timestamp) * time.Millisecond
		d.emitErr = d.emit(media.Packet{Kind: media.KindAudio, Codec: c, DTS: ts, PTS: ts, Payload: p.Payload})
	case base.AvPacketPtAac:
		d.onADTS(p) // AAC in PS carries ADTS headers
	}
}

func (d *demux) onADTS(p *base.AvPacket) {
	b := p.Payload
	ts := time.Duration(p.Timestamp) * time.Millisecond
	for len(b) >= 7 && b[0] == 0xff && b[1]&0xf0 == 0xf0 {
		hl := 7
		if b[1]&1 == 0 {
			hl = 9
		}
		n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		if n < hl || n > len(b) {
			return
		}
		profile := b[2]>>6 + 1
		sri := b[2] >> 2 & 0xf
		ch := (b[2]&1)<<2 | b[3]>>6
		asc := []byte{profile<<3 | sri>>1, sri<<7 | ch<<3}
		if string(asc) != string(d.asc) {
			d.asc = asc
			if d.emitErr = d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, DTS: ts, PTS: ts, Payload: asc}); d.emitErr != nil {
				return
			}
		}
		if d.emitErr = d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: ts, PTS: ts, Payload: b[hl:n]}); d.emitErr != nil {
			return
		}
		b = b[n:]
	}
}

func (d *demux) onNALU(p *base.AvPacket) {
	codec := media.CodecH264
	if p.PayloadType == base.AvPacketPtHevc {
		codec = media.CodecH265
	}
	if d.dropPTS >= 0 {
		if p.Pts == d.dropPTS {
			return // of the frame a loss cut short
		}
		d.dropPTS = -1
	}
	nalu := stripStartCode(p.Payload)
	if len(nalu) == 0 {
		return
	}
	if p.Timestamp != d.dts || codec != d.codec {
		d.flushAU()
		d.codec, d.dts, d.pts = codec, p.Timestamp, p.Pts
	}
	if d.size+len(nalu)+4 > maxFrame {
		d.emitErr = fmt.Errorf("%w: video frame larger than %d bytes", errJunk, maxFrame)
		return
	}
	d.nalus = append(d.nalus, append([]byte(nil), nalu...))
	d.size += len(nalu) + 4
}

func stripStartCode(b []byte) []byte {
	switch {
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 1:
		return b[4:]
	case len(b) >= 3 && b[0] == 0 && b[1] == 0 && b[2] == 1:
		return b[3:]
	}
	return b
}

// flushAU emits the assembled access unit: parameter sets become a
// decoder configuration record (sent when it changes), the other NAL units
// one length-prefixed video packet.
func (d *demux) flushAU() {
	if len(d.nalus) == 0 || d.emitErr != nil {
		d.nalus, d.size = d.nalus[:0], 0
		return
	}
	key := false
	payload := make([]byte, 0, d.size)
	for _, n := range d.nalus {
		if d.codec == media.CodecH264 {
			switch avc.ParseNaluType(n[0]) {
			case avc.NaluTypeSps:
				d.sps = n
				continue
			case avc.NaluTypePps:
				d.pps = n
				continue
			case avc.NaluTypeIdrSlice:
				key = true
			case avc.NaluTypeAud:
				continue
			}
		} else {
			if len(n) < 2 {
				continue
			}
			t := hevc.ParseNaluType(n[0])
			switch {
			case t == hevc.NaluTypeVps:
				d.vps = n
				continue
			case t == hevc.NaluTypeSps:
				d.sps = n
				continue
			case t == hevc.NaluTypePps:
				d.pps = n
				continue
			case t == hevc.NaluTypeAud:
				continue
			case t >= 16 && t <= 21:
				key = true
			}
		}
		payload = binary.BigEndian.AppendUint32(payload, uint32(len(n)))
		payload = append(payload, n...)
	}
	d.nalus, d.size = d.nalus[:0], 0
	dts := time.Duration(d.dts) * time.Millisecond
	pts := time.Duration(d.pts) * time.Millisecond
	if pts < dts {
		pts = dts
	}
	if key {
		cfg, err := d.record()
		if err != nil {
			return // a keyframe without usable parameter sets: wait for the next
		}
		if string(cfg) != string(d.config) {
			d.config = cfg
			if d.emitErr = d.emit(media.Packet{Kind: media.KindVideo, Codec: d.codec, Flags: media.FlagConfig | media.FlagKey, DTS: dts, PTS: dts, Payload: cfg}); d.emitErr != nil {
				return
			}
		}
	}
	if d.config == nil || len(payload) == 0 {
		return // nothing decodable before the first keyframe
	}
	var fl media.Flags
	if key {
		fl = media.FlagKey
	}
	d.frames++
	d.emitErr = d.emit(media.Packet{Kind: media.KindVideo, Codec: d.codec, Flags: fl, DTS: dts, PTS: pts, Payload: payload})
}

func (d *demux) record() (cfg []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: parameter sets: %v", errJunk, r)
		}
	}()
	if d.sps == nil || d.pps == nil {
		return nil, fmt.Errorf("%w: keyframe without parameter sets", errJunk)
	}
	var sh []byte
	if d.codec == media.CodecH264 {
		sh, err = avc.BuildSeqHeaderFromSpsPps(d.sps, d.pps)
	} else {
		if d.vps == nil {
			return nil, fmt.Errorf("%w: h265 keyframe without vps", errJunk)
		}
		sh, err = hevc.BuildSeqHeaderFromVpsSpsPps(d.vps, d.sps, d.pps)
	}
	if err != nil {
		return nil, err
	}
	// lal builds an FLV video tag body: 5 bytes of FLV header, then the
	// decoder configuration record, which is what the hub carries.
	if len(sh) <= 5 {
		return nil, fmt.Errorf("%w: short sequence header", errJunk)
	}
	return sh[5:], nil
}
