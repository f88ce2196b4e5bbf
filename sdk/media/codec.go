package media

import "strconv"

// Codec identifies the coding format of a packet's payload. The zero Codec is
// invalid.
type Codec uint8

// The codecs Rill carries. The numeric values are part of the binary packet
// form: never renumber them, only append.
const (
	CodecH264  Codec = 1  // H.264/AVC, length-prefixed NAL units
	CodecH265  Codec = 2  // H.265/HEVC, length-prefixed NAL units
	CodecAV1   Codec = 3  // AV1, OBUs in the low-overhead bitstream format
	CodecAAC   Codec = 4  // AAC, raw frames without ADTS headers
	CodecOpus  Codec = 5  // Opus, one packet per frame
	CodecMP3   Codec = 6  // MPEG-1/2 Audio Layer III, one frame
	CodecG711A Codec = 7  // G.711 A-law (PCMA)
	CodecG711U Codec = 8  // G.711 µ-law (PCMU)
	CodecAMF0  Codec = 9  // AMF0 script data, such as onMetaData
	CodecVP8   Codec = 10 // VP8, one frame as RFC 6386 codes it; no config packet
	CodecVP9   Codec = 11 // VP9, one frame (superframes kept whole); no config packet
)

var codecNames = [...]string{
	CodecH264:  "H264",
	CodecH265:  "H265",
	CodecAV1:   "AV1",
	CodecAAC:   "AAC",
	CodecOpus:  "Opus",
	CodecMP3:   "MP3",
	CodecG711A: "PCMA",
	CodecG711U: "PCMU",
	CodecAMF0:  "AMF0",
	CodecVP8:   "VP8",
	CodecVP9:   "VP9",
}

// String returns the codec's short name ("H264", "H265", "AV1", "AAC",
// "Opus", "MP3", "PCMA", "PCMU", "AMF0", "VP8", "VP9"), or "Codec(N)" for unknown values.
func (c Codec) String() string {
	if int(c) < len(codecNames) && codecNames[c] != "" {
		return codecNames[c]
	}
	return "Codec(" + strconv.Itoa(int(c)) + ")"
}

// Kind returns the kind of stream the codec belongs to, or 0 for an unknown
// codec.
func (c Codec) Kind() Kind {
	switch c {
	case CodecH264, CodecH265, CodecAV1, CodecVP8, CodecVP9:
		return KindVideo
	case CodecAAC, CodecOpus, CodecMP3, CodecG711A, CodecG711U:
		return KindAudio
	case CodecAMF0:
		return KindData
	}
	return 0
}
