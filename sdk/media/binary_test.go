package media

import (
	"bytes"
	"encoding"
	"errors"
	"math"
	"testing"
	"time"
)

var (
	_ encoding.BinaryAppender    = Packet{}
	_ encoding.BinaryMarshaler   = Packet{}
	_ encoding.BinaryUnmarshaler = (*Packet)(nil)
)

func equalPackets(a, b Packet) bool {
	return a.Kind == b.Kind && a.Codec == b.Codec && a.Flags == b.Flags &&
		a.DTS == b.DTS && a.PTS == b.PTS && bytes.Equal(a.Payload, b.Payload)
}

func TestBinaryGolden(t *testing.T) {
	p := Packet{
		Kind: KindVideo, Codec: CodecH264, Flags: FlagKey | FlagConfig,
		DTS: 0x0102030405060708, PTS: -1, Payload: []byte{0xaa, 0xbb},
	}
	want := []byte{
		1, 1, 1,
		0, 0, 0, 3,
		1, 2, 3, 4, 5, 6, 7, 8,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0, 0, 0, 2,
		0xaa, 0xbb,
	}
	got, err := p.AppendBinary([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendBinary = %x\nwant %x", got, want)
	}
	m, err := p.MarshalBinary()
	if err != nil || !bytes.Equal(m, want) {
		t.Fatalf("MarshalBinary = %x, %v", m, err)
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
	}{
		{"zero", Packet{}},
		{"video key", Packet{Kind: KindVideo, Codec: CodecH265, Flags: FlagKey, DTS: time.Second, PTS: time.Second + 40*time.Millisecond, Payload: []byte{0, 0, 0, 1, 0x26}}},
		{"audio config", Packet{Kind: KindAudio, Codec: CodecAAC, Flags: FlagConfig, Payload: []byte{0x12, 0x10}}},
		{"negative and extreme times", Packet{Kind: KindData, Codec: CodecAMF0, DTS: math.MinInt64, PTS: math.MaxInt64, Payload: []byte{2}}},
		{"unknown values kept", Packet{Kind: 99, Codec: 200, Flags: 0xffffffff, Payload: []byte{1}}},
		{"large", Packet{Kind: KindVideo, Codec: CodecAV1, Payload: bytes.Repeat([]byte{7}, 1<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Packet
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !equalPackets(got, tt.p) {
				t.Fatalf("round trip = %v, want %v", got, tt.p)
			}
			if len(got.Payload) > 0 {
				b[BinaryHeaderSize] ^= 0xff
				if got.Payload[0] != tt.p.Payload[0] {
					t.Fatal("UnmarshalBinary payload aliases its input")
				}
			}
		})
	}
}

func TestConsumeBinary(t *testing.T) {
	pkts := []Packet{
		{Kind: KindVideo, Codec: CodecH264, Flags: FlagConfig, Payload: []byte{1, 2, 3}},
		{Kind: KindVideo, Codec: CodecH264, Flags: FlagKey, DTS: 40 * time.Millisecond, PTS: 80 * time.Millisecond, Payload: []byte{0, 0, 0, 1, 0x65}},
		{Kind: KindAudio, Codec: CodecOpus, DTS: 20 * time.Millisecond, PTS: 20 * time.Millisecond},
	}
	var file []byte
	for _, p := range pkts {
		var err error
		if file, err = p.AppendBinary(file); err != nil {
			t.Fatal(err)
		}
	}
	rest := file
	for i, want := range pkts {
		var p Packet
		n, err := p.ConsumeBinary(rest)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !equalPackets(p, want) {
			t.Fatalf("packet %d = %v, want %v", i, p, want)
		}
		if cap(p.Payload) != len(p.Payload) {
			t.Fatalf("packet %d: payload capacity %d runs into the next packet", i, cap(p.Payload))
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}
	var p Packet
	if err := p.UnmarshalBinary(file); !errors.Is(err, ErrMalformed) {
		t.Fatalf("UnmarshalBinary of concatenated packets: err = %v, want ErrMalformed (trailing bytes)", err)
	}
}

func TestUnmarshalBinaryErrors(t *testing.T) {
	good, _ := Packet{Kind: KindAudio, Codec: CodecAAC, Payload: []byte{1, 2, 3, 4}}.MarshalBinary()
	withLen := func(n uint32) []byte {
		b := bytes.Clone(good)
		b[23], b[24], b[25], b[26] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 0", append([]byte{0}, good[1:]...), ErrUnsupportedVersion},
		{"version 2", append([]byte{2}, good[1:]...), ErrUnsupportedVersion},
		{"version only", []byte{1}, ErrMalformed},
		{"short header", good[:BinaryHeaderSize-1], ErrMalformed},
		{"short payload", good[:len(good)-1], ErrMalformed},
		{"length past end", withLen(5), ErrMalformed},
		{"length max uint32", withLen(math.MaxUint32), ErrTooLarge},
		{"length over limit", withLen(MaxPayloadSize + 1), ErrTooLarge},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Packet{Kind: KindVideo, Payload: []byte{9}}
			before := p
			err := p.UnmarshalBinary(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !equalPackets(p, before) {
				t.Fatalf("packet changed on error: %v", p)
			}
		})
	}
}

func TestAppendBinaryTooLarge(t *testing.T) {
	p := Packet{Payload: make([]byte, MaxPayloadSize+1)}
	dst := []byte{1, 2}
	out, err := p.AppendBinary(dst)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if !bytes.Equal(out, dst) {
		t.Fatal("dst changed on error")
	}
	p.Payload = p.Payload[:MaxPayloadSize]
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Packet
	if err := q.UnmarshalBinary(b); err != nil {
		t.Fatalf("max-size payload: %v", err)
	}
}

func TestAppendBinaryAllocs(t *testing.T) {
	p := Packet{Kind: KindVideo, Codec: CodecH264, Payload: make([]byte, 1000)}
	buf := make([]byte, 0, 2048)
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = p.AppendBinary(buf[:0])
	})
	if allocs != 0 {
		t.Fatalf("AppendBinary allocates %v times per run", allocs)
	}
}
