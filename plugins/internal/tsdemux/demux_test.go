package tsdemux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/mpegts"

	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk/media"
)

// avcConfig is an AVCDecoderConfigurationRecord with one SPS and one PPS.
var avcConfig = []byte{1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 2, 0x68, 0xce}

// asc is AAC-LC, 44.1 kHz, stereo.
var asc = []byte{0x12, 0x10}

func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// testStream is what muxStream muxed: the packets a demuxer must give back.
type testStream struct {
	ts    []byte
	video []media.Packet // frames, in order
	audio int            // audio frames
}

// muxStream muxes frames video frames (a key frame every 25, 40 ms apart,
// B-frame style PTS) and audio frames of 1024 samples, starting at start,
// with the repository's TS muxer.
func muxStream(t testing.TB, frames int, start time.Duration) testStream {
	m := tsmux.New()
	var st testStream
	add := func(p media.Packet) {
		var err error
		if st.ts, err = m.AppendPacket(st.ts, p); err != nil {
			t.Fatalf("mux %v: %v", p, err)
		}
	}
	add(media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagConfig, Payload: avcConfig})
	add(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, Flags: media.FlagConfig, Payload: asc})
	rng := rand.New(rand.NewSource(1))
	aacDur := 1024 * time.Second / 44100
	var audioAt time.Duration
	for i := 0; i < frames; i++ {
		dts := start + time.Duration(i)*40*time.Millisecond
		p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, DTS: dts, PTS: dts + 80*time.Millisecond}
		body := make([]byte, 100+rng.Intn(3000))
		rng.Read(body)
		if i%25 == 0 {
			p.Flags = media.FlagKey
			body[0] = 0x65
		} else {
			body[0] = 0x41
		}
		p.Payload = avcc([]byte{6, 5, 1, 0x80}, body) // an SEI and the slice
		add(p)
		st.video = append(st.video, p)
		for ; audioAt <= time.Duration(i)*40*time.Millisecond; audioAt += aacDur {
			frame := make([]byte, 200)
			rng.Read(frame)
			add(media.Packet{Kind: media.KindAudio, Codec: media.CodecAAC, DTS: start + audioAt, PTS: start + audioAt, Payload: frame})
			st.audio++
		}
	}
	return st
}

type collected struct {
	video, audio             []media.Packet
	videoConfig, audioConfig []media.Packet
}

func demuxAll(t testing.TB, ts []byte, chunk int) (collected, *Demuxer, error) {
	var c collected
	d := New(func(p media.Packet) error {
		p = p.Clone()
		switch {
		case p.Kind == media.KindVideo && p.IsConfig():
			c.videoConfig = append(c.videoConfig, p)
		case p.Kind == media.KindVideo:
			c.video = append(c.video, p)
		case p.IsConfig():
			c.audioConfig = append(c.audioConfig, p)
		default:
			c.audio = append(c.audio, p)
		}
		return nil
	})
	for len(ts) > 0 {
		n := min(chunk, len(ts))
		if err := d.Feed(ts[:n]); err != nil {
			return c, d, err
		}
		ts = ts[n:]
	}
	return c, d, d.Flush()
}

func TestDemuxRoundTrip(t *testing.T) {
	st := muxStream(t, 60, time.Second)
	for _, chunk := range []int{1316, 188, 100, 7} {
		c, d, err := demuxAll(t, st.ts, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if len(d.warnings) != 0 {
			t.Errorf("chunk %d: warnings %v", chunk, d.warnings)
		}
		if len(c.videoConfig) != 1 || !bytes.Equal(c.videoConfig[0].Payload, avcConfig) {
			t.Fatalf("chunk %d: video configs %v", chunk, c.videoConfig)
		}
		if len(c.audioConfig) != 1 || !bytes.Equal(c.audioConfig[0].Payload, asc) {
			t.Fatalf("chunk %d: audio configs %v", chunk, c.audioConfig)
		}
		// lal writes PES_packet_length, so even the last PES is complete.
		if len(c.video) != len(st.video) {
			t.Fatalf("chunk %d: %d video frames, want %d", chunk, len(c.video), len(st.video))
		}
		// The muxer delays the timeline by a constant (as FFmpeg does).
		off := c.video[0].DTS - st.video[0].DTS
		for i, p := range c.video {
			w := st.video[i]
			if p.Codec != media.CodecH264 || p.IsKey() != w.IsKey() || !near(p.DTS, w.DTS+off) || !near(p.PTS, w.PTS+off) || !bytes.Equal(p.Payload, w.Payload) {
				t.Fatalf("chunk %d: video %d = %v, want %v delayed by %v", chunk, i, p, w, off)
			}
		}
		if len(c.audio) < st.audio-2 {
			t.Fatalf("chunk %d: %d audio frames, want about %d", chunk, len(c.audio), st.audio)
		}
		for i := 1; i < len(c.audio); i++ {
			if c.audio[i].DTS <= c.audio[i-1].DTS || len(c.audio[i].Payload) != 200 {
				t.Fatalf("chunk %d: audio %d = %v after %v", chunk, i, c.audio[i], c.audio[i-1])
			}
		}
	}
}

// shiftTimestamps adds ticks (mod 2^33) to every PTS and DTS of ts,
// written as ISO/IEC 13818-1 2.4.3.7 says, by this test's own writer.
func shiftTimestamps(t *testing.T, ts []byte, ticks uint64) []byte {
	out := append([]byte(nil), ts...)
	pkts, pids := tsPackets(out)
	for i, p := range pkts {
		if (pids[i] != tsmux.PIDVideo && pids[i] != tsmux.PIDAudio) || p[1]&0x40 == 0 {
			continue
		}
		off := 4
		if p[3]&0x20 != 0 {
			off += 1 + int(p[4])
		}
		pes := p[off:]
		flags := pes[7] >> 6
		put := func(b []byte, fb byte) {
			v := (readTimestamp(b) + ticks) & (1<<33 - 1)
			b[0] = fb<<4 | byte(v>>30&7)<<1 | 1
			binary.BigEndian.PutUint16(b[1:], uint16(v>>15&0x7fff)<<1|1)
			binary.BigEndian.PutUint16(b[3:], uint16(v&0x7fff)<<1|1)
		}
		switch flags {
		case 2:
			put(pes[9:], 2)
		case 3:
			put(pes[9:], 3)
			put(pes[14:], 1)
		default:
			t.Fatalf("PES flags %d", flags)
		}
	}
	return out
}

// near reports whether a is b within what tsmux's 90 kHz conversion
// loses: it counts 11111 ns a tick instead of 11111.1, 1e-5 of the value.
func near(a, b time.Duration) bool {
	d, tol := a-b, 12*time.Microsecond+b/90000
	return d >= -tol && d <= tol
}

func TestDemuxTimestampWrap(t *testing.T) {
	// Shift a stream to start 1 s before the 33-bit wrap (2^33 ticks of
	// 90 kHz, 95443.717688 s).
	wrapAt := time.Duration(1<<33) * time.Second / 90000
	st := muxStream(t, 60, 0)
	ref, _, err := demuxAll(t, st.ts, 1316)
	if err != nil {
		t.Fatal(err)
	}
	first := ref.video[0].DTS * 90000 / time.Second
	shift := uint64(1<<33 - 90000 - first)
	c, _, err := demuxAll(t, shiftTimestamps(t, st.ts, shift), 1316)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.video) != len(ref.video) || len(c.audio) != len(ref.audio) {
		t.Fatalf("%d video, %d audio frames, want %d, %d", len(c.video), len(c.audio), len(ref.video), len(ref.audio))
	}
	off := time.Duration(shift) * time.Second / 90000
	for i, p := range c.video {
		if !near(p.DTS, ref.video[i].DTS+off) || !near(p.PTS, ref.video[i].PTS+off) {
			t.Fatalf("video %d: dts %v pts %v, want %v %v", i, p.DTS, p.PTS, ref.video[i].DTS+off, ref.video[i].PTS+off)
		}
	}
	if c.video[0].DTS >= wrapAt || c.video[len(c.video)-1].DTS <= wrapAt {
		t.Fatalf("dts from %v to %v does not cross the wrap at %v", c.video[0].DTS, c.video[len(c.video)-1].DTS, wrapAt)
	}
	for i := 1; i < len(c.audio); i++ {
		if c.audio[i].DTS <= c.audio[i-1].DTS {
			t.Fatalf("audio %d: dts %v after %v", i, c.audio[i].DTS, c.audio[i-1].DTS)
		}
	}
}

// tsPackets splits ts into its packets with their PIDs.
func tsPackets(ts []byte) (pkts [][]byte, pids []uint16) {
	for i := 0; i+188 <= len(ts); i += 188 {
		pkts = append(pkts, ts[i:i+188])
		pids = append(pids, binary.BigEndian.Uint16(ts[i+1:])&0x1fff)
	}
	return
}

func TestDemuxContinuityGapTolerated(t *testing.T) {
	st := muxStream(t, 60, time.Second)
	pkts, pids := tsPackets(st.ts)
	// Drop one video packet that does not start a PES, in the middle.
	drop := -1
	for i := len(pkts) / 2; i < len(pkts); i++ {
		if pids[i] == tsmux.PIDVideo && pkts[i][1]&0x40 == 0 {
			drop = i
			break
		}
	}
	if drop < 0 {
		t.Fatal("no video continuation packet")
	}
	var ts []byte
	for i, p := range pkts {
		if i != drop {
			ts = append(ts, p...)
		}
	}
	// And a duplicate packet, which TS allows once.
	dup := append([]byte(nil), ts[:188*10]...)
	dup = append(dup, ts[188*9:188*10]...)
	ts = append(dup, ts[188*10:]...)
	c, d, err := demuxAll(t, ts, 1316)
	if err != nil {
		t.Fatalf("a continuity gap ended the stream: %v", err)
	}
	if d.warnings["continuity gap"] != 1 || d.warnings["pes dropped after a continuity gap"] != 1 {
		t.Fatalf("warnings %v", d.warnings)
	}
	if len(c.video) != len(st.video)-1 {
		t.Fatalf("%d video frames, want %d (all but the damaged one)", len(c.video), len(st.video)-1)
	}
	for _, p := range c.video {
		ok := false
		for _, w := range st.video {
			if bytes.Equal(w.Payload, p.Payload) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("frame %v was not published", p)
		}
	}
}

func TestDemuxRefusesMalformed(t *testing.T) {
	st := muxStream(t, 5, 0)
	pkts, pids := tsPackets(st.ts)
	edit := func(f func(pkts [][]byte, pids []uint16)) []byte {
		cp := make([][]byte, len(pkts))
		for i, p := range pkts {
			cp[i] = append([]byte(nil), p...)
		}
		f(cp, pids)
		return bytes.Join(cp, nil)
	}
	first := func(pid uint16) int {
		for i, p := range pids {
			if p == pid {
				return i
			}
		}
		t.Fatalf("no pid %d", pid)
		return 0
	}
	junk := make([]byte, 4096)
	rand.New(rand.NewSource(2)).Read(junk)
	junk = bytes.ReplaceAll(junk, []byte{0x47}, []byte{0x48})
	for name, ts := range map[string][]byte{
		"not ts": junk,
		"pat section_length 1021+": edit(func(p [][]byte, _ []uint16) {
			i := first(0)
			p[i][6], p[i][7] = 0xbf, 0xff
		}),
		"pmt section_length too short": edit(func(p [][]byte, _ []uint16) {
			i := first(tsmux.PIDPMT)
			p[i][6], p[i][7] = 0xb0, 5
		}),
		"adaptation_field_length 184": edit(func(p [][]byte, _ []uint16) {
			i := first(tsmux.PIDVideo)
			p[i][3] = p[i][3]&0xcf | 0x30
			p[i][4] = 184
		}),
		"pes header length past the pes": edit(func(p [][]byte, _ []uint16) {
			i := first(tsmux.PIDAudio)
			off := 4
			if p[i][3]&0x20 != 0 {
				off += 1 + int(p[i][4])
			}
			p[i][off+4], p[i][off+5] = 0, 20 // a 20-byte PES
			p[i][off+8] = 200                // with a 200-byte header
		}),
	} {
		_, _, err := demuxAll(t, ts, 1316)
		if !errors.Is(err, ErrMalformed) || errors.Is(err, errParserPanic) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestDemuxPMTWithDescriptors(t *testing.T) {
	// A PMT with program info and ES descriptors (as hardware encoders send)
	// and a CRC recomputed: the streams are still found.
	st := muxStream(t, 30, 0)
	pkts, pids := tsPackets(st.ts)
	var out []byte
	for i, p := range pkts {
		if pids[i] != tsmux.PIDPMT {
			out = append(out, p...)
			continue
		}
		sec := p[5:]
		sl := int(binary.BigEndian.Uint16(sec[1:3]) & 0xfff)
		body := append([]byte(nil), sec[8:3+sl-4]...)
		pil := int(binary.BigEndian.Uint16(body[2:4]) & 0xfff)
		es := body[4+pil:]
		desc := []byte{0x05, 4, 'H', 'D', 'M', 'V'} // registration descriptor
		nb := append([]byte(nil), body[:2]...)
		nb = binary.BigEndian.AppendUint16(nb, 0xf000|uint16(pil+len(desc)))
		nb = append(nb, body[4:4+pil]...)
		nb = append(nb, desc...)
		for len(es) >= 5 {
			eil := int(binary.BigEndian.Uint16(es[3:5]) & 0xfff)
			nb = append(nb, es[:3]...)
			nb = binary.BigEndian.AppendUint16(nb, 0xf000|uint16(eil+len(desc)))
			nb = append(nb, es[5:5+eil]...)
			nb = append(nb, desc...)
			es = es[5+eil:]
		}
		ns := append([]byte(nil), sec[:8]...)
		ns = append(ns, nb...)
		binary.BigEndian.PutUint16(ns[1:3], 0xb000|uint16(len(ns)-3+4))
		crc := make([]byte, 4)
		binary.LittleEndian.PutUint32(crc, lalCRC(ns))
		ns = append(ns, crc...)
		np := append(append([]byte(nil), p[:5]...), ns...)
		for len(np) < 188 {
			np = append(np, 0xff)
		}
		out = append(out, np...)
	}
	c, d, err := demuxAll(t, out, 1316)
	if err != nil || d.warnings["psi crc mismatch"] != 0 {
		t.Fatalf("%v %v", err, d.warnings)
	}
	if len(c.video) != 30 || len(c.audioConfig) != 1 {
		t.Fatalf("%d video frames, %d audio configs", len(c.video), len(c.audioConfig))
	}
}

func FuzzDemux(f *testing.F) {
	// Small seeds: the minimizer is slow on large inputs.
	st := muxStream(f, 8, 0)
	f.Add(st.ts[:188*12])
	f.Add(st.ts[:188*40])
	f.Add([]byte{0x47, 0x40, 0, 0x10, 0, 0, 0xb0, 0xff})
	// FFmpeg's Opus and MP3 in TS: PAT, PMT and the first PES packets.
	for _, name := range []string{"testdata/opus.ts", "testdata/mp3.ts"} {
		if b, err := os.ReadFile(name); err == nil && len(b) >= 188*24 {
			f.Add(b[:188*24])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(func(p media.Packet) error {
			if len(p.Payload) == 0 {
				t.Fatalf("empty payload %v", p)
			}
			if p.Kind == media.KindVideo && !p.IsConfig() {
				if err := media.SplitAVCC(p.Payload, func([]byte) bool { return true }); err != nil {
					t.Fatalf("bad avcc %v: %v", p, err)
				}
			}
			return nil
		})
		err := d.Feed(b)
		if err == nil {
			err = d.Feed(b) // again: the state after a whole stream
		}
		if err != nil && (!errors.Is(err, ErrMalformed) || errors.Is(err, errParserPanic)) {
			t.Fatalf("Feed: %v", err)
		}
	})
}

func lalCRC(b []byte) uint32 { return mpegts.CalcCrc32(0xffffffff, b) }
