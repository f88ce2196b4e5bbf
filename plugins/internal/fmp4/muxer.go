package fmp4

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rill-media/rill/sdk/media"
)

// ErrNoTrack is returned by Muxer.WritePacket for a packet whose codec has
// no track in the file (drop it; the file goes on).
var ErrNoTrack = errors.New("fmp4: no track for packet")

// Options tune a Muxer.
type Options struct {
	// FragmentDuration bounds a fragment's length: a fragment ends at every
	// video key frame and at the latest when its samples of the first track
	// span FragmentDuration. Default 1s. It is also how much a recording
	// loses when its process dies.
	FragmentDuration time.Duration
}

// Muxer writes a fragmented MP4 file: the init segment when it is created,
// then a fragment at each video key frame (or every FragmentDuration). A
// sample's duration is the distance to the next sample of its track, so the
// last sample of each track waits for the next one or for Close.
//
// Timestamps are the packets' DTS and PTS, taken as they are (the file's
// timeline starts where the caller's starts); a DTS lower than the previous
// one of its track is raised to it. A Muxer is for one goroutine.
type Muxer struct {
	w      io.Writer
	opts   Options
	tracks []*trackState
	seq    uint32
	buf    []byte
	trafs  []TrackFragment
	size   int64
	err    error
}

type trackState struct {
	Track
	base    uint64   // decode time of the first pending sample
	samples []Sample // complete samples of the next fragment (Data aliases data)
	offs    []int    // offsets of the samples' data in data
	data    []byte
	held    bool // the last sample waits for its duration
	heldDTS int64
	lastDur uint32
	started bool
}

// NewMuxer writes the init segment for tracks to w and returns a Muxer for
// their packets. The tracks are copied.
func NewMuxer(w io.Writer, tracks []Track, opts Options) (*Muxer, error) {
	if opts.FragmentDuration <= 0 {
		opts.FragmentDuration = time.Second
	}
	init, err := AppendInit(nil, tracks)
	if err != nil {
		return nil, err
	}
	m := &Muxer{w: w, opts: opts}
	for _, t := range tracks {
		m.tracks = append(m.tracks, &trackState{Track: t})
	}
	if err := m.write(init); err != nil {
		return nil, err
	}
	return m, nil
}

// Size is the number of bytes written so far.
func (m *Muxer) Size() int64 { return m.size }

func (m *Muxer) write(b []byte) error {
	if m.err != nil {
		return m.err
	}
	n, err := m.w.Write(b)
	m.size += int64(n)
	if err != nil {
		m.err = fmt.Errorf("fmp4: write: %w", err)
	}
	return m.err
}

func (m *Muxer) track(p media.Packet) *trackState {
	for _, t := range m.tracks {
		if t.Codec == p.Codec {
			return t
		}
	}
	return nil
}

// WritePacket adds a media packet (not a config or data packet) to the
// file. It writes a fragment when p is a video key frame or the pending
// samples span FragmentDuration. The payload is copied. After a write
// error every call returns that error.
func (m *Muxer) WritePacket(p media.Packet) error {
	if m.err != nil {
		return m.err
	}
	if p.IsConfig() || p.Kind == media.KindData {
		return nil
	}
	t := m.track(p)
	if t == nil {
		return fmt.Errorf("%w: %v", ErrNoTrack, p.Codec)
	}
	dts := t.Units(p.DTS)
	if !t.started {
		t.started = true
		if dts < 0 {
			dts = 0
		}
		t.base = uint64(dts)
	} else if dts < t.heldDTS {
		dts = t.heldDTS
	}
	if t.held {
		d := uint32(min(dts-t.heldDTS, 1<<31))
		t.samples[len(t.samples)-1].Duration = d
		t.lastDur = d
		t.held = false
	}
	first := m.tracks[0]
	cut := p.Kind == media.KindVideo && p.IsKey() && t == m.videoTrack()
	if !cut && len(first.samples) > 0 {
		span := first.heldDTS - int64(first.base)
		cut = span >= first.Units(m.opts.FragmentDuration)
	}
	if cut {
		if err := m.flush(false); err != nil {
			return err
		}
	}
	if len(t.samples) == 0 {
		t.base = uint64(dts)
	}
	cto := t.Units(p.PTS - p.DTS)
	t.offs = append(t.offs, len(t.data))
	t.data = append(t.data, p.Payload...)
	t.samples = append(t.samples, Sample{CTO: int32(max(min(cto, 1<<31-1), -1<<31)), Key: p.IsKey() || p.Kind != media.KindVideo})
	t.held = true
	t.heldDTS = dts
	return nil
}

func (m *Muxer) videoTrack() *trackState {
	for _, t := range m.tracks {
		if t.Kind() == media.KindVideo {
			return t
		}
	}
	return nil
}

// flush writes the complete samples of every track as one fragment. With
// all, the held samples go too, with the previous sample's duration.
func (m *Muxer) flush(all bool) error {
	m.trafs = m.trafs[:0]
	for _, t := range m.tracks {
		n := len(t.samples)
		if t.held && !all {
			n--
		}
		if n <= 0 {
			continue
		}
		if t.held && all {
			d := t.lastDur
			if d == 0 {
				d = t.defaultDuration()
			}
			t.samples[n-1].Duration = d
			t.held = false
		}
		for i := range n {
			t.samples[i].Data = t.data[t.offs[i]:t.dataEnd(i)]
		}
		m.trafs = append(m.trafs, TrackFragment{Track: &t.Track, BaseTime: t.base, Samples: t.samples[:n]})
	}
	if len(m.trafs) == 0 {
		return nil
	}
	m.seq++
	var err error
	m.buf, err = AppendFragment(m.buf[:0], m.seq, m.trafs)
	if err != nil {
		m.err = err
		return err
	}
	if err := m.write(m.buf); err != nil {
		return err
	}
	// Keep what did not go (the held sample) for the next fragment.
	for _, tf := range m.trafs {
		t := m.stateOf(tf.Track.ID)
		n := len(tf.Samples)
		for _, s := range tf.Samples {
			t.base += uint64(s.Duration)
		}
		rest := len(t.samples) - n
		if rest == 0 {
			t.samples, t.offs, t.data = t.samples[:0], t.offs[:0], t.data[:0]
			continue
		}
		from := t.offs[n]
		keep := copy(t.data, t.data[from:])
		t.data = t.data[:keep]
		copy(t.samples, t.samples[n:])
		t.samples = t.samples[:rest]
		for i := range rest {
			t.offs[i] = t.offs[n+i] - from
		}
		t.offs = t.offs[:rest]
	}
	return nil
}

func (t *trackState) dataEnd(i int) int {
	if i+1 < len(t.offs) {
		return t.offs[i+1]
	}
	return len(t.data)
}

func (m *Muxer) stateOf(id uint32) *trackState {
	for _, t := range m.tracks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Close writes the pending samples as a last fragment. It does not close
// the underlying writer.
func (m *Muxer) Close() error {
	if m.err != nil {
		return m.err
	}
	return m.flush(true)
}
