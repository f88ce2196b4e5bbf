package media

import (
	"bytes"
	"testing"
)

func FuzzUnmarshalBinary(f *testing.F) {
	for _, p := range []Packet{
		{},
		{Kind: KindVideo, Codec: CodecH264, Flags: FlagKey, DTS: 40e6, PTS: 80e6, Payload: []byte{0, 0, 0, 1, 0x65}},
		{Kind: KindAudio, Codec: CodecAAC, Flags: FlagConfig, Payload: []byte{0x12, 0x10}},
	} {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		err := p.UnmarshalBinary(b)
		var c Packet
		n, cerr := c.ConsumeBinary(b)
		if cerr == nil && (n < BinaryHeaderSize || n > len(b)) {
			t.Fatalf("ConsumeBinary used %d of %d bytes", n, len(b))
		}
		if err != nil {
			if cerr == nil && n == len(b) {
				t.Fatalf("ConsumeBinary accepted all %d bytes that UnmarshalBinary rejected: %v", n, err)
			}
			return
		}
		if cerr != nil || n != len(b) || !equalPackets(p, c) {
			t.Fatalf("ConsumeBinary = %v, %d, %v; UnmarshalBinary = %v", c, n, cerr, p)
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded packet: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", out, b)
		}
	})
}

func FuzzSplitAVCC(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x67, 0x42})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var rebuilt []byte
		err := SplitAVCC(b, func(n []byte) bool {
			if len(n) == 0 {
				t.Fatal("empty nalu")
			}
			rebuilt = append(rebuilt, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			rebuilt = append(rebuilt, n...)
			return true
		})
		if err == nil && !bytes.Equal(rebuilt, b) {
			t.Fatalf("rebuilt %x from %x", rebuilt, b)
		}
		if err != nil && !bytes.HasPrefix(b, rebuilt) {
			t.Fatalf("nalus before the error %x are not a prefix of %x", rebuilt, b)
		}
	})
}
