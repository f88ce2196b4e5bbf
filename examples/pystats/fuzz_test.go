package pystats

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/shm"
)

// pyReader is one long-lived python3 fuzz_rillring.py per fuzzing process.
type pyReader struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
	err error
}

var (
	pyOnce sync.Once
	py     pyReader
)

func startPyReader() {
	cmd := exec.Command(python, "fuzz_rillring.py")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		py.err = err
		return
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		py.err = err
		return
	}
	if err := cmd.Start(); err != nil {
		py.err = err
		return
	}
	py = pyReader{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// ask has the Python reader read the ring at path and returns its answer;
// a reader that takes more than 10 s over one ring is hung.
func (p *pyReader) ask(path string) (string, error) {
	if _, err := fmt.Fprintln(p.in, path); err != nil {
		return "", err
	}
	type answer struct {
		line string
		err  error
	}
	c := make(chan answer, 1)
	go func() {
		line, err := p.out.ReadString('\n')
		c <- answer{strings.TrimSpace(line), err}
	}()
	select {
	case a := <-c:
		return a.line, a.err
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		return "", errors.New("no answer within 10s: the reader hangs")
	}
}

// fuzzBase is a valid ring with records, wrapped payloads and configs,
// and the size of the part of it that fuzzing patches.
func fuzzBase(t testing.TB) ([]byte, int) {
	opts := shm.Options{DataSize: 4096, Slots: 8, ConfigSize: 64}
	mem := make([]byte, shm.Size(opts))
	r, err := shm.Format(mem, opts, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	w := shm.NewWriter(r)
	if err := w.SetConfig(1, shm.Meta{Kind: video, Codec: h264, Flags: configFlag}, pattern(7, 40)); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		m := shm.Meta{Kind: audio, Codec: aac, DTS: int64(i)}
		if i%5 == 0 {
			m = shm.Meta{Kind: video, Codec: h264, Flags: shm.FlagSync | keyFlag, DTS: int64(i)}
		}
		if err := w.Write(m, pattern(uint64(i+1), 300+i*17)); err != nil {
			t.Fatal(err)
		}
	}
	// Patches land before the data region: the header, the reader area,
	// the config slots and the index (config_off 20480, four slots of
	// 64+64 bytes, eight 64-byte entries), every word the reader interprets.
	return mem, 20480 + 4*(64+64) + 8*64
}

// FuzzPythonRingReader: rings whose header, config slots and index were
// overwritten with arbitrary words (what a buggy or malicious writer can
// do) and then truncated are read by the Python reader, which must refuse
// them with a RingError or read them, never fail another way.
func FuzzPythonRingReader(f *testing.F) {
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") != "" {
			f.Fatalf("%s is required in CI: %v", python, err)
		}
		f.Skipf("%s not installed", python)
	}
	base, window := fuzzBase(f)
	f.Add([]byte{}, uint32(0))
	f.Add([]byte{64, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f}, uint32(0)) // write_seq near 2^62
	f.Add([]byte{9, 0, 0, 0, 1, 0, 0, 0, 0, 0}, uint32(0))                          // slots
	f.Add([]byte{0x50, 0x4a, 0, 0x20, 0, 0, 0, 0, 0, 0}, uint32(0))                 // an index entry's offset
	f.Add([]byte{}, uint32(5000))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, patches []byte, truncate uint32) {
		pyOnce.Do(startPyReader)
		if py.err != nil {
			t.Fatalf("start python3 fuzz_rillring.py: %v", py.err)
		}
		mem := append([]byte(nil), base...)
		for ; len(patches) >= 10; patches = patches[10:] {
			off := int(binary.LittleEndian.Uint16(patches)) * 4 % window
			if off+8 > len(mem) {
				continue
			}
			copy(mem[off:off+8], patches[2:10])
		}
		if truncate != 0 {
			mem = mem[:int(truncate)%len(mem)]
		}
		path := filepath.Join(dir, fmt.Sprintf("ring-%d", os.Getpid()))
		if err := os.WriteFile(path, mem, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := py.ask(path)
		if err != nil {
			_ = os.WriteFile(filepath.Join(os.TempDir(), "pystats-fuzz-ring"), mem, 0o600)
			t.Fatalf("python reader: %v (ring saved in %s)", err, filepath.Join(os.TempDir(), "pystats-fuzz-ring"))
		}
		if !strings.HasPrefix(got, "ok") && !strings.HasPrefix(got, "error ") {
			t.Fatalf("python reader on a corrupted ring: %s", got)
		}
	})
}
