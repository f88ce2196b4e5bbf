package fmp4

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rill-media/rill/sdk/media"
)

// Sample is one access unit of a fragment, timed in its track's timescale.
type Sample struct {
	Duration uint32
	// CTO is the composition time offset PTS-DTS.
	CTO int32
	// Key marks a sync sample (a video random access point). Audio samples
	// are always sync samples.
	Key  bool
	Data []byte
}

// TrackFragment is the samples of one track in a fragment.
type TrackFragment struct {
	Track *Track
	// BaseTime is the decode time of the first sample (tfdt), in the
	// track's timescale, counted from the start of the file.
	BaseTime uint64
	Samples  []Sample
}

// Sample flags (§8.8.3.1): sample_depends_on=2 for sync samples;
// sample_depends_on=1 and sample_is_non_sync_sample for the others.
const (
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// trun flags (§8.8.8.1).
const (
	trunDataOffset = 0x000001
	trunDuration   = 0x000100
	trunSize       = 0x000200
	trunFlags      = 0x000400
	trunCTO        = 0x000800
)

// tfhdDefaultBaseIsMoof makes data offsets relative to the moof (§8.8.7.1).
const tfhdDefaultBaseIsMoof = 0x020000

// AppendFragment appends one fragment to dst: a moof with a traf per track
// fragment (tfhd, tfdt, trun) and an mdat with their samples, in the order
// given. seq is the fragment's sequence number, starting at 1 and
// increasing. Track fragments without samples are left out.
func AppendFragment(dst []byte, seq uint32, trafs []TrackFragment) ([]byte, error) {
	var total uint64
	for _, tf := range trafs {
		if tf.Track == nil {
			return dst, fmt.Errorf("fmp4: track fragment without a track")
		}
		for _, s := range tf.Samples {
			total += uint64(len(s.Data))
		}
	}
	mdatHeader := uint64(8)
	if total+8 > math.MaxUint32 {
		mdatHeader = 16
	}
	moofStart := len(dst)
	var offsets []int // positions of the trun data_offset fields
	out := box(dst, "moof", func(b []byte) []byte {
		b = fullBox(b, "mfhd", 0, 0, func(b []byte) []byte { return u32(b, seq) })
		for _, tf := range trafs {
			if len(tf.Samples) == 0 {
				continue
			}
			b = box(b, "traf", func(b []byte) []byte {
				b = fullBox(b, "tfhd", 0, tfhdDefaultBaseIsMoof, func(b []byte) []byte { return u32(b, tf.Track.ID) })
				b = fullBox(b, "tfdt", 1, 0, func(b []byte) []byte { return u64(b, tf.BaseTime) })
				return fullBox(b, "trun", 1, trunDataOffset|trunDuration|trunSize|trunFlags|trunCTO, func(b []byte) []byte {
					b = u32(b, uint32(len(tf.Samples)))
					offsets = append(offsets, len(b))
					b = u32(b, 0) // data_offset, patched below
					for _, s := range tf.Samples {
						b = u32(b, s.Duration)
						b = u32(b, uint32(len(s.Data)))
						if s.Key || tf.Track.Kind() != media.KindVideo { // audio: every sample syncs
							b = u32(b, flagsSync)
						} else {
							b = u32(b, flagsNonSync)
						}
						b = u32(b, uint32(s.CTO)) // version 1: signed
					}
					return b
				})
			})
		}
		return b
	})
	moofSize := uint64(len(out) - moofStart)
	off := moofSize + mdatHeader
	i := 0
	for _, tf := range trafs {
		if len(tf.Samples) == 0 {
			continue
		}
		if off > math.MaxInt32 {
			return dst, fmt.Errorf("fmp4: fragment of %d bytes is too large", total)
		}
		binary.BigEndian.PutUint32(out[offsets[i]:], uint32(off))
		i++
		for _, s := range tf.Samples {
			off += uint64(len(s.Data))
		}
	}
	if mdatHeader == 16 {
		out = u32(out, 1)
		out = append(out, "mdat"...)
		out = u64(out, total+16)
	} else {
		out = u32(out, uint32(total+8))
		out = append(out, "mdat"...)
	}
	for _, tf := range trafs {
		for _, s := range tf.Samples {
			out = append(out, s.Data...)
		}
	}
	return out, nil
}
