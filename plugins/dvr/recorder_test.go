package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// packetSource replays packets, then io.EOF.
type packetSource struct{ pkts []media.Packet }

func (s *packetSource) Read(context.Context) (media.Packet, error) {
	if len(s.pkts) == 0 {
		return media.Packet{}, io.EOF
	}
	p := s.pkts[0]
	s.pkts = s.pkts[1:]
	return p, nil
}

// testPackets reads the fmp4 package's FFmpeg-made FLV: 2 s of H.264 (GOP
// 1 s, B-frames) and AAC.
func testPackets(t *testing.T) []media.Packet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "fmp4", "testdata", "h264_aac.flv"))
	if err != nil {
		t.Fatal(err)
	}
	b = b[13:]
	var out []media.Packet
	for len(b) >= 15 {
		size := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24
		p, err := flv.FromTag(b[0], ts+5000, b[11:11+size]) // a stream that does not start at 0
		b = b[11+size+4:]
		if err == nil {
			out = append(out, p.Clone())
		}
	}
	return out
}

type notes struct {
	mu    sync.Mutex
	files []string
}

func (n *notes) notify(_ context.Context, _ sdk.ClientInfo, _ sdk.StreamRef, f map[string]string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.files = append(n.files, f["file"])
	return nil
}

func testRecorder(t *testing.T, block string) (*recorder, *notes) {
	t.Helper()
	v, err := vhostCfg(t, true, block)
	if err != nil {
		t.Fatal(err)
	}
	n := &notes{}
	r := newRecorder(sdk.StreamRef{Vhost: defaultVhost, App: "live", Stream: "s"}, sdk.ClientInfo{}, v, hclog.NewNullLogger(), n.notify)
	return r, n
}

func TestRecorderSessionFLV(t *testing.T) {
	dir := t.TempDir()
	r, n := testRecorder(t, `{"path":"`+dir+`/[app]/[stream].flv"}`)
	if err := r.run(context.Background(), &packetSource{testPackets(t)}); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "live", "s.flv")
	if len(n.files) != 1 || n.files[0] != want {
		t.Fatalf("on_dvr files %v, want [%s]", n.files, want)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("FLV\x01\x05")) {
		t.Errorf("header % x, want FLV with audio and video", b[:5])
	}
	md, err := flv.MetadataFromAMF0(b[13+11:])
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := md["duration"].(float64); d < 1.9 || d > 2.1 {
		t.Errorf("metadata duration %v, want about 2s", md["duration"])
	}
	if sz, _ := md["filesize"].(float64); int(sz) != len(b) {
		t.Errorf("metadata filesize %v, want %d", md["filesize"], len(b))
	}
	// The first media tag is at time 0 and is a key frame.
	off := 13
	for off < len(b) {
		size := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		ts := uint32(b[off+4])<<16 | uint32(b[off+5])<<8 | uint32(b[off+6])
		p, err := flv.FromTag(b[off], ts, b[off+11:off+11+size])
		off += 11 + size + 4
		if err != nil || p.IsConfig() || p.Kind == media.KindData {
			continue
		}
		if p.Kind != media.KindVideo || !p.IsKey() || p.DTS != 0 {
			t.Errorf("first media packet %v, want a key frame at 0", p)
		}
		break
	}
}

func TestRecorderSegmentMP4(t *testing.T) {
	dir := t.TempDir()
	r, n := testRecorder(t, `{"plan":"segment","duration":"1s","path":"`+dir+`/[stream]-[timestamp].mp4"}`)
	if err := r.run(context.Background(), &packetSource{testPackets(t)}); err != nil {
		t.Fatal(err)
	}
	if len(n.files) != 2 {
		t.Fatalf("on_dvr files %v, want 2 segments of 1s", n.files)
	}
	for _, f := range n.files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[4:8], []byte("ftyp")) || !bytes.Contains(b, []byte("avcC")) || !bytes.Contains(b, []byte("esds")) || !bytes.Contains(b, []byte("moof")) {
			t.Errorf("%s is not a fragmented MP4 with avc1 and mp4a", f)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestRecorderUnwritableDirectory(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, n := testRecorder(t, `{"path":"`+blocker+`/[stream].mp4"}`)
	err := r.run(context.Background(), &packetSource{testPackets(t)})
	if !errors.Is(err, errStopRecording) {
		t.Fatalf("run = %v, want errStopRecording", err)
	}
	if len(n.files) != 0 {
		t.Errorf("on_dvr for %v", n.files)
	}
}

func TestRecorderUnsupportedCodecMP4(t *testing.T) {
	dir := t.TempDir()
	r, n := testRecorder(t, `{"path":"`+dir+`/[stream].mp4"}`)
	pkts := []media.Packet{
		{Kind: media.KindAudio, Codec: media.CodecG711A, Payload: []byte{1, 2, 3}},
		{Kind: media.KindAudio, Codec: media.CodecG711A, Payload: []byte{1, 2, 3}},
	}
	err := r.run(context.Background(), &packetSource{pkts})
	if !errors.Is(err, errStopRecording) {
		t.Fatalf("run = %v, want errStopRecording (nothing recordable in mp4)", err)
	}
	if len(n.files) != 0 {
		t.Errorf("on_dvr for %v", n.files)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*")); len(tmp) != 0 {
		t.Errorf("files left: %v", tmp)
	}
}
