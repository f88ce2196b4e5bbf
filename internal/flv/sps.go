package flv

import (
	"bytes"
	"fmt"
)

// maxDimension bounds the picture sizes VideoInfo reports; larger values come
// from crafted parameter sets (docs/THREATS.md row 10).
const maxDimension = 16384

// videoParams is what VideoInfo reports from a sequence parameter set.
type videoParams struct {
	width, height  int
	profile, level string
}

// unescapeRBSP removes emulation prevention bytes (00 00 03 -> 00 00,
// H.264 §7.4.1) from a NAL unit. It returns nal itself if there are none.
func unescapeRBSP(nal []byte) []byte {
	if !bytes.Contains(nal, []byte{0, 0, 3}) {
		return nal
	}
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// parseAVCSPS reads the picture size, profile and level from an H.264
// sequence parameter set NAL unit (ITU-T H.264 §7.3.2.1.1).
//
// lal's avc.ParseSps is not used: it writes debug and error lines to
// standard output through lal's global logger (which would corrupt the
// go-plugin handshake channel of a plugin process) and panics on a crafted
// five-byte SPS whose last bit ends an Exp-Golomb code.
func parseAVCSPS(nal []byte) (videoParams, error) {
	if len(nal) < 4 {
		return videoParams{}, malformed("h264 sps: %d bytes, want at least 4", len(nal))
	}
	if t := nal[0] & 0x1f; t != 7 {
		return videoParams{}, malformed("h264 sps: nal unit type %d, want 7", t)
	}
	r := bitReader{b: unescapeRBSP(nal[1:])}
	profileIdc := r.u(8)
	constraints := r.u(8)
	levelIdc := r.u(8)
	if r.ue() > 31 {
		return videoParams{}, malformed("h264 sps: seq_parameter_set_id out of range")
	}
	chromaFormatIdc := uint32(1)
	separateColourPlane := false
	switch profileIdc {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chromaFormatIdc = r.ue()
		if chromaFormatIdc > 3 {
			return videoParams{}, malformed("h264 sps: chroma_format_idc %d", chromaFormatIdc)
		}
		if chromaFormatIdc == 3 {
			separateColourPlane = r.flag()
		}
		r.ue()        // bit_depth_luma_minus8
		r.ue()        // bit_depth_chroma_minus8
		r.skip(1)     // qpprime_y_zero_transform_bypass_flag
		if r.flag() { // seq_scaling_matrix_present_flag
			lists := 8
			if chromaFormatIdc == 3 {
				lists = 12
			}
			for i := 0; i < lists && r.err == nil; i++ {
				if !r.flag() { // seq_scaling_list_present_flag
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for j := 0; j < size && r.err == nil; j++ {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue() // log2_max_frame_num_minus4
	switch pocType := r.ue(); pocType {
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.skip(1) // delta_pic_order_always_zero_flag
		r.se()    // offset_for_non_ref_pic
		r.se()    // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return videoParams{}, malformed("h264 sps: num_ref_frames_in_pic_order_cnt_cycle %d", n)
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.se()
		}
	case 2:
	default:
		if r.err == nil {
			return videoParams{}, malformed("h264 sps: pic_order_cnt_type %d", pocType)
		}
	}
	r.ue()    // max_num_ref_frames
	r.skip(1) // gaps_in_frame_num_value_allowed_flag
	widthMbs := int64(r.ue()) + 1
	heightUnits := int64(r.ue()) + 1
	frameMbsOnly := int64(r.u(1))
	if frameMbsOnly == 0 {
		r.skip(1) // mb_adaptive_frame_field_flag
	}
	r.skip(1) // direct_8x8_inference_flag
	var cropLeft, cropRight, cropTop, cropBottom int64
	if r.flag() {
		cropLeft, cropRight = int64(r.ue()), int64(r.ue())
		cropTop, cropBottom = int64(r.ue()), int64(r.ue())
	}
	if r.err != nil {
		return videoParams{}, malformed("h264 sps: %v", r.err)
	}

	// Crop units, H.264 §7.4.2.1.1 (frame_crop_*_offset semantics).
	cropX, cropY := int64(1), 2-frameMbsOnly
	if !separateColourPlane && chromaFormatIdc != 0 {
		subWidthC, subHeightC := int64(2), int64(2)
		switch chromaFormatIdc {
		case 2:
			subHeightC = 1
		case 3:
			subWidthC, subHeightC = 1, 1
		}
		cropX, cropY = subWidthC, subHeightC*(2-frameMbsOnly)
	}
	width := widthMbs*16 - cropX*(cropLeft+cropRight)
	height := (2-frameMbsOnly)*heightUnits*16 - cropY*(cropTop+cropBottom)
	if width <= 0 || height <= 0 || width > maxDimension || height > maxDimension {
		return videoParams{}, malformed("h264 sps: picture size %dx%d", width, height)
	}
	return videoParams{
		width:   int(width),
		height:  int(height),
		profile: avcProfile(profileIdc, constraints),
		level:   avcLevel(profileIdc, constraints, levelIdc),
	}, nil
}

// avcProfile names an H.264 profile (H.264 Annex A.2).
func avcProfile(idc, constraints uint32) string {
	switch idc {
	case 66:
		if constraints&0x40 != 0 { // constraint_set1_flag
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	}
	return fmt.Sprintf("profile_idc %d", idc)
}

// avcLevel formats an H.264 level_idc: 31 -> "3.1", 40 -> "4", and level 1b
// (level_idc 11 with constraint_set3_flag in Baseline, Main and Extended, or
// level_idc 9).
func avcLevel(profile, constraints, idc uint32) string {
	if idc == 9 || (idc == 11 && constraints&0x10 != 0 && (profile == 66 || profile == 77 || profile == 88)) {
		return "1b"
	}
	if idc%10 == 0 {
		return fmt.Sprint(idc / 10)
	}
	return fmt.Sprintf("%d.%d", idc/10, idc%10)
}

// parseHEVCSPS reads the picture size (after the conformance window),
// profile and level from an H.265 sequence parameter set NAL unit (ITU-T
// H.265 §7.3.2.2.1, profile_tier_level §7.3.3).
//
// lal's hevc.ParseSps is not used: it ignores the conformance window (its
// own test SPS, a 640x360 stream coded as 640x368, reads as 640x368) and its
// bit reader panics when a zero-bit read lands exactly at the end of the
// buffer.
func parseHEVCSPS(nal []byte) (videoParams, error) {
	if len(nal) < 3 {
		return videoParams{}, malformed("h265 sps: %d bytes, want at least 3", len(nal))
	}
	if t := nal[0] >> 1 & 0x3f; t != hevcNALUSPS {
		return videoParams{}, malformed("h265 sps: nal unit type %d, want %d", t, hevcNALUSPS)
	}
	r := bitReader{b: unescapeRBSP(nal[2:])}
	r.skip(4) // sps_video_parameter_set_id
	maxSubLayersMinus1 := int(r.u(3))
	r.skip(1) // sps_temporal_id_nesting_flag

	// profile_tier_level(1, sps_max_sub_layers_minus1)
	r.skip(2) // general_profile_space
	r.skip(1) // general_tier_flag
	profileIdc := uint8(r.u(5))
	r.skip(32 + 48) // general_profile_compatibility_flags, constraint flags
	levelIdc := uint8(r.u(8))
	var profilePresent, levelPresent [8]bool
	for i := 0; i < maxSubLayersMinus1; i++ {
		profilePresent[i] = r.flag()
		levelPresent[i] = r.flag()
	}
	if maxSubLayersMinus1 > 0 {
		r.skip(2 * (8 - maxSubLayersMinus1)) // reserved_zero_2bits
	}
	for i := 0; i < maxSubLayersMinus1; i++ {
		if profilePresent[i] {
			r.skip(88)
		}
		if levelPresent[i] {
			r.skip(8)
		}
	}

	if r.ue() > 15 {
		return videoParams{}, malformed("h265 sps: sps_seq_parameter_set_id out of range")
	}
	chromaFormatIdc := r.ue()
	if chromaFormatIdc > 3 {
		return videoParams{}, malformed("h265 sps: chroma_format_idc %d", chromaFormatIdc)
	}
	separateColourPlane := false
	if chromaFormatIdc == 3 {
		separateColourPlane = r.flag()
	}
	width, height := int64(r.ue()), int64(r.ue())
	var left, right, top, bottom int64
	if r.flag() { // conformance_window_flag
		left, right = int64(r.ue()), int64(r.ue())
		top, bottom = int64(r.ue()), int64(r.ue())
	}
	if r.err != nil {
		return videoParams{}, malformed("h265 sps: %v", r.err)
	}
	// SubWidthC and SubHeightC, H.265 Table 6-1.
	subW, subH := int64(1), int64(1)
	if !separateColourPlane {
		switch chromaFormatIdc {
		case 1:
			subW, subH = 2, 2
		case 2:
			subW = 2
		}
	}
	width -= subW * (left + right)
	height -= subH * (top + bottom)
	if width <= 0 || height <= 0 || width > maxDimension || height > maxDimension {
		return videoParams{}, malformed("h265 sps: picture size %dx%d", width, height)
	}
	return videoParams{
		width:   int(width),
		height:  int(height),
		profile: hevcProfile(profileIdc),
		level:   hevcLevel(levelIdc),
	}, nil
}

// hevcProfile names an H.265 general_profile_idc (H.265 Annex A.3).
func hevcProfile(idc uint8) string {
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Range Extensions"
	case 5:
		return "High Throughput"
	case 9:
		return "Screen Content Coding"
	}
	return fmt.Sprintf("general_profile_idc %d", idc)
}

// hevcLevel formats an H.265 general_level_idc, which is 30 times the level:
// 93 -> "3.1", 120 -> "4".
func hevcLevel(idc uint8) string {
	major, minor := idc/30, idc%30/3
	if minor == 0 {
		return fmt.Sprint(major)
	}
	return fmt.Sprintf("%d.%d", major, minor)
}
