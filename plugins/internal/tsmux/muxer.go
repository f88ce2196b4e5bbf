// Package tsmux writes MPEG-TS (ISO/IEC 13818-1) from media.Packet values:
// H.264 and H.265 video (converted from length-prefixed NAL units to Annex B
// with access unit delimiters and parameter sets before key frames), AAC
// (with ADTS headers, timestamps rebuilt from the sample count), MP3 and
// Opus (stream type 0x06 with the "Opus" registration descriptor and a
// control header before each packet, as FFmpeg writes and reads it).
// PES packetization is lal's mpegts.Frame.Pack; PAT and PMT are written here
// because lal's fixed tables know neither MP3 nor an audio-only PCR PID.
//
// Input comes from a publisher over the hub, so every configuration record
// and frame is validated before it is used; the muxer never panics on a
// packet (fuzzed in FuzzMuxer).
package tsmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/q191201771/lal/pkg/mpegts"

	"github.com/rill-media/rill/sdk/media"
)

// PIDs and stream ids used for every stream (as lal and SRS do).
const (
	PIDPMT   uint16 = 0x1001
	PIDVideo uint16 = 0x100
	PIDAudio uint16 = 0x101
)

// Stream types of the PMT (ISO/IEC 13818-1 Table 2-34).
const (
	streamTypeMP3  = 0x03
	streamTypePES  = 0x06 // private data: Opus, told by its descriptors
	streamTypeAAC  = 0x0f
	streamTypeH264 = 0x1b
	streamTypeH265 = 0x24
)

// ErrUnsupported is returned for a codec MPEG-TS output does not carry here
// (AV1, G.711); drop the track.
var ErrUnsupported = errors.New("tsmux: unsupported codec")

var (
	audH264 = []byte{0, 0, 0, 1, 0x09, 0xf0}
	audH265 = []byte{0, 0, 0, 1, 0x46, 0x01, 0x50}
)

// Muxer turns packets into TS packets. It is not safe for concurrent use.
type Muxer struct {
	video, audio media.Codec
	params       []byte // Annex B parameter sets of the video config, owned
	aac          AAC
	haveAAC      bool
	opusChannels int // from the OpusHead; 2 until one arrives

	patCC, pmtCC, vCC, aCC uint8
	pmtVersion             uint8
	tablesDue              bool

	// AAC timestamps are rebuilt from the sample count so that RTMP's
	// millisecond rounding (21, 21, 22 ms at 48 kHz) does not leak into
	// the stream.
	aacAnchor  int64 // 90 kHz ticks
	aacSamples int64
	aacValid   bool

	scratch []byte
}

// New returns a muxer that writes PAT and PMT before its first packet.
func New() *Muxer { return &Muxer{tablesDue: true} }

// Codecs returns the video and audio codecs the PMT currently lists.
func (m *Muxer) Codecs() (video, audio media.Codec) { return m.video, m.audio }

// ForceTables makes the next AppendPacket write PAT and PMT first (at the
// start of an HLS segment, for instance).
func (m *Muxer) ForceTables() { m.tablesDue = true }

// Supported reports whether codec can be muxed.
func Supported(c media.Codec) bool {
	switch c {
	case media.CodecH264, media.CodecH265, media.CodecAAC, media.CodecMP3, media.CodecOpus:
		return true
	}
	return false
}

// ticks converts a timestamp to the 90 kHz clock; negative values clamp to 0.
func ticks(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d) / (int64(time.Second) / 90000)
}

// AppendPacket appends the TS packets for p to dst. Configuration packets
// update the muxer and write nothing; data packets write nothing. A codec
// this package does not carry returns an error wrapping ErrUnsupported and
// a broken packet one wrapping ErrMalformed; dst is then unchanged.
func (m *Muxer) AppendPacket(dst []byte, p media.Packet) ([]byte, error) {
	if p.Kind == media.KindData {
		return dst, nil
	}
	if !Supported(p.Codec) || p.Kind != p.Codec.Kind() {
		return dst, fmt.Errorf("%w: %v %v", ErrUnsupported, p.Kind, p.Codec)
	}
	if p.IsConfig() {
		return dst, m.setConfig(p)
	}
	if len(p.Payload) == 0 {
		return dst, malformed("empty %v frame", p.Codec)
	}
	switch p.Kind {
	case media.KindVideo:
		return m.appendVideo(dst, p)
	default:
		return m.appendAudio(dst, p)
	}
}

func (m *Muxer) setConfig(p media.Packet) error {
	switch p.Codec {
	case media.CodecH264, media.CodecH265:
		sets, err := ParamSets(p.Payload, p.Codec == media.CodecH265)
		if err != nil {
			return err
		}
		m.params = m.params[:0]
		for _, s := range sets {
			m.params = append(m.params, 0, 0, 0, 1)
			m.params = append(m.params, s...)
		}
		m.setCodec(media.KindVideo, p.Codec)
	case media.CodecAAC:
		a, err := ParseASC(p.Payload)
		if err != nil {
			return err
		}
		m.aac, m.haveAAC = a, true
		m.aacValid = false
		m.setCodec(media.KindAudio, p.Codec)
	case media.CodecOpus:
		ch, err := opusChannels(p.Payload)
		if err != nil {
			return err
		}
		if ch != m.opusChannels {
			m.opusChannels = ch
			m.pmtVersion = (m.pmtVersion + 1) & 0x1f
			m.tablesDue = true
		}
		m.setCodec(media.KindAudio, p.Codec)
	default:
		return malformed("%v has no configuration packets", p.Codec)
	}
	return nil
}

func (m *Muxer) setCodec(k media.Kind, c media.Codec) {
	cur := &m.audio
	if k == media.KindVideo {
		cur = &m.video
	}
	if *cur != c {
		*cur = c
		m.pmtVersion = (m.pmtVersion + 1) & 0x1f
		m.tablesDue = true
	}
}

// DeclareCodecs lists codecs in the PMT before their first packet arrives
// (0 leaves a kind as it is), so that the first tables are complete.
func (m *Muxer) DeclareCodecs(video, audio media.Codec) {
	if video != 0 && Supported(video) {
		m.setCodec(media.KindVideo, video)
	}
	if audio != 0 && Supported(audio) {
		m.setCodec(media.KindAudio, audio)
	}
}

func (m *Muxer) appendVideo(dst []byte, p media.Packet) ([]byte, error) {
	if len(m.params) == 0 || m.video != p.Codec {
		return dst, malformed("%v frame before its configuration", p.Codec)
	}
	hevc := p.Codec == media.CodecH265
	inband := false
	if err := media.SplitAVCC(p.Payload, func(n []byte) bool {
		if t := nalType(n, hevc); (!hevc && t == 7) || (hevc && t == 33) {
			inband = true
		}
		return true
	}); err != nil {
		return dst, fmt.Errorf("%w: %v frame: %w", ErrMalformed, p.Codec, err)
	}
	out := m.scratch[:0]
	if hevc {
		out = append(out, audH265...)
	} else {
		out = append(out, audH264...)
	}
	if p.IsKey() && !inband {
		out = append(out, m.params...)
	}
	_ = media.SplitAVCC(p.Payload, func(n []byte) bool {
		if t := nalType(n, hevc); (!hevc && t == 9) || (hevc && t == 35) {
			return true // our own AUD is already there
		}
		out = append(out, 0, 0, 1)
		out = append(out, n...)
		return true
	})
	m.scratch = out
	if p.IsKey() {
		m.tablesDue = true
	}
	if m.tablesDue {
		dst = m.AppendTables(dst)
	}
	dts, pts := ticks(p.DTS), ticks(p.PTS)
	if pts < dts {
		pts = dts
	}
	f := mpegts.Frame{Dts: uint64(dts), Pts: uint64(pts), Cc: m.vCC, Pid: PIDVideo, Sid: mpegts.StreamIdVideo, Key: p.IsKey(), Raw: out}
	dst = appendFrame(dst, &f)
	m.vCC = f.Cc
	return dst, nil
}

// packDelay is the constant lal's Frame.Pack adds to PTS and DTS (700 ms).
const packDelay = 63000

// appendFrame appends f packed by lal, with its PTS and DTS written again:
// lal's packPts puts bits 32..30 of a timestamp one bit too low (over the
// marker bit), so every timestamp from 2^30 ticks on (3 h 18 min of stream
// time) came out wrong. The PES header is in the first TS packet, after
// the adaptation field (which Pack also uses for stuffing).
//
// A random-access frame small enough for one packet is written here: lal's
// Pack then moves the PES header past the adaptation field it stuffs but
// writes the frame over it (its base offset misses the
// adaptation_field_length byte), so every small audio frame of an
// audio-only stream came out without a PES header.
func appendFrame(dst []byte, f *mpegts.Frame) []byte {
	if f.Key {
		hdr := 5
		if f.Dts != f.Pts {
			hdr = 10
		}
		if 4+8+9+hdr+len(f.Raw) <= 188 {
			return appendSmallKeyFrame(dst, f, hdr)
		}
	}
	start := len(dst)
	dst = append(dst, f.Pack()...)
	pkt := dst[start:]
	if len(pkt) < 188 {
		return dst
	}
	off := 4
	if pkt[3]&0x20 != 0 {
		off += 1 + int(pkt[4])
	}
	if off+19 > 188 || pkt[off] != 0 || pkt[off+1] != 0 || pkt[off+2] != 1 {
		return dst
	}
	switch pkt[off+7] >> 6 {
	case 2:
		putTimestamp(pkt[off+9:], 2, f.Pts+packDelay)
	case 3:
		putTimestamp(pkt[off+9:], 3, f.Pts+packDelay)
		putTimestamp(pkt[off+14:], 1, f.Dts+packDelay)
	}
	return dst
}

// appendSmallKeyFrame writes f in a single TS packet with a PCR: header,
// adaptation field (flags, PCR, stuffing), PES header, frame.
func appendSmallKeyFrame(dst []byte, f *mpegts.Frame, hdr int) []byte {
	f.Cc++
	afl := 188 - 4 - 1 - 9 - hdr - len(f.Raw) // adaptation_field_length
	dst = append(dst, 0x47, 0x40|byte(f.Pid>>8&0x1f), byte(f.Pid), 0x30|f.Cc&0x0f, byte(afl), 0x50)
	var pcr uint64 // as lal: the DTS without the 700 ms mux delay
	if f.Dts > packDelay {
		pcr = f.Dts - packDelay
	}
	pcr &= 1<<33 - 1
	dst = append(dst, byte(pcr>>25), byte(pcr>>17), byte(pcr>>9), byte(pcr>>1), byte(pcr&1)<<7|0x7e, 0)
	for i := 7; i < afl; i++ {
		dst = append(dst, 0xff)
	}
	n := 3 + hdr + len(f.Raw)
	flags := byte(0x80)
	if hdr == 10 {
		flags = 0xc0
	}
	dst = append(dst, 0, 0, 1, f.Sid, byte(n>>8), byte(n), 0x80, flags, byte(hdr))
	ts := len(dst)
	dst = append(dst, make([]byte, hdr)...)
	if hdr == 5 {
		putTimestamp(dst[ts:], 2, f.Pts+packDelay)
	} else {
		putTimestamp(dst[ts:], 3, f.Pts+packDelay)
		putTimestamp(dst[ts+5:], 1, f.Dts+packDelay)
	}
	return append(dst, f.Raw...)
}

// putTimestamp writes a 33-bit PTS or DTS after its 4-bit prefix
// (ISO/IEC 13818-1 §2.4.3.7).
func putTimestamp(b []byte, prefix byte, v uint64) {
	v &= 1<<33 - 1
	b[0] = prefix<<4 | byte(v>>30&7)<<1 | 1
	binary.BigEndian.PutUint16(b[1:], uint16(v>>15&0x7fff)<<1|1)
	binary.BigEndian.PutUint16(b[3:], uint16(v&0x7fff)<<1|1)
}

func nalType(n []byte, hevc bool) byte {
	if hevc {
		return n[0] >> 1 & 0x3f
	}
	return n[0] & 0x1f
}

func (m *Muxer) appendAudio(dst []byte, p media.Packet) ([]byte, error) {
	dts := ticks(p.DTS)
	var raw []byte
	sid := uint8(mpegts.StreamIdAudio)
	switch p.Codec {
	case media.CodecAAC:
		if !m.haveAAC || m.audio != media.CodecAAC {
			return dst, malformed("aac frame before its configuration")
		}
		var err error
		if raw, err = m.aac.AppendADTS(m.scratch[:0], p.Payload); err != nil {
			return dst, err
		}
		m.scratch = raw
		dts = m.aacTicks(dts)
	case media.CodecMP3:
		if len(p.Payload) < 4 || p.Payload[0] != 0xff || p.Payload[1]&0xe0 != 0xe0 {
			return dst, malformed("mp3 frame without a frame header")
		}
		m.setCodec(media.KindAudio, media.CodecMP3)
		raw = p.Payload
	case media.CodecOpus:
		m.setCodec(media.KindAudio, media.CodecOpus)
		// Control header: 0x3ff, no trims, no extension; au_size in
		// 0xff-continued bytes.
		raw = append(m.scratch[:0], 0x7f, 0xe0)
		for n := len(p.Payload); ; n -= 255 {
			if n < 255 {
				raw = append(raw, byte(n))
				break
			}
			raw = append(raw, 0xff)
		}
		raw = append(raw, p.Payload...)
		m.scratch = raw
		sid = 0xbd // private_stream_1, as FFmpeg
	}
	if m.tablesDue {
		dst = m.AppendTables(dst)
	}
	// Without video the audio PID carries the PCR: mark every audio PES as
	// a random access point so Pack writes one.
	f := mpegts.Frame{Dts: uint64(dts), Pts: uint64(dts), Cc: m.aCC, Pid: PIDAudio, Sid: sid, Key: m.video == 0, Raw: raw}
	dst = appendFrame(dst, &f)
	m.aCC = f.Cc
	return dst, nil
}

// aacTicks returns the presentation time of the next AAC frame from the
// sample count since the last anchor, re-anchoring on the packet's own
// timestamp when the two drift apart by more than 60 ms (a gap, a jump).
func (m *Muxer) aacTicks(dts int64) int64 {
	rate := int64(m.aac.SampleRate)
	if rate <= 0 {
		return dts
	}
	want := m.aacAnchor + m.aacSamples*90000/rate
	if !m.aacValid || want-dts > 60*90 || dts-want > 60*90 {
		m.aacAnchor, m.aacSamples, m.aacValid = dts, 0, true
		want = dts
	}
	m.aacSamples += 1024
	return want
}

// AppendTables appends a PAT and a PMT listing the current codecs.
func (m *Muxer) AppendTables(dst []byte) []byte {
	m.tablesDue = false
	// PAT (§2.4.4.3): one program, number 1, on PIDPMT.
	sec := []byte{0x00, 0xb0, 13, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xe0 | byte(PIDPMT>>8), byte(PIDPMT & 0xff)}
	dst = appendSection(dst, 0, &m.patCC, sec)
	// PMT (§2.4.4.8).
	pcr := PIDVideo
	if m.video == 0 {
		pcr = PIDAudio
	}
	var es []byte
	if t := streamType(m.video); t != 0 {
		es = append(es, t, 0xe0|byte(PIDVideo>>8), byte(PIDVideo&0xff), 0xf0, 0x00)
	}
	if m.audio == media.CodecOpus {
		// registration_descriptor "Opus" and the DVB extension descriptor
		// 0x80 with channel_config_code (the channel count, 1..8).
		ch := m.opusChannels
		if ch < 1 || ch > 8 {
			ch = 2
		}
		es = append(es, streamTypePES, 0xe0|byte(PIDAudio>>8), byte(PIDAudio&0xff), 0xf0, 10,
			0x05, 4, 'O', 'p', 'u', 's', 0x7f, 2, 0x80, byte(ch))
	} else if t := streamType(m.audio); t != 0 {
		es = append(es, t, 0xe0|byte(PIDAudio>>8), byte(PIDAudio&0xff), 0xf0, 0x00)
	}
	n := 9 + len(es) + 4
	sec = append([]byte{0x02, 0xb0 | byte(n>>8), byte(n), 0x00, 0x01, 0xc1 | m.pmtVersion<<1, 0x00, 0x00,
		0xe0 | byte(pcr>>8), byte(pcr), 0xf0, 0x00}, es...)
	return appendSection(dst, PIDPMT, &m.pmtCC, sec)
}

func streamType(c media.Codec) byte {
	switch c {
	case media.CodecH264:
		return streamTypeH264
	case media.CodecH265:
		return streamTypeH265
	case media.CodecAAC:
		return streamTypeAAC
	case media.CodecMP3:
		return streamTypeMP3
	}
	return 0
}

// opusChannels reads the channel count of an Opus ID header (RFC 7845
// §5.1).
func opusChannels(h []byte) (int, error) {
	if len(h) < 19 || string(h[:8]) != "OpusHead" {
		return 0, malformed("opus config: not an OpusHead of at least 19 bytes")
	}
	if h[9] == 0 || h[9] > 8 {
		return 0, malformed("opus config: %d channels", h[9])
	}
	return int(h[9]), nil
}

// appendSection writes one PSI section with its CRC in a single TS packet.
func appendSection(dst []byte, pid uint16, cc *uint8, sec []byte) []byte {
	start := len(dst)
	dst = append(dst, 0x47, 0x40|byte(pid>>8&0x1f), byte(pid), 0x10|*cc&0x0f, 0x00)
	*cc = (*cc + 1) & 0x0f
	dst = append(dst, sec...)
	// CRC_32 goes on the wire most significant byte first (ISO/IEC 13818-1
	// §2.4.4.3). lal's CalcCrc32 returns the CRC-32/MPEG-2 value with its
	// bytes swapped (lal itself writes it little-endian), so it is written
	// little-endian here too; psi_test.go checks it against an independent CRC.
	dst = binary.LittleEndian.AppendUint32(dst, mpegts.CalcCrc32(0xffffffff, sec))
	for len(dst)-start < 188 {
		dst = append(dst, 0xff)
	}
	return dst
}
