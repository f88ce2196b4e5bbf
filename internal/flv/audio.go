package flv

import (
	"fmt"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// Legacy FLV audio (video_file_format_spec_v10_1 §E.4.2.1) and Enhanced RTMP
// v2 audio ("ExAudioTagHeader").
const (
	soundFormatMP3     = 2
	soundFormatG711A   = 7
	soundFormatG711U   = 8
	soundFormatExHdr   = 9 // Enhanced RTMP: the low nibble is an AudioPacketType
	soundFormatAAC     = 10
	soundFormatMP38kHz = 14

	aacPacketSequenceHeader = 0
	aacPacketRaw            = 1

	exAudioSequenceStart      = 0
	exAudioCodedFrames        = 1
	exAudioSequenceEnd        = 2
	exAudioMultichannelConfig = 4
	exAudioMultitrack         = 5
	exAudioModEx              = 7

	// AAC tags always say 44 kHz, 16-bit, stereo; the AudioSpecificConfig
	// has the real parameters.
	aacHeaderByte = soundFormatAAC<<4 | 3<<2 | 1<<1 | 1
	// G.711: rate bits 0 (FFmpeg's "special" rate, meaning 8 kHz), 16-bit
	// (decoded sample size), mono.
	g711AHeaderByte = soundFormatG711A<<4 | 1<<1
	g711UHeaderByte = soundFormatG711U<<4 | 1<<1
)

var (
	fourCCOpus = [4]byte{'O', 'p', 'u', 's'}
	fourCCAAC  = [4]byte{'m', 'p', '4', 'a'}
	fourCCMP3  = [4]byte{'.', 'm', 'p', '3'}
)

func audioFromTag(dts time.Duration, body []byte) (media.Packet, error) {
	switch format := body[0] >> 4; format {
	case soundFormatAAC:
		if len(body) < 2 {
			return media.Packet{}, malformed("aac audio tag header is %d bytes, want 2", len(body))
		}
		switch body[1] {
		case aacPacketSequenceHeader:
			return audioPacket(media.CodecAAC, true, dts, body[2:])
		case aacPacketRaw:
			return audioPacket(media.CodecAAC, false, dts, body[2:])
		}
		return media.Packet{}, malformed("aac packet type %d", body[1])
	case soundFormatMP3, soundFormatMP38kHz:
		return audioPacket(media.CodecMP3, false, dts, body[1:])
	case soundFormatG711A:
		return audioPacket(media.CodecG711A, false, dts, body[1:])
	case soundFormatG711U:
		return audioPacket(media.CodecG711U, false, dts, body[1:])
	case soundFormatExHdr:
		return exAudioFromTag(dts, body)
	default:
		return media.Packet{}, fmt.Errorf("%w: sound format %d", ErrUnsupportedCodec, format)
	}
}

func exAudioFromTag(dts time.Duration, body []byte) (media.Packet, error) {
	packetType := body[0] & 0x0f
	switch packetType {
	case exAudioMultitrack, exAudioModEx:
		return media.Packet{}, fmt.Errorf("%w enhanced audio packet type %d", ErrUnsupported, packetType)
	}
	if len(body) < 5 {
		return media.Packet{}, malformed("enhanced audio tag header is %d bytes, want 5", len(body))
	}
	var codec media.Codec
	switch [4]byte(body[1:5]) {
	case fourCCOpus:
		codec = media.CodecOpus
	case fourCCAAC:
		codec = media.CodecAAC
	case fourCCMP3:
		codec = media.CodecMP3
	default:
		return media.Packet{}, fmt.Errorf("%w: audio fourcc %q", ErrUnsupportedCodec, body[1:5])
	}
	switch packetType {
	case exAudioSequenceStart:
		if codec == media.CodecMP3 { // MP3 has no decoder configuration
			return media.Packet{}, ErrSkip
		}
		return audioPacket(codec, true, dts, body[5:])
	case exAudioCodedFrames:
		return audioPacket(codec, false, dts, body[5:])
	case exAudioSequenceEnd, exAudioMultichannelConfig:
		return media.Packet{}, ErrSkip
	}
	return media.Packet{}, fmt.Errorf("%w enhanced audio packet type %d", ErrUnsupported, packetType)
}

func audioPacket(codec media.Codec, config bool, dts time.Duration, payload []byte) (media.Packet, error) {
	if err := checkPayload(codec, config, payload); err != nil {
		return media.Packet{}, err
	}
	p := media.Packet{Kind: media.KindAudio, Codec: codec, DTS: dts, PTS: dts, Payload: payload}
	if config {
		p.Flags = media.FlagConfig
	}
	return p, nil
}

// appendAudio writes an audio tag body for a validated packet.
func appendAudio(dst []byte, p media.Packet) ([]byte, error) {
	switch p.Codec {
	case media.CodecAAC:
		packetType := byte(aacPacketRaw)
		if p.IsConfig() {
			packetType = aacPacketSequenceHeader
		}
		dst = append(dst, aacHeaderByte, packetType)
	case media.CodecMP3:
		dst = append(dst, mp3HeaderByte(p.Payload))
	case media.CodecG711A:
		dst = append(dst, g711AHeaderByte)
	case media.CodecG711U:
		dst = append(dst, g711UHeaderByte)
	case media.CodecOpus:
		packetType := byte(exAudioCodedFrames)
		if p.IsConfig() {
			packetType = exAudioSequenceStart
		}
		dst = append(dst, soundFormatExHdr<<4|packetType)
		dst = append(dst, fourCCOpus[:]...)
	}
	return append(dst, p.Payload...), nil
}

// mp3HeaderByte derives the FLV rate and channel bits from the MPEG audio
// frame header at the start of frame (ISO/IEC 11172-3 §2.4.1.3), falling back
// to 44 kHz stereo. FLV has only 5.5/11/22/44 kHz, so the MPEG-1 rates map to
// 44 kHz, MPEG-2 to 22 kHz and MPEG-2.5 to 11 kHz, as FFmpeg does; decoders
// take the real rate from the frame header.
func mp3HeaderByte(frame []byte) byte {
	rate, stereo := byte(3), byte(1)
	if len(frame) >= 4 && frame[0] == 0xff && frame[1]&0xe0 == 0xe0 {
		switch frame[1] >> 3 & 0x03 {
		case 0: // MPEG-2.5
			rate = 1
		case 2: // MPEG-2
			rate = 2
		}
		if frame[3]>>6 == 3 { // single channel
			stereo = 0
		}
	}
	return soundFormatMP3<<4 | rate<<2 | 1<<1 | stereo
}
