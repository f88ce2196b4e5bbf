package flv

import (
	"bytes"
	"errors"
	"testing"

	"github.com/rill-media/rill/sdk/media"
)

func addTagSeeds(f *testing.F) {
	seeds := []struct {
		tagType uint8
		body    []byte
	}{
		{TagVideo, avcSeqHeaderTag},
		{TagVideo, cat([]byte{0x17, 0x01, 0, 0, 0x50}, avcIDR)},
		{TagVideo, cat([]byte{0x27, 0x01, 0xff, 0xff, 0xd8}, avcP)},
		{TagVideo, cat([]byte{0x1c, 0x00, 0, 0, 0}, hevcConfig)},
		{TagVideo, cat([]byte{0x90, 'h', 'v', 'c', '1'}, hevcConfig)},
		{TagVideo, cat([]byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0x42}, hevcIDR)},
		{TagVideo, cat([]byte{0xa3, 'h', 'v', 'c', '1'}, hevcTrail)},
		{TagVideo, cat([]byte{0x90, 'a', 'v', '0', '1'}, av1Config)},
		{TagVideo, cat([]byte{0x91, 'a', 'v', '0', '1'}, av1Frame)},
		{TagVideo, cat([]byte{0x90, 'a', 'v', 'c', '1'}, avcConfigWith(avcInterlaced1080))},
		{TagVideo, cat([]byte{0x90, 'h', 'v', 'c', '1'}, hevcConfigWith(hevcMain10))},
		{TagVideo, []byte{0x97, 0x00, 0x01, 'h', 'v', 'c', '1'}},
		{TagAudio, cat([]byte{0xaf, 0x00}, aacLC)},
		{TagAudio, cat([]byte{0xaf, 0x00}, aacHEv2)},
		{TagAudio, cat([]byte{0xaf, 0x01}, aacFrame)},
		{TagAudio, cat([]byte{0x2f}, mp3Frame44)},
		{TagAudio, cat([]byte{0x82}, g711Frame)},
		{TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader)},
		{TagAudio, cat([]byte{0x91, 'm', 'p', '4', 'a'}, aacFrame)},
		{TagScript, setDataFrameMetaData},
	}
	for _, s := range seeds {
		f.Add(s.tagType, uint32(40), s.body)
	}
}

// FuzzFromTag checks that FromTag never panics, that every packet it returns
// is accepted by AppendTag and survives FromTag again unchanged, and that
// VideoInfo and AudioInfo never panic on the configuration packets it lets
// through.
func FuzzFromTag(f *testing.F) {
	addTagSeeds(f)
	f.Fuzz(func(t *testing.T, tagType uint8, ts uint32, body []byte) {
		p, err := FromTag(tagType, ts, body)
		if err != nil {
			if !errors.Is(err, ErrSkip) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error outside the documented classes: %v", err)
			}
			return
		}
		for _, appendFn := range []func([]byte, media.Packet) ([]byte, uint8, uint32, error){AppendTag, AppendTagLegacyHEVC} {
			out, tt, tts, err := appendFn(nil, p)
			if err != nil {
				t.Fatalf("AppendTag(%v): %v", p, err)
			}
			q, err := FromTag(tt, tts, out)
			if err != nil {
				t.Fatalf("FromTag(AppendTag(%v)) = %v (body %x)", p, err, out)
			}
			if !equalPackets(p, q) {
				t.Fatalf("round trip:\n got %v %x\nwant %v %x", q, q.Payload, p, p.Payload)
			}
		}
		if p.IsConfig() {
			switch p.Kind {
			case media.KindVideo:
				_, _, _, _, _ = VideoInfo(p)
			case media.KindAudio:
				_, _, _, _ = AudioInfo(p)
			}
		}
		if p.Kind == media.KindData {
			_, _ = MetadataFromAMF0(p.Payload)
		}
	})
}

// FuzzMetadata checks that MetadataFromAMF0 never panics and that what it
// decodes encodes to a canonical form that decodes and re-encodes to the same
// bytes.
func FuzzMetadata(f *testing.F) {
	f.Add(onMetaData)
	f.Add(setDataFrameMetaData)
	f.Add(nested(17))
	full, _ := AppendMetadata(nil, map[string]any{
		"a": map[string]any{"b": []any{1.0, "two", nil, true}},
		"d": []any{}, "s": "str",
	})
	f.Add(full)
	f.Add(cat(amf0Str("onMetaData"), []byte{0x0a, 0xff, 0xff, 0xff, 0xff}))
	f.Add(cat(amf0Str("onMetaData"), []byte{0x03}, amf0Key("d"), []byte{0x0b, 0x42, 0x78, 0, 0, 0, 0, 0, 0, 0, 0}, amf0End))
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := MetadataFromAMF0(b)
		if err != nil {
			if md != nil {
				t.Fatal("map returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotMetadata) {
				t.Fatalf("error outside the documented classes: %v", err)
			}
			return
		}
		e1, err := AppendMetadata(nil, md)
		if err != nil {
			t.Fatalf("AppendMetadata of decoded metadata: %v", err)
		}
		md2, err := MetadataFromAMF0(e1)
		if err != nil {
			t.Fatalf("decode of re-encoded metadata: %v\n%x", err, e1)
		}
		e2, err := AppendMetadata(nil, md2)
		if err != nil || !bytes.Equal(e1, e2) {
			t.Fatalf("re-encoding is not stable (%v):\n%x\n%x", err, e1, e2)
		}
	})
}

// FuzzSPS feeds raw bytes to the H.264 and H.265 SPS parsers behind
// VideoInfo, which FuzzFromTag reaches only through a valid record.
func FuzzSPS(f *testing.F) {
	for _, s := range [][]byte{avcSPS720, avcSPS768x320, avcSPS720x1280, avcBaselineQCIF, avcMain1080, avcInterlaced1080, {0x67, 0x42, 0x00, 0x1e, 0xff}} {
		f.Add(s)
	}
	for _, s := range [][]byte{hevcSPS, hevcMain10} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, nal []byte) {
		for _, parse := range []func([]byte) (videoParams, error){parseAVCSPS, parseHEVCSPS} {
			v, err := parse(nal)
			if err != nil {
				continue
			}
			if v.width <= 0 || v.height <= 0 || v.width > maxDimension || v.height > maxDimension {
				t.Fatalf("picture size %dx%d accepted", v.width, v.height)
			}
		}
	})
}
