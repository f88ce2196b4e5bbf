package flv

import (
	"fmt"

	"github.com/rill-media/rill/sdk/media"
)

// VideoInfo reads the picture size, profile and level from an H.264 or H.265
// configuration packet (the first SPS of its decoder configuration record),
// such as FromTag returns for a sequence header. Profile and level are
// human-readable, e.g. "High" and "3.1". AV1 returns ErrUnsupportedCodec.
// VideoInfo never panics on crafted parameter sets and rejects picture
// sizes above 16384.
func VideoInfo(config media.Packet) (width, height int, profile, level string, err error) {
	if config.Kind != media.KindVideo || !config.IsConfig() {
		return 0, 0, "", "", fmt.Errorf("%w: video info from a %v %v packet, want a video config packet",
			ErrMalformed, config.Kind, config.Flags)
	}
	var v videoParams
	switch config.Codec {
	case media.CodecH264:
		sps, err := avcConfigSPS(config.Payload)
		if err != nil {
			return 0, 0, "", "", err
		}
		v, err = parseAVCSPS(sps)
		if err != nil {
			return 0, 0, "", "", err
		}
	case media.CodecH265:
		sps, err := hevcConfigNALU(config.Payload, hevcNALUSPS)
		if err != nil {
			return 0, 0, "", "", err
		}
		v, err = parseHEVCSPS(sps)
		if err != nil {
			return 0, 0, "", "", err
		}
	default:
		return 0, 0, "", "", fmt.Errorf("%w: video info for %v", ErrUnsupportedCodec, config.Codec)
	}
	return v.width, v.height, v.profile, v.level, nil
}

// AudioInfo reads the sample rate, channel count and profile from an AAC
// configuration packet (its AudioSpecificConfig; profile is e.g. "LC",
// "HE-AAC") or an Opus one (its ID header; the rate is Opus's 48000 and the
// profile empty). A channel count of 0 means the AAC program config element
// defines the channels. Other codecs return ErrUnsupportedCodec.
func AudioInfo(config media.Packet) (sampleRate, channels int, profile string, err error) {
	if config.Kind != media.KindAudio || !config.IsConfig() {
		return 0, 0, "", fmt.Errorf("%w: audio info from a %v %v packet, want an audio config packet",
			ErrMalformed, config.Kind, config.Flags)
	}
	switch config.Codec {
	case media.CodecAAC:
		a, err := parseASC(config.Payload)
		if err != nil {
			return 0, 0, "", err
		}
		return a.sampleRate, a.channels, aacProfile(a.objectType), nil
	case media.CodecOpus:
		h, err := parseOpusHead(config.Payload)
		if err != nil {
			return 0, 0, "", err
		}
		return 48000, h.channels, "", nil
	}
	return 0, 0, "", fmt.Errorf("%w: audio info for %v", ErrUnsupportedCodec, config.Codec)
}
