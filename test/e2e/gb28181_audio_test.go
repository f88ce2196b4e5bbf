package e2e

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// gbAlaw encodes secs seconds of a tone to raw G.711 A-law with ffmpeg and
// splits it into 40 ms frames (320 bytes at 8 kHz).
func gbAlaw(t *testing.T, hz, secs int) [][]byte {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tone.alaw")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i",
		"sine=frequency="+strconv.Itoa(hz)+":sample_rate=8000", "-t", strconv.Itoa(secs), "-ac", "1", "-c:a", "pcm_alaw", "-f", "alaw", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for len(b) >= 320 {
		frames = append(frames, b[:320])
		b = b[320:]
	}
	if len(frames) < 25 {
		t.Fatalf("%d A-law frames", len(frames))
	}
	return frames
}

// gbPackAudio adds a G.711 A-law PES (stream 0xc0, PSM stream_type 0x90,
// GB28181 §C.2.4) to the pack gbPack made: its PSM, when it has one, is
// replaced by one listing the audio stream too.
func gbPackAudio(pack, alaw []byte, ts uint64, key bool) []byte {
	var w bytes.Buffer
	const packHeader = 16 // gbPack's pack header with 2 bytes of stuffing
	w.Write(pack[:packHeader])
	rest := pack[packHeader:]
	if key {
		psmLen := 6 + int(binary.BigEndian.Uint16(rest[4:]))
		rest = rest[psmLen:]
		psm := []byte{0, 0, 1, 0xbc, 0, 0, 0xe0, 0xff, 0, 0, 0, 8,
			0x1b, 0xe0, 0, 0, // H.264 video
			0x90, 0xc0, 0, 0, // G.711 A-law audio
			0, 0, 0, 0} // CRC_32 (not checked by receivers)
		binary.BigEndian.PutUint16(psm[4:], uint16(len(psm)-6))
		w.Write(psm)
	}
	w.Write(rest)
	hdr := []byte{0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0}
	gbPutTS(hdr[9:], 2, ts)
	binary.BigEndian.PutUint16(hdr[4:], uint16(len(hdr)-6+len(alaw)))
	w.Write(hdr)
	w.Write(alaw)
	return w.Bytes()
}

// TestGB28181G711ToAAC: the camera simulator streams PS with H.264 and
// ffmpeg-encoded G.711 A-law; the plugin transcodes the audio to AAC, so
// ffprobe over RTMP sees AAC beside the H.264 and ffmpeg decodes it to the
// camera's 500 Hz tone.
func TestGB28181G711ToAAC(t *testing.T) {
	t.Parallel()
	d, addrs, rtmp := startGB(t, "udp")
	g := newGBDevice(t, addrs.sipUDP, "secret", gbAUs(t))
	g.audio = gbAlaw(t, 500, 6)
	if code := g.register(); code != 200 {
		t.Fatalf("register: %d", code)
	}
	g.startKeepalive()
	stream := gbDeviceID + "_" + gbChanID
	waitPublished(t, d, "live", stream)
	url := "rtmp://" + rtmp + "/live/" + stream
	p := ffprobe(t, url, 3)
	var vcodec, acodec string
	audio := 0
	for _, s := range p.Streams {
		switch s.CodecType {
		case "video":
			vcodec = s.CodecName
		case "audio":
			acodec = s.CodecName
			for _, pk := range p.Packets {
				if pk.StreamIndex == s.Index {
					audio++
				}
			}
		}
	}
	t.Logf("rtmp: video %s, audio %s with %d packets", vcodec, acodec, audio)
	// 3 s of 8 kHz AAC is about 23 frames.
	if vcodec != "h264" || acodec != "aac" || audio < 10 {
		t.Fatalf("rtmp probe: video %q audio %q (%d packets): %+v", vcodec, acodec, audio, p.Streams)
	}
	pcm := pcmOver(t, url, 3)
	if len(pcm) < 48000 {
		t.Fatalf("%d samples of audio over rtmp", len(pcm))
	}
	rms, hz := toneOf(pcm[len(pcm)/3:], 48000)
	t.Logf("rtmp audio: %d samples, rms %.3f, %.1f Hz", len(pcm), rms, hz)
	if rms < 0.02 || math.Abs(hz-500) > 15 {
		t.Fatalf("rtmp audio rms %.3f at %.1f Hz, camera sent 500 Hz", rms, hz)
	}
}
