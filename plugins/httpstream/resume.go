package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxPlaylistBytes bounds a playlist read back from disk.
const maxPlaylistBytes = 4 << 20

// maxDirEntries bounds the entries of a directory scanned for stale
// temporary files.
const maxDirEntries = 1 << 17

// diskPlaylist is a media playlist written by this plugin, read back.
type diskPlaylist struct {
	seq     uint64 // EXT-X-MEDIA-SEQUENCE: of the first segment
	discSeq int    // EXT-X-DISCONTINUITY-SEQUENCE
	segs    []diskSegment
}

type diskSegment struct {
	uri    string
	dur    time.Duration
	disc   bool   // after an EXT-X-DISCONTINUITY
	mapURI string // the EXT-X-MAP it uses ("" for MPEG-TS)
}

// parseMediaPlaylist reads a media playlist (RFC 8216 §4.3) as far as a
// writer needs to continue it. Tags it does not use are skipped.
func parseMediaPlaylist(b []byte) (diskPlaylist, error) {
	var pl diskPlaylist
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	first := true
	var dur time.Duration
	var inf, disc bool
	var mapURI string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "#EXTM3U" {
				return pl, errors.New("no #EXTM3U")
			}
			first = false
			continue
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"), 10, 63)
			if err != nil {
				return pl, fmt.Errorf("media sequence: %w", err)
			}
			pl.seq = n
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			n, err := strconv.ParseUint(strings.TrimPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"), 10, 31)
			if err != nil {
				return pl, fmt.Errorf("discontinuity sequence: %w", err)
			}
			pl.discSeq = int(n)
		case line == "#EXT-X-DISCONTINUITY":
			// The writer repeats EXT-X-MAP after every discontinuity of
			// fMP4 segments: a segment without one is MPEG-TS.
			disc, mapURI = true, ""
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			v, ok := strings.CutPrefix(line, `#EXT-X-MAP:URI="`)
			if !ok || !strings.HasSuffix(v, `"`) || len(v) < 2 {
				return pl, fmt.Errorf("bad %q", line)
			}
			mapURI = strings.TrimSuffix(v, `"`)
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1e6 {
				return pl, fmt.Errorf("bad %q", line)
			}
			dur, inf = time.Duration(f*float64(time.Second)).Round(time.Millisecond), true
		case strings.HasPrefix(line, "#"):
		default:
			if !inf {
				return pl, fmt.Errorf("segment %q without #EXTINF", line)
			}
			pl.segs = append(pl.segs, diskSegment{uri: line, dur: dur, disc: disc, mapURI: mapURI})
			inf, disc = false, false
		}
	}
	if err := sc.Err(); err != nil {
		return pl, err
	}
	if first {
		return pl, errors.New("empty playlist")
	}
	return pl, nil
}

// relOf is the path under the hls path of a URI in the playlist: the
// inverse of uri ("" if it is not one of ours).
func (h *hlsStream) relOf(uri string) string {
	var rel string
	if h.cfg.EntryPrefix != "" {
		p, ok := strings.CutPrefix(uri, strings.TrimSuffix(h.cfg.EntryPrefix, "/")+"/")
		if !ok {
			return ""
		}
		rel = filepath.FromSlash(p)
	} else {
		rel = filepath.Join(filepath.Dir(h.m3u8Rel), filepath.FromSlash(uri))
	}
	if !filepath.IsLocal(rel) {
		return ""
	}
	return rel
}

func (h *hlsStream) isFile(rel string) bool {
	fi, err := h.root.Stat(rel)
	return err == nil && fi.Mode().IsRegular()
}

func (h *hlsStream) readFile(rel string, limit int64) ([]byte, error) {
	f, err := h.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s: over %d bytes", rel, limit)
	}
	return b, err
}

// resume continues what an earlier process left on disk for this stream
// (the plugin or the daemon restarted): the playlist's segments still on
// disk stay in the window, the sequence numbers go on after its last
// segment, and the next segment follows an EXT-X-DISCONTINUITY (set by
// run, as for a republish). Files a publication not republished within
// dispose would have lost are removed, as dispose would have. The
// stream's temporary files (a segment or playlist being written when the
// process died) are removed first.
func (h *hlsStream) resume() {
	if n := h.removeStaleTmp(); n > 0 {
		h.log.Info("hls removed stale temporary files", "count", n)
	}
	fi, err := h.root.Stat(h.m3u8Rel)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			h.log.Warn("hls playlist on disk", "m3u8", h.m3u8Rel, "error", err)
		}
		return
	}
	b, err := h.readFile(h.m3u8Rel, maxPlaylistBytes)
	var pl diskPlaylist
	if err == nil {
		pl, err = parseMediaPlaylist(b)
	}
	if err != nil {
		h.log.Warn("hls playlist on disk not continued", "m3u8", h.m3u8Rel, "error", err)
		return
	}
	h.seq = pl.seq + uint64(len(pl.segs))
	h.discSeq = pl.discSeq
	// Keep the segments after the last one missing from the disk (each
	// keeps its media sequence number: the list has no gap).
	inits := map[string]*initFile{}
	start := 0
	segs := make([]*segment, 0, len(pl.segs))
	for i, d := range pl.segs {
		s := &segment{seq: pl.seq + uint64(i), rel: h.relOf(d.uri), dur: d.dur, disc: d.disc}
		ok := s.rel != "" && h.isFile(s.rel)
		if ok && d.mapURI != "" {
			rel := h.relOf(d.mapURI)
			if s.init = inits[rel]; s.init == nil && rel != "" {
				if data, err := h.readFile(rel, maxPlaylistBytes); err == nil {
					s.init = &initFile{rel: rel, data: data}
					inits[rel] = s.init
					h.inits = append(h.inits, s.init)
				}
			}
			ok = s.init != nil
		}
		if !ok {
			start = i + 1
		}
		segs = append(segs, s)
	}
	for _, s := range segs[:start] {
		if s.disc {
			h.discSeq++ // RFC 8216 §4.3.3.3, §6.2.2: its discontinuity left the playlist
		}
	}
	h.segs = segs[start:]
	if len(h.segs) > 0 {
		h.expired = h.findExpired(h.segs[0])
	}
	h.removeUnusedInits()
	for range len(h.inits) + 1 {
		if !h.initTaken(h.initRel()) {
			break
		}
		h.initGen++ // a new init must not replace one that segments use
	}
	if age := time.Since(fi.ModTime()); h.cfg.Dispose > 0 && age > h.cfg.Dispose {
		for _, s := range append(h.expired, h.segs...) {
			h.remove(s.rel)
		}
		for _, f := range h.inits {
			h.remove(f.rel)
		}
		h.remove(h.m3u8Rel)
		h.segs, h.expired, h.inits = nil, nil, nil
		h.log.Info("hls files of an earlier process disposed", "m3u8", h.m3u8Rel, "age", age.Round(time.Second), "next_seq", h.seq)
		return
	}
	h.log.Info("hls playlist continued", "m3u8", h.m3u8Rel, "segments", len(h.segs), "next_seq", h.seq, "discontinuity_sequence", h.discSeq)
}

func (h *hlsStream) initTaken(rel string) bool {
	for _, f := range h.inits {
		if f.rel == rel {
			return true
		}
	}
	return h.isFile(rel)
}

// findExpired returns the segments on disk just before first that the
// playlist no longer lists (cleanup keeps keepExpired of them), when the
// file name template gives a sequence number one name.
func (h *hlsStream) findExpired(first *segment) []*segment {
	tpl := h.cfg.TSFile
	if first.init != nil {
		tpl = m4sTemplate(tpl)
	}
	t0, t1 := time.Unix(0, 0), time.Unix(86400*400+3600+61, 1e6)
	if renderTemplate(tpl, h.vars(first.seq, t0, 0)) != renderTemplate(tpl, h.vars(first.seq, t1, time.Second)) {
		return nil // the name holds a time or a duration
	}
	var out []*segment
	for k := uint64(1); k <= keepExpired && k <= first.seq; k++ {
		rel := renderTemplate(tpl, h.vars(first.seq-k, t0, 0))
		if !filepath.IsLocal(rel) || !h.isFile(rel) {
			break
		}
		out = append([]*segment{{seq: first.seq - k, rel: rel}}, out...)
	}
	return out
}

// tplTokenRE finds the variables of a file name template.
var tplTokenRE = regexp.MustCompile(`\[[0-9a-z]+\]`)

// templateRE is a regular expression matching every path renderTemplate
// makes of tpl for this stream, whatever its sequence number and times.
func (h *hlsStream) templateRE(tpl string) string {
	var b strings.Builder
	tpl = filepath.Clean(tpl)
	last := 0
	for _, m := range tplTokenRE.FindAllStringIndex(tpl, -1) {
		b.WriteString(regexp.QuoteMeta(tpl[last:m[0]]))
		switch tok := tpl[m[0]:m[1]]; tok {
		case "[vhost]":
			b.WriteString(regexp.QuoteMeta(h.key.Vhost))
		case "[app]":
			b.WriteString(regexp.QuoteMeta(h.key.App))
		case "[stream]":
			b.WriteString(regexp.QuoteMeta(h.key.Stream))
		case "[seq]", "[timestamp]", "[duration]", "[2006]", "[01]", "[02]", "[15]", "[04]", "[05]", "[999]":
			b.WriteString(`\d+`)
		default:
			b.WriteString(regexp.QuoteMeta(tok))
		}
		last = m[1]
	}
	b.WriteString(regexp.QuoteMeta(tpl[last:]))
	return b.String()
}

// removeStaleTmp removes the temporary files of this stream's segments,
// playlist and init segments in the directories of its playlist and
// segments, except those another stream of this process is writing, and
// returns how many it removed.
func (h *hlsStream) removeStaleTmp() int {
	base := strings.TrimSuffix(h.m3u8Rel, filepath.Ext(h.m3u8Rel))
	re, err := regexp.Compile(`^(?:` + strings.Join([]string{
		h.templateRE(h.cfg.TSFile),
		h.templateRE(m4sTemplate(h.cfg.TSFile)),
		regexp.QuoteMeta(h.m3u8Rel),
		regexp.QuoteMeta(base) + `-init(?:-\d+)?\.mp4`,
	}, "|") + `)\.tmp$`)
	if err != nil {
		h.log.Warn("hls stale temporary files", "error", err)
		return 0
	}
	now := time.Now()
	dirs := map[string]bool{filepath.Dir(h.m3u8Rel): true}
	for _, tpl := range []string{h.cfg.TSFile, m4sTemplate(h.cfg.TSFile)} {
		dirs[filepath.Dir(renderTemplate(tpl, h.vars(h.seq, now, 0)))] = true
	}
	n := 0
	for dir := range dirs {
		if !filepath.IsLocal(dir) {
			continue
		}
		d, err := h.root.Open(dir)
		if err != nil {
			continue
		}
		for range maxDirEntries / 1024 {
			ents, err := d.ReadDir(1024)
			for _, e := range ents {
				rel := filepath.Join(dir, e.Name())
				if !e.Type().IsRegular() || !re.MatchString(filepath.ToSlash(rel)) || h.srv.isWriting(filepath.Join(h.cfg.Path, rel)) {
					continue
				}
				if err := h.root.Remove(rel); err == nil {
					n++
				} else if !errors.Is(err, os.ErrNotExist) {
					h.log.Warn("remove stale temporary file", "file", rel, "error", err)
				}
			}
			if err != nil {
				break
			}
		}
		d.Close()
	}
	return n
}
