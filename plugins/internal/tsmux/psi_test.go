package tsmux

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// crc32MPEG2 is CRC-32/MPEG-2 bit by bit (ISO/IEC 13818-1 Annex A: polynomial
// 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR), written
// apart from the muxer's table so the test does not share its mistakes.
func crc32MPEG2(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for i := 0; i < 8; i++ {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRC32MPEG2CheckValue(t *testing.T) {
	// The catalogue check value of CRC-32/MPEG-2 for "123456789".
	if got := crc32MPEG2([]byte("123456789")); got != 0x0376e6e7 {
		t.Fatalf("check value %#x, want 0x0376e6e7", got)
	}
}

// TestPSISectionCRCs checks the CRC_32 of every PAT and PMT section the muxer
// writes: it must be the big-endian CRC-32/MPEG-2 of the section up to it
// (ISO/IEC 13818-1 §2.4.4.3, §2.4.4.8), so that the CRC over the whole section
// with its CRC is 0. With the CRC bytes reversed, FFmpeg reads megabytes
// before it trusts the tables, and strict players refuse the stream.
func TestPSISectionCRCs(t *testing.T) {
	m := New()
	var out []byte
	var err error
	for _, p := range []media.Packet{
		{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: avcConfig},
		{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}},
		{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, Payload: avcc([]byte{0x65, 1, 2, 3})},
		{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: 10 * time.Millisecond, PTS: 10 * time.Millisecond, Payload: []byte{1, 2, 3}},
	} {
		if out, err = m.AppendPacket(out, p); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
	}
	checkPackets(t, out)
	seen := map[uint16]int{}
	for i := 0; i < len(out); i += 188 {
		pkt := out[i : i+188]
		pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
		if pid != 0 && pid != PIDPMT {
			continue
		}
		if pkt[1]&0x40 == 0 {
			t.Fatalf("PSI packet on PID %#x without payload_unit_start_indicator", pid)
		}
		if pkt[3]&0x20 != 0 {
			t.Fatalf("PSI packet on PID %#x has an adaptation field this test does not expect", pid)
		}
		sec := pkt[5+int(pkt[4]):] // skip the pointer field
		n := int(binary.BigEndian.Uint16(sec[1:3]) & 0x0fff)
		if 3+n > len(sec) || n < 4 {
			t.Fatalf("PID %#x: section_length %d does not fit", pid, n)
		}
		body, crc := sec[:3+n-4], binary.BigEndian.Uint32(sec[3+n-4:3+n])
		if want := crc32MPEG2(body); crc != want {
			t.Fatalf("PID %#x table %#x: CRC_32 %#08x, want %#08x", pid, sec[0], crc, want)
		}
		if crc32MPEG2(sec[:3+n]) != 0 {
			t.Fatalf("PID %#x: CRC over the section with its CRC is not 0", pid)
		}
		seen[pid]++
	}
	if seen[0] == 0 || seen[PIDPMT] == 0 {
		t.Fatalf("sections seen per PID %v: want a PAT and a PMT", seen)
	}
}
