package flv

// Hand-built byte fixtures. Parameter sets marked "lal" are copied from
// lal v0.37.4's avc and hevc tests (read, not imported).

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var (
	// avcSPS720 is a 1280x720 High 3.1 SPS written field by field:
	// profile_idc 100, level_idc 31, sps_id 0, chroma_format_idc 1,
	// bit depths 8, no scaling matrix, log2_max_frame_num 4, poc type 0,
	// log2_max_poc_lsb 6, 4 ref frames, pic_width_in_mbs_minus1 79,
	// pic_height_in_map_units_minus1 44, frame_mbs_only, direct_8x8, no
	// cropping, no VUI, stop bit.
	avcSPS720 = []byte{0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xb9}
	// avcPPS is a PPS (lal goldenPps).
	avcPPS = []byte{0x68, 0xeb, 0xec, 0xb2, 0x2c}
	// avcSPS768x320 is lal's goldenSps: High 3.2, with emulation prevention
	// bytes; lal reads it as 768x320.
	avcSPS768x320 = []byte{0x67, 0x64, 0x00, 0x20, 0xac, 0xd9, 0x40, 0xc0, 0x29, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x18, 0x31, 0x96}
	// avcSPS720x1280 is lal's goldenSps2: a portrait High 3.1 stream.
	avcSPS720x1280 = []byte{0x27, 0x64, 0x00, 0x1f, 0xac, 0x56, 0x80, 0xb4, 0x0a, 0x19}

	// avcConfig720 is an AVCDecoderConfigurationRecord with avcSPS720 and
	// avcPPS.
	avcConfig720 = cat(
		[]byte{0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, byte(len(avcSPS720))}, avcSPS720,
		[]byte{0x01, 0x00, byte(len(avcPPS))}, avcPPS,
	)
	// avcSeqHeaderTag is the legacy FLV video tag body carrying avcConfig720.
	avcSeqHeaderTag = cat([]byte{0x17, 0x00, 0x00, 0x00, 0x00}, avcConfig720)

	// avcIDR is an AVCC payload: an AUD and a (truncated) IDR slice.
	avcIDR = []byte{0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33}
	// avcP is an AVCC payload with one non-IDR slice.
	avcP = []byte{0, 0, 0, 4, 0x41, 0x9a, 0x02, 0x04}

	// hevcVPS, hevcSPS and hevcPPS are lal's goldenVps2, goldenSps2 and
	// goldenPps2: Main profile, level 2.1, 640x368 coded with a conformance
	// window that crops it to 640x360.
	hevcVPS = []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0xba, 0x02, 0x40}
	hevcSPS = []byte{0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0xa0, 0x05, 0x02, 0x01, 0x71, 0xf2, 0xe5, 0xba, 0x4a, 0x4c, 0x2f, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x0f, 0x08}
	hevcPPS = []byte{0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89}

	// hevcConfig is an HEVCDecoderConfigurationRecord with one VPS, SPS and
	// PPS array (the header fields as in lal's goldenSh2).
	hevcConfig = cat(
		[]byte{
			0x01,                   // configurationVersion
			0x01,                   // profile space, tier, general_profile_idc 1
			0x60, 0x00, 0x00, 0x00, // general_profile_compatibility_flags
			0x90, 0x00, 0x00, 0x00, 0x00, 0x00, // general_constraint_indicator_flags
			0x3f,       // general_level_idc 63
			0xf0, 0x00, // min_spatial_segmentation_idc
			0xfc,       // parallelismType
			0xfd,       // chromaFormat 1
			0xf8,       // bitDepthLumaMinus8
			0xf8,       // bitDepthChromaMinus8
			0x00, 0x00, // avgFrameRate
			0x0f, // numTemporalLayers 1, temporalIdNested, lengthSizeMinusOne 3
			0x03, // numOfArrays
		},
		[]byte{0x20, 0x00, 0x01, 0x00, byte(len(hevcVPS))}, hevcVPS,
		[]byte{0x21, 0x00, 0x01, 0x00, byte(len(hevcSPS))}, hevcSPS,
		[]byte{0x22, 0x00, 0x01, 0x00, byte(len(hevcPPS))}, hevcPPS,
	)
	// hevcIDR is an HVCC payload with one IDR_W_RADL slice (type 19).
	hevcIDR = []byte{0, 0, 0, 5, 0x26, 0x01, 0xaf, 0x06, 0xb8}
	// hevcTrail is an HVCC payload with one TRAIL_R slice.
	hevcTrail = []byte{0, 0, 0, 4, 0x02, 0x01, 0xd0, 0x09}

	// av1Config is an AV1CodecConfigurationRecord: main profile, level 4.0
	// (seq_level_idx 8), 4:2:0, with a sequence header OBU in configOBUs.
	av1Config = []byte{0x81, 0x08, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x24, 0xcf, 0x7f, 0x0d, 0xbf, 0xff, 0x30, 0x08}
	// av1Frame is a temporal delimiter OBU and a frame OBU of 5 bytes.
	av1Frame = []byte{0x12, 0x00, 0x32, 0x05, 0x10, 0x00, 0x00, 0x00, 0x01}

	// aacLC is the AudioSpecificConfig of AAC-LC, 44.1 kHz, stereo.
	aacLC = []byte{0x12, 0x10}
	// aacHE is explicit HE-AAC: 22.05 kHz core, 44.1 kHz SBR, stereo.
	aacHE = []byte{0x2b, 0x92, 0x08}
	// aacHEv2 is explicit HE-AACv2: 24 kHz mono core, 48 kHz with PS.
	aacHEv2 = []byte{0xeb, 0x09, 0x88}
	// aacEscape uses object type escape 31 (USAC, 42), 48 kHz, stereo.
	aacEscape = []byte{0xf9, 0x46, 0x40}
	// aacExplicitRate is AAC-LC at an explicit 16000 Hz, mono.
	aacExplicitRate = []byte{0x17, 0x80, 0x1f, 0x40, 0x08}
	// aacFrame is a raw AAC frame.
	aacFrame = []byte{0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}

	// opusIDHeader is an Opus ID header: version 1, stereo, pre-skip 312,
	// 48 kHz input, gain 0, mapping family 0.
	opusIDHeader = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 0x01, 0x02, 0x38, 0x01, 0x80, 0xbb, 0x00, 0x00, 0x00, 0x00, 0x00}
	// opusFrame is an Opus packet (TOC byte and data).
	opusFrame = []byte{0xfc, 0xff, 0xfe}

	// mp3Frame44 starts with an MPEG-1 Layer III header, 44.1 kHz, joint
	// stereo; mp3Frame22Mono with an MPEG-2 one, 22.05 kHz, mono; and
	// mp3Frame8 with an MPEG-2.5 one, 8 kHz, stereo.
	mp3Frame44     = []byte{0xff, 0xfb, 0x90, 0x64, 0x00, 0x00}
	mp3Frame22Mono = []byte{0xff, 0xf3, 0x80, 0xc4, 0x00, 0x00}
	mp3Frame8      = []byte{0xff, 0xe3, 0x88, 0x04, 0x00}

	// g711Frame is 8 G.711 samples.
	g711Frame = []byte{0xd5, 0xd5, 0x55, 0x55, 0xd5, 0xd5, 0x55, 0x55}
)

// amf0Str encodes an AMF0 string value.
func amf0Str(s string) []byte {
	return cat([]byte{0x02, byte(len(s) >> 8), byte(len(s))}, []byte(s))
}

// amf0Key encodes an AMF0 property name.
func amf0Key(s string) []byte {
	return cat([]byte{byte(len(s) >> 8), byte(len(s))}, []byte(s))
}

var (
	amf0Num1280 = []byte{0x00, 0x40, 0x94, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00} // 1280.0
	amf0Num720  = []byte{0x00, 0x40, 0x86, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00} // 720.0
	amf0True    = []byte{0x01, 0x01}
	amf0End     = []byte{0x00, 0x00, 0x09}

	// onMetaData is what a player receives: onMetaData and an ECMA array.
	onMetaData = cat(
		amf0Str("onMetaData"),
		[]byte{0x08, 0x00, 0x00, 0x00, 0x04},
		amf0Key("width"), amf0Num1280,
		amf0Key("height"), amf0Num720,
		amf0Key("stereo"), amf0True,
		amf0Key("encoder"), amf0Str("obs-output module (libobs version 30.0.0)"),
		amf0End,
	)
	// setDataFrameMetaData is what a publisher sends.
	setDataFrameMetaData = cat(amf0Str("@setDataFrame"), onMetaData)
)
