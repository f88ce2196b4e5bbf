package fmp4

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/rill-media/rill/sdk/media"
)

// CodecString returns the track's codec as RFC 6381 writes it in an HLS
// CODECS attribute or a DASH @codecs: avc1.PPCCLL from the avcC,
// hvc1.<profile>.<compat>.<tier><level>[.<constraints>] from the hvcC
// (ISO/IEC 14496-15 Annex E), mp4a.40.<object type> from the
// AudioSpecificConfig, opus. It returns "" when the configuration is too
// short to tell.
func (t Track) CodecString() string {
	c := t.Config
	switch t.Codec {
	case media.CodecH264:
		if len(c) < 4 {
			return ""
		}
		return fmt.Sprintf("avc1.%02x%02x%02x", c[1], c[2], c[3])
	case media.CodecH265:
		if len(c) < 13 {
			return ""
		}
		var b strings.Builder
		b.WriteString("hvc1.")
		if space := c[1] >> 6; space > 0 {
			b.WriteByte('A' + space - 1)
		}
		fmt.Fprintf(&b, "%d.", c[1]&0x1f)
		compat := uint32(c[2])<<24 | uint32(c[3])<<16 | uint32(c[4])<<8 | uint32(c[5])
		fmt.Fprintf(&b, "%X.", bits.Reverse32(compat))
		tier := byte('L')
		if c[1]&0x20 != 0 {
			tier = 'H'
		}
		fmt.Fprintf(&b, "%c%d", tier, c[12])
		cons := c[6:12]
		n := len(cons)
		for n > 0 && cons[n-1] == 0 {
			n--
		}
		for _, x := range cons[:n] {
			fmt.Fprintf(&b, ".%X", x)
		}
		return b.String()
	case media.CodecAAC:
		if len(c) < 1 {
			return ""
		}
		aot := int(c[0] >> 3)
		if aot == 31 && len(c) >= 2 {
			aot = 32 + int(c[0]&7)<<3 | int(c[1]>>5)
		}
		return fmt.Sprintf("mp4a.40.%d", aot)
	case media.CodecOpus:
		return "opus"
	}
	return ""
}
