// Package pystats holds the Go side of the Python plugin's tests: rings
// written by sdk/shm's Writer, read by the Python ring reader (rillring.py)
// under python3 -m unittest.
package pystats

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rill-media/rill/sdk/shm"
)

const python = "/usr/bin/python3"

// expRecord is what the Python test must read for one record.
type expRecord struct {
	Seq    uint64 `json:"seq"`
	Kind   uint8  `json:"kind"`
	Codec  uint8  `json:"codec"`
	Flags  uint32 `json:"flags"`
	DTS    int64  `json:"dts"`
	PTS    int64  `json:"pts"`
	Len    int    `json:"len"`
	SHA256 string `json:"sha256"`
	Wraps  bool   `json:"wraps"` // the payload straddles the end of the data region
}

type expConfig struct {
	Slot   int    `json:"slot"`
	Kind   uint8  `json:"kind"`
	Codec  uint8  `json:"codec"`
	Len    int    `json:"len"`
	SHA256 string `json:"sha256"`
}

type fixture struct {
	Ring    string      `json:"ring"`
	Records []expRecord `json:"records"`
	Configs []expConfig `json:"configs,omitempty"`
	Ended   bool        `json:"ended"`
	// Header: what the writer counted per kind (1..3) and its codecs.
	KindRecords [4]uint64 `json:"kind_records"`
	KindCodec   [4]uint8  `json:"kind_codec"`
	Bytes       uint64    `json:"bytes"`
	Slots       int       `json:"slots"`
	DataSize    int       `json:"data_size"`
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// pattern is the self-describing payload of record seq: its seq, then
// bytes derived from it, so a reader can check any record it returns.
func pattern(seq uint64, n int) []byte {
	p := make([]byte, n)
	binary.LittleEndian.PutUint64(p, seq)
	for i := 8; i < n; i++ {
		p[i] = byte(seq*31 + uint64(i))
	}
	return p
}

func align8(n int) int { return (n + 7) &^ 7 }

// writer writes records into a ring and remembers what it wrote.
type writer struct {
	t       *testing.T
	w       *shm.Writer
	fx      *fixture
	reserve int
	all     map[uint64]expRecord
}

func (w *writer) write(kind, codec uint8, flags uint32, n int) expRecord {
	w.t.Helper()
	seq := w.w.Seq() + 1
	p := pattern(seq, n)
	m := shm.Meta{Kind: kind, Codec: codec, Flags: flags, DTS: int64(seq) * 1000, PTS: int64(seq)*1000 + 500}
	if seq%5 == 0 {
		m.DTS, m.PTS = -m.DTS, -m.PTS // negative timestamps read back signed
	}
	if err := w.w.Write(m, p); err != nil {
		w.t.Errorf("write record %d: %v", seq, err)
	}
	phys := w.reserve % w.fx.DataSize
	r := expRecord{Seq: seq, Kind: kind, Codec: codec, Flags: flags, DTS: m.DTS, PTS: m.PTS, Len: n, SHA256: sum(p), Wraps: phys+n > w.fx.DataSize}
	w.reserve += align8(n)
	if kind >= 1 && kind <= 3 {
		w.fx.KindRecords[kind]++
		w.fx.KindCodec[kind] = codec
	}
	w.fx.Bytes += uint64(n)
	w.all[seq] = r
	return r
}

func createRing(t *testing.T, dir, name string, opts shm.Options) (*shm.Segment, *writer, *fixture) {
	t.Helper()
	seg, err := shm.Create(filepath.Join(dir, name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	fx := &fixture{Ring: seg.Path, Slots: opts.Slots, DataSize: opts.DataSize}
	return seg, &writer{t: t, w: shm.NewWriter(seg.Ring), fx: fx, all: map[uint64]expRecord{}}, fx
}

// Kinds and codecs as sdk/media numbers them; media flags sit above bit 8.
const (
	video, audio, data = 1, 2, 3
	h264, aac, amf0    = 1, 4, 9
	keyFlag            = 1 << 8
	configFlag         = 2 << 8
)

// TestPythonRingReader writes rings with sdk/shm's Writer and has the
// Python reader (rillring.py, python3 -m unittest test_rillring) read them:
// every record and config slot compared byte for byte (sha256), payloads
// that wrap around the data region, signed timestamps, the header's
// per-kind counts, the end of a ring, a dead writer, a reader lapped by a
// writer that the test paces (it skips to the newest sync record and counts
// the loss), a writer racing the reader (no record it returns is torn), and
// corrupted copies of a ring (only RingError, never another exception).
func TestPythonRingReader(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (apt-get install -y python3): %v", python, err)
		}
		t.Skipf("%s not installed", python)
	}
	dir := t.TempDir()
	fixtures := map[string]*fixture{}

	// basic: configs, every kind, read from the first (sync) record to the end.
	{
		seg, w, fx := createRing(t, dir, "basic", shm.Options{DataSize: 64 << 10, Slots: 64, ConfigSize: 4096})
		for i, c := range []struct {
			slot        int
			kind, codec uint8
			flags       uint32
			payload     []byte
		}{
			{0, data, amf0, 0, []byte("\x02\x00\x0aonMetaData")},
			{1, video, h264, configFlag | keyFlag, pattern(1001, 40)},
			{2, audio, aac, configFlag, []byte{0x12, 0x10}},
		} {
			if err := w.w.SetConfig(c.slot, shm.Meta{Kind: c.kind, Codec: c.codec, Flags: c.flags}, c.payload); err != nil {
				t.Fatalf("config %d: %v", i, err)
			}
			fx.Configs = append(fx.Configs, expConfig{Slot: c.slot, Kind: c.kind, Codec: c.codec, Len: len(c.payload), SHA256: sum(c.payload)})
		}
		for i := range 40 {
			switch {
			case i == 0:
				fx.Records = append(fx.Records, w.write(video, h264, shm.FlagSync|keyFlag, 900))
			case i%7 == 6:
				fx.Records = append(fx.Records, w.write(data, amf0, 0, 30))
			case i%2 == 0:
				fx.Records = append(fx.Records, w.write(video, h264, 0, 500+i*13))
			default:
				fx.Records = append(fx.Records, w.write(audio, aac, 0, 200+i))
			}
		}
		seg.Ring.End()
		fx.Ended = true
		fixtures["basic"] = fx
	}

	// wrap: a small data region gone round many times; the reader starts at
	// the newest sync record and reads payloads that straddle its end.
	{
		const ds = 4096
		seg, w, fx := createRing(t, dir, "wrap", shm.Options{DataSize: ds, Slots: 8, ConfigSize: 64})
		for range 21 {
			w.write(audio, aac, 0, 600)
		}
		// Place the sync record 104 bytes before the end of the region.
		for gap := (ds - 104 - w.reserve%ds + ds) % ds; gap > 0; { // sizes are multiples of 8
			n := min(gap, 1000)
			w.write(audio, aac, 0, n)
			gap -= n
		}
		fx.Records = append(fx.Records, w.write(video, h264, shm.FlagSync|keyFlag, 600))
		for range 3 {
			fx.Records = append(fx.Records, w.write(audio, aac, 0, 500))
		}
		if !fx.Records[0].Wraps {
			t.Fatalf("fixture wrap: the sync record does not straddle the end of the data region: %+v", fx.Records[0])
		}
		seg.Ring.End()
		fx.Ended = true
		fixtures["wrap"] = fx
	}

	// gone: a ring whose writer process is dead, not ended, never written.
	{
		cmd := exec.Command("true")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		opts := shm.Options{DataSize: 4096, Slots: 8, ConfigSize: 64}
		mem := make([]byte, shm.Size(opts))
		if _, err := shm.Format(mem, opts, cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "gone")
		if err := os.WriteFile(path, mem, 0o600); err != nil {
			t.Fatal(err)
		}
		fixtures["gone"] = &fixture{Ring: path, Slots: 8, DataSize: 4096}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	waitFile := func(name string) bool {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}

	// lap: the Python reader reads 3 records and says so (file lap.go);
	// the writer then writes 40 more into 8 slots (a whole lap) and says so
	// (lap.done): the reader's next read finds itself lapped.
	{
		seg, w, fx := createRing(t, dir, "lap", shm.Options{DataSize: 64 << 10, Slots: 8, ConfigSize: 64})
		w.write(video, h264, shm.FlagSync|keyFlag, 100)
		for range 4 {
			w.write(audio, aac, 0, 100)
		}
		fixtures["lap"] = &fixture{Ring: fx.Ring, Slots: fx.Slots, DataSize: fx.DataSize}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer seg.Ring.End()
			if !waitFile("lap.go") {
				errs <- errors.New("lap: the Python reader never asked for the lap")
				return
			}
			for i := range 40 {
				if i == 36 {
					w.write(video, h264, shm.FlagSync|keyFlag, 100) // seq 42: the newest sync
				} else {
					w.write(audio, aac, 0, 100)
				}
			}
			after := fixture{Ring: fx.Ring, Slots: fx.Slots, DataSize: fx.DataSize,
				Records: []expRecord{w.all[42], w.all[43], w.all[44], w.all[45]}}
			if err := os.WriteFile(filepath.Join(dir, "lap-after.json"), mustJSON(after), 0o644); err != nil {
				errs <- err
			}
			if err := os.WriteFile(filepath.Join(dir, "lap.done"), nil, 0o644); err != nil {
				errs <- err
			}
		}()
	}

	// race: the writer writes 200000 self-describing records into 16 slots
	// as fast as it can while the Python reader reads.
	{
		seg, w, fx := createRing(t, dir, "race", shm.Options{DataSize: 16 << 10, Slots: 16, ConfigSize: 64})
		fx.Records = nil
		fixtures["race"] = fx
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer seg.Ring.End()
			if !waitFile("race.go") {
				errs <- errors.New("race: the Python reader never started")
				return
			}
			for i := range 200000 {
				seq := uint64(i + 1)
				n := 16 + int(seq*7919%3000)
				p := pattern(seq, n)
				m := shm.Meta{Kind: audio, Codec: aac, DTS: int64(seq) * 1000, PTS: int64(seq) * 1000}
				if seq%8 == 1 {
					m.Kind, m.Codec, m.Flags = video, h264, shm.FlagSync|keyFlag
				}
				if err := w.w.Write(m, p); err != nil {
					errs <- err
					return
				}
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}

	for name, fx := range fixtures {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), mustJSON(fx), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "test_rillring")
	cmd.Env = append(os.Environ(), "RILL_RING_FIXTURES="+dir)
	out, err := cmd.CombinedOutput()
	cancel() // releases writers still waiting for a reader that failed early
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err != nil {
		t.Fatalf("python3 -m unittest test_rillring: %v\n%s", err, out)
	}
	s := string(out)
	m := regexp.MustCompile(`Ran (\d+) tests?`).FindStringSubmatch(s)
	if m == nil || !strings.Contains(s, "\nOK") || strings.Contains(s, "skipped") {
		t.Fatalf("python3 -m unittest did not pass every test:\n%s", s)
	}
	if n, _ := strconv.Atoi(m[1]); n < 7 {
		t.Fatalf("python3 -m unittest ran %d tests, want at least 7:\n%s", n, s)
	}
	t.Logf("%s", s)
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		panic(err)
	}
	return b
}
