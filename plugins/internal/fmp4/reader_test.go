package fmp4

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// readSample is a sample read back from a fragmented MP4 file.
type readSample struct {
	fragment int
	dts      int64 // track timescale
	cto      int32
	key      bool
	data     []byte
}

type readTrack struct {
	id        uint32
	handler   string
	entry     string // sample entry type
	config    []byte // avcC/hvcC/esds/dOps payload
	timescale uint32
	samples   []readSample
}

// readFMP4 parses an init segment and its fragments, checking the layout
// as it goes: every trun's data lies inside the mdat that follows its moof.
func readFMP4(t *testing.T, b []byte) map[uint32]*readTrack {
	t.Helper()
	top := parseBoxes(t, b)
	tracks := map[uint32]*readTrack{}
	for _, trak := range find(top, "moov/trak") {
		tk := find(trak.children, "tkhd")[0].payload
		id := u32at(tk, 12)
		rt := &readTrack{id: id}
		rt.timescale = u32at(find(trak.children, "mdia/mdhd")[0].payload, 12)
		rt.handler = string(find(trak.children, "mdia/hdlr")[0].payload[8:12])
		entries := find(trak.children, "mdia/minf/stbl/stsd")[0].children
		if len(entries) != 1 {
			t.Fatalf("track %d: %d sample entries", id, len(entries))
		}
		rt.entry = entries[0].typ
		if len(entries[0].children) > 0 {
			rt.config = entries[0].children[0].payload
		}
		tracks[id] = rt
	}
	// Walk the top level again with offsets, for data_offset checks.
	off := 0
	frag := 0
	for off < len(b) {
		size := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		if size == 1 {
			size = int(binary.BigEndian.Uint64(b[off+8:]))
		}
		if typ != "moof" {
			off += size
			continue
		}
		frag++
		moofStart := off
		moof := parseBoxes(t, b[off:off+size])[0]
		mdatOff := off + size
		mdatSize := int(binary.BigEndian.Uint32(b[mdatOff:]))
		if string(b[mdatOff+4:mdatOff+8]) != "mdat" {
			t.Fatalf("fragment %d: moof not followed by mdat", frag)
		}
		for _, traf := range find(moof.children, "traf") {
			tfhd := find(traf.children, "tfhd")[0].payload
			flags := u32at(tfhd, 0) & 0xffffff
			id := u32at(tfhd, 4)
			rt := tracks[id]
			if rt == nil {
				t.Fatalf("fragment %d: traf for unknown track %d", frag, id)
			}
			p := 8
			base := moofStart
			if flags&0x01 != 0 {
				base = int(binary.BigEndian.Uint64(tfhd[p:]))
				p += 8
			}
			if flags&0x02 != 0 {
				p += 4
			}
			var defDur, defSize, defFlags uint32
			if flags&0x08 != 0 {
				defDur = u32at(tfhd, p)
				p += 4
			}
			if flags&0x10 != 0 {
				defSize = u32at(tfhd, p)
				p += 4
			}
			if flags&0x20 != 0 {
				defFlags = u32at(tfhd, p)
			}
			tfdt := find(traf.children, "tfdt")[0].payload
			var dts int64
			if tfdt[0] == 1 {
				dts = int64(binary.BigEndian.Uint64(tfdt[4:]))
			} else {
				dts = int64(u32at(tfdt, 4))
			}
			for _, trun := range find(traf.children, "trun") {
				pl := trun.payload
				tf := u32at(pl, 0) & 0xffffff
				n := int(u32at(pl, 4))
				q := 8
				data := base
				if tf&0x01 != 0 {
					data = base + int(int32(u32at(pl, q)))
					q += 4
				}
				firstFlags, hasFirst := uint32(0), tf&0x04 != 0
				if hasFirst {
					firstFlags = u32at(pl, q)
					q += 4
				}
				for i := range n {
					dur, sz, fl, cto := defDur, defSize, defFlags, int32(0)
					if tf&0x100 != 0 {
						dur = u32at(pl, q)
						q += 4
					}
					if tf&0x200 != 0 {
						sz = u32at(pl, q)
						q += 4
					}
					if tf&0x400 != 0 {
						fl = u32at(pl, q)
						q += 4
					} else if i == 0 && hasFirst {
						fl = firstFlags
					}
					if tf&0x800 != 0 {
						cto = int32(u32at(pl, q))
						q += 4
					}
					if data < mdatOff+8 || data+int(sz) > mdatOff+mdatSize {
						t.Fatalf("fragment %d track %d sample %d: data [%d,%d) outside mdat [%d,%d)", frag, id, i, data, data+int(sz), mdatOff+8, mdatOff+mdatSize)
					}
					rt.samples = append(rt.samples, readSample{fragment: frag, dts: dts, cto: cto, key: fl&0x10000 == 0, data: b[data : data+int(sz)]})
					data += int(sz)
					dts += int64(dur)
				}
			}
		}
		off += size
	}
	return tracks
}

// packetsOf turns a read-back file into packets (configs first), so a file
// written by FFmpeg can be fed to the Muxer.
func packetsOf(t *testing.T, tracks map[uint32]*readTrack) []media.Packet {
	t.Helper()
	var out []media.Packet
	codecs := map[uint32]media.Codec{}
	for id := uint32(1); id <= uint32(len(tracks)); id++ {
		rt := tracks[id]
		var c media.Codec
		cfg := rt.config
		switch rt.entry {
		case "avc1":
			c = media.CodecH264
		case "hvc1":
			c = media.CodecH265
		case "Opus":
			c = media.CodecOpus
			// dOps (big-endian) back to an Opus ID header (little-endian).
			head := []byte("OpusHead\x01")
			head = append(head, cfg[1])
			head = binary.LittleEndian.AppendUint16(head, binary.BigEndian.Uint16(cfg[2:]))
			head = binary.LittleEndian.AppendUint32(head, binary.BigEndian.Uint32(cfg[4:]))
			head = binary.LittleEndian.AppendUint16(head, binary.BigEndian.Uint16(cfg[8:]))
			head = append(head, cfg[10:]...)
			cfg = head
		default:
			t.Fatalf("track %d: sample entry %q not handled by the test", id, rt.entry)
		}
		codecs[id] = c
		out = append(out, media.Packet{Kind: c.Kind(), Codec: c, Flags: media.FlagConfig, Payload: cfg})
	}
	// Interleave by DTS.
	idx := map[uint32]int{}
	for {
		var best *readTrack
		var bestT time.Duration
		for id := uint32(1); id <= uint32(len(tracks)); id++ {
			rt := tracks[id]
			if idx[id] >= len(rt.samples) {
				continue
			}
			ts := time.Duration(rt.samples[idx[id]].dts) * time.Second / time.Duration(rt.timescale)
			if best == nil || ts < bestT {
				best, bestT = rt, ts
			}
		}
		if best == nil {
			return out
		}
		s := best.samples[idx[best.id]]
		idx[best.id]++
		c := codecs[best.id]
		p := media.Packet{Kind: c.Kind(), Codec: c, DTS: bestT, Payload: s.data}
		p.PTS = p.DTS + time.Duration(s.cto)*time.Second/time.Duration(best.timescale)
		if s.key && c.Kind() == media.KindVideo {
			p.Flags = media.FlagKey
		}
		out = append(out, p)
	}
}
