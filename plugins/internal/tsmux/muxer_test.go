package tsmux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// avcConfig is a minimal AVCDecoderConfigurationRecord (one SPS, one PPS).
var avcConfig = []byte{1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 2, 0x68, 0xce}

func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func checkPackets(t *testing.T, b []byte) {
	t.Helper()
	if len(b)%188 != 0 {
		t.Fatalf("%d bytes is not a whole number of TS packets", len(b))
	}
	for i := 0; i < len(b); i += 188 {
		if b[i] != 0x47 {
			t.Fatalf("packet %d has no sync byte", i/188)
		}
	}
}

func TestMuxerVideoAudio(t *testing.T) {
	m := New()
	var out []byte
	var err error
	steps := []media.Packet{
		{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: avcConfig},
		{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}},
		{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, Payload: avcc([]byte{0x65, 1, 2, 3})},
		{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: 10 * time.Millisecond, PTS: 10 * time.Millisecond, Payload: []byte{1, 2, 3}},
		{Kind: media.KindVideo, Codec: media.CodecH264, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond, Payload: avcc(bytes.Repeat([]byte{0x41}, 500))},
	}
	for _, p := range steps {
		if out, err = m.AppendPacket(out, p); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
	}
	checkPackets(t, out)
	if v, a := m.Codecs(); v != media.CodecH264 || a != media.CodecAAC {
		t.Fatalf("codecs %v %v", v, a)
	}
	// The key frame got the SPS and PPS in Annex B.
	if !bytes.Contains(out, []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0x1e}) || !bytes.Contains(out, []byte{0, 0, 0, 1, 0x68, 0xce}) {
		t.Fatal("no parameter sets before the key frame")
	}
	// ADTS header for AAC-LC 44.1 kHz stereo, 10 bytes.
	if !bytes.Contains(out, []byte{0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc, 1, 2, 3}) {
		t.Fatal("no ADTS frame")
	}
}

func TestMuxerRejects(t *testing.T) {
	m := New()
	for name, p := range map[string]media.Packet{
		"frame before config": {Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, Payload: avcc([]byte{0x65})},
		"bad avcc":            {Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: []byte{1, 2}},
		"bad asc":             {Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0xff}},
		"aac before config":   {Kind: media.KindAudio, Codec: media.CodecAAC, Payload: []byte{1}},
		"mp3 without header":  {Kind: media.KindAudio, Codec: media.CodecMP3, Payload: []byte{1, 2, 3, 4}},
		"bad opus head":       {Kind: media.KindAudio, Codec: media.CodecOpus, Flags: media.FlagConfig, Payload: []byte("OpusHead\x01")},
	} {
		t.Run(name, func(t *testing.T) {
			out, err := m.AppendPacket(nil, p)
			if !errors.Is(err, ErrMalformed) || len(out) != 0 {
				t.Fatalf("got %d bytes, %v", len(out), err)
			}
		})
	}
	if _, err := m.AppendPacket(nil, media.Packet{Kind: media.KindVideo, Codec: media.CodecAV1, Payload: []byte{1}}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("av1: %v", err)
	}
}

func TestAACTimestampsFromSamples(t *testing.T) {
	m := New()
	if _, err := m.AppendPacket(nil, media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x11, 0x90}}); err != nil { // 48 kHz
		t.Fatal(err)
	}
	// RTMP rounds 21.33 ms frames to 0, 21, 42, 64 ms.
	want := []int64{0, 1920, 3840, 5760}
	for i, ms := range []int64{0, 21, 42, 64} {
		if got := m.aacTicks(ms * 90); got != want[i] {
			t.Fatalf("frame %d: %d ticks, want %d", i, got, want[i])
		}
	}
	if got := m.aacTicks(10000 * 90); got != 10000*90 {
		t.Fatalf("a jump re-anchors: got %d", got)
	}
}

func FuzzMuxer(f *testing.F) {
	f.Add(avcConfig, avcc([]byte{0x65, 1, 2}), []byte{0x12, 0x10}, []byte{1, 2, 3})
	f.Add([]byte{1, 1, 1, 1, 0xff, 0xe1, 0, 0}, []byte{0, 0, 0, 9, 1}, []byte{0xf8, 0, 0, 0, 0}, []byte{})
	f.Add([]byte{}, []byte{}, []byte("OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00"), []byte{0xfc, 1, 2})
	f.Fuzz(func(t *testing.T, vcfg, frame, asc, aframe []byte) {
		for _, hevc := range []bool{false, true} {
			m := New()
			c := media.CodecH264
			if hevc {
				c = media.CodecH265
			}
			var out []byte
			for _, p := range []media.Packet{
				{Kind: media.KindVideo, Codec: c, Flags: media.FlagConfig, Payload: vcfg},
				{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: asc},
				{Kind: media.KindVideo, Codec: c, Flags: media.FlagKey, Payload: frame},
				{Kind: media.KindVideo, Codec: c, Payload: frame, DTS: -time.Second, PTS: -2 * time.Second},
				{Kind: media.KindAudio, Codec: media.CodecAAC, Payload: aframe},
				{Kind: media.KindAudio, Codec: media.CodecMP3, Payload: aframe},
				{Kind: media.KindAudio, Codec: media.CodecOpus, Flags: media.FlagConfig, Payload: asc},
				{Kind: media.KindAudio, Codec: media.CodecOpus, Payload: aframe},
			} {
				var err error
				if out, err = m.AppendPacket(out, p); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
					t.Fatalf("unexpected error class: %v", err)
				}
			}
			if len(out)%188 != 0 {
				t.Fatalf("%d bytes", len(out))
			}
		}
	})
}

func FuzzParamSets(f *testing.F) {
	f.Add(avcConfig)
	f.Add(make([]byte, 23))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, hevc := range []bool{false, true} {
			sets, err := ParamSets(b, hevc)
			for _, s := range sets {
				if len(s) == 0 {
					t.Fatal("empty parameter set")
				}
			}
			_ = err
		}
		if a, err := ParseASC(b); err == nil {
			if a.RateIndex < 0 || a.RateIndex > 12 || a.Channels > 7 {
				t.Fatalf("bad asc %+v", a)
			}
			if _, err := a.AppendADTS(nil, b); err != nil && len(b) <= MaxADTSPayload {
				t.Fatal(err)
			}
		}
	})
}

// readPESTimestamp reads a PTS or DTS as ISO/IEC 13818-1 §2.4.3.7 lays it
// out, apart from the muxer's writer.
func readPESTimestamp(b []byte) uint64 {
	return uint64(b[0]>>1&7)<<30 | uint64(binary.BigEndian.Uint16(b[1:])>>1)<<15 | uint64(binary.BigEndian.Uint16(b[3:])>>1)
}

// TestTimestampsPast2To30Ticks: timestamps from 2^30 ticks (3 h 18 min) on
// and across the 33-bit wrap are written as the standard lays them out,
// for small (stuffed) and large frames, with and without a DTS.
func TestTimestampsPast2To30Ticks(t *testing.T) {
	for _, at := range []time.Duration{time.Second, 3*time.Hour + 20*time.Minute, 13 * time.Hour, 26*time.Hour + 30*time.Minute + 43*time.Second} {
		for _, size := range []int{10, 5000} {
			m := New()
			if _, err := m.AppendPacket(nil, media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: avcConfig}); err != nil {
				t.Fatal(err)
			}
			for _, bframe := range []bool{false, true} {
				p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: at, PTS: at, Payload: avcc(append([]byte{0x41}, make([]byte, size)...))}
				if bframe {
					p.PTS += 80 * time.Millisecond
				}
				out, err := m.AppendPacket(nil, p)
				if err != nil {
					t.Fatal(err)
				}
				var pkt []byte
				for i := 0; i+188 <= len(out); i += 188 {
					if out[i+1]&0x40 != 0 && binary.BigEndian.Uint16(out[i+1:])&0x1fff == PIDVideo {
						pkt = out[i : i+188]
						break
					}
				}
				if pkt == nil {
					t.Fatal("no PES start")
				}
				off := 4
				if pkt[3]&0x20 != 0 {
					off += 1 + int(pkt[4])
				}
				pes := pkt[off:]
				wantPTS := uint64(ticks(p.PTS)+packDelay) & (1<<33 - 1)
				wantDTS := uint64(ticks(p.DTS)+packDelay) & (1<<33 - 1)
				if got := readPESTimestamp(pes[9:]); got != wantPTS || pes[9]>>4 != pes[7]>>6 || pes[9]&1 != 1 {
					t.Errorf("at %v size %d b-frame %v: pts %d (prefix %x), want %d", at, size, bframe, got, pes[9]>>4, wantPTS)
				}
				if bframe {
					if got := readPESTimestamp(pes[14:]); got != wantDTS || pes[14]>>4 != 1 {
						t.Errorf("at %v size %d: dts %d, want %d", at, size, got, wantDTS)
					}
				}
			}
		}
	}
}

// TestSmallAudioOnlyFrameKeepsPESHeader: an audio-only stream marks every
// PES random access (for the PCR); a frame that fits one TS packet must
// still start with its PES header (lal's Pack wrote the frame over it).
func TestSmallAudioOnlyFrameKeepsPESHeader(t *testing.T) {
	m := New()
	if _, err := m.AppendPacket(nil, media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 10, 100, 150, 151, 152, 160, 400} {
		out, err := m.AppendPacket(nil, media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: time.Second, PTS: time.Second, Payload: bytes.Repeat([]byte{0xab}, size)})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+188 <= len(out); i += 188 {
			pkt := out[i : i+188]
			if pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2]); pid != PIDAudio || pkt[1]&0x40 == 0 {
				continue
			}
			off := 4
			if pkt[3]&0x20 != 0 {
				off += 1 + int(pkt[4])
				if pkt[5]&0x10 == 0 {
					t.Fatalf("size %d: no PCR", size)
				}
			}
			if !bytes.Equal(pkt[off:off+4], []byte{0, 0, 1, 0xc0}) {
				t.Fatalf("size %d: no PES start code at %d: % x", size, off, pkt[:off+8])
			}
			if ptsFlags := pkt[off+7] >> 6; ptsFlags != 2 {
				t.Fatalf("size %d: PTS_DTS_flags %d", size, ptsFlags)
			}
		}
	}
}
