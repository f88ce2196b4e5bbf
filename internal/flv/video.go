package flv

import (
	"fmt"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// Legacy FLV video (video_file_format_spec_v10_1 §E.4.3.1) and Enhanced
// RTMP (veovera enhanced-rtmp v1 and v2, "ExVideoTagHeader").
const (
	frameTypeKey          = 1
	frameTypeInter        = 2
	frameTypeDisposable   = 3
	frameTypeGeneratedKey = 4
	frameTypeCommand      = 5

	codecIDAVC  = 7
	codecIDHEVC = 12 // non-standard, widespread before Enhanced RTMP

	avcPacketSequenceHeader = 0
	avcPacketNALU           = 1
	avcPacketEndOfSequence  = 2

	exHeaderBit = 0x80

	exPacketSequenceStart        = 0
	exPacketCodedFrames          = 1
	exPacketSequenceEnd          = 2
	exPacketCodedFramesX         = 3
	exPacketMetadata             = 4
	exPacketMPEG2TSSequenceStart = 5
	exPacketMultitrack           = 6
	exPacketModEx                = 7
)

var (
	fourCCAVC  = [4]byte{'a', 'v', 'c', '1'}
	fourCCHEVC = [4]byte{'h', 'v', 'c', '1'}
	fourCCAV1  = [4]byte{'a', 'v', '0', '1'}
)

func videoFromTag(dts time.Duration, body []byte) (media.Packet, error) {
	if body[0]&exHeaderBit != 0 {
		return exVideoFromTag(dts, body)
	}
	frameType, codecID := body[0]>>4, body[0]&0x0f
	var codec media.Codec
	switch codecID {
	case codecIDAVC:
		codec = media.CodecH264
	case codecIDHEVC:
		codec = media.CodecH265
	default:
		return media.Packet{}, fmt.Errorf("%w: video codec id %d", ErrUnsupportedCodec, codecID)
	}
	if frameType == frameTypeCommand {
		return media.Packet{}, ErrSkip
	}
	if len(body) < 5 {
		return media.Packet{}, malformed("%v video tag header is %d bytes, want 5", codec, len(body))
	}
	cts := si24(body[2:5])
	switch body[1] {
	case avcPacketSequenceHeader:
		return videoPacket(codec, frameType, true, dts, 0, body[5:])
	case avcPacketNALU:
		return videoPacket(codec, frameType, false, dts, cts, body[5:])
	case avcPacketEndOfSequence:
		return media.Packet{}, ErrSkip
	}
	return media.Packet{}, malformed("%v video packet type %d", codec, body[1])
}

func exVideoFromTag(dts time.Duration, body []byte) (media.Packet, error) {
	frameType, packetType := body[0]>>4&0x07, body[0]&0x0f
	switch packetType {
	case exPacketMultitrack, exPacketModEx:
		return media.Packet{}, fmt.Errorf("%w enhanced video packet type %d", ErrUnsupported, packetType)
	}
	if frameType == frameTypeCommand {
		return media.Packet{}, ErrSkip
	}
	if len(body) < 5 {
		return media.Packet{}, malformed("enhanced video tag header is %d bytes, want 5", len(body))
	}
	var codec media.Codec
	switch [4]byte(body[1:5]) {
	case fourCCAVC:
		codec = media.CodecH264
	case fourCCHEVC:
		codec = media.CodecH265
	case fourCCAV1:
		codec = media.CodecAV1
	default:
		return media.Packet{}, fmt.Errorf("%w: video fourcc %q", ErrUnsupportedCodec, body[1:5])
	}
	data := body[5:]
	switch packetType {
	case exPacketSequenceStart:
		return videoPacket(codec, frameType, true, dts, 0, data)
	case exPacketCodedFrames:
		if codec == media.CodecAV1 { // AV1 coded frames carry no composition time
			return videoPacket(codec, frameType, false, dts, 0, data)
		}
		if len(data) < 3 {
			return media.Packet{}, malformed("%v coded frames: composition time is %d bytes, want 3", codec, len(data))
		}
		return videoPacket(codec, frameType, false, dts, si24(data), data[3:])
	case exPacketCodedFramesX:
		return videoPacket(codec, frameType, false, dts, 0, data)
	case exPacketSequenceEnd, exPacketMetadata:
		return media.Packet{}, ErrSkip
	}
	return media.Packet{}, fmt.Errorf("%w enhanced video packet type %d", ErrUnsupported, packetType)
}

func videoPacket(codec media.Codec, frameType byte, config bool, dts time.Duration, ctsMs int32, payload []byte) (media.Packet, error) {
	p := media.Packet{Kind: media.KindVideo, Codec: codec, DTS: dts, Payload: payload}
	if config {
		p.Flags = media.FlagConfig
	} else {
		switch frameType {
		case frameTypeKey, frameTypeGeneratedKey:
			p.Flags = media.FlagKey
		case frameTypeInter, frameTypeDisposable:
		default:
			return media.Packet{}, malformed("%v video frame type %d", codec, frameType)
		}
	}
	if err := checkPayload(codec, config, payload); err != nil {
		return media.Packet{}, err
	}
	p.PTS = dts + time.Duration(ctsMs)*time.Millisecond
	return p, nil
}

// appendVideo writes a video tag body for a validated packet; ctsMs is the
// composition time offset in milliseconds.
func appendVideo(dst []byte, p media.Packet, ctsMs int64, legacyHEVC bool) ([]byte, error) {
	frameType := byte(frameTypeInter)
	if p.IsConfig() || p.IsKey() {
		frameType = frameTypeKey
	}
	if p.IsConfig() {
		ctsMs = 0
	}
	switch p.Codec {
	case media.CodecH264, media.CodecH265:
		if ctsMs < -1<<23 || ctsMs >= 1<<23 {
			return dst, fmt.Errorf("%w: %v composition time %dms does not fit in 24 bits", ErrMalformed, p.Codec, ctsMs)
		}
	case media.CodecAV1:
		if ctsMs != 0 {
			return dst, fmt.Errorf("%w: av1 packet with pts %v != dts %v: enhanced rtmp av1 has no composition time",
				ErrMalformed, p.PTS, p.DTS)
		}
	}

	if p.Codec == media.CodecH264 || (p.Codec == media.CodecH265 && legacyHEVC) {
		codecID := byte(codecIDAVC)
		if p.Codec == media.CodecH265 {
			codecID = codecIDHEVC
		}
		packetType := byte(avcPacketNALU)
		if p.IsConfig() {
			packetType = avcPacketSequenceHeader
		}
		dst = append(dst, frameType<<4|codecID, packetType)
		dst = appendSI24(dst, int32(ctsMs))
		return append(dst, p.Payload...), nil
	}

	fourCC := fourCCHEVC
	if p.Codec == media.CodecAV1 {
		fourCC = fourCCAV1
	}
	packetType := byte(exPacketCodedFrames)
	switch {
	case p.IsConfig():
		packetType = exPacketSequenceStart
	case p.Codec == media.CodecH265 && ctsMs == 0:
		packetType = exPacketCodedFramesX // saves the 3 zero bytes of composition time
	}
	dst = append(dst, exHeaderBit|frameType<<4|packetType)
	dst = append(dst, fourCC[:]...)
	if p.Codec == media.CodecH265 && packetType == exPacketCodedFrames {
		dst = appendSI24(dst, int32(ctsMs))
	}
	return append(dst, p.Payload...), nil
}

// si24 reads a big-endian signed 24-bit integer.
func si24(b []byte) int32 {
	return int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8) >> 8
}

func appendSI24(dst []byte, v int32) []byte {
	return append(dst, byte(v>>16), byte(v>>8), byte(v))
}
