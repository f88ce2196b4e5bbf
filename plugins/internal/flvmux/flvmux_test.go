package flvmux

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

func TestHeader(t *testing.T) {
	h := AppendHeader(nil, true, true)
	if len(h) != HeaderSize || string(h[:3]) != "FLV" || h[4] != 5 {
		t.Fatalf("% x", h)
	}
}

func TestTagRoundTrip(t *testing.T) {
	pkts := []media.Packet{
		{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0x12, 0x10}},
		{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: 0x1234567 * time.Millisecond, PTS: 0x1234567 * time.Millisecond, Payload: []byte{1, 2, 3}},
		{Kind: media.KindData, Codec: media.CodecAMF0, Payload: append([]byte("\x02\x00\x0d@setDataFrame"), 2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a')},
	}
	for _, p := range pkts {
		b, err := AppendTag(nil, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if len(b) != TagHeaderSize+size+4 || binary.BigEndian.Uint32(b[len(b)-4:]) != uint32(TagHeaderSize+size) {
			t.Fatalf("tag framing % x", b)
		}
		ts := uint32(b[7])<<24 | uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
		got, err := flv.FromTag(b[0], ts, b[TagHeaderSize:TagHeaderSize+size])
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != p.Kind || got.DTS != p.DTS {
			t.Fatalf("got %v, want %v", got, p)
		}
		if p.Kind == media.KindData && flv.IsSetDataFrame(got.Payload) {
			t.Fatal("@setDataFrame not stripped")
		}
	}
}

func FuzzAppendTag(f *testing.F) {
	f.Add(uint8(1), uint8(2), []byte{1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68}, int64(0))
	f.Add(uint8(2), uint8(4), []byte{0x12, 0x10}, int64(1000))
	f.Fuzz(func(t *testing.T, kind, codec uint8, payload []byte, dts int64) {
		p := media.Packet{Kind: media.Kind(kind), Codec: media.Codec(codec), Flags: media.Flags(kind >> 4), DTS: time.Duration(dts), PTS: time.Duration(dts), Payload: payload}
		dst := []byte{9}
		b, err := AppendTag(dst, p, Options{LegacyHEVC: codec&1 == 1})
		if err != nil {
			if len(b) != 1 {
				t.Fatal("dst changed on error")
			}
			return
		}
		size := int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		if len(b) != 1+TagHeaderSize+size+4 {
			t.Fatalf("framing: %d bytes for body %d", len(b), size)
		}
	})
}
