package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rill-media/rill/internal/flv"
)

// tornRecording records packets into a file as the recorder does and
// leaves it as a killed process would: open .tmp, journal beside it, a torn
// last write. It returns the final name the file was meant to get.
func tornRecording(t *testing.T, dir, ext string, torn []byte, edit func(*journal)) string {
	t.Helper()
	r, _ := testRecorder(t, `{"path":"`+dir+`/[app]/[stream].`+ext+`"}`)
	r.client.ID = "pub1"
	for _, p := range testPackets(t) {
		if err := r.packet(p); err != nil {
			t.Fatal(err)
		}
	}
	if r.cur == nil {
		t.Fatal("no file open")
	}
	final := r.cur.path
	if _, err := r.cur.f.Write(torn); err != nil {
		t.Fatal(err)
	}
	r.cur.f.Close()
	jp := journalPath(final)
	b, err := os.ReadFile(jp)
	if err != nil {
		t.Fatalf("journal of a file being written: %v", err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.PID != os.Getpid() || j.Client.ID != "pub1" || j.Stream.Stream != "s" || j.Format != ext {
		t.Fatalf("journal %+v", j)
	}
	edit(&j)
	if err := writeJournal(final, j); err != nil {
		t.Fatal(err)
	}
	return final
}

func diedEarlier(j *journal) { j.Started = procStart.Add(-time.Hour) } // same pid, an earlier process
func diedOther(j *journal)   { j.PID = 0 }                             // a process that is gone

func TestRecoverTornFLV(t *testing.T) {
	dir := t.TempDir()
	torn := []byte{9, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3} // a video tag header promising 4 KiB, then 3 bytes
	final := tornRecording(t, dir, "flv", torn, diedEarlier)
	tmpSize := fileSize(t, final+tmpSuffix)
	got, err := recoverDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].file != final || got[0].client.ID != "pub1" || got[0].stream.App != "live" {
		t.Fatalf("recovered %+v, want %s of client pub1", got, final)
	}
	if _, err := os.Stat(final + tmpSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
	if _, err := os.Stat(journalPath(final)); !os.IsNotExist(err) {
		t.Errorf("journal still there: %v", err)
	}
	size := fileSize(t, final)
	if size != tmpSize-int64(len(torn)) {
		t.Errorf("size %d, want the torn tag cut: %d", size, tmpSize-int64(len(torn)))
	}
	// The file is whole again: every tag parses to the end, and its
	// onMetaData has the duration (the test stream lasts about 2 s).
	b, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	off, tags := 13, 0
	var md map[string]any
	for off < len(b) {
		if off+11 > len(b) {
			t.Fatalf("torn tag at %d of %d", off, len(b))
		}
		n := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		if b[off] == 18 && md == nil {
			if md, err = flv.MetadataFromAMF0(b[off+11 : off+11+n]); err != nil {
				t.Fatal(err)
			}
		}
		off += 11 + n + 4
		tags++
	}
	if off != len(b) || tags < 50 {
		t.Fatalf("%d tags end at %d of %d", tags, off, len(b))
	}
	d, _ := md["duration"].(float64)
	if d < 1.5 || d > 2.5 || got[0].duration.Seconds() != d {
		t.Errorf("metadata duration %v (recovered %v), want about 2 s", md["duration"], got[0].duration)
	}
	if fs, _ := md["filesize"].(float64); int64(fs) != size {
		t.Errorf("metadata filesize %v, want %d", md["filesize"], size)
	}
}

func TestRecoverTornMP4(t *testing.T) {
	dir := t.TempDir()
	torn := []byte{0, 0, 0x40, 0, 'm', 'o', 'o', 'f', 1, 2, 3} // a moof promising 16 KiB
	final := tornRecording(t, dir, "mp4", torn, diedOther)
	tmpSize := fileSize(t, final+tmpSuffix)
	got, err := recoverDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].file != final {
		t.Fatalf("recovered %+v, want %s", got, final)
	}
	if size := fileSize(t, final); size != tmpSize-int64(len(torn)) {
		t.Errorf("size %d, want %d (the torn box cut)", size, tmpSize-int64(len(torn)))
	}
	if ok, err := repairMP4(final); err != nil || !ok {
		t.Errorf("recovered file has no whole fragment: %v %v", ok, err)
	}
}

// A recording of this process is not torn: the walk leaves it as it is.
func TestRecoverLeavesLiveRecordings(t *testing.T) {
	dir := t.TempDir()
	final := tornRecording(t, dir, "flv", nil, func(*journal) {})
	got, err := recoverDir(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("recovered %+v, %v: want nothing", got, err)
	}
	if _, err := os.Stat(final + tmpSuffix); err != nil {
		t.Errorf("live recording touched: %v", err)
	}
}

// A file with no media is removed with its journal; a journal that names
// no file is removed; a corrupt journal is reported and removed.
func TestRecoverNothingToKeep(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "live", "empty.flv")
	if err := os.MkdirAll(filepath.Dir(empty), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty+tmpSuffix, []byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "live", "gone.flv")
	for _, f := range []string{empty, gone} {
		if err := writeJournal(f, journal{Format: formatFLV}); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, "live", "bad.mp4")
	if err := os.WriteFile(journalPath(bad), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := recoverDir(dir)
	if len(got) != 0 || err == nil {
		t.Fatalf("recovered %+v, error %v: want nothing and the corrupt journal reported", got, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "live", "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, "live", ".*"))
	if len(left)+len(hidden) != 0 {
		t.Errorf("left behind: %v %v", left, hidden)
	}
	if got, err := recoverDir(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing directory: %v %v", got, err)
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
