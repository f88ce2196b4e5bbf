package media

import (
	"bytes"
	"testing"
	"time"
)

func TestKindString(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{KindVideo, "video"},
		{KindAudio, "audio"},
		{KindData, "data"},
		{0, "Kind(0)"},
		{200, "Kind(200)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.k.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCodecStringAndKind(t *testing.T) {
	tests := []struct {
		c    Codec
		name string
		kind Kind
	}{
		{CodecH264, "H264", KindVideo},
		{CodecH265, "H265", KindVideo},
		{CodecAV1, "AV1", KindVideo},
		{CodecAAC, "AAC", KindAudio},
		{CodecOpus, "Opus", KindAudio},
		{CodecMP3, "MP3", KindAudio},
		{CodecG711A, "PCMA", KindAudio},
		{CodecG711U, "PCMU", KindAudio},
		{CodecAMF0, "AMF0", KindData},
		{CodecVP8, "VP8", KindVideo},
		{CodecVP9, "VP9", KindVideo},
		{0, "Codec(0)", 0},
		{12, "Codec(12)", 0},
		{255, "Codec(255)", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.c.Kind(); got != tt.kind {
				t.Errorf("Kind() = %v, want %v", got, tt.kind)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		f        Flags
		want     string
		key, cfg bool
	}{
		{0, "0", false, false},
		{FlagKey, "key", true, false},
		{FlagConfig, "config", false, true},
		{FlagKey | FlagConfig, "key|config", true, true},
		{FlagKey | 0x10, "key|0x10", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.f.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			p := Packet{Flags: tt.f}
			if p.IsKey() != tt.key || p.IsConfig() != tt.cfg {
				t.Errorf("IsKey, IsConfig = %v, %v, want %v, %v", p.IsKey(), p.IsConfig(), tt.key, tt.cfg)
			}
		})
	}
}

func TestPacketString(t *testing.T) {
	p := Packet{
		Kind: KindVideo, Codec: CodecH264, Flags: FlagKey,
		DTS: 1500 * time.Millisecond, PTS: 1540 * time.Millisecond,
		Payload: make([]byte, 1234),
	}
	want := "video H264 key dts=1.5s pts=1.54s size=1234"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p = Packet{Kind: KindAudio, Codec: CodecAAC}
	want = "audio AAC dts=0s pts=0s size=0"
	if got := p.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestClone(t *testing.T) {
	orig := Packet{Kind: KindAudio, Codec: CodecAAC, DTS: 1, PTS: 2, Payload: []byte{1, 2, 3}}
	c := orig.Clone()
	orig.Payload[0] = 9
	if c.Payload[0] != 1 {
		t.Fatal("Clone shares the payload")
	}
	if c.Kind != orig.Kind || c.Codec != orig.Codec || c.DTS != orig.DTS || c.PTS != orig.PTS {
		t.Fatalf("Clone changed fields: %v", c)
	}
	if got := (Packet{}).Clone().Payload; got != nil {
		t.Fatalf("Clone of nil payload = %v, want nil", got)
	}
	if got := (Packet{Payload: []byte{}}).Clone().Payload; got == nil || len(got) != 0 {
		t.Fatalf("Clone of empty payload = %#v, want empty non-nil", got)
	}
	if !bytes.Equal(c.Payload, []byte{1, 2, 3}) {
		t.Fatalf("Clone payload = %v", c.Payload)
	}
}
