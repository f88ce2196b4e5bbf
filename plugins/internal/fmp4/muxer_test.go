package fmp4

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

func configsOf(pkts []media.Packet) (v, a media.Packet) {
	for _, p := range pkts {
		if p.IsConfig() && p.Kind == media.KindVideo && v.Payload == nil {
			v = p
		}
		if p.IsConfig() && p.Kind == media.KindAudio && a.Payload == nil {
			a = p
		}
	}
	return v, a
}

func TestInitBoxStructure(t *testing.T) {
	vcfg, acfg := configsOf(readFLV(t, "h264_aac.flv"))
	vt, err := NewTrack(1, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	at, err := NewTrack(2, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if vt.Width != 160 || vt.Height != 96 || vt.Timescale != 90000 {
		t.Errorf("video track %+v, want 160x96 at 90 kHz", vt)
	}
	if at.SampleRate != 44100 || at.Channels != 1 || at.Timescale != 44100 {
		t.Errorf("audio track %+v, want 44100 Hz mono", at)
	}
	b, err := AppendInit([]byte("keep"), []Track{vt, at})
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:4]) != "keep" {
		t.Fatal("AppendInit did not append")
	}
	top := parseBoxes(t, b[4:])
	var types []string
	for _, n := range top {
		types = append(types, n.typ)
	}
	if len(types) != 2 || types[0] != "ftyp" || types[1] != "moov" {
		t.Fatalf("top-level boxes %v, want [ftyp moov]", types)
	}
	for _, path := range []string{
		"moov/mvhd", "moov/trak/tkhd", "moov/trak/mdia/mdhd", "moov/trak/mdia/hdlr",
		"moov/trak/mdia/minf/dinf/dref/url ", "moov/trak/mdia/minf/stbl/stts",
		"moov/trak/mdia/minf/stbl/stsc", "moov/trak/mdia/minf/stbl/stsz", "moov/trak/mdia/minf/stbl/stco",
		"moov/mvex/trex",
	} {
		want := 2
		if path == "moov/mvhd" {
			want = 1
		}
		if got := len(find(top, path)); got != want {
			t.Errorf("%s: %d boxes, want %d", path, got, want)
		}
	}
	if got := u32at(find(top, "moov/mvhd")[0].payload, 96); got != 3 {
		t.Errorf("mvhd next_track_ID %d, want 3", got)
	}
	avcC := find(top, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")
	if len(avcC) != 1 || !bytes.Equal(avcC[0].payload, vcfg.Payload) {
		t.Errorf("avcC is not the decoder configuration record")
	}
	esds := find(top, "moov/trak/mdia/minf/stbl/stsd/mp4a/esds")
	if len(esds) != 1 || !bytes.HasSuffix(esds[0].payload, append(append([]byte{0x05, byte(len(acfg.Payload))}, acfg.Payload...), 0x06, 0x01, 0x02)) {
		t.Errorf("esds does not end with the AudioSpecificConfig and SLConfig: % x", esds[0].payload)
	}
	for _, trex := range find(top, "moov/mvex/trex") {
		if id := u32at(trex.payload, 4); id != 1 && id != 2 {
			t.Errorf("trex for track %d", id)
		}
	}
	for _, bad := range [][]Track{nil, {vt, vt}, {{ID: 0, Codec: media.CodecH264, Timescale: 1}}, {{ID: 1, Codec: media.CodecG711A, Timescale: 8000}}} {
		if out, err := AppendInit([]byte("x"), bad); err == nil || string(out) != "x" {
			t.Errorf("AppendInit(%v) = %q, %v; want an error and dst unchanged", bad, out, err)
		}
	}
}

func TestNewTrackErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    media.Packet
		want error
	}{
		{"not config", media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Payload: []byte{1}}, ErrMalformed},
		{"g711", media.Packet{Kind: media.KindAudio, Codec: media.CodecG711A, Flags: media.FlagConfig, Payload: []byte{1}}, ErrUnsupportedCodec},
		{"av1", media.Packet{Kind: media.KindVideo, Codec: media.CodecAV1, Flags: media.FlagConfig, Payload: []byte{0x81, 0, 0, 0}}, ErrUnsupportedCodec},
		{"bad avcC", media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: []byte{1, 2, 3}}, ErrMalformed},
		{"bad asc", media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: []byte{0}}, ErrMalformed},
		{"bad opus", media.Packet{Kind: media.KindAudio, Codec: media.CodecOpus, Flags: media.FlagConfig, Payload: []byte("OpusHead")}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewTrack(1, tc.p); !errors.Is(err, tc.want) {
				t.Errorf("NewTrack = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFragmentLayout(t *testing.T) {
	v := &Track{ID: 1, Codec: media.CodecH264, Timescale: 90000}
	a := &Track{ID: 7, Codec: media.CodecAAC, Timescale: 48000}
	b, err := AppendFragment(nil, 42, []TrackFragment{
		{Track: v, BaseTime: 9000, Samples: []Sample{{Duration: 3600, CTO: 7200, Key: true, Data: []byte("key")}, {Duration: 3600, CTO: -10, Data: []byte("p1")}}},
		{Track: a, BaseTime: 1 << 33, Samples: []Sample{{Duration: 1024, Data: []byte("aac")}}},
		{Track: v}, // empty: left out
	})
	if err != nil {
		t.Fatal(err)
	}
	top := parseBoxes(t, b)
	if len(top) != 2 || top[0].typ != "moof" || top[1].typ != "mdat" {
		t.Fatalf("want moof+mdat, got %d boxes", len(top))
	}
	if string(top[1].payload) != "keyp1aac" {
		t.Errorf("mdat %q", top[1].payload)
	}
	if seq := u32at(find(top, "moof/mfhd")[0].payload, 4); seq != 42 {
		t.Errorf("mfhd sequence %d", seq)
	}
	if n := len(find(top, "moof/traf")); n != 2 {
		t.Fatalf("%d trafs, want 2", n)
	}
	init, _ := AppendInit(nil, []Track{*v, *a})
	tracks := readFMP4(t, append(init, b...))
	vs, as := tracks[1].samples, tracks[7].samples
	if len(vs) != 2 || len(as) != 1 {
		t.Fatalf("read back %d video and %d audio samples", len(vs), len(as))
	}
	if string(vs[0].data) != "key" || vs[0].dts != 9000 || vs[0].cto != 7200 || !vs[0].key {
		t.Errorf("video sample 0 %+v", vs[0])
	}
	if string(vs[1].data) != "p1" || vs[1].dts != 12600 || vs[1].cto != -10 || vs[1].key {
		t.Errorf("video sample 1 %+v", vs[1])
	}
	if string(as[0].data) != "aac" || as[0].dts != 1<<33 || !as[0].key {
		t.Errorf("audio sample %+v", as[0])
	}
}

func TestUnits(t *testing.T) {
	tr := Track{Timescale: 44100}
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0}, {time.Second, 44100}, {23 * time.Millisecond, 1014}, {-time.Second, -44100},
		{1<<63 - 1, 9223372036*44100 + 37696}, // no overflow
	} {
		if got := tr.Units(tc.d); got != tc.want {
			t.Errorf("Units(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestMuxerRoundTrip muxes an FFmpeg-made FLV (H.264 with B-frames, AAC)
// and reads every sample back: same data, same order, DTS and CTO within
// a rounding unit, each fragment with video starting on a key frame.
func TestMuxerRoundTrip(t *testing.T) {
	pkts := readFLV(t, "h264_aac.flv")
	out := mux(t, pkts, Options{})
	tracks := readFMP4(t, out)
	if len(tracks) != 2 || tracks[1].entry != "avc1" || tracks[2].entry != "mp4a" {
		t.Fatalf("tracks %+v", tracks)
	}
	var in [3][]media.Packet
	for _, p := range pkts {
		if p.IsConfig() || p.Kind == media.KindData {
			continue
		}
		i := 1
		if p.Kind == media.KindAudio {
			i = 2
		}
		in[i] = append(in[i], p)
	}
	for id := 1; id <= 2; id++ {
		rt := tracks[uint32(id)]
		if len(rt.samples) != len(in[id]) {
			t.Fatalf("track %d: %d samples, want %d", id, len(rt.samples), len(in[id]))
		}
		tr := Track{Timescale: rt.timescale}
		base := tr.Units(in[id][0].DTS)
		for i, s := range rt.samples {
			p := in[id][i]
			if !bytes.Equal(s.data, p.Payload) {
				t.Fatalf("track %d sample %d: payload differs", id, i)
			}
			if want := tr.Units(p.DTS); s.dts != want || (i == 0 && s.dts != base) {
				t.Errorf("track %d sample %d: dts %d, want %d", id, i, s.dts, want)
			}
			if want := tr.Units(p.PTS - p.DTS); int64(s.cto) != want {
				t.Errorf("track %d sample %d: cto %d, want %d", id, i, s.cto, want)
			}
			if id == 1 && s.key != p.IsKey() {
				t.Errorf("sample %d: key %v, want %v", i, s.key, p.IsKey())
			}
		}
	}
	frags := map[int]bool{}
	for _, s := range tracks[1].samples {
		if !frags[s.fragment] {
			frags[s.fragment] = true
			if !s.key {
				t.Errorf("fragment %d starts with a non-key video frame", s.fragment)
			}
		}
	}
	if len(frags) != 2 {
		t.Errorf("%d fragments with video for 2 GOPs, want 2", len(frags))
	}

	needFFprobe(t)
	file := filepath.Join(t.TempDir(), "out.mp4")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	p := ffprobe(t, file)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" || p.Streams[1].CodecName != "aac" {
		t.Fatalf("ffprobe streams %+v", p.Streams)
	}
	if p.Streams[0].NbReadFrames != strconv.Itoa(len(in[1])) || p.Streams[0].Width != 160 {
		t.Errorf("ffprobe video %+v, want %d frames 160 wide", p.Streams[0], len(in[1]))
	}
	if d, _ := strconv.ParseFloat(p.Format.Duration, 64); d < 2.0 || d > 2.15 { // source: 2.08s
		t.Errorf("ffprobe duration %s, want 2s", p.Format.Duration)
	}
}

// TestMuxerH265Opus remuxes an FFmpeg-made fragmented MP4 (H.265, Opus)
// and checks FFprobe reads the same frames back.
func TestMuxerH265Opus(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "h265_opus.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	pkts := packetsOf(t, readFMP4(t, src))
	out := mux(t, pkts, Options{FragmentDuration: 300 * time.Millisecond})
	tracks := readFMP4(t, out)
	if tracks[1].entry != "hvc1" || tracks[2].entry != "Opus" {
		t.Fatalf("sample entries %q %q", tracks[1].entry, tracks[2].entry)
	}
	frags := map[int]bool{}
	for _, s := range tracks[2].samples {
		frags[s.fragment] = true
	}
	if len(frags) < 3 {
		t.Errorf("audio in %d fragments, want at least 3 for 1s cut every 300ms", len(frags))
	}
	needFFprobe(t)
	file := filepath.Join(t.TempDir(), "out.mp4")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	got, want := ffprobe(t, file), ffprobe(t, filepath.Join("testdata", "h265_opus.mp4"))
	if len(got.Streams) != 2 || got.Streams[0].CodecName != "hevc" || got.Streams[1].CodecName != "opus" {
		t.Fatalf("ffprobe streams %+v", got.Streams)
	}
	for i := range got.Streams {
		if got.Streams[i].NbReadFrames != want.Streams[i].NbReadFrames {
			t.Errorf("stream %d: %s frames, source has %s", i, got.Streams[i].NbReadFrames, want.Streams[i].NbReadFrames)
		}
	}
}

// TestTruncatedFilePlays cuts the file inside its last fragment, as a
// killed recorder leaves it: FFprobe still reads the complete fragments.
func TestTruncatedFilePlays(t *testing.T) {
	pkts := readFLV(t, "h264_aac.flv")
	out := mux(t, pkts, Options{FragmentDuration: 500 * time.Millisecond})
	needFFprobe(t)
	file := filepath.Join(t.TempDir(), "cut.mp4")
	if err := os.WriteFile(file, out[:len(out)-300], 0o644); err != nil {
		t.Fatal(err)
	}
	p := ffprobe(t, file)
	if len(p.Streams) != 2 || p.Streams[0].CodecName != "h264" {
		t.Fatalf("ffprobe streams %+v", p.Streams)
	}
	if n, _ := strconv.Atoi(p.Streams[0].NbReadFrames); n < 25 {
		t.Errorf("read %d video frames from the cut file, want at least one complete GOP (25)", n)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("no space left on device")
	}
	w.n--
	return len(b), nil
}

func TestMuxerWriteErrorSticks(t *testing.T) {
	pkts := readFLV(t, "h264_aac.flv")
	vcfg, acfg := configsOf(pkts)
	vt, _ := NewTrack(1, vcfg)
	at, _ := NewTrack(2, acfg)
	m, err := NewMuxer(&failWriter{n: 1}, []Track{vt, at}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, p := range pkts {
		if werr = m.WritePacket(p); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = m.Close()
	}
	if werr == nil || m.Close() == nil {
		t.Fatal("write error not reported or not sticky")
	}
	if err := m.WritePacket(media.Packet{Kind: media.KindVideo, Codec: media.CodecH264}); err == nil {
		t.Error("WritePacket after a write error succeeded")
	}
}

func TestMuxerUnknownTrack(t *testing.T) {
	vcfg, _ := configsOf(readFLV(t, "h264_aac.flv"))
	vt, _ := NewTrack(1, vcfg)
	m, err := NewMuxer(&bytes.Buffer{}, []Track{vt}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WritePacket(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Payload: []byte{1}}); !errors.Is(err, ErrNoTrack) {
		t.Errorf("audio packet without an audio track: %v, want ErrNoTrack", err)
	}
}
