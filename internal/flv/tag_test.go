package flv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

const ms = time.Millisecond

func equalPackets(a, b media.Packet) bool {
	return a.Kind == b.Kind && a.Codec == b.Codec && a.Flags == b.Flags &&
		a.DTS == b.DTS && a.PTS == b.PTS && bytes.Equal(a.Payload, b.Payload)
}

func video(c media.Codec, f media.Flags, dts, pts time.Duration, payload []byte) media.Packet {
	return media.Packet{Kind: media.KindVideo, Codec: c, Flags: f, DTS: dts, PTS: pts, Payload: payload}
}

func audio(c media.Codec, f media.Flags, ts time.Duration, payload []byte) media.Packet {
	return media.Packet{Kind: media.KindAudio, Codec: c, Flags: f, DTS: ts, PTS: ts, Payload: payload}
}

func TestFromTag(t *testing.T) {
	tests := []struct {
		name    string
		tagType uint8
		ts      uint32
		body    []byte
		want    media.Packet
	}{
		{"avc seq header", TagVideo, 0, avcSeqHeaderTag, video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720)},
		{"avc idr", TagVideo, 40, cat([]byte{0x17, 0x01, 0x00, 0x00, 0x50}, avcIDR), video(media.CodecH264, media.FlagKey, 40*ms, 120*ms, avcIDR)},
		{"avc inter negative cts", TagVideo, 1000, cat([]byte{0x27, 0x01, 0xff, 0xff, 0xd8}, avcP), video(media.CodecH264, 0, time.Second, 960*ms, avcP)},
		{"avc disposable", TagVideo, 7, cat([]byte{0x37, 0x01, 0, 0, 0}, avcP), video(media.CodecH264, 0, 7*ms, 7*ms, avcP)},
		{"avc generated keyframe", TagVideo, 7, cat([]byte{0x47, 0x01, 0, 0, 0}, avcIDR), video(media.CodecH264, media.FlagKey, 7*ms, 7*ms, avcIDR)},
		{"avc max timestamp", TagVideo, 0xffffffff, cat([]byte{0x27, 0x01, 0, 0, 0}, avcP), video(media.CodecH264, 0, 0xffffffff*ms, 0xffffffff*ms, avcP)},
		{"avc config cts ignored", TagVideo, 5, cat([]byte{0x17, 0x00, 0x00, 0x00, 0x10}, avcConfig720), video(media.CodecH264, media.FlagConfig, 5*ms, 5*ms, avcConfig720)},
		{"enhanced avc1 coded frames", TagVideo, 10, cat([]byte{0x91, 'a', 'v', 'c', '1', 0, 0, 0x21}, avcIDR), video(media.CodecH264, media.FlagKey, 10*ms, 43*ms, avcIDR)},
		{"enhanced avc1 sequence start", TagVideo, 0, cat([]byte{0x90, 'a', 'v', 'c', '1'}, avcConfig720), video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720)},
		{"legacy hevc seq header", TagVideo, 0, cat([]byte{0x1c, 0x00, 0, 0, 0}, hevcConfig), video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig)},
		{"legacy hevc idr", TagVideo, 33, cat([]byte{0x1c, 0x01, 0, 0, 0x42}, hevcIDR), video(media.CodecH265, media.FlagKey, 33*ms, 99*ms, hevcIDR)},
		{"enhanced hvc1 sequence start", TagVideo, 0, cat([]byte{0x90, 'h', 'v', 'c', '1'}, hevcConfig), video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig)},
		{"enhanced hvc1 coded frames", TagVideo, 100, cat([]byte{0x91, 'h', 'v', 'c', '1', 0x00, 0x00, 0x42}, hevcIDR), video(media.CodecH265, media.FlagKey, 100*ms, 166*ms, hevcIDR)},
		{"enhanced hvc1 coded frames x", TagVideo, 100, cat([]byte{0xa3, 'h', 'v', 'c', '1'}, hevcTrail), video(media.CodecH265, 0, 100*ms, 100*ms, hevcTrail)},
		{"enhanced hvc1 negative cts", TagVideo, 100, cat([]byte{0xa1, 'h', 'v', 'c', '1', 0xff, 0xff, 0xff}, hevcTrail), video(media.CodecH265, 0, 100*ms, 99*ms, hevcTrail)},
		{"enhanced av01 sequence start", TagVideo, 0, cat([]byte{0x90, 'a', 'v', '0', '1'}, av1Config), video(media.CodecAV1, media.FlagConfig, 0, 0, av1Config)},
		{"enhanced av01 config without obus", TagVideo, 0, cat([]byte{0x90, 'a', 'v', '0', '1'}, av1Config[:4]), video(media.CodecAV1, media.FlagConfig, 0, 0, av1Config[:4])},
		{"enhanced av01 coded frames has no cts", TagVideo, 20, cat([]byte{0x91, 'a', 'v', '0', '1'}, av1Frame), video(media.CodecAV1, media.FlagKey, 20*ms, 20*ms, av1Frame)},
		{"enhanced av01 coded frames x", TagVideo, 20, cat([]byte{0xa3, 'a', 'v', '0', '1'}, av1Frame), video(media.CodecAV1, 0, 20*ms, 20*ms, av1Frame)},
		{"aac config", TagAudio, 0, cat([]byte{0xaf, 0x00}, aacLC), audio(media.CodecAAC, media.FlagConfig, 0, aacLC)},
		{"aac raw", TagAudio, 23, cat([]byte{0xaf, 0x01}, aacFrame), audio(media.CodecAAC, 0, 23*ms, aacFrame)},
		{"aac other header bits", TagAudio, 23, cat([]byte{0xa0, 0x01}, aacFrame), audio(media.CodecAAC, 0, 23*ms, aacFrame)},
		{"mp3", TagAudio, 26, cat([]byte{0x2f}, mp3Frame44), audio(media.CodecMP3, 0, 26*ms, mp3Frame44)},
		{"mp3 8khz format", TagAudio, 26, cat([]byte{0xe2}, mp3Frame8), audio(media.CodecMP3, 0, 26*ms, mp3Frame8)},
		{"pcma", TagAudio, 20, cat([]byte{0x72}, g711Frame), audio(media.CodecG711A, 0, 20*ms, g711Frame)},
		{"pcmu", TagAudio, 20, cat([]byte{0x82}, g711Frame), audio(media.CodecG711U, 0, 20*ms, g711Frame)},
		{"enhanced opus sequence start", TagAudio, 0, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader), audio(media.CodecOpus, media.FlagConfig, 0, opusIDHeader)},
		{"enhanced opus coded frames", TagAudio, 20, cat([]byte{0x91, 'O', 'p', 'u', 's'}, opusFrame), audio(media.CodecOpus, 0, 20*ms, opusFrame)},
		{"enhanced mp4a sequence start", TagAudio, 0, cat([]byte{0x90, 'm', 'p', '4', 'a'}, aacLC), audio(media.CodecAAC, media.FlagConfig, 0, aacLC)},
		{"enhanced mp4a coded frames", TagAudio, 0, cat([]byte{0x91, 'm', 'p', '4', 'a'}, aacFrame), audio(media.CodecAAC, 0, 0, aacFrame)},
		{"enhanced mp3 coded frames", TagAudio, 0, cat([]byte{0x91, '.', 'm', 'p', '3'}, mp3Frame44), audio(media.CodecMP3, 0, 0, mp3Frame44)},
		{"script", TagScript, 0, setDataFrameMetaData, media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: setDataFrameMetaData}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromTag(tt.tagType, tt.ts, tt.body)
			if err != nil {
				t.Fatalf("FromTag: %v", err)
			}
			if !equalPackets(got, tt.want) {
				t.Fatalf("FromTag =\n %v %x\nwant\n %v %x", got, got.Payload, tt.want, tt.want.Payload)
			}
			if len(got.Payload) > 0 && &got.Payload[len(got.Payload)-1] != &tt.body[len(tt.body)-1] {
				t.Error("payload does not alias the tag body")
			}
		})
	}
}

func TestFromTagErrors(t *testing.T) {
	badNALU := []byte{0, 0, 0, 9, 0x65, 0x88}
	tests := []struct {
		name    string
		tagType uint8
		body    []byte
		want    error
		msg     string // substring of the error message
	}{
		{"empty video", TagVideo, nil, ErrMalformed, "empty tag body"},
		{"empty audio", TagAudio, []byte{}, ErrMalformed, "empty tag body"},
		{"empty script", TagScript, nil, ErrMalformed, "empty tag body"},
		{"unknown tag type", 15, []byte{1}, ErrUnsupported, "tag type 15"},
		{"avc header truncated", TagVideo, []byte{0x17, 0x01, 0x00}, ErrMalformed, "video tag header is 3 bytes"},
		{"avc no payload", TagVideo, []byte{0x17, 0x01, 0, 0, 0}, ErrMalformed, "no payload"},
		{"avc nalu length past end", TagVideo, cat([]byte{0x17, 0x01, 0, 0, 0}, badNALU), ErrMalformed, "h264 frame: nalu 0 at offset 0: length 9 exceeds the 2 bytes left"},
		{"avc annexb payload", TagVideo, []byte{0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65, 0x88, 0x84}, ErrMalformed, "h264 frame: nalu 1"},
		{"avc truncated length prefix", TagVideo, cat([]byte{0x27, 0x01, 0, 0, 0}, avcP, []byte{0, 0}), ErrMalformed, "length prefix is cut short"},
		{"avc zero-length nalu", TagVideo, []byte{0x27, 0x01, 0, 0, 0, 0, 0, 0, 0}, ErrMalformed, "zero length"},
		{"avc bad packet type", TagVideo, cat([]byte{0x17, 0x03, 0, 0, 0}, avcIDR), ErrMalformed, "video packet type 3"},
		{"avc frame type 0", TagVideo, cat([]byte{0x07, 0x01, 0, 0, 0}, avcIDR), ErrMalformed, "frame type 0"},
		{"avc frame type 6", TagVideo, cat([]byte{0x67, 0x01, 0, 0, 0}, avcIDR), ErrMalformed, "frame type 6"},
		{"avc config truncated", TagVideo, cat([]byte{0x17, 0, 0, 0, 0}, avcConfig720[:12]), ErrMalformed, "avc config: sps 0: length 10 at offset 6 exceeds the 4 bytes left"},
		{"avc config empty", TagVideo, []byte{0x17, 0, 0, 0, 0}, ErrMalformed, "configuration record is empty"},
		{"avc config short", TagVideo, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}, ErrMalformed, "avc config: 4 bytes"},
		{"avc config version 0", TagVideo, cat([]byte{0x17, 0, 0, 0, 0, 0}, avcConfig720[1:]), ErrMalformed, "configurationVersion 0"},
		{"avc config 2-byte lengths", TagVideo, cat([]byte{0x17, 0, 0, 0, 0}, avcConfig720[:4], []byte{0xfd}, avcConfig720[5:]), ErrUnsupported, "nalu length size 2"},
		{"avc config no sps", TagVideo, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe0, 0x01, 0x00, 0x01, 0x68}, ErrMalformed, "no sps"},
		{"avc config no pps", TagVideo, cat([]byte{0x17, 0, 0, 0, 0}, avcConfig720[:8+len(avcSPS720)], []byte{0x00}), ErrMalformed, "no pps"},
		{"avc config pps count missing", TagVideo, cat([]byte{0x17, 0, 0, 0, 0}, avcConfig720[:8+len(avcSPS720)]), ErrMalformed, "pps count missing"},
		{"avc config pps as sps", TagVideo, cat([]byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 5}, avcPPS, []byte{1, 0, 5}, avcPPS), ErrMalformed, "sps 0 has nal unit type 8"},
		{"hevc config truncated", TagVideo, cat([]byte{0x1c, 0, 0, 0, 0}, hevcConfig[:60]), ErrMalformed, "hevc config: array 1 (nal type 33) nalu 0"},
		{"hevc config short", TagVideo, cat([]byte{0x1c, 0, 0, 0, 0}, hevcConfig[:22]), ErrMalformed, "hevc config: 22 bytes"},
		{"hevc config no pps", TagVideo, cat([]byte{0x1c, 0, 0, 0, 0}, hevcConfig[:22], []byte{2}, hevcConfig[23:len(hevcConfig)-len(hevcPPS)-5]), ErrMalformed, "missing parameter sets"},
		{"hevc config extra arrays claimed", TagVideo, cat([]byte{0x1c, 0, 0, 0, 0}, hevcConfig[:22], []byte{4}, hevcConfig[23:]), ErrMalformed, "array 3 header cut short"},
		{"hevc nalu past end", TagVideo, cat([]byte{0x1c, 0x01, 0, 0, 0}, badNALU), ErrMalformed, "h265 frame: nalu 0"},
		{"hevc legacy end of sequence", TagVideo, []byte{0x1c, 0x02, 0, 0, 0}, ErrSkip, ""},
		{"avc end of sequence", TagVideo, []byte{0x17, 0x02, 0, 0, 0}, ErrSkip, ""},
		{"avc command frame", TagVideo, []byte{0x57, 0x00}, ErrSkip, ""},
		{"sorenson h263", TagVideo, []byte{0x22, 0x00, 0x00}, ErrUnsupportedCodec, "video codec id 2"},
		{"vp6", TagVideo, []byte{0x14, 0x00}, ErrUnsupportedCodec, "video codec id 4"},
		{"enhanced vp09", TagVideo, cat([]byte{0x90, 'v', 'p', '0', '9'}, []byte{1, 2, 3}), ErrUnsupportedCodec, `video fourcc "vp09"`},
		{"enhanced unknown fourcc", TagVideo, []byte{0x91, 'x', 'y', 'z', 'w', 0, 0, 0, 1}, ErrUnsupportedCodec, `"xyzw"`},
		{"enhanced header truncated", TagVideo, []byte{0x91, 'h', 'v'}, ErrMalformed, "enhanced video tag header is 3 bytes"},
		{"enhanced cts truncated", TagVideo, []byte{0x91, 'h', 'v', 'c', '1', 0}, ErrMalformed, "composition time is 1 bytes"},
		{"enhanced modex", TagVideo, []byte{0x97, 0x00, 0x01, 'h', 'v', 'c', '1'}, ErrUnsupported, "packet type 7"},
		{"enhanced multitrack", TagVideo, []byte{0x96, 0x00, 'h', 'v', 'c', '1'}, ErrUnsupported, "packet type 6"},
		{"enhanced mpeg2ts sequence start", TagVideo, cat([]byte{0x95, 'a', 'v', '0', '1'}, av1Config), ErrUnsupported, "packet type 5"},
		{"enhanced reserved packet type", TagVideo, []byte{0x9a, 'h', 'v', 'c', '1'}, ErrUnsupported, "packet type 10"},
		{"enhanced sequence end", TagVideo, []byte{0x92, 'h', 'v', 'c', '1'}, ErrSkip, ""},
		{"enhanced metadata", TagVideo, cat([]byte{0x94, 'h', 'v', 'c', '1'}, amf0Str("colorInfo")), ErrSkip, ""},
		{"enhanced command frame", TagVideo, []byte{0xd0, 0x00}, ErrSkip, ""},
		{"av1 config bad marker", TagVideo, cat([]byte{0x90, 'a', 'v', '0', '1'}, []byte{0x01, 0x08, 0x0c, 0x00}), ErrMalformed, "marker and version byte 0x01"},
		{"av1 config short", TagVideo, []byte{0x90, 'a', 'v', '0', '1', 0x81, 0x08}, ErrMalformed, "av1 config: 2 bytes"},
		{"av1 config bad obu", TagVideo, cat([]byte{0x90, 'a', 'v', '0', '1'}, av1Config[:len(av1Config)-1]), ErrMalformed, "obu 0: size 11 exceeds the 10 bytes left"},
		{"av1 obu forbidden bit", TagVideo, []byte{0x91, 'a', 'v', '0', '1', 0x92, 0x00}, ErrMalformed, "forbidden bit"},
		{"av1 obu size past end", TagVideo, []byte{0x91, 'a', 'v', '0', '1', 0x32, 0x09, 0x10}, ErrMalformed, "size 9 exceeds the 1 bytes left"},
		{"av1 obu leb128 too long", TagVideo, []byte{0x91, 'a', 'v', '0', '1', 0x32, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrMalformed, "longer than 8 bytes"},
		{"av1 obu leb128 over 32 bits", TagVideo, []byte{0x91, 'a', 'v', '0', '1', 0x32, 0x80, 0x80, 0x80, 0x80, 0x10}, ErrMalformed, "exceeds 32 bits"},
		{"av1 obu extension header cut", TagVideo, []byte{0x91, 'a', 'v', '0', '1', 0x36}, ErrMalformed, "header cut short"},
		{"aac header truncated", TagAudio, []byte{0xaf}, ErrMalformed, "aac audio tag header is 1 bytes"},
		{"aac bad packet type", TagAudio, []byte{0xaf, 0x02, 0x12, 0x10}, ErrMalformed, "aac packet type 2"},
		{"aac empty raw", TagAudio, []byte{0xaf, 0x01}, ErrMalformed, "no payload"},
		{"aac config one byte", TagAudio, []byte{0xaf, 0x00, 0x12}, ErrMalformed, "aac config: 1 bytes"},
		{"aac config object type 0", TagAudio, []byte{0xaf, 0x00, 0x02, 0x10}, ErrMalformed, "audio object type 0"},
		{"aac config reserved rate", TagAudio, []byte{0xaf, 0x00, 0x16, 0x90}, ErrMalformed, "reserved sampling frequency index 13"},
		{"aac config explicit rate cut", TagAudio, []byte{0xaf, 0x00, 0x17, 0x80, 0x1f}, ErrMalformed, "read past the end"},
		{"mp3 empty", TagAudio, []byte{0x2f}, ErrMalformed, "no payload"},
		{"adpcm", TagAudio, []byte{0x1e, 0x01, 0x02}, ErrUnsupportedCodec, "sound format 1"},
		{"speex", TagAudio, []byte{0xb2, 0x01}, ErrUnsupportedCodec, "sound format 11"},
		{"linear pcm", TagAudio, []byte{0x3e, 0x01}, ErrUnsupportedCodec, "sound format 3"},
		{"enhanced audio flac", TagAudio, []byte{0x91, 'f', 'L', 'a', 'C', 1}, ErrUnsupportedCodec, `audio fourcc "fLaC"`},
		{"enhanced audio truncated", TagAudio, []byte{0x91, 'O', 'p'}, ErrMalformed, "enhanced audio tag header is 3 bytes"},
		{"enhanced audio multitrack", TagAudio, []byte{0x95, 0x00}, ErrUnsupported, "packet type 5"},
		{"enhanced audio modex", TagAudio, []byte{0x97, 0x00}, ErrUnsupported, "packet type 7"},
		{"enhanced audio reserved", TagAudio, []byte{0x93, 'O', 'p', 'u', 's', 1}, ErrUnsupported, "packet type 3"},
		{"enhanced audio sequence end", TagAudio, []byte{0x92, 'O', 'p', 'u', 's'}, ErrSkip, ""},
		{"enhanced audio multichannel config", TagAudio, []byte{0x94, 'O', 'p', 'u', 's', 0, 2}, ErrSkip, ""},
		{"enhanced mp3 sequence start", TagAudio, []byte{0x90, '.', 'm', 'p', '3'}, ErrSkip, ""},
		{"opus head bad magic", TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, []byte("OpusTags"), opusIDHeader[8:]), ErrMalformed, "magic"},
		{"opus head short", TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader[:18]), ErrMalformed, "opus header: 18 bytes"},
		{"opus head zero channels", TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader[:9], []byte{0}, opusIDHeader[10:]), ErrMalformed, "zero channels"},
		{"opus head family 1 cut", TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader[:18], []byte{1}), ErrMalformed, "mapping family 1"},
		{"opus head version 16", TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader[:8], []byte{0x10}, opusIDHeader[9:]), ErrUnsupported, "version 16"},
		{"body too large", TagScript, make([]byte, MaxBodySize+1), ErrMalformed, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromTag(tt.tagType, 0, tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
			if !equalPackets(p, media.Packet{}) {
				t.Fatalf("packet %v returned with error", p)
			}
		})
	}
}

func TestErrUnsupportedCodecWrapsErrUnsupported(t *testing.T) {
	if !errors.Is(ErrUnsupportedCodec, ErrUnsupported) {
		t.Fatal("ErrUnsupportedCodec does not wrap ErrUnsupported")
	}
	_, err := FromTag(TagVideo, 0, []byte{0x90, 'v', 'p', '0', '9', 1})
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrUnsupportedCodec) {
		t.Fatalf("err = %v", err)
	}
}

// TestRoundTrip checks FromTag(AppendTag(p)) == p for every codec and flag
// combination AppendTag accepts, and the exact header AppendTag writes.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		p       media.Packet
		tagType uint8
		ts      uint32
		header  []byte // the tag body bytes before the payload
	}{
		{"h264 config", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720), TagVideo, 0, []byte{0x17, 0x00, 0, 0, 0}},
		{"h264 key", video(media.CodecH264, media.FlagKey, 40*ms, 120*ms, avcIDR), TagVideo, 40, []byte{0x17, 0x01, 0, 0, 80}},
		{"h264 inter", video(media.CodecH264, 0, 80*ms, 80*ms, avcP), TagVideo, 80, []byte{0x27, 0x01, 0, 0, 0}},
		{"h264 negative cts", video(media.CodecH264, 0, 80*ms, 40*ms, avcP), TagVideo, 80, []byte{0x27, 0x01, 0xff, 0xff, 0xd8}},
		{"h264 max cts", video(media.CodecH264, 0, 0, (1<<23-1)*ms, avcP), TagVideo, 0, []byte{0x27, 0x01, 0x7f, 0xff, 0xff}},
		{"h264 min cts", video(media.CodecH264, 0, 1<<23*ms, 0, avcP), TagVideo, 1 << 23, []byte{0x27, 0x01, 0x80, 0x00, 0x00}},
		{"h264 max timestamp", video(media.CodecH264, media.FlagKey, 0xffffffff*ms, 0xffffffff*ms, avcIDR), TagVideo, 0xffffffff, []byte{0x17, 0x01, 0, 0, 0}},
		{"h265 config", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig), TagVideo, 0, []byte{0x90, 'h', 'v', 'c', '1'}},
		{"h265 key with cts", video(media.CodecH265, media.FlagKey, 100*ms, 166*ms, hevcIDR), TagVideo, 100, []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 66}},
		{"h265 key without cts", video(media.CodecH265, media.FlagKey, 100*ms, 100*ms, hevcIDR), TagVideo, 100, []byte{0x93, 'h', 'v', 'c', '1'}},
		{"h265 inter", video(media.CodecH265, 0, 133*ms, 100*ms, hevcTrail), TagVideo, 133, []byte{0xa1, 'h', 'v', 'c', '1', 0xff, 0xff, 0xdf}},
		{"av1 config", video(media.CodecAV1, media.FlagConfig, 0, 0, av1Config), TagVideo, 0, []byte{0x90, 'a', 'v', '0', '1'}},
		{"av1 key", video(media.CodecAV1, media.FlagKey, 33*ms, 33*ms, av1Frame), TagVideo, 33, []byte{0x91, 'a', 'v', '0', '1'}},
		{"av1 inter", video(media.CodecAV1, 0, 66*ms, 66*ms, av1Frame), TagVideo, 66, []byte{0xa1, 'a', 'v', '0', '1'}},
		{"aac config", audio(media.CodecAAC, media.FlagConfig, 0, aacLC), TagAudio, 0, []byte{0xaf, 0x00}},
		{"aac he config", audio(media.CodecAAC, media.FlagConfig, 0, aacHE), TagAudio, 0, []byte{0xaf, 0x00}},
		{"aac frame", audio(media.CodecAAC, 0, 23*ms, aacFrame), TagAudio, 23, []byte{0xaf, 0x01}},
		{"mp3 44.1k stereo", audio(media.CodecMP3, 0, 26*ms, mp3Frame44), TagAudio, 26, []byte{0x2f}},
		{"mp3 22k mono", audio(media.CodecMP3, 0, 26*ms, mp3Frame22Mono), TagAudio, 26, []byte{0x2a}},
		{"mp3 8k stereo", audio(media.CodecMP3, 0, 26*ms, mp3Frame8), TagAudio, 26, []byte{0x27}},
		{"mp3 no header", audio(media.CodecMP3, 0, 26*ms, []byte{1, 2, 3}), TagAudio, 26, []byte{0x2f}},
		{"pcma", audio(media.CodecG711A, 0, 20*ms, g711Frame), TagAudio, 20, []byte{0x72}},
		{"pcmu", audio(media.CodecG711U, 0, 20*ms, g711Frame), TagAudio, 20, []byte{0x82}},
		{"opus config", audio(media.CodecOpus, media.FlagConfig, 0, opusIDHeader), TagAudio, 0, []byte{0x90, 'O', 'p', 'u', 's'}},
		{"opus frame", audio(media.CodecOpus, 0, 20*ms, opusFrame), TagAudio, 20, []byte{0x91, 'O', 'p', 'u', 's'}},
		{"script", media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, DTS: 5 * ms, PTS: 5 * ms, Payload: onMetaData}, TagScript, 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("keep")
			body, tagType, ts, err := AppendTag(bytes.Clone(prefix), tt.p)
			if err != nil {
				t.Fatalf("AppendTag: %v", err)
			}
			if !bytes.HasPrefix(body, prefix) {
				t.Fatal("AppendTag overwrote dst")
			}
			body = body[len(prefix):]
			if tagType != tt.tagType || ts != tt.ts {
				t.Fatalf("tag type, ts = %d, %d; want %d, %d", tagType, ts, tt.tagType, tt.ts)
			}
			if want := cat(tt.header, tt.p.Payload); !bytes.Equal(body, want) {
				t.Fatalf("body =\n %x\nwant\n %x", body, want)
			}
			got, err := FromTag(tagType, ts, body)
			if err != nil {
				t.Fatalf("FromTag: %v", err)
			}
			if !equalPackets(got, tt.p) {
				t.Fatalf("round trip = %v, want %v", got, tt.p)
			}
		})
	}
}

func TestAppendTagNormalizes(t *testing.T) {
	tests := []struct {
		name string
		in   media.Packet
		want media.Packet // FromTag(AppendTag(in))
	}{
		{"key flag on config dropped", video(media.CodecH264, media.FlagConfig|media.FlagKey, 0, 40*ms, avcConfig720), video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720)},
		{"key flag on audio dropped", audio(media.CodecAAC, media.FlagKey, 10*ms, aacFrame), audio(media.CodecAAC, 0, 10*ms, aacFrame)},
		{"audio pts ignored", media.Packet{Kind: media.KindAudio, Codec: media.CodecOpus, DTS: 10 * ms, PTS: 30 * ms, Payload: opusFrame}, audio(media.CodecOpus, 0, 10*ms, opusFrame)},
		{"sub-millisecond floored", video(media.CodecH264, 0, 33366*time.Microsecond, 66733*time.Microsecond, avcP), video(media.CodecH264, 0, 33*ms, 66*ms, avcP)},
		{"unknown flags dropped", video(media.CodecH264, media.FlagKey|0x100, 0, 0, avcIDR), video(media.CodecH264, media.FlagKey, 0, 0, avcIDR)},
		{"dts wraps at 2^32 ms", video(media.CodecH264, 0, (1<<32+5)*ms, (1<<32+5)*ms, avcP), video(media.CodecH264, 0, 5*ms, 5*ms, avcP)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, tagType, ts, err := AppendTag(nil, tt.in)
			if err != nil {
				t.Fatalf("AppendTag: %v", err)
			}
			got, err := FromTag(tagType, ts, body)
			if err != nil {
				t.Fatalf("FromTag: %v", err)
			}
			if !equalPackets(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAppendTagErrors(t *testing.T) {
	tests := []struct {
		name string
		p    media.Packet
		want error
		msg  string
	}{
		{"unknown codec", media.Packet{Kind: media.KindVideo, Codec: 77, Payload: avcP}, ErrUnsupportedCodec, "Codec(77)"},
		{"zero codec", media.Packet{Payload: avcP}, ErrUnsupportedCodec, ""},
		{"kind mismatch", media.Packet{Kind: media.KindAudio, Codec: media.CodecH264, Payload: avcP}, ErrMalformed, "audio packet with codec H264"},
		{"negative dts", video(media.CodecH264, 0, -ms, 0, avcP), ErrMalformed, "negative dts"},
		{"empty payload", video(media.CodecH264, 0, 0, 0, nil), ErrMalformed, "no payload"},
		{"empty config", audio(media.CodecAAC, media.FlagConfig, 0, nil), ErrMalformed, "configuration record is empty"},
		{"bad nalu", video(media.CodecH264, 0, 0, 0, []byte{0, 0, 0, 7, 1}), ErrMalformed, "length 7 exceeds"},
		{"bad avc config", video(media.CodecH264, media.FlagConfig, 0, 0, avcConfig720[:9]), ErrMalformed, "avc config"},
		{"bad hevc config", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig[:30]), ErrMalformed, "hevc config"},
		{"bad asc", audio(media.CodecAAC, media.FlagConfig, 0, []byte{0x12}), ErrMalformed, "aac config"},
		{"cts too large", video(media.CodecH264, 0, 0, (1<<23)*ms, avcP), ErrMalformed, "does not fit in 24 bits"},
		{"cts too small", video(media.CodecH265, 0, (1<<23+1)*ms, 0, hevcTrail), ErrMalformed, "does not fit in 24 bits"},
		{"av1 with cts", video(media.CodecAV1, 0, 0, 40*ms, av1Frame), ErrMalformed, "no composition time"},
		{"mp3 config", audio(media.CodecMP3, media.FlagConfig, 0, mp3Frame44), ErrMalformed, "has no configuration packets"},
		{"pcmu config", audio(media.CodecG711U, media.FlagConfig, 0, g711Frame), ErrMalformed, "has no configuration packets"},
		{"empty script", media.Packet{Kind: media.KindData, Codec: media.CodecAMF0}, ErrMalformed, "no payload"},
		{"body too large", media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: make([]byte, MaxBodySize+1)}, ErrMalformed, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			out, tagType, ts, err := AppendTag(dst, tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
			if !bytes.Equal(out, dst) || len(out) != 3 || tagType != 0 || ts != 0 {
				t.Fatalf("AppendTag returned %x, %d, %d with an error", out, tagType, ts)
			}
		})
	}
}

func TestAppendTagLegacyHEVC(t *testing.T) {
	tests := []struct {
		name   string
		p      media.Packet
		header []byte
	}{
		{"config", video(media.CodecH265, media.FlagConfig, 0, 0, hevcConfig), []byte{0x1c, 0x00, 0, 0, 0}},
		{"key", video(media.CodecH265, media.FlagKey, 100*ms, 166*ms, hevcIDR), []byte{0x1c, 0x01, 0, 0, 66}},
		{"inter", video(media.CodecH265, 0, 100*ms, 100*ms, hevcTrail), []byte{0x2c, 0x01, 0, 0, 0}},
		{"h264 unchanged", video(media.CodecH264, media.FlagKey, 0, 0, avcIDR), []byte{0x17, 0x01, 0, 0, 0}},
		{"av1 still enhanced", video(media.CodecAV1, media.FlagKey, 0, 0, av1Frame), []byte{0x91, 'a', 'v', '0', '1'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, tagType, ts, err := AppendTagLegacyHEVC(nil, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if want := cat(tt.header, tt.p.Payload); !bytes.Equal(body, want) {
				t.Fatalf("body = %x, want %x", body, want)
			}
			got, err := FromTag(tagType, ts, body)
			if err != nil || !equalPackets(got, tt.p) {
				t.Fatalf("round trip = %v, %v; want %v", got, err, tt.p)
			}
		})
	}
}

func TestFromTagAllocs(t *testing.T) {
	tests := []struct {
		tagType uint8
		body    []byte
	}{
		{TagVideo, cat([]byte{0x17, 0x01, 0, 0, 0x50}, avcIDR)},
		{TagVideo, avcSeqHeaderTag},
		{TagVideo, cat([]byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0x42}, hevcIDR)},
		{TagVideo, cat([]byte{0x90, 'h', 'v', 'c', '1'}, hevcConfig)},
		{TagVideo, cat([]byte{0x91, 'a', 'v', '0', '1'}, av1Frame)},
		{TagAudio, cat([]byte{0xaf, 0x00}, aacLC)},
		{TagAudio, cat([]byte{0x90, 'O', 'p', 'u', 's'}, opusIDHeader)},
	}
	buf := make([]byte, 0, 1024)
	for _, tt := range tests {
		allocs := testing.AllocsPerRun(100, func() {
			p, err := FromTag(tt.tagType, 0, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := AppendTag(buf[:0], p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("FromTag+AppendTag of %x...: %v allocs per run", tt.body[:5], allocs)
		}
	}
}

func BenchmarkFromTag(b *testing.B) {
	frame := cat([]byte{0x17, 0x01, 0, 0, 0x50}, bytes.Repeat(avcIDR, 20))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := FromTag(TagVideo, 40, frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendTag(b *testing.B) {
	p := video(media.CodecH265, media.FlagKey, 40*ms, 80*ms, bytes.Repeat(hevcIDR, 20))
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	for b.Loop() {
		if _, _, _, err := AppendTag(buf[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}
