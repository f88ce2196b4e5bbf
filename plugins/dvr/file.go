package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/plugins/internal/flvmux"
	"github.com/rill-media/rill/plugins/internal/fmp4"
	"github.com/rill-media/rill/sdk/media"
)

// tmpSuffix marks a file being written; it is renamed when closed.
const tmpSuffix = ".tmp"

// tracks is what a recording knows of its stream when it opens a file.
type tracks struct {
	meta, video, audio *media.Packet // latest metadata and configs (owned)
}

// container writes one file format.
type container interface {
	// write adds a media packet with file timestamps.
	write(p media.Packet) error
	// config handles a configuration or metadata packet arriving while the
	// file is open; it reports whether the file must end here (an MP4
	// cannot change its decoder configuration).
	config(p media.Packet) (reopen bool, err error)
	// finish writes what the format needs at the end.
	finish(duration time.Duration) error
}

// dvrFile is one file being recorded: written as path+".tmp" and renamed
// to path by close.
type dvrFile struct {
	path  string // as rendered from the template (relative paths stay relative)
	tmp   string
	f     *os.File
	c     container
	start time.Time
	// warn is called once per problem that drops data but keeps the file.
	warn func(msg string, args ...any)
}

// createFile makes the directories and the temporary file for path and
// writes the container's header with what st knows.
// j, written beside the file until it is closed, lets a later start of
// the plugin finish the file if this process dies first.
func createFile(path, format string, st tracks, j journal, warn func(string, ...any)) (*dvrFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	j.Format, j.PID, j.Started = format, os.Getpid(), time.Now()
	if err := writeJournal(path, j); err != nil {
		return nil, err
	}
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		os.Remove(journalPath(path))
		return nil, fmt.Errorf("create file: %w", err)
	}
	df := &dvrFile{path: path, tmp: tmp, f: f, start: time.Now(), warn: warn}
	switch format {
	case formatMP4:
		df.c, err = newMP4(f, st, warn)
	default:
		df.c, err = newFLV(f, st, warn)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		os.Remove(journalPath(path))
		return nil, err
	}
	return df, nil
}

// close finishes the file and renames it to its final name. The file is
// renamed even when finishing fails, so what was written stays playable.
func (df *dvrFile) close(duration time.Duration) error {
	err := df.c.finish(duration)
	if cerr := df.f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Rename(df.tmp, df.path); rerr != nil {
		return errors.Join(err, fmt.Errorf("rename %s: %w", df.tmp, rerr))
	}
	os.Remove(journalPath(df.path))
	return err
}

// flvFile writes FLV (Adobe FLV v10.1 Annex E): header, onMetaData with
// duration and filesize patched at the end, the configs, then the tags.
type flvFile struct {
	f       *os.File
	buf     []byte
	size    int64
	durOff  int64 // file offsets of the duration and filesize numbers, or -1
	sizeOff int64
	warned  map[media.Codec]bool
	warn    func(string, ...any)
}

func newFLV(f *os.File, st tracks, warn func(string, ...any)) (*flvFile, error) {
	w := &flvFile{f: f, durOff: -1, sizeOff: -1, warned: map[media.Codec]bool{}, warn: warn}
	w.buf = flvmux.AppendHeader(w.buf, st.audio != nil, st.video != nil)
	md := map[string]any{}
	if st.meta != nil {
		if m, err := flv.MetadataFromAMF0(st.meta.Payload); err == nil {
			md = m
		}
	}
	md["duration"] = float64(0)
	md["filesize"] = float64(0)
	md["encoder"] = "rill dvr"
	body, err := flv.AppendMetadata(nil, md)
	if err != nil { // a value the writer does not take: keep only ours
		body, _ = flv.AppendMetadata(nil, map[string]any{"duration": float64(0), "filesize": float64(0), "encoder": "rill dvr"})
	}
	tagStart := int64(len(w.buf)) + flvmux.TagHeaderSize
	if i := bytes.Index(body, []byte("\x00\x08duration\x00")); i >= 0 {
		w.durOff = tagStart + int64(i) + 11
	}
	if i := bytes.Index(body, []byte("\x00\x08filesize\x00")); i >= 0 {
		w.sizeOff = tagStart + int64(i) + 11
	}
	w.buf, err = flvmux.AppendTag(w.buf, media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: body}, flvmux.Options{})
	if err != nil {
		return nil, fmt.Errorf("flv metadata: %w", err)
	}
	for _, c := range []*media.Packet{st.video, st.audio} {
		if c != nil {
			p := *c
			p.DTS, p.PTS = 0, 0
			if w.buf, err = flvmux.AppendTag(w.buf, p, flvmux.Options{}); err != nil {
				return nil, fmt.Errorf("flv %v config: %w", p.Codec, err)
			}
		}
	}
	return w, w.flush()
}

func (w *flvFile) flush() error {
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	w.buf = w.buf[:0]
	return err
}

func (w *flvFile) write(p media.Packet) error {
	var err error
	w.buf, err = flvmux.AppendTag(w.buf, p, flvmux.Options{})
	if errors.Is(err, flv.ErrUnsupported) || errors.Is(err, flv.ErrMalformed) {
		if !w.warned[p.Codec] {
			w.warned[p.Codec] = true
			w.warn("packet cannot be written to flv, dropping it", "codec", p.Codec.String(), "error", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return w.flush()
}

func (w *flvFile) config(p media.Packet) (bool, error) {
	if p.Kind == media.KindData {
		if _, err := flv.MetadataFromAMF0(p.Payload); err == nil {
			return false, nil // our onMetaData stays the file's only one
		}
	}
	return false, w.write(p) // FLV carries new sequence headers inline
}

func (w *flvFile) finish(duration time.Duration) error {
	var num [8]byte
	if w.durOff > 0 {
		binary.BigEndian.PutUint64(num[:], math.Float64bits(duration.Seconds()))
		if _, err := w.f.WriteAt(num[:], w.durOff); err != nil {
			return fmt.Errorf("flv duration: %w", err)
		}
	}
	if w.sizeOff > 0 {
		binary.BigEndian.PutUint64(num[:], math.Float64bits(float64(w.size)))
		if _, err := w.f.WriteAt(num[:], w.sizeOff); err != nil {
			return fmt.Errorf("flv filesize: %w", err)
		}
	}
	return nil
}

// mp4File writes fragmented MP4 through plugins/internal/fmp4: a fragment
// per GOP (at most a second), so a killed recorder leaves a file that
// plays up to its last second or GOP.
type mp4File struct {
	m       *fmp4.Muxer
	configs map[media.Kind][]byte
	warned  map[media.Codec]bool
	warn    func(string, ...any)
}

func newMP4(f *os.File, st tracks, warn func(string, ...any)) (*mp4File, error) {
	w := &mp4File{configs: map[media.Kind][]byte{}, warned: map[media.Codec]bool{}, warn: warn}
	var trs []fmp4.Track
	for _, c := range []*media.Packet{st.video, st.audio} {
		if c == nil {
			continue
		}
		tr, err := fmp4.NewTrack(uint32(len(trs)+1), *c)
		if err != nil {
			w.warned[c.Codec] = true
			warn("track cannot be recorded in mp4, recording without it", "codec", c.Codec.String(), "error", err)
			continue
		}
		trs = append(trs, tr)
		w.configs[c.Kind] = c.Payload
	}
	if len(trs) == 0 {
		return nil, fmt.Errorf("no track of the stream can be recorded in mp4 (%w)", fmp4.ErrUnsupportedCodec)
	}
	m, err := fmp4.NewMuxer(f, trs, fmp4.Options{FragmentDuration: time.Second})
	if err != nil {
		return nil, err
	}
	w.m = m
	return w, nil
}

func (w *mp4File) write(p media.Packet) error {
	err := w.m.WritePacket(p)
	if errors.Is(err, fmp4.ErrNoTrack) {
		if !w.warned[p.Codec] {
			w.warned[p.Codec] = true
			w.warn("packet has no track in the mp4 file, dropping its kind", "codec", p.Codec.String())
		}
		return nil
	}
	return err
}

func (w *mp4File) config(p media.Packet) (bool, error) {
	if p.Kind == media.KindData {
		return false, nil
	}
	old, ok := w.configs[p.Kind]
	if !ok {
		// A track that started after the file: a new file can have it.
		_, err := fmp4.NewTrack(1, p)
		return err == nil, nil
	}
	return !bytes.Equal(old, p.Payload), nil
}

func (w *mp4File) finish(time.Duration) error { return w.m.Close() }
