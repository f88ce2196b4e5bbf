package fmp4

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk/media"
)

// node is a parsed box: its type, payload and children (for containers).
type node struct {
	typ      string
	payload  []byte
	children []*node
}

var containers = map[string]int{
	// type: bytes to skip before the children (full box header, entry counts)
	"moov": 0, "trak": 0, "mdia": 0, "minf": 0, "dinf": 0, "stbl": 0, "mvex": 0,
	"moof": 0, "traf": 0, "dref": 8, "stsd": 8,
	"avc1": 78, "hvc1": 78, "mp4a": 28, "Opus": 28,
}

// parseBoxes walks b as a sequence of boxes and fails the test on any
// size that does not add up.
func parseBoxes(t *testing.T, b []byte) []*node {
	t.Helper()
	var out []*node
	for len(b) > 0 {
		if len(b) < 8 {
			t.Fatalf("%d trailing bytes are not a box", len(b))
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hdr := uint64(8)
		if size == 1 {
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			t.Fatalf("box %q: size %d with %d bytes left", typ, size, len(b))
		}
		n := &node{typ: typ, payload: b[hdr:size]}
		if skip, ok := containers[typ]; ok {
			n.children = parseBoxes(t, n.payload[skip:])
		}
		out = append(out, n)
		b = b[size:]
	}
	return out
}

// find returns the boxes at a slash-separated path under nodes.
func find(nodes []*node, path string) []*node {
	parts := bytes.Split([]byte(path), []byte("/"))
	cur := nodes
	var found []*node
	for i, p := range parts {
		found = nil
		for _, n := range cur {
			if n.typ == string(p) {
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

func u32at(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }

// readFLV returns the packets of an FLV file.
func readFLV(t *testing.T, name string) []media.Packet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 13 || string(b[:3]) != "FLV" {
		t.Fatalf("%s is not an FLV file", name)
	}
	b = b[13:]
	var out []media.Packet
	for len(b) >= 15 {
		typ := b[0]
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24
		if 11+size+4 > len(b) {
			t.Fatalf("%s: tag cut short", name)
		}
		p, err := flv.FromTag(typ, ts, b[11:11+size])
		b = b[11+size+4:]
		if errors.Is(err, flv.ErrSkip) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, p.Clone())
	}
	return out
}

// needFFprobe skips a test without ffprobe, or fails it when CI is set.
func needFFprobe(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ffprobe is required in CI: %v", err)
		}
		t.Skip("ffprobe not installed")
	}
}

type probe struct {
	Streams []struct {
		CodecName    string `json:"codec_name"`
		NbReadFrames string `json:"nb_read_frames"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", file).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", file, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// mux writes packets through a Muxer made from their config packets.
func mux(t *testing.T, pkts []media.Packet, opts Options) []byte {
	t.Helper()
	var tracks []Track
	for _, p := range pkts {
		if p.IsConfig() {
			tr, err := NewTrack(uint32(len(tracks)+1), p)
			if err != nil {
				t.Fatal(err)
			}
			tracks = append(tracks, tr)
		}
	}
	var buf bytes.Buffer
	m, err := NewMuxer(&buf, tracks, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := m.WritePacket(p); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
