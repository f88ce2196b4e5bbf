// Package tsdemux turns an MPEG-TS byte stream (what an SRT publisher or a
// UDP/TS caster sends) into hub packets:
// H.264 and H.265 (Annex B to length-prefixed NAL units, parameter sets to
// a configuration record), AAC (ADTS to raw frames and an
// AudioSpecificConfig), Opus (the control headers of ETSI TS 102 366-style
// Opus in TS removed, an OpusHead built from the PMT's channel
// configuration) and MPEG audio layer III (stream types 0x03/0x04, split
// into frames). Packets of the two tracks are handed on in DTS order (see
// interleave.go); a new PMT version resets what it changed. lal parses the TS packet headers and the PES
// headers and builds the AAC and H.265 configurations; lal has no TS
// demuxer (its ParsePat/ParsePmt check no lengths and misread ES
// descriptors), so the PSI sections and PES reassembly are done here, with
// every length checked before lal reads a byte (docs/THREATS.md row 12).
//
// Hostile input either is dropped (continuity gaps: the damaged PES is
// discarded; unknown PIDs and stream types: ignored) or ends the
// connection with ErrMalformed (lost sync, bogus lengths). A panic in a
// parser is recovered by Feed and reported as ErrMalformed too.
package tsdemux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/q191201771/lal/pkg/aac"
	"github.com/q191201771/lal/pkg/avc"
	"github.com/q191201771/lal/pkg/hevc"
	"github.com/q191201771/lal/pkg/mpegts"

	"github.com/rill-media/rill/sdk/media"
)

var ErrMalformed = errors.New("malformed mpeg-ts")

// errParserPanic is a recovered panic: a bug, which the fuzz target hunts.
var errParserPanic = fmt.Errorf("%w: parser panic", ErrMalformed)

func tsErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

const (
	tsPacketSize = 188
	// maxPES bounds one reassembled PES (a 4K key frame is a few MiB).
	maxPES = 16 << 20
	// maxJunk is how many bytes without a sync byte end the connection.
	maxJunk = 4 * tsPacketSize
)

// Stream types of the PMT (ISO/IEC 13818-1 Table 2-34).
const (
	stH264 = 0x1b
	stH265 = 0x24
	stAAC  = 0x0f
	stMP1A = 0x03 // ISO/IEC 11172-3 audio
	stMP2A = 0x04 // ISO/IEC 13818-3 audio
	stPES  = 0x06 // PES private data: Opus with its registration descriptor
)

type esStream struct {
	pid        uint16
	streamType uint8
	codec      media.Codec
	channels   int // Opus: channel count from the PMT's extension descriptor
	cc         int // last continuity counter, -1 before the first
	buf        []byte
	want       int  // PES_packet_length + 6, 0 when unbounded
	broken     bool // a gap damaged the PES in buf: discard it
}

type Demuxer struct {
	onPacket func(media.Packet) error

	carry    []byte // a partial TS packet from the previous Feed
	junk     int
	pmtPID   int // -1 until the PAT names it
	pmtVer   int // version_number of the PMT in use, -1 before the first
	psi      map[uint16][]byte
	streams  map[uint16]*esStream
	clock    tsClock
	warnings map[string]int

	// Codec state.
	sps, pps, vps []byte
	videoConfig   []byte
	sentVideo     bool // a key frame went out after the config
	aacConfig     []byte
	opusConfig    []byte

	il interleaver
	// videoOn and audioOn: the PMT lists a track of the kind that can go
	// into the hub (audioOn turns false on MPEG audio layer I/II).
	videoOn, audioOn bool
	emitDirect       bool // tests: bypass the interleaver
	nalus            [][]byte
	out              []byte
}

func New(onPacket func(media.Packet) error) *Demuxer {
	return &Demuxer{
		onPacket: onPacket, pmtPID: -1, pmtVer: -1, il: interleaver{out: onPacket},
		psi: map[uint16][]byte{}, streams: map[uint16]*esStream{}, warnings: map[string]int{},
	}
}

// warn counts a tolerated problem; the connection logs the counts.
func (d *Demuxer) warn(what string) { d.warnings[what]++ }

// Feed demuxes b, any number of bytes of the TS byte stream (SRT carries
// 1316-byte messages of seven TS packets, but nothing relies on it).
func (d *Demuxer) Feed(b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errParserPanic, r)
		}
	}()
	if len(d.carry) > 0 {
		need := tsPacketSize - len(d.carry)
		if len(b) < need {
			d.carry = append(d.carry, b...)
			return nil
		}
		d.carry = append(d.carry, b[:need]...)
		b = b[need:]
		pkt := d.carry
		d.carry = d.carry[:0]
		if pkt[0] == 0x47 {
			if err := d.packet(pkt); err != nil {
				return err
			}
		} else {
			// Lost sync: resynchronise on what follows.
			b = append(append([]byte(nil), pkt[1:]...), b...)
		}
	}
	for len(b) > 0 {
		if b[0] != 0x47 {
			i := bytes.IndexByte(b, 0x47)
			if i < 0 {
				i = len(b)
			}
			d.junk += i
			if d.junk > maxJunk {
				return tsErr("no sync byte in %d bytes: not MPEG-TS", d.junk)
			}
			d.warn("resync")
			b = b[i:]
			continue
		}
		if len(b) < tsPacketSize {
			d.carry = append(d.carry[:0], b...)
			return nil
		}
		d.junk = 0
		if err := d.packet(b[:tsPacketSize]); err != nil {
			return err
		}
		b = b[tsPacketSize:]
	}
	return nil
}

func (d *Demuxer) packet(pkt []byte) error {
	h := mpegts.ParseTsPacketHeader(pkt)
	if h.Err != 0 {
		d.warn("transport error")
		return nil
	}
	if h.Pid == 0x1fff { // null packet
		return nil
	}
	payload := pkt[4:]
	switch h.Adaptation {
	case 0:
		return tsErr("pid %d: adaptation_field_control 0 is reserved", h.Pid)
	case 2, 3:
		afl := int(pkt[4])
		if afl > 183 {
			return tsErr("pid %d: adaptation_field_length %d > 183", h.Pid, afl)
		}
		if h.Adaptation == 2 {
			payload = nil
		} else {
			payload = pkt[5+afl:]
		}
	}
	if len(payload) == 0 {
		return nil
	}
	pusi := h.PayloadUnitStart == 1
	switch {
	case h.Pid == 0 || int(h.Pid) == d.pmtPID:
		return d.psiPacket(h.Pid, pusi, payload)
	}
	es := d.streams[h.Pid]
	if es == nil {
		return nil
	}
	if es.cc >= 0 {
		next := (es.cc + 1) & 0xf
		if int(h.Cc) == es.cc {
			d.warn("duplicate ts packet")
			return nil
		}
		if int(h.Cc) != next {
			d.warn("continuity gap")
			es.broken = true
		}
	}
	es.cc = int(h.Cc)
	if pusi {
		if err := d.flush(es); err != nil {
			return err
		}
		es.buf = append(es.buf[:0], payload...)
		es.broken = false
		es.want = 0
		if len(es.buf) >= 6 {
			if n := int(binary.BigEndian.Uint16(es.buf[4:6])); n != 0 {
				es.want = 6 + n
			}
		}
	} else {
		if len(es.buf) == 0 {
			return nil // joined mid-PES
		}
		if len(es.buf)+len(payload) > maxPES {
			return tsErr("pid %d: PES larger than %d bytes", h.Pid, maxPES)
		}
		es.buf = append(es.buf, payload...)
	}
	if es.want > 0 && len(es.buf) >= es.want {
		es.buf = es.buf[:es.want]
		return d.flush(es)
	}
	return nil
}

// psiPacket reassembles a PAT or PMT section (one per PID, up to 1024
// bytes) and parses it when complete.
func (d *Demuxer) psiPacket(pid uint16, pusi bool, payload []byte) error {
	if pusi {
		ptr := int(payload[0])
		if 1+ptr > len(payload) {
			return tsErr("pid %d: pointer_field %d past the packet", pid, ptr)
		}
		d.psi[pid] = append(d.psi[pid][:0], payload[1+ptr:]...)
	} else if len(d.psi[pid]) > 0 {
		d.psi[pid] = append(d.psi[pid], payload...)
	} else {
		return nil
	}
	sec := d.psi[pid]
	if len(sec) < 3 {
		return nil
	}
	if sec[0] == 0xff { // stuffing
		d.psi[pid] = sec[:0]
		return nil
	}
	sl := int(binary.BigEndian.Uint16(sec[1:3]) & 0x0fff)
	if sl > 1021 {
		return tsErr("pid %d: section_length %d > 1021", pid, sl)
	}
	if len(sec) < 3+sl {
		if len(sec) > 1024 {
			return tsErr("pid %d: section longer than 1024 bytes", pid)
		}
		return nil
	}
	sec = sec[:3+sl]
	d.psi[pid] = d.psi[pid][:0]
	if sl < 9 {
		return tsErr("pid %d: section_length %d too short", pid, sl)
	}
	// lal's CalcCrc32 returns CRC-32/MPEG-2 byte-swapped (see tsmux).
	if mpegts.CalcCrc32(0xffffffff, sec[:len(sec)-4]) != binary.LittleEndian.Uint32(sec[len(sec)-4:]) {
		d.warn("psi crc mismatch")
		return nil
	}
	body := sec[8 : len(sec)-4]
	switch {
	case pid == 0 && sec[0] == 0x00:
		return d.pat(body)
	case int(pid) == d.pmtPID && sec[0] == 0x02:
		ver := int(sec[5] >> 1 & 0x1f)
		if ver == d.pmtVer || sec[5]&1 == 0 { // a repeat, or not yet applicable
			return nil
		}
		d.pmtVer = ver
		return d.pmt(body)
	}
	return nil
}

func (d *Demuxer) pat(body []byte) error {
	if len(body)%4 != 0 {
		return tsErr("PAT: %d bytes of programs is not a multiple of 4", len(body))
	}
	for i := 0; i+4 <= len(body); i += 4 {
		program := binary.BigEndian.Uint16(body[i:])
		pid := int(binary.BigEndian.Uint16(body[i+2:]) & 0x1fff)
		if program == 0 { // network PID
			continue
		}
		if pid != d.pmtPID {
			d.pmtPID = pid
			d.pmtVer = -1
			delete(d.psi, uint16(pid))
		}
		return nil // the first program: SRT carries one
	}
	return nil
}

func (d *Demuxer) pmt(body []byte) error {
	if len(body) < 4 {
		return tsErr("PMT: %d bytes", len(body))
	}
	pil := int(binary.BigEndian.Uint16(body[2:4]) & 0x0fff)
	if 4+pil > len(body) {
		return tsErr("PMT: program_info_length %d past the section", pil)
	}
	seen := map[uint16]bool{}
	var video, audio media.Codec
	for b := body[4+pil:]; len(b) > 0; {
		if len(b) < 5 {
			return tsErr("PMT: %d trailing bytes", len(b))
		}
		st := b[0]
		pid := binary.BigEndian.Uint16(b[1:3]) & 0x1fff
		eil := int(binary.BigEndian.Uint16(b[3:5]) & 0x0fff)
		if 5+eil > len(b) {
			return tsErr("PMT: ES_info_length %d past the section", eil)
		}
		desc := b[5 : 5+eil]
		b = b[5+eil:]
		var codec media.Codec
		channels := 0
		switch st {
		case stH264:
			codec = media.CodecH264
		case stH265:
			codec = media.CodecH265
		case stAAC:
			codec = media.CodecAAC
		case stMP1A, stMP2A:
			codec = media.CodecMP3
		case stPES:
			var ok bool
			if channels, ok = opusDescriptors(desc); !ok {
				d.warn("unsupported private data stream (stream type 0x06 without an Opus registration)")
				continue
			}
			codec = media.CodecOpus
		default:
			d.warn(fmt.Sprintf("unsupported stream type 0x%02x", st))
			continue
		}
		// One video and one audio track, as RTMP carries.
		if codec.Kind() == media.KindVideo {
			if video != 0 {
				continue
			}
			video = codec
		} else {
			if audio != 0 {
				continue
			}
			audio = codec
		}
		seen[pid] = true
		if es := d.streams[pid]; es != nil && es.streamType == st && es.codec == codec && es.channels == channels {
			continue
		}
		if es := d.streams[pid]; es != nil {
			d.resetKind(es.codec.Kind())
		}
		d.resetKind(codec.Kind())
		d.streams[pid] = &esStream{pid: pid, streamType: st, codec: codec, channels: channels, cc: -1}
	}
	for pid, es := range d.streams {
		if !seen[pid] {
			d.resetKind(es.codec.Kind())
			delete(d.streams, pid)
		}
	}
	// Packets queued for interleaving wait for both tracks: with a track
	// gone they go out now.
	d.videoOn, d.audioOn = video != 0, audio != 0
	d.il.tracks(d.videoOn, d.audioOn)
	return d.il.drain(false)
}

// resetKind forgets the codec state of one kind of track after a PMT
// change, so that the new codec's configuration is sent again.
func (d *Demuxer) resetKind(k media.Kind) {
	if k == media.KindVideo {
		d.sps, d.pps, d.vps, d.videoConfig, d.sentVideo = nil, nil, nil, nil, false
		return
	}
	d.aacConfig, d.opusConfig = nil, nil
}

// opusDescriptors reports whether the ES descriptors register Opus (a
// registration_descriptor, ISO/IEC 13818-1 2.6.8, with format_identifier
// "Opus") and returns the channel count of its extension descriptor
// (tag 0x7f, extension tag 0x80, channel_config_code; 2 when absent).
func opusDescriptors(desc []byte) (channels int, ok bool) {
	channels = 2
	for len(desc) >= 2 {
		tag, n := desc[0], int(desc[1])
		if 2+n > len(desc) {
			return 0, false
		}
		body := desc[2 : 2+n]
		desc = desc[2+n:]
		switch {
		case tag == 0x05 && n >= 4 && string(body[:4]) == "Opus":
			ok = true
		case tag == 0x7f && n >= 2 && body[0] == 0x80:
			// 1..8: channels with the Vorbis mapping; 0x80: dual mono.
			switch c := int(body[1]); {
			case c >= 1 && c <= 8:
				channels = c
			case c == 0x80:
				channels = 2
			}
		}
	}
	return channels, ok
}

// flush hands the PES in es.buf on and empties it.
func (d *Demuxer) flush(es *esStream) error {
	buf := es.buf
	es.buf = es.buf[:0]
	if len(buf) == 0 {
		return nil
	}
	if es.broken {
		d.warn("pes dropped after a continuity gap")
		return nil
	}
	if len(buf) < 9 || buf[0] != 0 || buf[1] != 0 || buf[2] != 1 {
		return tsErr("pid %d: no PES start code", es.pid)
	}
	flags := buf[7] >> 6
	hdl := int(buf[8])
	if 9+hdl > len(buf) {
		return tsErr("pid %d: PES_header_data_length %d past the PES", es.pid, hdl)
	}
	if flags == 1 || (flags&2 != 0 && hdl < 5) || (flags == 3 && hdl < 10) {
		return tsErr("pid %d: PTS_DTS_flags %d with a %d-byte header", es.pid, flags, hdl)
	}
	if flags&2 == 0 {
		d.warn("pes without pts")
		return nil
	}
	pes, n := mpegts.ParsePes(buf)
	_ = pes
	pts := readTimestamp(buf[9:])
	dts := pts
	if flags == 3 {
		dts = readTimestamp(buf[14:])
	}
	data := buf[n:]
	d.clock.observe(dts)
	p, dd := d.clock.at(pts), d.clock.at(dts)
	switch es.codec {
	case media.CodecH264, media.CodecH265:
		return d.video(es.codec, data, dd, p)
	case media.CodecAAC:
		return d.aac(data, dd)
	case media.CodecOpus:
		return d.opus(es, data, dd)
	case media.CodecMP3:
		return d.mp3(data, dd)
	}
	return nil
}

// readTimestamp reads a 33-bit PTS or DTS (ISO/IEC 13818-1 2.4.3.7).
func readTimestamp(b []byte) uint64 {
	return uint64(b[0]>>1&0x07)<<30 | uint64(binary.BigEndian.Uint16(b[1:])>>1)<<15 | uint64(binary.BigEndian.Uint16(b[3:])>>1)
}

// tsClock unwraps 33-bit 90 kHz timestamps into one 64-bit timeline (the
// counter wraps every 26.5 hours). Timestamps near the last one, forward or
// backward, are taken as the nearest value.
type tsClock struct {
	started bool
	last    uint64 // raw, 33 bits
	epoch   int64  // ticks added to raw values
}

const wrap33 = 1 << 33

func (c *tsClock) observe(raw uint64) {
	raw &= wrap33 - 1
	if !c.started {
		c.started, c.last = true, raw
		return
	}
	if d := (raw - c.last) & (wrap33 - 1); d < wrap33/2 {
		if raw < c.last {
			c.epoch += wrap33
		}
		c.last = raw
	}
}

// at returns raw on the unwrapped timeline, relative to the last observed
// timestamp's epoch.
func (c *tsClock) at(raw uint64) time.Duration {
	raw &= wrap33 - 1
	t := c.epoch + int64(raw)
	switch d := int64(raw) - int64(c.last); {
	case d > wrap33/2: // before a wrap we already passed
		t -= wrap33
	case d < -wrap33/2: // just after a wrap not observed yet
		t += wrap33
	}
	return time.Duration(t) * time.Second / 90000
}

func (d *Demuxer) video(codec media.Codec, data []byte, dts, pts time.Duration) error {
	hevcCodec := codec == media.CodecH265
	nalus, err := avc.SplitNaluAnnexb(data)
	if err != nil || len(nalus) == 0 {
		d.warn("video pes without nal units")
		return nil
	}
	d.out = d.out[:0]
	key := false
	changed := false
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		var typ byte
		if hevcCodec {
			if len(n) < 2 {
				continue
			}
			typ = n[0] >> 1 & 0x3f
			switch {
			case typ == 32:
				changed = setParam(&d.vps, n) || changed
				continue
			case typ == 33:
				changed = setParam(&d.sps, n) || changed
				continue
			case typ == 34:
				changed = setParam(&d.pps, n) || changed
				continue
			case typ == 35: // access unit delimiter
				continue
			case typ >= 16 && typ <= 23:
				key = true
			}
		} else {
			typ = n[0] & 0x1f
			switch typ {
			case 7:
				changed = setParam(&d.sps, n) || changed
				continue
			case 8:
				changed = setParam(&d.pps, n) || changed
				continue
			case 9:
				continue
			case 5:
				key = true
			}
		}
		d.out = binary.BigEndian.AppendUint32(d.out, uint32(len(n)))
		d.out = append(d.out, n...)
	}
	if changed || d.videoConfig == nil {
		rec, ok := d.buildVideoConfig(hevcCodec)
		if ok && !bytes.Equal(rec, d.videoConfig) {
			d.videoConfig = rec
			d.sentVideo = false
			if err := d.emit(media.Packet{Kind: media.KindVideo, Codec: codec, Flags: media.FlagConfig, DTS: dts, PTS: dts, Payload: rec}); err != nil {
				return err
			}
		}
	}
	if len(d.out) == 0 {
		return nil
	}
	if d.videoConfig == nil || (!d.sentVideo && !key) {
		d.warn("video before a key frame with parameter sets dropped")
		return nil
	}
	d.sentVideo = true
	var flags media.Flags
	if key {
		flags = media.FlagKey
	}
	return d.emit(media.Packet{Kind: media.KindVideo, Codec: codec, Flags: flags, DTS: dts, PTS: pts, Payload: d.out})
}

func setParam(dst *[]byte, n []byte) bool {
	if bytes.Equal(*dst, n) {
		return false
	}
	*dst = append((*dst)[:0], n...)
	return true
}

func (d *Demuxer) buildVideoConfig(hevcCodec bool) ([]byte, bool) {
	if hevcCodec {
		if d.vps == nil || d.sps == nil || d.pps == nil {
			return nil, false
		}
		sh, err := hevc.BuildSeqHeaderFromVpsSpsPps(d.vps, d.sps, d.pps)
		if err != nil || len(sh) <= 5 {
			d.warn("bad h.265 parameter sets")
			return nil, false
		}
		return sh[5:], true // the FLV video tag header lal puts first
	}
	if len(d.sps) < 4 || d.pps == nil || len(d.sps) > 0xffff || len(d.pps) > 0xffff {
		return nil, false
	}
	// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.2.4.1).
	rec := []byte{1, d.sps[1], d.sps[2], d.sps[3], 0xff, 0xe1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(d.sps)))
	rec = append(rec, d.sps...)
	rec = append(rec, 1)
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(d.pps)))
	rec = append(rec, d.pps...)
	return rec, true
}

var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func (d *Demuxer) aac(data []byte, dts time.Duration) error {
	for i := 0; len(data) > 0; i++ {
		if len(data) < 7 || data[0] != 0xff || data[1]&0xf6 != 0xf0 {
			d.warn("aac pes without adts sync")
			return nil
		}
		hl := 7
		if data[1]&1 == 0 { // protection_absent 0: a CRC follows
			hl = 9
		}
		fl := int(data[3]&3)<<11 | int(data[4])<<3 | int(data[5])>>5
		if fl < hl || fl > len(data) {
			d.warn("aac frame length past the pes")
			return nil
		}
		sfi := int(data[2] >> 2 & 0xf)
		if sfi >= len(aacRates) {
			d.warn("aac sampling frequency index reserved")
			return nil
		}
		asc, err := aac.MakeAscWithAdtsHeader(data[:7])
		if err != nil {
			d.warn("bad adts header")
			return nil
		}
		if !bytes.Equal(asc, d.aacConfig) {
			d.aacConfig = asc
			if err := d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, DTS: dts, PTS: dts, Payload: asc}); err != nil {
				return err
			}
		}
		// Frames after the first of a PES are 1024 samples apart.
		t := dts + time.Duration(i)*1024*time.Second/time.Duration(aacRates[sfi])
		if frame := data[hl:fl]; len(frame) > 0 {
			if err := d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: t, PTS: t, Payload: frame}); err != nil {
				return err
			}
		}
		data = data[fl:]
	}
	return nil
}

// emit queues p for interleaving (the queue copies the payload).
func (d *Demuxer) emit(p media.Packet) error {
	if d.emitDirect {
		return d.onPacket(p)
	}
	return d.il.push(p)
}

// Flush hands on the packets still held for interleaving and the PES
// being reassembled on each PID; call it when the input ends.
func (d *Demuxer) Flush() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errParserPanic, r)
		}
	}()
	for _, es := range d.streams {
		if es.want == 0 && len(es.buf) > 0 {
			if err := d.flush(es); err != nil {
				return err
			}
		}
	}
	return d.il.drain(true)
}

// Warnings are the tolerated problems seen so far (continuity gaps,
// unknown stream types, ...) by what, with their counts; the caller logs
// them once when its input ends.
func (d *Demuxer) Warnings() map[string]int { return d.warnings }
