package main

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Reorder bounds: a missing RTP packet is waited for until this many later
// packets arrived or this long passed, whichever comes first. lal's own
// buffer waits for 1024 packets (seconds of stall per loss at camera
// rates); these defaults cost at most a frame interval or two.
const (
	defaultReorderPackets = 32
	defaultReorderWait    = 50 * time.Millisecond
)

// rtpPacket is a parsed RTP packet (RFC 3550 §5.1) whose payload is a
// copy owned by the reorder buffer.
type rtpPacket struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
	present bool
}

// parseRTP reads the fixed header, CSRCs, the extension and padding.
func parseRTP(b []byte) (seq uint16, ts uint32, marker bool, payload []byte, err error) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, 0, false, nil, fmt.Errorf("%w: rtp packet of %d bytes", errJunk, len(b))
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // extension: 16-bit profile, 16-bit length in words
		if len(b) < n+4 {
			return 0, 0, false, nil, fmt.Errorf("%w: rtp extension past the end", errJunk)
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 {
		end -= int(b[end-1])
	}
	if n > end {
		return 0, 0, false, nil, fmt.Errorf("%w: rtp header of %d bytes in a packet of %d", errJunk, n, len(b))
	}
	return binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:]), b[1]&0x80 != 0, b[n:end], nil
}

// reorder puts RTP packets back in sequence order within a small window:
// a gap is given up (the packets after it are released with lost set)
// when window packets past it arrived or wait passed since it opened.
// Duplicates and packets older than the released ones are dropped.
type reorder struct {
	window int
	wait   time.Duration

	started  bool
	next     uint16 // the sequence number released next
	slots    []rtpPacket
	held     int
	gapSince time.Time // when the packet at next was first missed
	lossDue  bool      // the next packet released follows a loss
	staleRun int
	lostPkts uint64
}

func newReorder(window int, wait time.Duration) *reorder {
	if window < 1 {
		window = 1
	}
	return &reorder{window: window, wait: wait, slots: make([]rtpPacket, window)}
}

// push adds a packet and calls out, in order, for each packet it can now
// release; lost is true for the first packet after a gap.
func (r *reorder) push(seq uint16, ts uint32, marker bool, payload []byte, now time.Time, out func(p *rtpPacket, lost bool)) {
	if !r.started {
		r.started, r.next = true, seq
	}
	d := int(int16(seq - r.next))
	if d < 0 {
		// Late or repeated. A run of them longer than the window is a
		// sender that restarted its sequence: start over at this packet.
		if r.staleRun++; r.staleRun <= r.window {
			return
		}
		r.flush(out)
		r.next, d = seq, 0
	}
	r.staleRun = 0
	if d >= r.window {
		if d >= 4*r.window { // a jump: release what is held, resume at seq
			r.flush(out)
			r.next = seq
		} else {
			for int(int16(seq-r.next)) >= r.window {
				r.skip(out)
			}
		}
	}
	sl := &r.slots[int(seq)%r.window]
	if sl.present {
		return // duplicate
	}
	sl.seq, sl.ts, sl.marker, sl.present = seq, ts, marker, true
	sl.payload = append(sl.payload[:0], payload...)
	r.held++
	r.drain(out, false)
	if r.held > 0 {
		if r.gapSince.IsZero() {
			r.gapSince = now
		} else if now.Sub(r.gapSince) >= r.wait {
			r.skip(out)
		}
	}
}

// expire gives up the gap at next once it is older than wait (packets
// that stop coming after a loss do not hold the ones after it back).
func (r *reorder) expire(now time.Time, out func(*rtpPacket, bool)) {
	for r.held > 0 && !r.gapSince.IsZero() && now.Sub(r.gapSince) >= r.wait {
		r.skip(out)
		if r.held > 0 && r.gapSince.IsZero() {
			r.gapSince = now
		}
	}
}

// pending reports whether packets wait behind a gap.
func (r *reorder) pending() bool { return r.held > 0 }

// drain releases the packets in sequence from next on.
func (r *reorder) drain(out func(*rtpPacket, bool), lost bool) {
	for r.held > 0 {
		sl := &r.slots[int(r.next)%r.window]
		if !sl.present || sl.seq != r.next {
			return
		}
		sl.present = false
		r.held--
		r.next++
		r.gapSince = time.Time{}
		out(sl, lost || r.lossDue)
		lost, r.lossDue = false, false
	}
}

// skip gives up the gap at next: it jumps to the first held packet and
// releases from there.
func (r *reorder) skip(out func(*rtpPacket, bool)) {
	if r.held == 0 {
		r.next += uint16(r.window)
		r.lossDue = true
		return
	}
	for range r.window {
		sl := &r.slots[int(r.next)%r.window]
		if sl.present && sl.seq == r.next {
			break
		}
		r.next++
		r.lostPkts++
	}
	r.drain(out, true)
	if r.held > 0 {
		r.gapSince = time.Time{}
	}
}

// flush releases everything held, in order, as after a loss.
func (r *reorder) flush(out func(*rtpPacket, bool)) {
	for r.held > 0 {
		r.skip(out)
	}
	r.gapSince = time.Time{}
	r.lossDue = true
}

// psFramer cuts the PS byte stream carried by in-order RTP payloads into
// whole PS units (pack header, system header, PSM, PES: ISO/IEC 13818-1
// §2.5.3) so that lal's parser only ever sees complete units. After a
// loss it drops the unit being assembled and skips to the next pack
// header, so a loss costs the frame it hit and nothing after it (lal left
// to itself appends the bytes after the gap to the broken unit).
type psFramer struct {
	data    []byte // data[off:] is what is not cut into units yet
	off     int
	syncing bool // looking for a pack start code after a loss
	junk    uint64
}

const maxPSUnit = 6 + 65535

// feed appends payload and calls unit for each complete unit (the slice
// is valid until the next feed).
func (f *psFramer) feed(payload []byte, lost bool, unit func(code byte, u []byte)) {
	if lost {
		f.data, f.off = f.data[:0], 0
		f.syncing = true
	}
	f.data = append(f.data, payload...)
	for {
		b := f.data[f.off:]
		if f.syncing {
			i := indexPackStart(b)
			if i < 0 {
				// keep the last 3 bytes: a start code may straddle packets
				if k := len(b) - 3; k > 0 {
					f.junk += uint64(k)
					f.off += k
				}
				break
			}
			f.junk += uint64(i)
			f.off += i
			f.syncing = false
			continue
		}
		if len(b) < 6 {
			break
		}
		if b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] < 0xb9 {
			f.syncing = true // not a unit start: resynchronize on a pack header
			continue
		}
		var n int
		switch b[3] {
		case 0xb9: // program end
			n = 4
		case 0xba:
			if b[4]&0xc0 == 0x40 { // MPEG-2: 14 bytes and stuffing
				if len(b) < 14 {
					n = 14
					break
				}
				n = 14 + int(b[13]&7)
			} else { // MPEG-1
				n = 12
			}
		default:
			n = 6 + int(binary.BigEndian.Uint16(b[4:6]))
		}
		if len(b) < n {
			break
		}
		unit(b[3], b[:n])
		f.off += n
	}
	switch {
	case f.off == len(f.data):
		f.data, f.off = f.data[:0], 0
	case f.off > maxPSUnit: // move the partial unit to the front
		n := copy(f.data, f.data[f.off:])
		f.data, f.off = f.data[:n], 0
	}
}

func indexPackStart(b []byte) int {
	for i := 0; i+3 < len(b); i++ {
		if b[i+2] > 1 {
			i += 2
			continue
		}
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3] == 0xba {
			return i
		}
	}
	return -1
}

// pesPTS returns the PTS (90 kHz) of a PES unit, if it has one.
func pesPTS(u []byte) (int64, bool) {
	if len(u) < 14 || u[7]&0x80 == 0 {
		return 0, false
	}
	p := u[9:14]
	return int64(p[0]>>1&7)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1), true
}
