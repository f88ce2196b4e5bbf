package tsdemux

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// opus splits an Opus PES into its access units. Each one starts with a
// control header (ETSI TS 102 366-style, as FFmpeg's mpegts muxer writes
// it): 11 bits 0x3ff, start_trim_flag, end_trim_flag,
// control_extension_flag, 2 reserved bits; au_size as 0xff bytes plus a
// last byte; the trims (2 bytes each) and the extension (a length byte)
// when flagged; then au_size bytes of Opus packet.
func (d *Demuxer) opus(es *esStream, data []byte, dts time.Duration) error {
	t := dts
	for len(data) > 0 {
		if len(data) < 3 || data[0] != 0x7f || data[1]&0xe0 != 0xe0 {
			d.warn("opus pes without a control header")
			return nil
		}
		flags := data[1]
		i, size := 2, 0
		for ; i < len(data) && data[i] == 0xff; i++ {
			size += 255
		}
		if i >= len(data) {
			d.warn("opus control header cut short")
			return nil
		}
		size += int(data[i])
		i++
		var startTrim int
		if flags&0x10 != 0 {
			if i+2 > len(data) {
				d.warn("opus control header cut short")
				return nil
			}
			startTrim = int(binary.BigEndian.Uint16(data[i:]) & 0x1fff)
			i += 2
		}
		if flags&0x08 != 0 {
			i += 2
		}
		if flags&0x04 != 0 {
			if i >= len(data) {
				d.warn("opus control header cut short")
				return nil
			}
			i += 1 + int(data[i])
		}
		if size == 0 || i+size > len(data) {
			d.warn("opus access unit past the pes")
			return nil
		}
		frame := data[i : i+size]
		data = data[i+size:]
		if d.opusConfig == nil {
			d.opusConfig = opusHead(es.channels, startTrim)
			if err := d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecOpus, Flags: media.FlagConfig, DTS: t, PTS: t, Payload: d.opusConfig}); err != nil {
				return err
			}
		}
		if err := d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecOpus, DTS: t, PTS: t, Payload: frame}); err != nil {
			return err
		}
		dur := opusDuration(frame)
		if dur <= 0 {
			d.warn("opus packet of unknown duration")
			dur = 20 * time.Millisecond
		}
		t += dur
	}
	return nil
}

// opusHead builds the Opus ID header (RFC 7845 §5.1) the hub carries as
// the Opus configuration: channel mapping family 0 for one or two
// channels, family 1 (Vorbis order, the default stream layout of RFC 7845
// §5.1.1.2) for more.
func opusHead(channels, preSkip int) []byte {
	h := []byte("OpusHead")
	h = append(h, 1, byte(channels))
	h = binary.LittleEndian.AppendUint16(h, uint16(preSkip))
	h = binary.LittleEndian.AppendUint32(h, 48000)
	h = append(h, 0, 0) // output gain
	if channels <= 2 {
		return append(h, 0)
	}
	coupled := map[int]int{3: 1, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3}[channels]
	mapping := map[int][]byte{
		3: {0, 2, 1}, 4: {0, 1, 2, 3}, 5: {0, 4, 1, 2, 3},
		6: {0, 4, 1, 2, 3, 5}, 7: {0, 4, 1, 2, 3, 5, 6}, 8: {0, 6, 1, 2, 3, 4, 5, 7},
	}[channels]
	h = append(h, 1, byte(channels-coupled), byte(coupled))
	return append(h, mapping...)
}

// opusDuration is the duration of an Opus packet from its TOC byte and
// frame count (RFC 6716 §3.1), 0 when the packet is malformed.
func opusDuration(p []byte) time.Duration {
	if len(p) == 0 {
		return 0
	}
	config := int(p[0] >> 3)
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // Hybrid: 10, 20 ms
		frame = [2]time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
	n := 1
	switch p[0] & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		n = int(p[1] & 0x3f)
	}
	if d := frame * time.Duration(n); d <= 120*time.Millisecond {
		return d
	}
	return 0
}

// mpegAudioHeader is what an MPEG audio frame header (ISO/IEC 11172-3
// 2.4.1.3, ISO/IEC 13818-3 2.4.1.3) tells: layer, frame length in bytes and
// samples per frame.
type mpegAudioHeader struct {
	layer, length, samples, rate int
}

var (
	mp3Bitrates = [2][15]int{
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}, // MPEG-1 layer III
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},     // MPEG-2/2.5 layers II, III
	}
	mpegRates = [3]int{44100, 48000, 32000}
)

// parseMPEGAudio reads the 4-byte header at the start of b; only layer III
// gets a length (the hub carries MP3, not MP2).
func parseMPEGAudio(b []byte) (mpegAudioHeader, error) {
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return mpegAudioHeader{}, fmt.Errorf("no mpeg audio sync")
	}
	version := int(b[1] >> 3 & 3) // 0: 2.5, 2: 2, 3: 1
	layer := 4 - int(b[1]>>1&3)
	bri, sri, pad := int(b[2]>>4), int(b[2]>>2&3), int(b[2]>>1&1)
	if version == 1 || layer == 4 || bri == 15 || sri == 3 {
		return mpegAudioHeader{}, fmt.Errorf("reserved mpeg audio header field")
	}
	h := mpegAudioHeader{layer: layer}
	if layer != 3 {
		return h, nil
	}
	rate := mpegRates[sri]
	table, coef, samples := 0, 144, 1152
	switch version {
	case 2:
		rate /= 2
		table, coef, samples = 1, 72, 576
	case 0:
		rate /= 4
		table, coef, samples = 1, 72, 576
	}
	h.rate, h.samples = rate, samples
	if bri == 0 { // free format: the length is not in the header
		return h, nil
	}
	h.length = coef*mp3Bitrates[table][bri]*1000/rate + pad
	return h, nil
}

// mp3 splits an MPEG audio PES into layer III frames. Layers I and II are
// dropped with a warning (no hub codec carries them).
func (d *Demuxer) mp3(data []byte, dts time.Duration) error {
	t := dts
	for len(data) > 0 {
		h, err := parseMPEGAudio(data)
		if err != nil {
			d.warn("mpeg audio pes without a frame header")
			return nil
		}
		if h.layer != 3 {
			d.warn(fmt.Sprintf("mpeg audio layer %d dropped: only layer III (MP3) is carried", h.layer))
			if d.audioOn { // no audio will come: video must not wait for it
				d.audioOn = false
				d.il.tracks(d.videoOn, false)
				return d.il.drain(false)
			}
			return nil
		}
		n := h.length
		if n == 0 { // free format: one frame per PES
			n = len(data)
		}
		if n < 4 || n > len(data) {
			d.warn("mp3 frame length past the pes")
			return nil
		}
		if err := d.emit(media.Packet{Kind: media.KindAudio, Codec: media.CodecMP3, DTS: t, PTS: t, Payload: data[:n]}); err != nil {
			return err
		}
		t += time.Duration(h.samples) * time.Second / time.Duration(h.rate)
		data = data[n:]
	}
	return nil
}
