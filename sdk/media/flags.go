package media

import (
	"strconv"
	"strings"
)

// Flags qualify a packet.
type Flags uint32

// The packet flags.
const (
	// FlagKey marks a video random access point (an IDR/IRAP picture, an AV1
	// key frame): a decoder given the current configuration can start here.
	// It is not set on audio or data packets.
	FlagKey Flags = 1 << 0
	// FlagConfig marks a decoder configuration packet: its payload is the
	// codec's configuration record (AVCDecoderConfigurationRecord,
	// HEVCDecoderConfigurationRecord, AV1CodecConfigurationRecord,
	// AudioSpecificConfig, Opus ID header), not a frame.
	FlagConfig Flags = 1 << 1
)

// String returns the set flags joined by "|" ("key", "config", "key|config"),
// unknown bits in hex, or "0" when no flag is set.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var parts []string
	if f&FlagKey != 0 {
		parts = append(parts, "key")
	}
	if f&FlagConfig != 0 {
		parts = append(parts, "config")
	}
	if rest := f &^ (FlagKey | FlagConfig); rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(parts, "|")
}
