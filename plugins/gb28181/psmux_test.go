package main

import (
	"bytes"
	"encoding/binary"
)

// The test side of the wire: a minimal MPEG-PS muxer and RTP packetizer,
// as a GB28181 camera sends (ISO/IEC 13818-1 §2.5; GB/T 28181 annex C).

// splitAUs splits an Annex B H.264 stream written with AUD NAL units
// (x264 aud=1) into access units.
func splitAUs(b []byte) [][]byte {
	var aus [][]byte
	start := -1
	for i := 0; i+4 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 0 && b[i+3] == 1 && b[i+4]&0x1f == 9 {
			if start >= 0 {
				aus = append(aus, b[start:i])
			}
			start = i
		}
	}
	if start >= 0 {
		aus = append(aus, b[start:])
	}
	return aus
}

func isKeyAU(au []byte) bool {
	for i := 0; i+3 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

func putTS(b []byte, marker byte, ts uint64) {
	b[0] = marker<<4 | byte(ts>>29)&0x0e | 1
	binary.BigEndian.PutUint16(b[1:], uint16(ts>>14)|1)
	binary.BigEndian.PutUint16(b[3:], uint16(ts<<1)|1)
}

// psPack wraps one access unit in a pack: pack header (with stuffing), a
// PSM before keyframes, and PES packets of at most 60000 bytes each.
func psPack(au []byte, ts uint64, key bool, videoType byte) []byte {
	var w bytes.Buffer
	scr := make([]byte, 14)
	copy(scr, []byte{0, 0, 1, 0xba})
	// SCR base in MPEG-2 layout, mux rate, 2 stuffing bytes.
	base := ts
	scr[4] = 0x44 | byte(base>>27)&0x38 | byte(base>>28)&0x03
	scr[5] = byte(base >> 20)
	scr[6] = byte(base>>12)&0xf8 | 0x04 | byte(base>>13)&0x03
	scr[7] = byte(base >> 5)
	scr[8] = byte(base<<3) | 0x04
	scr[9] = 0x01
	scr[10], scr[11], scr[12] = 0x01, 0x89, 0xc3
	scr[13] = 0xf8 | 2
	w.Write(scr)
	w.Write([]byte{0xff, 0xff})
	if key {
		esmap := []byte{videoType, 0xe0, 0, 0}
		psm := []byte{0, 0, 1, 0xbc, 0, 0, 0xe0, 0xff, 0, 0}
		psm = binary.BigEndian.AppendUint16(psm, uint16(len(esmap)))
		psm = append(psm, esmap...)
		psm = append(psm, 0, 0, 0, 0) // CRC, not checked by receivers
		binary.BigEndian.PutUint16(psm[4:], uint16(len(psm)-6))
		w.Write(psm)
	}
	first := true
	for len(au) > 0 {
		n := min(len(au), 60000)
		hdr := []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0}
		if first {
			hdr[7] = 0xc0
			hdr[8] = 10
			t := make([]byte, 10)
			putTS(t[0:], 3, ts)
			putTS(t[5:], 1, ts)
			hdr = append(hdr, t...)
		}
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(hdr)-6+n))
		w.Write(hdr)
		w.Write(au[:n])
		au = au[n:]
		first = false
	}
	return w.Bytes()
}

// rtpPackets splits one pack into RTP packets (payload type 96) of at most
// 1400 bytes of payload.
func rtpPackets(ps []byte, seq *uint16, ts uint32, ssrc uint32) [][]byte {
	var out [][]byte
	for len(ps) > 0 {
		n := min(len(ps), 1400)
		p := make([]byte, 12, 12+n)
		p[0] = 0x80
		p[1] = 96
		if n == len(ps) {
			p[1] |= 0x80
		}
		binary.BigEndian.PutUint16(p[2:], *seq)
		binary.BigEndian.PutUint32(p[4:], ts)
		binary.BigEndian.PutUint32(p[8:], ssrc)
		p = append(p, ps[:n]...)
		out = append(out, p)
		ps = ps[n:]
		*seq++
	}
	return out
}
