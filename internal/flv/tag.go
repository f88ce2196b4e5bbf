package flv

import (
	"errors"
	"fmt"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// FLV tag types (also the RTMP message type ids of the same messages).
const (
	TagAudio  uint8 = 8
	TagVideo  uint8 = 9
	TagScript uint8 = 18
)

// MaxBodySize is the largest tag body: FLV's DataSize and RTMP's message
// length are 24-bit.
const MaxBodySize = 1<<24 - 1

var (
	// ErrSkip is returned by FromTag for a well-formed tag that carries no
	// media packet: an end-of-sequence marker, a video command frame, an
	// Enhanced RTMP metadata or multichannel-config packet. Ignore the tag.
	ErrSkip = errors.New("flv: tag carries no media")
	// ErrUnsupported is returned for a tag this package cannot convert, such
	// as Enhanced RTMP ModEx or Multitrack packets. Drop the track with a
	// warning.
	ErrUnsupported = errors.New("flv: unsupported")
	// ErrUnsupportedCodec is returned for a codec this package does not
	// carry (VP9, ADPCM, Speex, an unknown FourCC, ...). It wraps
	// ErrUnsupported.
	ErrUnsupportedCodec = fmt.Errorf("%w codec", ErrUnsupported)
	// ErrMalformed is returned, wrapped with the details, for a tag body or
	// packet that breaks the format: truncated headers, invalid decoder
	// configuration records, NAL unit lengths past the end.
	ErrMalformed = errors.New("flv: malformed")
)

// FromTag converts the body of an FLV tag or RTMP message of type tagType
// (TagAudio, TagVideo or TagScript) with its 32-bit millisecond timestamp
// into a packet. DTS is the timestamp; for video PTS adds the composition
// time offset, for audio and data PTS equals DTS.
//
// The packet's Payload aliases body: the caller must keep body unchanged
// while it uses the packet, or Clone it. Configuration packets carry
// FlagConfig (and never FlagKey); video frames carry FlagKey when the tag's
// frame type is a key frame.
//
// FromTag returns ErrSkip, an error wrapping ErrUnsupported (or
// ErrUnsupportedCodec) or ErrMalformed as described in the package
// documentation. It does not allocate on success and never panics.
func FromTag(tagType uint8, timestampMs uint32, body []byte) (media.Packet, error) {
	if len(body) == 0 {
		return media.Packet{}, malformed("empty tag body")
	}
	if len(body) > MaxBodySize {
		return media.Packet{}, malformed("tag body of %d bytes exceeds %d", len(body), MaxBodySize)
	}
	dts := time.Duration(timestampMs) * time.Millisecond
	switch tagType {
	case TagVideo:
		return videoFromTag(dts, body)
	case TagAudio:
		return audioFromTag(dts, body)
	case TagScript:
		return media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, DTS: dts, PTS: dts, Payload: body}, nil
	}
	return media.Packet{}, fmt.Errorf("%w tag type %d", ErrUnsupported, tagType)
}

// AppendTag appends the FLV tag body for p to dst and returns the extended
// slice with the tag type and the millisecond timestamp to put in the tag or
// RTMP message header. H.264 and audio other than Opus are written as legacy
// tags, H.265, AV1 and Opus as Enhanced RTMP tags.
//
// The packet is validated as FromTag validates tags, so AppendTag never
// writes a tag FromTag would reject; on error dst is returned unchanged. DTS
// must not be negative; it is written modulo 2^32 ms. For H.264 and H.265
// the composition time PTS-DTS must fit in a signed 24-bit millisecond
// count; AV1 has no composition time, so PTS must equal DTS; for audio and
// data PTS is ignored. FlagKey is ignored on configuration and audio packets.
func AppendTag(dst []byte, p media.Packet) (out []byte, tagType uint8, timestampMs uint32, err error) {
	return appendTag(dst, p, false)
}

// AppendTagLegacyHEVC is AppendTag, except that H.265 is written as a legacy
// tag with the non-standard video codec id 12, which players and servers that
// predate Enhanced RTMP expect. Other codecs are written as by AppendTag.
func AppendTagLegacyHEVC(dst []byte, p media.Packet) (out []byte, tagType uint8, timestampMs uint32, err error) {
	return appendTag(dst, p, true)
}

func appendTag(dst []byte, p media.Packet, legacyHEVC bool) ([]byte, uint8, uint32, error) {
	if p.Codec.Kind() == 0 {
		return dst, 0, 0, fmt.Errorf("%w %v", ErrUnsupportedCodec, p.Codec)
	}
	if p.Kind != p.Codec.Kind() {
		return dst, 0, 0, fmt.Errorf("%w: %v packet with codec %v", ErrMalformed, p.Kind, p.Codec)
	}
	if p.DTS < 0 {
		return dst, 0, 0, fmt.Errorf("%w: negative dts %v", ErrMalformed, p.DTS)
	}
	if err := checkPayload(p.Codec, p.IsConfig(), p.Payload); err != nil {
		return dst, 0, 0, err
	}
	ts := floorMs(p.DTS)
	var (
		out     []byte
		tagType uint8
		err     error
	)
	switch p.Kind {
	case media.KindVideo:
		tagType = TagVideo
		out, err = appendVideo(dst, p, floorMs(p.PTS)-ts, legacyHEVC)
	case media.KindAudio:
		tagType = TagAudio
		out, err = appendAudio(dst, p)
	default:
		tagType = TagScript
		out = append(dst, p.Payload...)
	}
	if err != nil {
		return dst, 0, 0, err
	}
	if n := len(out) - len(dst); n > MaxBodySize {
		return dst, 0, 0, fmt.Errorf("%w: tag body of %d bytes exceeds %d", ErrMalformed, n, MaxBodySize)
	}
	return out, tagType, uint32(ts), nil
}

// floorMs returns d in whole milliseconds, rounded towards minus infinity.
func floorMs(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond < 0 {
		ms--
	}
	return ms
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
