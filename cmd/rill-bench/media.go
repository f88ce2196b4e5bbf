package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// A medium is one pre-encoded test file, made once with ffmpeg and cached.
type medium struct {
	name string
	args []string // ffmpeg arguments between the inputs and the output
	size string
}

var (
	// mediumHD is the fan-out stream: 720p30 x264 + AAC, about 2.5 Mbit/s
	// (CBR with filler so that the synthetic picture does not undershoot),
	// a keyframe every 2 s.
	mediumHD = medium{
		name: "720p30-2500k.flv",
		size: "1280x720",
		args: []string{
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-b:v", "2350k", "-minrate", "2350k", "-maxrate", "2350k", "-bufsize", "2350k",
			"-x264-params", "nal-hrd=cbr", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2",
		},
	}
	// mediumSD is the many-streams stream: 360p30 at about 500 kbit/s.
	mediumSD = medium{
		name: "360p30-500k.flv",
		size: "640x360",
		args: []string{
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-b:v", "430k", "-minrate", "430k", "-maxrate", "430k", "-bufsize", "430k",
			"-x264-params", "nal-hrd=cbr", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2",
		},
	}
)

// ensure returns the path of the medium under dir, encoding it first if it
// is not there yet (30 s of lavfi testsrc2 + sine).
func (m medium) ensure(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, m.name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	tmp := path + ".tmp.flv"
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=" + m.size + ":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "30"}
	args = append(args, m.args...)
	args = append(args, "-f", "flv", tmp)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("encode %s: %w: %s", m.name, err, out)
	}
	return path, os.Rename(tmp, path)
}
