// Package replay loads a pre-encoded FLV file into memory and describes how
// the benchmark replays it in real time, looping with rebased timestamps.
//
// Both sides of a benchmark use it: the publisher (cmd/rill-bench) and the
// physical floor (bench/floor) send tag i of loop L at start + L*Loop +
// Tags[i].TS, and players recognise the video frames they receive with
// Identify, whatever the server did to timestamps or FLV headers, so that
// they can look up when the frame was sent.
package replay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"time"
)

// FLV tag types (Adobe FLV spec v10.1 §E.4.1).
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Tag is one FLV tag of the file.
type Tag struct {
	Type uint8
	// TS is the tag's timestamp in ms, rebased so that the first tag of the
	// file is at 0.
	TS uint32
	// Payload is the tag body (what an RTMP message carries).
	Payload []byte
	// Config marks metadata and sequence headers: sent once, not per loop.
	Config bool
	// Keyframe marks a video keyframe (not its sequence header).
	Keyframe bool
	// Frame marks a coded video frame that Identify recognises.
	Frame bool
}

// File is a loaded FLV file.
type File struct {
	Path string
	// Header is the 9-byte FLV header plus the first PreviousTagSize.
	Header []byte
	Tags   []Tag
	// Loop is the duration of one pass in ms: the next pass starts Loop ms
	// after the previous one did.
	Loop uint32
	// VideoBytes and TotalBytes are the payload bytes of one pass (frames
	// only, and every non-config tag).
	VideoBytes, TotalBytes int64

	seed   maphash.Seed
	prefix int
	ids    map[uint64]int
}

// Load reads an FLV file and indexes its video frames.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

func parse(b []byte) (*File, error) {
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, errors.New("not an FLV file")
	}
	hlen := int(binary.BigEndian.Uint32(b[5:9]))
	if hlen < 9 || hlen+4 > len(b) {
		return nil, errors.New("bad FLV header")
	}
	f := &File{Header: append([]byte(nil), b[:hlen+4]...), seed: maphash.MakeSeed()}
	rest := b[hlen+4:]
	first := int64(-1)
	var last uint32
	for len(rest) >= 11 {
		typ := rest[0] & 0x1f
		size := int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3])
		ts := uint32(rest[7])<<24 | uint32(rest[4])<<16 | uint32(rest[5])<<8 | uint32(rest[6])
		if 11+size+4 > len(rest) {
			break // truncated last tag
		}
		payload := rest[11 : 11+size]
		rest = rest[11+size+4:]
		if typ != TagAudio && typ != TagVideo && typ != TagScript {
			continue
		}
		t := Tag{Type: typ, Payload: payload}
		switch typ {
		case TagScript:
			t.Config = true
		case TagVideo:
			if len(payload) >= 2 && payload[0]&0x0f == 7 && payload[1] == 0 {
				t.Config = true
			} else {
				t.Keyframe = len(payload) > 0 && payload[0]>>4 == 1
				t.Frame = sliceNAL(payload) != nil
			}
		case TagAudio:
			t.Config = len(payload) >= 2 && payload[0]>>4 == 10 && payload[1] == 0
		}
		if !t.Config {
			if first < 0 {
				first = int64(ts)
			}
			if ts < uint32(first) {
				ts = uint32(first)
			}
			t.TS = ts - uint32(first)
			last = max(last, t.TS)
		}
		f.Tags = append(f.Tags, t)
	}
	if first < 0 {
		return nil, errors.New("no media tags")
	}
	// One frame interval after the last tag, so the next pass does not
	// repeat a timestamp.
	f.Loop = last + 33
	for _, t := range f.Tags {
		if t.Config {
			continue
		}
		f.TotalBytes += int64(len(t.Payload))
		if t.Frame {
			f.VideoBytes += int64(len(t.Payload))
		}
	}
	if err := f.index(); err != nil {
		return nil, err
	}
	return f, nil
}

// index picks the shortest hashed prefix of the first slice NAL unit that
// tells every frame of the file apart.
func (f *File) index() error {
next:
	for _, prefix := range []int{64, 256, 1024, 4096, 1 << 30} {
		ids := make(map[uint64]int)
		for i, t := range f.Tags {
			if !t.Frame {
				continue
			}
			k := f.key(sliceNAL(t.Payload), prefix)
			if _, dup := ids[k]; dup {
				continue next
			}
			ids[k] = i
		}
		f.prefix, f.ids = prefix, ids
		return nil
	}
	return errors.New("video frames are not distinguishable (identical frames in the file)")
}

func (f *File) key(nal []byte, prefix int) uint64 {
	n := len(nal)
	if n > prefix {
		nal = nal[:prefix]
	}
	return maphash.Bytes(f.seed, nal) ^ uint64(n)*0x9e3779b97f4a7c15
}

// Identify returns the index in Tags of the video frame whose FLV/RTMP video
// payload is given, or false when it is not a frame of this file (sequence
// headers, other codecs, a frame the server altered).
func (f *File) Identify(payload []byte) (int, bool) {
	nal := sliceNAL(payload)
	if nal == nil {
		return 0, false
	}
	i, ok := f.ids[f.key(nal, f.prefix)]
	return i, ok
}

// sliceNAL returns the first coded slice NAL unit (H.264 types 1-5) of an
// AVC video tag body, or nil. Looking at the slice rather than the whole
// body makes identification immune to a server dropping or rewriting AUD,
// SEI or filler NAL units or the FLV video header.
func sliceNAL(payload []byte) []byte {
	if len(payload) < 5 || payload[0]&0x0f != 7 || payload[1] != 1 {
		return nil
	}
	b := payload[5:]
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b))
		if n <= 0 || n > len(b)-4 {
			return nil
		}
		nal := b[4 : 4+n]
		if t := nal[0] & 0x1f; t >= 1 && t <= 5 {
			return nal
		}
		b = b[4+n:]
	}
	return nil
}

// Bitrate is the average bit rate of one pass, in bit/s.
func (f *File) Bitrate() float64 {
	return float64(f.TotalBytes*8) / (float64(f.Loop) / 1000)
}

// Schedule is a replay of a file started at a wall-clock time.
type Schedule struct {
	File  *File
	Start time.Time
}

// At is when tag i of pass loop is due.
func (s Schedule) At(loop int, i int) time.Time {
	return s.Start.Add(time.Duration(int64(loop)*int64(s.File.Loop)+int64(s.File.Tags[i].TS)) * time.Millisecond)
}

// LastDue returns when tag i was last due at or before now: the send time
// of the newest copy of that frame, or false if it was never due.
func (s Schedule) LastDue(i int, now time.Time) (time.Time, bool) {
	off := now.Sub(s.Start) - time.Duration(s.File.Tags[i].TS)*time.Millisecond
	if off < 0 {
		return time.Time{}, false
	}
	loop := int(off / (time.Duration(s.File.Loop) * time.Millisecond))
	return s.At(loop, i), true
}

// FrameBytesDue sums the payload bytes of the video frames due in [t0, t1].
func (s Schedule) FrameBytesDue(t0, t1 time.Time) int64 {
	var n int64
	loopDur := time.Duration(s.File.Loop) * time.Millisecond
	first := max(0, int(t0.Sub(s.Start)/loopDur)-1)
	for loop := first; ; loop++ {
		if s.Start.Add(time.Duration(loop) * loopDur).After(t1) {
			return n
		}
		for i, t := range s.File.Tags {
			if !t.Frame {
				continue
			}
			at := s.At(loop, i)
			if !at.Before(t0) && !at.After(t1) {
				n += int64(len(t.Payload))
			}
		}
	}
}

// Rebase returns a copy of the tag's FLV bytes (header, body, previous tag
// size) with the timestamp of the given pass.
func (f *File) Rebase(i, loop int) []byte {
	t := f.Tags[i]
	ts := t.TS + uint32(loop)*f.Loop
	out := make([]byte, 11+len(t.Payload)+4)
	out[0] = t.Type
	n := len(t.Payload)
	out[1], out[2], out[3] = byte(n>>16), byte(n>>8), byte(n)
	out[4], out[5], out[6], out[7] = byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24)
	copy(out[11:], t.Payload)
	binary.BigEndian.PutUint32(out[11+n:], uint32(11+n))
	return out
}
