package flv

import (
	"errors"
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

// bitWriter builds parameter sets field by field for tests.
type bitWriter struct {
	b    []byte
	nbit int
}

func (w *bitWriter) u(n int, v uint64) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.nbit%8)
		w.nbit++
	}
	return w
}

func (w *bitWriter) ue(v uint64) *bitWriter {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	return w.u(n, 0).u(n+1, v)
}

func (w *bitWriter) se(v int64) *bitWriter {
	if v > 0 {
		return w.ue(uint64(2*v - 1))
	}
	return w.ue(uint64(-2 * v))
}

// rbsp ends the payload with the stop bit and inserts emulation prevention
// bytes.
func (w *bitWriter) rbsp(header ...byte) []byte {
	w.u(1, 1)
	out := append([]byte(nil), header...)
	zeros := 0
	for _, c := range w.b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

func avcConfigWith(sps []byte) []byte {
	return cat([]byte{0x01, sps[1], sps[2], sps[3], 0xff, 0xe1, byte(len(sps) >> 8), byte(len(sps))}, sps,
		[]byte{0x01, 0x00, byte(len(avcPPS))}, avcPPS)
}

func hevcConfigWith(sps []byte) []byte {
	return cat(hevcConfig[:23],
		[]byte{0x20, 0x00, 0x01, 0x00, byte(len(hevcVPS))}, hevcVPS,
		[]byte{0x21, 0x00, 0x01, byte(len(sps) >> 8), byte(len(sps))}, sps,
		[]byte{0x22, 0x00, 0x01, 0x00, byte(len(hevcPPS))}, hevcPPS)
}

// avcBaselineQCIF is Constrained Baseline level 1b, 176x144.
var avcBaselineQCIF = new(bitWriter).
	ue(0).ue(0).ue(2).ue(1).u(1, 0). // sps id, log2_max_frame_num, poc type 2, refs, gaps
	ue(10).ue(8).u(1, 1).u(1, 1).u(1, 0).u(1, 0).
	rbsp(0x67, 66, 0x50, 11)

// avcMain1080 is Main 4.0, 1920x1088 cropped to 1080.
var avcMain1080 = new(bitWriter).
	ue(0).ue(0).ue(0).ue(2).ue(1).u(1, 0).
	ue(119).ue(67).u(1, 1).u(1, 1).
	u(1, 1).ue(0).ue(0).ue(0).ue(4). // cropping: bottom 4 (x2)
	u(1, 0).rbsp(0x67, 77, 0x40, 40)

// avcInterlaced1080 is High 4.0 1920x1080 interlaced, with a scaling matrix
// and poc type 1.
var avcInterlaced1080 = func() []byte {
	w := new(bitWriter).ue(0).ue(1).ue(0).ue(0).u(1, 0) // sps id, chroma 4:2:0, bit depths, bypass
	w.u(1, 1)                                           // seq_scaling_matrix_present_flag
	for i := 0; i < 8; i++ {
		if i == 0 || i == 6 {
			w.u(1, 1)
			size := 16
			if i == 6 {
				size = 64
			}
			for j := 0; j < size; j++ {
				w.se(int64(j%3) - 1)
			}
		} else {
			w.u(1, 0)
		}
	}
	w.ue(0).ue(1).u(1, 0).se(-2).se(3).ue(3).se(1).se(-1).se(5) // poc type 1 with 3 offsets
	w.ue(4).u(1, 0).ue(119).ue(33).u(1, 0).u(1, 1).u(1, 1)      // 1920x(34*32), field coding
	w.u(1, 1).ue(0).ue(0).ue(0).ue(2)                           // crop bottom 2 (x4)
	return w.u(1, 0).rbsp(0x67, 100, 0, 40)
}()

// hevcMain10 is a Main 10 level 5.1 SPS with two sub-layers, 3840x2160, no
// conformance window.
var hevcMain10 = func() []byte {
	w := new(bitWriter).u(4, 0).u(3, 1).u(1, 1) // vps id, max_sub_layers_minus1 1, nesting
	w.u(2, 0).u(1, 0).u(5, 2).u(32, 0x20000000).u(48, 0).u(8, 153)
	w.u(1, 1).u(1, 1)               // sub-layer 0 profile and level present
	w.u(2*7, 0)                     // reserved_zero_2bits for i = 1..7
	w.u(88, 0).u(8, 150)            // sub-layer profile and level
	w.ue(0).ue(1).ue(3840).ue(2160) // sps id, chroma 4:2:0, size
	w.u(1, 0)                       // conformance_window_flag
	return w.ue(2).ue(2).ue(4).rbsp(0x42, 0x01)
}()

func TestVideoInfo(t *testing.T) {
	tests := []struct {
		name         string
		codec        media.Codec
		record       []byte
		w, h         int
		profile, lvl string
	}{
		{"h264 1280x720", media.CodecH264, avcConfig720, 1280, 720, "High", "3.1"},
		{"h264 lal golden with emulation prevention", media.CodecH264, avcConfigWith(avcSPS768x320), 768, 320, "High", "3.2"},
		{"h264 lal golden portrait", media.CodecH264, avcConfigWith(avcSPS720x1280), 720, 1280, "High", "3.1"},
		{"h264 constrained baseline 1b", media.CodecH264, avcConfigWith(avcBaselineQCIF), 176, 144, "Constrained Baseline", "1b"},
		{"h264 main cropped 1080", media.CodecH264, avcConfigWith(avcMain1080), 1920, 1080, "Main", "4"},
		{"h264 interlaced scaling lists poc 1", media.CodecH264, avcConfigWith(avcInterlaced1080), 1920, 1080, "High", "4"},
		{"h265 lal golden with conformance window", media.CodecH265, hevcConfig, 640, 360, "Main", "2.1"},
		{"h265 main 10 sub-layers", media.CodecH265, hevcConfigWith(hevcMain10), 3840, 2160, "Main 10", "5.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, profile, lvl, err := VideoInfo(video(tt.codec, media.FlagConfig, 0, 0, tt.record))
			if err != nil {
				t.Fatal(err)
			}
			if w != tt.w || h != tt.h || profile != tt.profile || lvl != tt.lvl {
				t.Fatalf("VideoInfo = %d, %d, %q, %q; want %d, %d, %q, %q", w, h, profile, lvl, tt.w, tt.h, tt.profile, tt.lvl)
			}
		})
	}
}

func TestVideoInfoErrors(t *testing.T) {
	huge := new(bitWriter).ue(0).ue(0).ue(2).ue(1).u(1, 0).ue(1<<31).ue(8).u(1, 1).u(1, 1).u(1, 0).u(1, 0).rbsp(0x67, 66, 0, 30)
	overCropped := new(bitWriter).ue(0).ue(0).ue(2).ue(1).u(1, 0).ue(0).ue(0).u(1, 1).u(1, 1).
		u(1, 1).ue(5).ue(5).ue(0).ue(0).u(1, 0).rbsp(0x67, 66, 0, 30)
	badPOC := new(bitWriter).ue(0).ue(0).ue(3).rbsp(0x67, 66, 0, 30)
	longCycle := new(bitWriter).ue(0).ue(0).ue(1).u(1, 0).se(0).se(0).ue(1000).rbsp(0x67, 66, 0, 30)
	hugeHEVC := new(bitWriter).u(4, 0).u(3, 0).u(1, 1).u(2, 0).u(1, 0).u(5, 1).u(32, 0).u(48, 0).u(8, 93).
		ue(0).ue(1).ue(100000).ue(720).u(1, 0).rbsp(0x42, 0x01)
	tests := []struct {
		name string
		p    media.Packet
		want error
	}{
		{"not config", video(media.CodecH264, media.FlagKey, 0, 0, avcIDR), ErrMalformed},
		{"audio", audio(media.CodecAAC, media.FlagConfig, 0, aacLC), ErrMalformed},
		{"av1", video(media.CodecAV1, media.FlagConfig, 0, 0, av1Config), ErrUnsupportedCodec},
		{"bad avc record", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720[:9]), ErrMalformed},
		{"bad hevc record", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig[:25]), ErrMalformed},
		{"lal-panicking sps 67 42 00 1e ff", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith([]byte{0x67, 0x42, 0x00, 0x1e, 0xff})), ErrMalformed},
		{"truncated sps", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith(avcSPS720[:6])), ErrMalformed},
		{"absurd width", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith(huge)), ErrMalformed},
		{"cropped to nothing", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith(overCropped)), ErrMalformed},
		{"poc type 3", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith(badPOC)), ErrMalformed},
		{"poc cycle 1000", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfigWith(longCycle)), ErrMalformed},
		{"truncated hevc sps", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfigWith(hevcSPS[:20])), ErrMalformed},
		{"absurd hevc width", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfigWith(hugeHEVC)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, _, err := VideoInfo(tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAudioInfo(t *testing.T) {
	tests := []struct {
		name     string
		codec    media.Codec
		config   []byte
		rate, ch int
		profile  string
	}{
		{"aac lc 0x12 0x10", media.CodecAAC, aacLC, 44100, 2, "LC"},
		{"he-aac", media.CodecAAC, aacHE, 44100, 2, "HE-AAC"},
		{"he-aac v2", media.CodecAAC, aacHEv2, 48000, 2, "HE-AACv2"},
		{"object type escape", media.CodecAAC, aacEscape, 48000, 2, "AOT 42"},
		{"explicit rate", media.CodecAAC, aacExplicitRate, 16000, 1, "LC"},
		{"opus", media.CodecOpus, opusIDHeader, 48000, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rate, ch, profile, err := AudioInfo(audio(tt.codec, media.FlagConfig, 0, tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if rate != tt.rate || ch != tt.ch || profile != tt.profile {
				t.Fatalf("AudioInfo = %d, %d, %q; want %d, %d, %q", rate, ch, profile, tt.rate, tt.ch, tt.profile)
			}
		})
	}
	if _, _, _, err := AudioInfo(audio(media.CodecAAC, 0, 0, aacFrame)); !errors.Is(err, ErrMalformed) {
		t.Errorf("non-config packet: err = %v", err)
	}
	if _, _, _, err := AudioInfo(audio(media.CodecMP3, media.FlagConfig, 0, mp3Frame44)); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("mp3: err = %v", err)
	}
	if _, _, _, err := AudioInfo(audio(media.CodecAAC, media.FlagConfig, 0, []byte{0x12})); !errors.Is(err, ErrMalformed) {
		t.Errorf("short asc: err = %v", err)
	}
}

func TestBitReader(t *testing.T) {
	r := bitReader{b: []byte{0xa5, 0x80}}
	if v := r.u(3); v != 5 {
		t.Fatalf("u(3) = %d", v)
	}
	if v := r.ue(); v != 4 { // 00101
		t.Fatalf("ue = %d, want 4", v)
	}
	r = bitReader{b: new(bitWriter).ue(0).ue(1).ue(2).ue(254).se(-3).se(3).ue(1<<32 - 2).b}
	for _, want := range []uint32{0, 1, 2, 254} {
		if got := r.ue(); got != want {
			t.Fatalf("ue = %d, want %d", got, want)
		}
	}
	if got := r.se(); got != -3 {
		t.Fatalf("se = %d", got)
	}
	if got := r.se(); got != 3 {
		t.Fatalf("se = %d", got)
	}
	if got := r.ue(); got != 1<<32-2 || r.err != nil {
		t.Fatalf("ue = %d, %v", got, r.err)
	}
	r = bitReader{b: []byte{0, 0, 0, 0, 0x80}} // 32 leading zeros
	if r.ue(); r.err == nil {
		t.Fatal("33-bit exp-golomb accepted")
	}
	r = bitReader{b: []byte{0xff}}
	r.u(8)
	if v := r.u(1); v != 0 || r.err == nil {
		t.Fatal("read past the end did not fail")
	}
	if r.ue(); r.err == nil {
		t.Fatal("error not sticky")
	}
}
