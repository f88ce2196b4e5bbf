package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// A recording that ends without close (the plugin killed, the machine
// powered off) leaves its file as path+".tmp". Beside it the recorder keeps
// a journal, a hidden file naming the stream and the publisher, so that the
// next start of the plugin can finish the file (cut a torn last tag or box,
// write the FLV duration), rename it to its final name and send on_dvr for
// it as a clean close would have.

// journalSuffix ends the name of a recording's journal: "." + the final
// file's base name + journalSuffix, in the file's directory.
const journalSuffix = ".rill-dvr.json"

// maxRecoverEntries bounds the walk of a recording directory at start.
const maxRecoverEntries = 200000

// journal is what the recovery of a torn file needs to know.
type journal struct {
	Stream  sdk.StreamRef  `json:"stream"`
	Client  sdk.ClientInfo `json:"client"`
	Format  string         `json:"format"`
	PID     int            `json:"pid"`
	Started time.Time      `json:"started"`
}

// journalPath is the journal of the recording whose final name is path.
func journalPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+journalSuffix)
}

// writeJournal records j for the file path being written.
func writeJournal(path string, j journal) error {
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	jp := journalPath(path)
	tmp := jp + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write dvr journal %s: %w", jp, err)
	}
	if err := os.Rename(tmp, jp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write dvr journal %s: %w", jp, err)
	}
	return nil
}

// recovered is one file finished by recoverDir.
type recovered struct {
	file     string // final name
	stream   sdk.StreamRef
	client   sdk.ClientInfo
	duration time.Duration
}

// procStart is when this process started: a journal of this pid written
// since is a recording of this process, not a torn one.
var procStart = time.Now()

// recoverDir finds the journals under root, finishes and renames each torn
// file they name, and returns them. Files that a live dvr process (this
// one too) is writing are left alone. Problems are returned joined; the
// other files are still recovered.
func recoverDir(root string) ([]recovered, error) {
	var out []recovered
	var errs []error
	n := 0
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll // nothing recorded there yet
			}
			errs = append(errs, err)
			return nil
		}
		if n++; n > maxRecoverEntries {
			errs = append(errs, fmt.Errorf("more than %d entries under %s: stopped looking for unfinished recordings", maxRecoverEntries, root))
			return fs.SkipAll
		}
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, ".") || !strings.HasSuffix(name, journalSuffix) {
			return nil
		}
		final := filepath.Join(filepath.Dir(p), strings.TrimSuffix(strings.TrimPrefix(name, "."), journalSuffix))
		r, ok, err := recoverFile(p, final)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// recoverFile finishes the torn recording final+".tmp" described by the
// journal jp. ok is false when there was nothing to keep.
func recoverFile(jp, final string) (r recovered, ok bool, err error) {
	b, err := os.ReadFile(jp)
	if err != nil {
		return r, false, fmt.Errorf("read dvr journal %s: %w", jp, err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		os.Remove(jp)
		return r, false, fmt.Errorf("dvr journal %s is corrupt, removed it (the file it names stays as it is): %w", jp, err)
	}
	if j.PID == os.Getpid() {
		if !j.Started.Before(procStart) {
			return r, false, nil // this process is writing it
		}
	} else if processAlive(j.PID) && isDVRProcess(j.PID) {
		return r, false, nil // another dvr process is still writing it
	}
	tmp := final + tmpSuffix
	if _, err := os.Stat(tmp); errors.Is(err, fs.ErrNotExist) {
		os.Remove(jp) // the file was closed and the journal not yet removed
		return r, false, nil
	}
	var dur time.Duration
	var media bool
	switch j.Format {
	case formatMP4:
		media, err = repairMP4(tmp)
	default:
		dur, media, err = repairFLV(tmp)
	}
	if err != nil {
		return r, false, fmt.Errorf("finish unfinished recording %s: %w", tmp, err)
	}
	if !media {
		os.Remove(tmp)
		os.Remove(jp)
		return r, false, nil
	}
	dst := final
	if _, err := os.Lstat(final); err == nil {
		dst = unusedName(final) // a later recording took the name
	}
	if err := os.Rename(tmp, dst); err != nil {
		return r, false, fmt.Errorf("finish unfinished recording %s: %w", tmp, err)
	}
	os.Remove(jp)
	return recovered{file: dst, stream: j.Stream, client: j.Client, duration: dur}, true, nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// isDVRProcess reports whether pid runs this program (a second daemon's
// dvr plugin sharing the directory).
func isDVRProcess(pid int) bool {
	self, err1 := os.Readlink("/proc/self/exe")
	other, err2 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err1 == nil && err2 == nil && self == other
}

// repairFLV cuts a torn last tag and writes the duration and file size in
// the file's onMetaData, as close does. It reports whether the file holds
// an audio or video tag.
func repairFLV(path string) (time.Duration, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	var hdr [13]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || !bytes.Equal(hdr[:3], []byte("FLV")) {
		return 0, false, nil // not even a header: nothing to keep
	}
	end := int64(binary.BigEndian.Uint32(hdr[5:9])) + 4
	var (
		th         [11]byte
		first      = int64(-1)
		last       int64
		media      bool
		durOff     = int64(-1)
		sizeOff    = int64(-1)
		scriptSeen bool
	)
	for {
		if _, err := f.ReadAt(th[:], end); err != nil {
			break
		}
		size := int64(th[1])<<16 | int64(th[2])<<8 | int64(th[3])
		next := end + 11 + size + 4
		var trailer [4]byte
		if _, err := f.ReadAt(trailer[:], next-4); err != nil {
			break // torn tag
		}
		ts := int64(th[7])<<24 | int64(th[4])<<16 | int64(th[5])<<8 | int64(th[6])
		switch th[0] & 0x1f {
		case 8, 9:
			media = true
			if first < 0 {
				first = ts
			}
			last = max(last, ts)
		case 18:
			if !scriptSeen && size <= 1<<20 {
				scriptSeen = true
				body := make([]byte, size)
				if _, err := f.ReadAt(body, end+11); err == nil {
					if i := bytes.Index(body, []byte("\x00\x08duration\x00")); i >= 0 {
						durOff = end + 11 + int64(i) + 11
					}
					if i := bytes.Index(body, []byte("\x00\x08filesize\x00")); i >= 0 {
						sizeOff = end + 11 + int64(i) + 11
					}
				}
			}
		}
		end = next
	}
	if err := f.Truncate(end); err != nil {
		return 0, media, err
	}
	var dur time.Duration
	if first >= 0 {
		dur = time.Duration(last-first) * time.Millisecond
	}
	var num [8]byte
	if durOff > 0 {
		binary.BigEndian.PutUint64(num[:], math.Float64bits(dur.Seconds()))
		if _, err := f.WriteAt(num[:], durOff); err != nil {
			return dur, media, err
		}
	}
	if sizeOff > 0 {
		binary.BigEndian.PutUint64(num[:], math.Float64bits(float64(end)))
		if _, err := f.WriteAt(num[:], sizeOff); err != nil {
			return dur, media, err
		}
	}
	return dur, media, f.Sync()
}

// repairMP4 cuts a fragmented MP4 after its last complete fragment (a moof
// with its mdat). It reports whether a fragment is left.
func repairMP4(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	var (
		off, keep int64
		pending   bool // a moof waiting for its mdat
		fragments int
		hdr       [16]byte
	)
	for off+8 <= st.Size() {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			break
		}
		size := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		switch size {
		case 0: // to the end of the file: what a writer only does last
			size = st.Size() - off
		case 1:
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				size = -1
				break
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if size < 8 || off+size > st.Size() {
			break // torn box
		}
		off += size
		switch typ {
		case "moof":
			pending = true
			continue
		case "mdat":
			if pending {
				fragments++
			}
		}
		pending = false
		keep = off
	}
	if fragments == 0 {
		return false, nil
	}
	if err := f.Truncate(keep); err != nil {
		return true, err
	}
	return true, f.Sync()
}
