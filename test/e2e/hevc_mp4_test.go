package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// This file holds the Go side of the H.265/AV1 tests: FFmpeg writes a
// short clip as fragmented MP4, mp4Clip reads its decoder configuration
// records and samples back as media.Packets, and publishClip sends them as
// Enhanced RTMP tags (flv.AppendTag) in real time, since Debian's FFmpeg 5.1
// cannot send Enhanced RTMP.

// mp4Track is one track of a fragmented MP4 file read back.
type mp4Track struct {
	id        uint32
	entry     string // sample entry type: hvc1, av01, mp4a, ...
	config    []byte // hvcC/av1C payload; for mp4a the AudioSpecificConfig
	timescale uint32
	samples   []mp4Sample
}

type mp4Sample struct {
	dts  int64 // track timescale
	cto  int32
	key  bool
	data []byte
}

// mp4Box is a parsed box: its type, payload and (for containers) children.
type mp4Box struct {
	typ      string
	payload  []byte
	children []*mp4Box
}

// mp4Containers maps container box types to the bytes to skip before
// their children (full box headers, entry counts, sample entry fields).
var mp4Containers = map[string]int{
	"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "stbl": 0, "mvex": 0, "moof": 0, "traf": 0,
	"stsd": 8, "hvc1": 78, "hev1": 78, "av01": 78, "avc1": 78, "mp4a": 28,
}

func parseMP4Boxes(b []byte) ([]*mp4Box, error) {
	var out []*mp4Box
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%d trailing bytes are not a box", len(b))
		}
		size, hdr := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		typ := string(b[4:8])
		if size == 1 {
			if len(b) < 16 {
				return nil, fmt.Errorf("box %q: large size cut short", typ)
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return nil, fmt.Errorf("box %q: size %d with %d bytes left", typ, size, len(b))
		}
		n := &mp4Box{typ: typ, payload: b[hdr:size]}
		if skip, ok := mp4Containers[typ]; ok && len(n.payload) >= skip {
			kids, err := parseMP4Boxes(n.payload[skip:])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", typ, err)
			}
			n.children = kids
		}
		out = append(out, n)
		b = b[size:]
	}
	return out, nil
}

// mp4Find returns the boxes at a slash-separated path under nodes.
func mp4Find(nodes []*mp4Box, path string) []*mp4Box {
	cur := nodes
	var found []*mp4Box
	parts := strings.Split(path, "/")
	for i, p := range parts {
		found = nil
		for _, n := range cur {
			if n.typ == p {
				found = append(found, n)
			}
		}
		if i < len(parts)-1 {
			cur = nil
			for _, f := range found {
				cur = append(cur, f.children...)
			}
		}
	}
	return found
}

func be32(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }

// readFragmentedMP4 reads the tracks and samples of an init segment
// followed by moof+mdat fragments (as FFmpeg writes with
// -movflags frag_keyframe+empty_moov+default_base_moof).
func readFragmentedMP4(b []byte) (map[uint32]*mp4Track, error) {
	top, err := parseMP4Boxes(b)
	if err != nil {
		return nil, err
	}
	tracks := map[uint32]*mp4Track{}
	for _, trak := range mp4Find(top, "moov/trak") {
		tkhd := mp4Find(trak.children, "tkhd")
		mdhd := mp4Find(trak.children, "mdia/mdhd")
		stsd := mp4Find(trak.children, "mdia/minf/stbl/stsd")
		if len(tkhd) != 1 || len(mdhd) != 1 || len(stsd) != 1 || len(stsd[0].children) != 1 {
			return nil, errors.New("trak without tkhd, mdhd or one sample entry")
		}
		tr := &mp4Track{id: be32(tkhd[0].payload, 12)}
		if tkhd[0].payload[0] == 1 {
			tr.id = be32(tkhd[0].payload, 20)
		}
		if mdhd[0].payload[0] == 1 {
			tr.timescale = be32(mdhd[0].payload, 20)
		} else {
			tr.timescale = be32(mdhd[0].payload, 12)
		}
		e := stsd[0].children[0]
		tr.entry = e.typ
		for _, c := range e.children {
			switch c.typ {
			case "hvcC", "av1C", "avcC":
				tr.config = c.payload
			case "esds":
				tr.config = esdsASC(c.payload)
			}
		}
		tracks[tr.id] = tr
	}
	// Fragments: walk the top level with offsets for the data offsets.
	off := 0
	for _, n := range top {
		size := len(n.payload) + 8
		if n.typ == "moof" {
			if err := readMoof(b, off, n, tracks); err != nil {
				return nil, err
			}
		}
		off += size
	}
	return tracks, nil
}

func readMoof(file []byte, moofOff int, moof *mp4Box, tracks map[uint32]*mp4Track) error {
	for _, traf := range mp4Find(moof.children, "traf") {
		tfhd := mp4Find(traf.children, "tfhd")[0].payload
		flags := be32(tfhd, 0) & 0xffffff
		tr := tracks[be32(tfhd, 4)]
		if tr == nil {
			return fmt.Errorf("traf of unknown track %d", be32(tfhd, 4))
		}
		p, base := 8, moofOff
		if flags&0x01 != 0 {
			base = int(binary.BigEndian.Uint64(tfhd[p:]))
			p += 8
		}
		if flags&0x02 != 0 {
			p += 4
		}
		var defDur, defSize, defFlags uint32
		if flags&0x08 != 0 {
			defDur, p = be32(tfhd, p), p+4
		}
		if flags&0x10 != 0 {
			defSize, p = be32(tfhd, p), p+4
		}
		if flags&0x20 != 0 {
			defFlags = be32(tfhd, p)
		}
		tfdt := mp4Find(traf.children, "tfdt")[0].payload
		dts := int64(be32(tfdt, 4))
		if tfdt[0] == 1 {
			dts = int64(binary.BigEndian.Uint64(tfdt[4:]))
		}
		for _, trun := range mp4Find(traf.children, "trun") {
			pl := trun.payload
			tf := be32(pl, 0) & 0xffffff
			n, q, data := int(be32(pl, 4)), 8, base
			if tf&0x01 != 0 {
				data, q = base+int(int32(be32(pl, q))), q+4
			}
			first, hasFirst := uint32(0), tf&0x04 != 0
			if hasFirst {
				first, q = be32(pl, q), q+4
			}
			for i := range n {
				dur, sz, fl, cto := defDur, defSize, defFlags, int32(0)
				if tf&0x100 != 0 {
					dur, q = be32(pl, q), q+4
				}
				if tf&0x200 != 0 {
					sz, q = be32(pl, q), q+4
				}
				if tf&0x400 != 0 {
					fl, q = be32(pl, q), q+4
				} else if i == 0 && hasFirst {
					fl = first
				}
				if tf&0x800 != 0 {
					cto, q = int32(be32(pl, q)), q+4
				}
				if data < 0 || data+int(sz) > len(file) {
					return fmt.Errorf("track %d: sample data outside the file", tr.id)
				}
				tr.samples = append(tr.samples, mp4Sample{dts: dts, cto: cto, key: fl&0x10000 == 0, data: file[data : data+int(sz)]})
				data += int(sz)
				dts += int64(dur)
			}
		}
	}
	return nil
}

// esdsASC digs the DecoderSpecificInfo (tag 5) out of an esds payload.
func esdsASC(b []byte) []byte {
	if len(b) < 4 {
		return nil
	}
	b = b[4:] // full box header
	var walk func(b []byte) []byte
	walk = func(b []byte) []byte {
		for len(b) >= 2 {
			tag := b[0]
			n, i := 0, 1
			for ; i < len(b) && i <= 4; i++ {
				n = n<<7 | int(b[i]&0x7f)
				if b[i]&0x80 == 0 {
					i++
					break
				}
			}
			if i+n > len(b) {
				return nil
			}
			body := b[i : i+n]
			switch tag {
			case 0x05:
				return body
			case 0x03: // ES_ID(2) flags(1), no optional fields from FFmpeg
				if len(body) >= 3 {
					if r := walk(body[3:]); r != nil {
						return r
					}
				}
			case 0x04: // objectType(1) streamType(1) buffer(3) max(4) avg(4)
				if len(body) >= 13 {
					if r := walk(body[13:]); r != nil {
						return r
					}
				}
			}
			b = b[i+n:]
		}
		return nil
	}
	return walk(b)
}

// clip is an encoded test clip as packets: the configs first, then the
// frames interleaved by DTS.
type clip struct {
	vconfig, aconfig media.Packet
	packets          []media.Packet // configs first
	video            []media.Packet // coded video frames, in order
	audio            int
	vcodec           media.Codec
}

var (
	clipMu    sync.Mutex
	clipFiles = map[string]string{}
)

// encodeClip encodes a 4 s clip of size (320x240 by default) with AAC
// audio through FFmpeg into fragmented MP4, once per run. codec is "hevc"
// or "av1".
func encodeClip(t *testing.T, codec, size string) string {
	t.Helper()
	needTool(t, "ffmpeg")
	if size == "" {
		size = "320x240"
	}
	clipMu.Lock()
	defer clipMu.Unlock()
	name := codec + "-" + size
	if f, ok := clipFiles[name]; ok {
		return f
	}
	var venc []string
	switch codec {
	case "hevc":
		needEncoder(t, "libx265")
		venc = []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error", "-tag:v", "hvc1"}
	case "av1":
		switch {
		case hasEncoder("libsvtav1"):
			venc = []string{"-c:v", "libsvtav1", "-preset", "12", "-g", "25"}
		case hasEncoder("libaom-av1"):
			venc = []string{"-c:v", "libaom-av1", "-cpu-used", "8", "-g", "25", "-usage", "realtime"}
		default:
			needEncoder(t, "libsvtav1")
		}
	default:
		t.Fatalf("unknown codec %q", codec)
	}
	dir := filepath.Join(binDir, "media")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "4", "-pix_fmt", "yuv420p"}
	args = append(args, venc...)
	args = append(args, "-c:a", "aac", "-b:a", "64k", "-movflags", "frag_keyframe+empty_moov+default_base_moof", out)
	cmd := exec.Command("ffmpeg", args...)
	cmd.Env = append(os.Environ(), "SVT_LOG=1") // SVT-AV1: errors only
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	clipFiles[name] = out
	return out
}

var (
	encodersOnce sync.Once
	encoders     string
)

func hasEncoder(name string) bool {
	encodersOnce.Do(func() {
		b, _ := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
		encoders = string(b)
	})
	return strings.Contains(encoders, " "+name+" ")
}

// needEncoder fails (with CI set) or skips when ffmpeg lacks an encoder.
func needEncoder(t *testing.T, name string) {
	t.Helper()
	if !hasEncoder(name) {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffmpeg encoder %s is required in CI", name)
		}
		t.Skipf("ffmpeg has no %s encoder", name)
	}
}

// loadClip encodes (once) and reads a clip back as packets.
func loadClip(t *testing.T, codec, size string) *clip {
	t.Helper()
	file := encodeClip(t, codec, size)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tracks, err := readFragmentedMP4(b)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	c := &clip{}
	type src struct {
		tr    *mp4Track
		codec media.Codec
	}
	var srcs []src
	for _, tr := range tracks {
		var mc media.Codec
		switch tr.entry {
		case "hvc1", "hev1":
			mc = media.CodecH265
		case "av01":
			mc = media.CodecAV1
		case "mp4a":
			mc = media.CodecAAC
		default:
			t.Fatalf("%s: unexpected sample entry %q", file, tr.entry)
		}
		if len(tr.config) == 0 || tr.timescale == 0 || len(tr.samples) == 0 {
			t.Fatalf("%s: track %s without config, timescale or samples", file, tr.entry)
		}
		cfg := media.Packet{Kind: mc.Kind(), Codec: mc, Flags: media.FlagConfig, Payload: tr.config}
		if mc.Kind() == media.KindVideo {
			c.vconfig, c.vcodec = cfg, mc
		} else {
			c.aconfig = cfg
		}
		srcs = append(srcs, src{tr, mc})
	}
	if c.vconfig.Payload == nil || c.aconfig.Payload == nil {
		t.Fatalf("%s: want a video and an audio track", file)
	}
	c.packets = append(c.packets, c.vconfig, c.aconfig)
	var frames []media.Packet
	for _, s := range srcs {
		ts := time.Duration(s.tr.timescale)
		for _, smp := range s.tr.samples {
			p := media.Packet{Kind: s.codec.Kind(), Codec: s.codec, Payload: smp.data,
				DTS: time.Duration(smp.dts) * time.Second / ts}
			// Whole milliseconds, as RTMP carries them: the comparison
			// with what comes back is then exact.
			p.DTS = p.DTS.Truncate(time.Millisecond)
			p.PTS = p.DTS + (time.Duration(smp.cto) * time.Second / ts).Truncate(time.Millisecond)
			if s.codec.Kind() == media.KindVideo && smp.key {
				p.Flags = media.FlagKey
			}
			frames = append(frames, p)
		}
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].DTS < frames[j].DTS })
	for _, p := range frames {
		if p.Kind == media.KindVideo {
			c.video = append(c.video, p)
		} else {
			c.audio++
		}
	}
	c.packets = append(c.packets, frames...)
	if !c.video[0].IsKey() {
		t.Fatalf("%s: the first video frame is not a key frame", file)
	}
	return c
}

// clipMessages converts the clip's packets to RTMP messages with
// flv.AppendTag (Enhanced RTMP for H.265 and AV1).
func clipMessages(t *testing.T, c *clip) []base.RtmpMsg {
	t.Helper()
	var msgs []base.RtmpMsg
	for _, p := range c.packets {
		body, typ, ts, err := flv.AppendTag(nil, p)
		if err != nil {
			t.Fatalf("AppendTag %v dts %v: %v", p.Codec, p.DTS, err)
		}
		csid := lalrtmp.CsidVideo
		if typ == flv.TagAudio {
			csid = lalrtmp.CsidAudio
		}
		msgs = append(msgs, base.RtmpMsg{
			Header:  base.RtmpHeader{Csid: csid, MsgLen: uint32(len(body)), MsgTypeId: typ, MsgStreamId: lalrtmp.Msid1, TimestampAbs: ts},
			Payload: body,
		})
	}
	return msgs
}

// publishClip pushes the clip to url in real time (times loops, the
// timestamps of each loop following the previous one) and returns the
// number of video frames sent. It stops early when stop is closed.
func publishClip(t *testing.T, c *clip, url string, loops int, stop <-chan struct{}) (int, error) {
	t.Helper()
	msgs := clipMessages(t, c)
	push := lalrtmp.NewPushSession(func(o *lalrtmp.PushSessionOption) { o.PushTimeoutMs = 10000 })
	if err := push.Push(url); err != nil {
		return 0, err
	}
	defer push.Dispose()
	last := msgs[len(msgs)-1].Header.TimestampAbs + 40
	start := time.Now()
	sent := 0
	for loop := range loops {
		offset := uint32(loop) * last
		for i, m := range msgs {
			isCfg := i < 2
			if isCfg && loop > 0 {
				continue // the configs go once
			}
			ts := m.Header.TimestampAbs + offset
			m.Header.TimestampAbs = ts
			if due := time.Duration(ts) * time.Millisecond; time.Since(start) < due {
				select {
				case <-stop:
					return sent, push.Flush()
				case <-time.After(due - time.Since(start)):
				}
			}
			if err := push.WriteMsg(m); err != nil {
				return sent, err
			}
			if m.Header.MsgTypeId == base.RtmpTypeIdVideo && !isCfg {
				sent++
			}
		}
	}
	return sent, push.Flush()
}

// rtmpMsg is a message received by msgPlayer.
type rtmpMsg struct {
	typ  uint8
	ts   uint32
	body []byte
}

// msgPlayer plays url with lal's PullSession and keeps every message.
type msgPlayer struct {
	mu   sync.Mutex
	msgs []rtmpMsg
	sess *lalrtmp.PullSession
}

// startMsgPlayer plays url and returns once the server has started the
// play (a player may come before the publisher: the rtmp plugin's
// play_wait).
func startMsgPlayer(t *testing.T, url string) *msgPlayer {
	t.Helper()
	p := &msgPlayer{}
	p.sess = lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) { o.PullTimeoutMs = 15000 })
	p.sess.WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		p.mu.Lock()
		p.msgs = append(p.msgs, rtmpMsg{typ: msg.Header.MsgTypeId, ts: msg.Header.TimestampAbs, body: bytes.Clone(msg.Payload)})
		p.mu.Unlock()
	})
	t.Cleanup(func() { _ = p.sess.Dispose() })
	if err := p.sess.Pull(url); err != nil {
		t.Fatalf("pull %s: %v", url, err)
	}
	return p
}

func (p *msgPlayer) snapshot() []rtmpMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rtmpMsg(nil), p.msgs...)
}

// checkVideoTags checks a played-back sequence of video tags against the
// clip: the first is the Enhanced RTMP sequence start of the right FourCC
// with the source's configuration record, every tag converts back with
// flv.FromTag to the right codec, DTS never goes backwards, and the coded
// frames equal the ones sent (payload, key flag, DTS and PTS relative to the
// first), in order. It returns the number of coded frames.
func checkVideoTags(t *testing.T, what string, c *clip, tags []rtmpMsg) int {
	t.Helper()
	if len(tags) == 0 {
		t.Fatalf("%s: no video tags", what)
	}
	fourCC := map[media.Codec]string{media.CodecH265: "hvc1", media.CodecAV1: "av01"}[c.vcodec]
	first := tags[0].body
	if len(first) < 5 || first[0]&0x80 == 0 || first[0]&0x0f != 0 || string(first[1:5]) != fourCC {
		t.Fatalf("%s: first video tag % x is not an enhanced sequence start of %s", what, first[:min(len(first), 8)], fourCC)
	}
	if !bytes.Equal(first[5:], c.vconfig.Payload) {
		t.Fatalf("%s: sequence start config (%d bytes) differs from the source's (%d bytes)", what, len(first)-5, len(c.vconfig.Payload))
	}
	var frames []media.Packet
	var lastDTS time.Duration = -1
	for i, m := range tags {
		p, err := flv.FromTag(flv.TagVideo, m.ts, m.body)
		if err != nil {
			t.Fatalf("%s: video tag %d (% x...): FromTag: %v", what, i, m.body[:min(len(m.body), 8)], err)
		}
		if p.Codec != c.vcodec {
			t.Fatalf("%s: video tag %d has codec %v, want %v", what, i, p.Codec, c.vcodec)
		}
		if p.IsConfig() {
			if !bytes.Equal(p.Payload, c.vconfig.Payload) {
				t.Fatalf("%s: video tag %d: a different configuration record", what, i)
			}
			continue
		}
		if p.DTS < lastDTS {
			t.Fatalf("%s: video tag %d: dts %v after %v", what, i, p.DTS, lastDTS)
		}
		lastDTS = p.DTS
		frames = append(frames, p)
	}
	if len(frames) == 0 {
		t.Fatalf("%s: no coded frames", what)
	}
	if !frames[0].IsKey() {
		t.Fatalf("%s: the first coded frame is not a key frame", what)
	}
	// Find the first frame in the clip (a player may join mid-stream; the
	// clip may loop): match on the payload of the first key frame.
	start := -1
	for i, v := range c.video {
		if v.IsKey() && bytes.Equal(v.Payload, frames[0].Payload) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("%s: the first received key frame is not in the clip", what)
	}
	base0, sbase := frames[0].DTS, c.video[start].DTS
	for i, f := range frames {
		k := (start + i) % len(c.video)
		loop := (start + i) / len(c.video)
		want := c.video[k]
		if !bytes.Equal(f.Payload, want.Payload) || f.IsKey() != want.IsKey() {
			t.Fatalf("%s: frame %d differs from clip frame %d (key %v/%v, %d/%d bytes)", what, i, k, f.IsKey(), want.IsKey(), len(f.Payload), len(want.Payload))
		}
		if loop == 0 && (f.DTS-base0 != want.DTS-sbase || f.PTS-f.DTS != want.PTS-want.DTS) {
			t.Fatalf("%s: frame %d: dts %v pts %v, want dts %v pts %v (relative)", what, i, f.DTS-base0, f.PTS-base0, want.DTS-sbase, want.PTS-sbase)
		}
	}
	return len(frames)
}
