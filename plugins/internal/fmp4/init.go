package fmp4

import (
	"fmt"

	"github.com/rill-media/rill/sdk/media"
)

// movieTimescale is the timescale of mvhd (ms), used only for durations.
const movieTimescale = 1000

// AppendInit appends the initialization segment for tracks to dst: ftyp and
// a moov whose sample tables are empty and whose mvex announces fragments
// (§8.8.1). Track ids must be unique and non-zero. On error dst is returned
// unchanged.
func AppendInit(dst []byte, tracks []Track) ([]byte, error) {
	if len(tracks) == 0 {
		return dst, fmt.Errorf("fmp4: init segment without tracks")
	}
	next := uint32(1)
	seen := map[uint32]bool{}
	for _, t := range tracks {
		if t.ID == 0 || seen[t.ID] {
			return dst, fmt.Errorf("fmp4: track id %d is zero or repeated", t.ID)
		}
		if t.Timescale == 0 {
			return dst, fmt.Errorf("fmp4: track %d has no timescale", t.ID)
		}
		seen[t.ID] = true
		next = max(next, t.ID+1)
	}
	out := box(dst, "ftyp", func(b []byte) []byte {
		b = append(b, "iso5"...)
		b = u32(b, 512)
		return append(b, "iso5iso6mp41"...)
	})
	var err error
	out = box(out, "moov", func(b []byte) []byte {
		b = fullBox(b, "mvhd", 0, 0, func(b []byte) []byte {
			b = u32(b, 0) // creation_time
			b = u32(b, 0) // modification_time
			b = u32(b, movieTimescale)
			b = u32(b, 0)          // duration: given by the fragments
			b = u32(b, 0x00010000) // rate 1.0
			b = u16(b, 0x0100)     // volume 1.0
			b = zeros(b, 2+8)      // reserved
			b = matrix(b)
			b = zeros(b, 24) // pre_defined
			return u32(b, next)
		})
		for _, t := range tracks {
			if b, err = appendTrak(b, t); err != nil {
				return b
			}
		}
		return box(b, "mvex", func(b []byte) []byte {
			for _, t := range tracks {
				b = fullBox(b, "trex", 0, 0, func(b []byte) []byte {
					b = u32(b, t.ID)
					b = u32(b, 1) // default_sample_description_index
					b = u32(b, 0) // default_sample_duration
					b = u32(b, 0) // default_sample_size
					return u32(b, 0)
				})
			}
			return b
		})
	})
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendTrak(dst []byte, t Track) ([]byte, error) {
	var err error
	out := box(dst, "trak", func(b []byte) []byte {
		b = fullBox(b, "tkhd", 0, 3, func(b []byte) []byte { // enabled | in_movie
			b = u32(b, 0) // creation_time
			b = u32(b, 0) // modification_time
			b = u32(b, t.ID)
			b = u32(b, 0) // reserved
			b = u32(b, 0) // duration
			b = zeros(b, 8)
			b = u16(b, 0) // layer
			b = u16(b, 0) // alternate_group
			if t.Kind() == media.KindAudio {
				b = u16(b, 0x0100)
			} else {
				b = u16(b, 0)
			}
			b = u16(b, 0) // reserved
			b = matrix(b)
			b = u32(b, uint32(t.Width)<<16)
			return u32(b, uint32(t.Height)<<16)
		})
		b = box(b, "mdia", func(b []byte) []byte {
			b = fullBox(b, "mdhd", 0, 0, func(b []byte) []byte {
				b = u32(b, 0)
				b = u32(b, 0)
				b = u32(b, t.Timescale)
				b = u32(b, 0)
				b = u16(b, 0x55c4) // ISO 639-2 "und"
				return u16(b, 0)
			})
			handler, name := "vide", "VideoHandler"
			if t.Kind() == media.KindAudio {
				handler, name = "soun", "SoundHandler"
			}
			b = fullBox(b, "hdlr", 0, 0, func(b []byte) []byte {
				b = u32(b, 0)
				b = append(b, handler...)
				b = zeros(b, 12)
				b = append(b, name...)
				return append(b, 0)
			})
			return box(b, "minf", func(b []byte) []byte {
				if t.Kind() == media.KindAudio {
					b = fullBox(b, "smhd", 0, 0, func(b []byte) []byte { return zeros(b, 4) })
				} else {
					b = fullBox(b, "vmhd", 0, 1, func(b []byte) []byte { return zeros(b, 8) })
				}
				b = box(b, "dinf", func(b []byte) []byte {
					return fullBox(b, "dref", 0, 0, func(b []byte) []byte {
						b = u32(b, 1)
						return fullBox(b, "url ", 0, 1, func(b []byte) []byte { return b }) // self-contained
					})
				})
				return box(b, "stbl", func(b []byte) []byte {
					b = fullBox(b, "stsd", 0, 0, func(b []byte) []byte {
						b = u32(b, 1)
						b, err = appendSampleEntry(b, t)
						return b
					})
					b = fullBox(b, "stts", 0, 0, func(b []byte) []byte { return u32(b, 0) })
					b = fullBox(b, "stsc", 0, 0, func(b []byte) []byte { return u32(b, 0) })
					b = fullBox(b, "stsz", 0, 0, func(b []byte) []byte { return u32(u32(b, 0), 0) })
					return fullBox(b, "stco", 0, 0, func(b []byte) []byte { return u32(b, 0) })
				})
			})
		})
		return b
	})
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendSampleEntry(dst []byte, t Track) ([]byte, error) {
	switch t.Codec {
	case media.CodecH264:
		return visualEntry(dst, "avc1", "avcC", t), nil
	case media.CodecH265:
		return visualEntry(dst, "hvc1", "hvcC", t), nil
	case media.CodecAAC:
		return audioEntry(dst, "mp4a", t, func(b []byte) []byte { return esds(b, t.ID, 0x40, t.Config) }), nil
	case media.CodecOpus:
		h, err := parseOpusHead(t.Config)
		if err != nil {
			return dst, err
		}
		return audioEntry(dst, "Opus", t, func(b []byte) []byte {
			return box(b, "dOps", func(b []byte) []byte {
				b = append(b, 0, h.channels) // Version, OutputChannelCount
				b = u16(b, h.preSkip)
				b = u32(b, h.inputRate)
				b = u16(b, uint16(h.gain))
				b = append(b, h.mappingFamily)
				return append(b, h.mapping...)
			})
		}), nil
	}
	return dst, fmt.Errorf("%w %v", ErrUnsupportedCodec, t.Codec)
}

// visualEntry appends a VisualSampleEntry (§12.1.3) with its configuration box.
func visualEntry(dst []byte, typ, cfgType string, t Track) []byte {
	return box(dst, typ, func(b []byte) []byte {
		b = zeros(b, 6)
		b = u16(b, 1) // data_reference_index
		b = zeros(b, 16)
		b = u16(b, uint16(t.Width))
		b = u16(b, uint16(t.Height))
		b = u32(b, 0x00480000) // 72 dpi
		b = u32(b, 0x00480000)
		b = u32(b, 0)
		b = u16(b, 1)      // frame_count
		b = zeros(b, 32)   // compressorname
		b = u16(b, 0x18)   // depth
		b = u16(b, 0xffff) // pre_defined = -1
		return box(b, cfgType, func(b []byte) []byte { return append(b, t.Config...) })
	})
}

// audioEntry appends an AudioSampleEntry (§12.2.3) with its configuration box.
func audioEntry(dst []byte, typ string, t Track, cfg func([]byte) []byte) []byte {
	return box(dst, typ, func(b []byte) []byte {
		b = zeros(b, 6)
		b = u16(b, 1) // data_reference_index
		b = zeros(b, 8)
		b = u16(b, uint16(t.Channels))
		b = u16(b, 16) // samplesize
		b = zeros(b, 4)
		rate := uint32(t.SampleRate)
		if rate > 0xffff {
			rate = 0 // does not fit 16.16; the decoder config has it
		}
		b = u32(b, rate<<16)
		return cfg(b)
	})
}

// esds appends an ES descriptor box (ISO/IEC 14496-14 §5.6, 14496-1 §7.2.6.5).
func esds(dst []byte, esID uint32, objectType byte, dsi []byte) []byte {
	return fullBox(dst, "esds", 0, 0, func(b []byte) []byte {
		var dcd []byte
		dcd = append(dcd, objectType, 0x15) // AudioStream << 2 | reserved bit
		dcd = zeros(dcd, 3+4+4)             // bufferSizeDB, maxBitrate, avgBitrate
		if len(dsi) > 0 {
			dcd = descriptor(dcd, 0x05, dsi)
		}
		var es []byte
		es = u16(es, uint16(esID))
		es = append(es, 0) // flags
		es = descriptor(es, 0x04, dcd)
		es = descriptor(es, 0x06, []byte{0x02}) // SLConfigDescriptor: predefined MP4
		return descriptor(b, 0x03, es)
	})
}

// descriptor appends an MPEG-4 descriptor with its expandable size field.
func descriptor(dst []byte, tag byte, body []byte) []byte {
	dst = append(dst, tag)
	n := len(body)
	var sz [4]byte
	i := 3
	sz[i] = byte(n & 0x7f)
	for n >>= 7; n > 0 && i > 0; n >>= 7 {
		i--
		sz[i] = byte(n&0x7f) | 0x80
	}
	dst = append(dst, sz[i:]...)
	return append(dst, body...)
}
