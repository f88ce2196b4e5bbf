package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/fmp4"
	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// keepExpired is how many segments that left the playlist stay on disk, for
// players that fetched the playlist just before.
const keepExpired = 2

// maxJump is a timestamp jump that ends the segment and starts a new one
// after an EXT-X-DISCONTINUITY (docs/THREATS.md #4).
const (
	maxJumpForward  = 10 * time.Second
	maxJumpBackward = 500 * time.Millisecond
)

// hlsStream writes one stream's playlist and segments (SRS's hls muxer).
// It survives unpublish for cfg.Dispose so that a republish continues the
// sequence numbers after an EXT-X-DISCONTINUITY; after a restart of the
// plugin or the daemon the first writer reads the playlist left on disk
// back and continues it the same way (resume.go).
//
// Segments are MPEG-TS, except when the vhost says hls_use_fmp4 or the
// stream's video is H.265: then they are fragmented MP4 (RFC 8216 §3.3),
// since few players take H.265 in TS.
// An fMP4 segment is named by ts_file with its .ts extension replaced by
// .m4s, and the initialization segment (ftyp+moov, EXT-X-MAP) is written
// next to the playlist as [playlist name]-init.mp4; a codec configuration
// that changes writes a new one ([playlist name]-init-N.mp4) and starts the
// next segment, at a key frame, after an EXT-X-DISCONTINUITY.
type hlsStream struct {
	srv  *Server
	key  streamKey
	log  hclog.Logger
	root *os.Root

	mu      sync.Mutex
	cfg     hlsConfig
	running bool
	// again is a publication to start once the running one stops.
	again   *sdk.StreamRef
	dispose *time.Timer
	cancel  context.CancelFunc

	// Owned by the running goroutine.
	resumed bool // what an earlier process left on disk was read back
	client  sdk.ClientInfo
	// publisher is the publishing client: on_hls names it, as SRS does.
	publisher sdk.ClientInfo
	mux       *tsmux.Muxer
	seq       uint64
	segs      []*segment
	expired   []*segment
	discSeq   int
	cur       *segment
	disc      bool
	hasVideo  bool
	buf       []byte
	warned    map[string]bool
	m3u8Rel   string

	// The latest codec configurations of the publication (cloned), and
	// whether one changed since the current fMP4 init was made.
	vcfg, acfg *media.Packet
	newInit    bool
	fm         *fmp4Writer // nil while writing MPEG-TS
	inits      []*initFile // on disk, oldest first
	initGen    int

	// ll holds the low-latency segments (nil without ll_hls); set at
	// creation, read by HTTP handlers. nowDTS is the packet being written,
	// partStart where the next part starts.
	ll        *llStore
	nowDTS    time.Duration
	partStart time.Duration

	// variant is what a master playlist says of this stream (variants.go).
	variant atomic.Pointer[variantInfo]
}

// initFile is an fMP4 initialization segment on disk (EXT-X-MAP).
type initFile struct {
	rel  string
	data []byte
	ll   *llInit // its copy in the low-latency store
}

// fmp4Writer writes the fMP4 segments of one set of tracks: a Muxer whose
// fragments go to the current segment.
type fmp4Writer struct {
	tracks []fmp4.Track
	init   *initFile
	mux    *fmp4.Muxer // nil between timelines
	out    *segWriter
}

// segWriter sends a Muxer's output to a segment file. Errors stay with the
// segment (which is then lost), so the Muxer itself never fails.
type segWriter struct {
	h   *hlsStream
	seg *segment // nil: discard (the init segment written by NewMuxer)
}

func (w *segWriter) Write(b []byte) (int, error) {
	s := w.seg
	if s == nil || s.err != nil {
		return len(b), nil
	}
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		w.h.log.Error("write hls segment", "file", s.tmp, "error", err)
	}
	s.size += int64(len(b))
	if h := w.h; h.ll != nil {
		// Each fragment of the muxer is one part (ll_hls).
		end := h.nowDTS
		if lim := s.last + 200*time.Millisecond; end > lim {
			end = lim
		}
		h.ll.addPart(s.seq, b, end-h.partStart)
		h.partStart = end
	}
	return len(b), nil
}

type segment struct {
	seq    uint64
	rel    string // final path relative to root
	tmp    string
	f      *os.File
	w      *bufio.Writer
	start  time.Duration
	last   time.Duration
	dur    time.Duration
	disc   bool
	opened time.Time
	err    error
	size   int64     // bytes written
	tpl    string    // the file name template (ts_file, or its .m4s form)
	init   *initFile // fMP4 segments: their initialization segment
}

func newHLSStream(srv *Server, key streamKey, cfg hlsConfig) (*hlsStream, error) {
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("hls path: %w", err)
	}
	root, err := os.OpenRoot(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("hls path: %w", err)
	}
	h := &hlsStream{srv: srv, key: key, cfg: cfg, root: root, log: srv.log.With("stream", key.String(), "hls_path", cfg.Path), warned: map[string]bool{}}
	if cfg.LLHLS {
		h.ll = newLLStore(cfg.PartTarget, cfg.Fragment)
	}
	h.m3u8Rel = renderTemplate(cfg.M3U8File, h.vars(0, time.Now(), 0))
	if !filepath.IsLocal(h.m3u8Rel) {
		root.Close()
		return nil, fmt.Errorf("m3u8 path %q leaves the hls path", h.m3u8Rel)
	}
	return h, nil
}

func (h *hlsStream) vars(seq uint64, t time.Time, d time.Duration) tplVars {
	return tplVars{Vhost: h.key.Vhost, App: h.key.App, Stream: h.key.Stream, Seq: seq, Time: t, Duration: d}
}

// start begins a publication (again): the caller holds srv.mu.
func (h *hlsStream) start(ref sdk.StreamRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		// A republish that came before the last publication's writer
		// noticed its end: start again as soon as it stops.
		h.again = &ref
		return
	}
	h.launchLocked(ref)
}

// launchLocked starts the writer goroutine; the caller holds h.mu.
func (h *hlsStream) launchLocked(ref sdk.StreamRef) {
	if h.dispose != nil {
		h.dispose.Stop()
		h.dispose = nil
	}
	h.running = true
	ctx, cancel := context.WithCancel(h.srv.ctx)
	h.cancel = cancel
	h.srv.wg.Add(1)
	go func() {
		defer h.srv.wg.Done()
		h.run(ctx, ref)
	}()
}

func (h *hlsStream) run(ctx context.Context, ref sdk.StreamRef) {
	h.client = sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "hls"}
	defer h.stopped()
	// The stream comes from the process's live tap, shared with the HTTP
	// players: a queue between the tap and this goroutine keeps a slow
	// disk from holding them up (it skips to the next keyframe instead).
	q := live.NewQueue(0, 0)
	q.OnDrop = func(lost int, why string) {
		h.log.Warn("hls writer behind, skipping to the next keyframe", "packets", lost, "reason", why)
	}
	rd := h.srv.tap.Join(ref, h.srv.liveOptions(h.srv.cfg.Load(), ref.Vhost, h.client, sdk.SubscribeOptions{Wait: 5 * time.Second, Internal: true}), q)
	defer rd.Leave()
	select {
	case <-rd.Stream().Ready():
	case <-ctx.Done():
		return
	}
	if err := rd.Stream().Err(); err != nil {
		if ctx.Err() == nil {
			h.log.Warn("hls subscribe failed", "error", err)
		}
		return
	}
	if !h.resumed {
		h.resumed = true
		h.resume()
	}
	// A republish, or the first publication after a restart that left a
	// playlist on disk, starts a new timeline: the muxer starts over and
	// the next segment gets a discontinuity.
	h.mux = tsmux.New()
	h.hasVideo = false
	h.vcfg, h.acfg, h.newInit = nil, nil, true
	if len(h.segs) > 0 || h.seq > 0 {
		h.disc = true
	}
	h.log.Info("hls started", "m3u8", h.m3u8Rel, "fragment", h.cfg.Fragment, "window", h.cfg.Window)
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("hls muxer panic, stream's hls ended", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		h.endFragments()
		h.reap(h.lastEnd(), true)
		h.log.Info("hls stopped", "segments", h.seq)
	}()
	var ps []media.Packet
	for {
		var err error
		ps, err = q.Next(ctx, ps)
		for _, p := range ps {
			h.write(p)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				h.log.Warn("hls read ended", "error", err)
			}
			return
		}
	}
}

// stopped schedules the dispose of the files after an unpublish.
func (h *hlsStream) stopped() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
	if again := h.again; again != nil {
		h.again = nil
		if h.srv.ctx.Err() == nil {
			h.launchLocked(*again)
			return
		}
	}
	if h.cfg.Dispose > 0 {
		h.dispose = time.AfterFunc(h.cfg.Dispose, h.disposeNow)
	}
}

// disposeNow removes the playlist and every segment of a stream that was
// not republished within dispose.
func (h *hlsStream) disposeNow() {
	h.srv.mu.Lock()
	h.mu.Lock()
	if h.running || h.srv.hls[h.key] != h {
		h.mu.Unlock()
		h.srv.mu.Unlock()
		return
	}
	delete(h.srv.hls, h.key)
	h.mu.Unlock()
	h.srv.mu.Unlock()
	for _, s := range append(h.expired, h.segs...) {
		h.remove(s.rel)
	}
	for _, f := range h.inits {
		h.remove(f.rel)
	}
	h.remove(h.m3u8Rel)
	h.log.Info("hls disposed", "m3u8", h.m3u8Rel)
	h.root.Close()
}

// stopNow ends the writer (plugin stop or the vhost lost HLS).
func (h *hlsStream) stopNow() {
	h.mu.Lock()
	if h.cancel != nil {
		h.cancel()
	}
	if h.dispose != nil {
		h.dispose.Stop()
	}
	h.mu.Unlock()
}

func (h *hlsStream) remove(rel string) {
	if err := h.root.Remove(rel); err != nil && !errors.Is(err, os.ErrNotExist) {
		h.log.Warn("remove hls file", "file", rel, "error", err)
	}
}

func (h *hlsStream) warnOnce(what string, err error) {
	if !h.warned[what] {
		h.warned[what] = true
		h.log.Warn("hls dropped packets", "what", what, "error", err)
	}
}

func (h *hlsStream) lastEnd() time.Duration {
	if h.cur == nil {
		return 0
	}
	// The last frame's own duration is unknown: count one 40 ms frame.
	return h.cur.last + 40*time.Millisecond
}

func (h *hlsStream) write(p media.Packet) {
	if p.Kind == media.KindData {
		return
	}
	if p.IsConfig() {
		h.config(p)
		return
	}
	h.nowDTS = p.DTS
	if !h.writable(p.Codec) {
		h.warnOnce(p.Codec.String(), tsmux.ErrUnsupported)
		return
	}
	frag := h.cfg.Fragment
	if c := h.cur; c != nil {
		if p.DTS > c.last+maxJumpForward || p.DTS < c.last-maxJumpBackward {
			h.log.Warn("timestamp jump, new segment after a discontinuity", "from", c.last, "to", p.DTS)
			h.endFragments()
			h.reap(h.lastEnd(), false)
			h.disc = true
		}
	}
	video := p.Kind == media.KindVideo
	written := false
	if c := h.cur; c != nil {
		d := p.DTS - c.start
		cut := false
		switch {
		case video && d >= frag && (p.IsKey() || !h.cfg.WaitKeyframe):
			cut = true
		case !video && !h.hasVideo && d >= frag:
			cut = true
		case !video && h.hasVideo && float64(d) >= h.cfg.AOFRatio*float64(frag):
			cut = true
		}
		// A changed codec configuration needs a new fMP4 init: it starts
		// at the next key frame, whatever the segment's length.
		relayout := h.newInit && (h.fm != nil || h.wantFMP4())
		if video && p.IsKey() && relayout {
			cut = true
		}
		if cut {
			if h.fm != nil && video && p.IsKey() && !relayout {
				// The muxer writes the samples before the key frame, the
				// last one now timed, to this segment; the key frame
				// waits in it for the next segment.
				written = h.writeFMP4(p)
			} else {
				h.endFragments()
			}
			h.reap(p.DTS, false)
		}
	}
	if h.cur == nil {
		if h.hasVideo && (!video || (!p.IsKey() && h.cfg.WaitKeyframe)) {
			return // wait for a key frame to start
		}
		if !h.open(p.DTS) {
			return
		}
	}
	c := h.cur
	if !written {
		if h.fm != nil {
			h.writeFMP4(p)
		} else {
			b, err := h.mux.AppendPacket(h.buf[:0], p)
			h.buf = b
			if err != nil {
				h.warnOnce(p.Codec.String(), err)
				return
			}
			c.size += int64(len(b))
			if c.err == nil {
				if _, err := c.w.Write(b); err != nil {
					c.err = err
					h.log.Error("write hls segment", "file", c.tmp, "error", err)
				}
			}
		}
	}
	if p.DTS > c.last {
		c.last = p.DTS
	}
}

// config keeps a codec configuration. The TS muxer takes (and validates)
// the codecs it carries; an fMP4 init is made from the configurations when
// the next segment opens.
func (h *hlsStream) config(p media.Packet) {
	if tsmux.Supported(p.Codec) {
		if _, err := h.mux.AppendPacket(nil, p); err != nil {
			h.warnOnce("config "+p.Codec.String(), err)
			return
		}
	}
	slot := &h.acfg
	if p.Kind == media.KindVideo {
		slot = &h.vcfg
	}
	if old := *slot; old != nil && old.Codec == p.Codec && bytes.Equal(old.Payload, p.Payload) {
		return // the same again (a publisher repeating its sequence header)
	}
	c := p.Clone()
	*slot = &c
	h.newInit = true
	h.hasVideo = h.vcfg != nil && h.writable(h.vcfg.Codec)
}

// wantFMP4 reports whether the stream's segments are fMP4: the vhost asks
// for them (hls_use_fmp4) or its video is H.265.
func (h *hlsStream) wantFMP4() bool {
	if h.cfg.UseFMP4 || h.ll != nil {
		return h.vcfg != nil || h.acfg != nil
	}
	return h.vcfg != nil && h.vcfg.Codec == media.CodecH265
}

// writable reports whether packets of codec go into the segments.
func (h *hlsStream) writable(c media.Codec) bool {
	if h.wantFMP4() {
		switch c {
		case media.CodecH264, media.CodecH265, media.CodecAAC, media.CodecOpus:
			return true
		}
		return false
	}
	return tsmux.Supported(c)
}

// writeFMP4 adds p to the fMP4 muxer and reports whether it took it.
func (h *hlsStream) writeFMP4(p media.Packet) bool {
	if err := h.fm.mux.WritePacket(p); err != nil {
		h.warnOnce("fmp4 "+p.Codec.String(), err)
		return false
	}
	return true
}

// endFragments writes what the fMP4 muxer holds to the current segment and
// ends its timeline (the next segment starts a new muxer).
func (h *hlsStream) endFragments() {
	if h.fm == nil || h.fm.mux == nil {
		return
	}
	if err := h.fm.mux.Close(); err != nil {
		h.warnOnce("fmp4 flush", err)
	}
	h.fm.mux = nil
}

// openFMP4 prepares the fMP4 writer for segment s: a new init when the
// codec configurations changed (the segment then follows a
// discontinuity), a new muxer when the timeline starts.
func (h *hlsStream) openFMP4(s *segment) bool {
	if h.fm == nil || h.newInit {
		h.endFragments()
		var tracks []fmp4.Track
		for _, c := range []*media.Packet{h.vcfg, h.acfg} {
			if c == nil {
				continue
			}
			tr, err := fmp4.NewTrack(uint32(len(tracks)+1), *c)
			if err != nil {
				h.warnOnce("fmp4 track "+c.Codec.String(), err)
				continue
			}
			tracks = append(tracks, tr)
		}
		if len(tracks) == 0 || (tracks[0].Kind() != media.KindVideo && h.vcfg != nil) {
			h.warnOnce("fmp4 tracks", errors.New("no usable video configuration"))
			return false
		}
		data, err := fmp4.AppendInit(nil, tracks)
		if err != nil {
			h.warnOnce("fmp4 init", err)
			return false
		}
		var init *initFile
		if n := len(h.inits); n > 0 && bytes.Equal(h.inits[n-1].data, data) {
			init = h.inits[n-1] // a republish with the same configuration
		} else {
			if len(h.inits) > 0 || len(h.segs) > 0 {
				s.disc = true
			}
			init = &initFile{rel: h.initRel(), data: data}
			if h.ll != nil {
				init.ll = h.ll.initFor(data)
			}
			if err := h.writeAtomic(init.rel, data); err != nil {
				h.warnOnce("write init segment", err)
				return false
			}
			h.initGen++
			h.inits = append(h.inits, init)
		}
		if h.ll != nil && init.ll == nil {
			init.ll = h.ll.initFor(data) // an init read back from the disk
		}
		h.fm = &fmp4Writer{tracks: tracks, init: init, out: &segWriter{h: h}}
		h.newInit = false
	}
	if h.fm.mux == nil {
		h.fm.out.seg = nil // NewMuxer writes the init: not into the segment
		var opts fmp4.Options
		if h.ll != nil {
			// A fragment is a part; the muxer ends one a frame or so
			// after this, so parts stay under the part target.
			opts.FragmentDuration = h.cfg.PartTarget * 4 / 5
		}
		m, err := fmp4.NewMuxer(h.fm.out, h.fm.tracks, opts)
		if err != nil {
			h.warnOnce("fmp4 muxer", err)
			return false
		}
		h.fm.mux = m
	}
	h.fm.out.seg = s
	s.init = h.fm.init
	return true
}

// initRel is the path of the next init segment: beside the playlist,
// named after it.
func (h *hlsStream) initRel() string {
	base := strings.TrimSuffix(h.m3u8Rel, filepath.Ext(h.m3u8Rel))
	if h.initGen == 0 {
		return base + "-init.mp4"
	}
	return base + "-init-" + strconv.Itoa(h.initGen) + ".mp4"
}

// m4sTemplate is the fMP4 segment template of a ts_file template.
func m4sTemplate(tsFile string) string {
	return strings.TrimSuffix(tsFile, ".ts") + ".m4s"
}

// refreshConfig picks up a reloaded vhost config for the timing knobs
// (fragment, window, ratios, cleanup, dispose) at a segment boundary. The
// file layout (path and templates) stays as the stream started with.
func (h *hlsStream) refreshConfig() {
	cfg := h.srv.cfg.Load()
	if cfg == nil {
		return
	}
	vc := cfg.Vhosts[h.key.Vhost]
	if vc == nil || !vc.HLS.Enabled {
		return
	}
	n := vc.HLS
	if n.Path != h.cfg.Path || n.M3U8File != h.cfg.M3U8File || n.TSFile != h.cfg.TSFile || n.EntryPrefix != h.cfg.EntryPrefix {
		return
	}
	if n.Fragment != h.cfg.Fragment || n.Window != h.cfg.Window {
		h.log.Info("hls config reloaded", "fragment", n.Fragment, "window", n.Window)
	}
	h.cfg = n
}

func (h *hlsStream) open(dts time.Duration) bool {
	h.refreshConfig()
	now := time.Now()
	s := &segment{seq: h.seq, start: dts, last: dts, disc: h.disc, opened: now, tpl: h.cfg.TSFile}
	fmp4Seg := h.wantFMP4()
	if fmp4Seg {
		s.tpl = m4sTemplate(s.tpl)
	} else if h.fm != nil {
		// The video is no longer H.265: back to TS after a discontinuity.
		h.endFragments()
		h.fm = nil
		s.disc = s.disc || len(h.segs) > 0
	}
	s.tmp = renderTemplate(s.tpl, h.vars(s.seq, now, 0)) + ".tmp"
	if !filepath.IsLocal(s.tmp) {
		h.warnOnce("segment path", fmt.Errorf("segment path %q leaves the hls path", s.tmp))
		return false
	}
	if dir := filepath.Dir(s.tmp); dir != "." {
		if err := h.root.MkdirAll(dir, 0o755); err != nil {
			h.warnOnce("mkdir", err)
			return false
		}
	}
	if fmp4Seg && !h.openFMP4(s) {
		return false
	}
	f, err := h.root.OpenFile(s.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		h.warnOnce("create segment", err)
		if h.fm != nil {
			h.fm.out.seg = nil
		}
		return false
	}
	s.f, s.w = f, bufio.NewWriterSize(f, 64<<10)
	if h.ll != nil && s.init != nil && s.init.ll != nil {
		h.ll.open(s.seq, s.disc, s.init.ll, now)
		h.partStart = dts
	}
	h.srv.setWriting(filepath.Join(h.cfg.Path, s.tmp), true)
	h.seq++
	h.disc = false
	h.cur = s
	h.mux.ForceTables()
	return true
}

// reap closes the current segment at end (the DTS of the packet that
// starts the next one), publishes it in the playlist and expires old
// segments.
func (h *hlsStream) reap(end time.Duration, final bool) {
	s := h.cur
	if s == nil {
		return
	}
	h.cur = nil
	if h.fm != nil && h.fm.out.seg == s {
		h.fm.out.seg = nil
	}
	s.dur = end - s.start
	if s.dur <= 0 {
		s.dur = time.Millisecond
	}
	if h.ll != nil {
		h.ll.close(s.seq, s.dur, h.cfg.Window)
	}
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	if err := s.f.Close(); err != nil && s.err == nil {
		s.err = err
	}
	s.rel = renderTemplate(s.tpl, h.vars(s.seq, s.opened, s.dur))
	if s.err == nil && filepath.IsLocal(s.rel) {
		s.err = h.root.Rename(s.tmp, s.rel)
	}
	if s.err != nil {
		h.log.Error("hls segment lost", "file", s.tmp, "error", s.err)
		h.remove(s.tmp)
	}
	h.srv.setWriting(filepath.Join(h.cfg.Path, s.tmp), false)
	if s.err != nil {
		h.disc = true
		return
	}
	h.appendSegment(s)
	h.updateVariant()
	if err := h.writePlaylist(); err != nil {
		h.log.Error("write hls playlist", "file", h.m3u8Rel, "error", err)
	}
	h.notify(s)
	_ = final
}

// appendSegment adds a finished segment to the playlist, slides the window
// and deletes the segments that left it long enough ago.
func (h *hlsStream) appendSegment(s *segment) {
	h.segs = append(h.segs, s)
	var total time.Duration
	for _, x := range h.segs {
		total += x.dur
	}
	for len(h.segs) > 1 && total > h.cfg.Window {
		total -= h.segs[0].dur
		if h.segs[0].disc {
			h.discSeq++
		}
		h.expired = append(h.expired, h.segs[0])
		h.segs = h.segs[1:]
	}
	if h.cfg.Cleanup {
		for len(h.expired) > keepExpired {
			h.remove(h.expired[0].rel)
			h.expired = h.expired[1:]
		}
		h.removeUnusedInits()
	}
}

// playlist renders the media playlist (RFC 8216 §4.3).
func (h *hlsStream) playlist() []byte {
	target := int(math.Ceil(h.cfg.Fragment.Seconds() * h.cfg.TDRatio))
	for _, s := range h.segs {
		if t := int(math.Ceil(s.dur.Seconds())); t > target {
			target = t
		}
	}
	version := 3
	for _, s := range h.segs {
		if s.init != nil {
			version = 7 // fMP4 segments with EXT-X-MAP (RFC 8216 §7 asks for 6 or more)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:%d\n", version)
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", h.segs[0].seq)
	if h.discSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", h.discSeq)
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	var prev *initFile
	for i, s := range h.segs {
		if s.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		// RFC 8216 §4.3.2.5: the map applies to the segments after it.
		if s.init != nil && (i == 0 || s.init != prev || s.disc) {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", h.uri(s.init.rel))
		}
		prev = s.init
		fmt.Fprintf(&b, "#EXTINF:%.3f, no desc\n%s\n", s.dur.Seconds(), h.uri(s.rel))
	}
	return []byte(b.String())
}

// uri is the URI in the playlist of a file (segment or init) at rel under
// the hls path: relative to the playlist's directory, or entry_prefix + rel.
func (h *hlsStream) uri(file string) string {
	if h.cfg.EntryPrefix != "" {
		return strings.TrimSuffix(h.cfg.EntryPrefix, "/") + "/" + filepath.ToSlash(file)
	}
	rel, err := filepath.Rel(filepath.Dir(h.m3u8Rel), file)
	if err != nil {
		rel = file
	}
	return filepath.ToSlash(rel)
}

// removeUnusedInits deletes the init segments that no segment on disk
// uses any more (never the current one).
func (h *hlsStream) removeUnusedInits() {
	used := map[*initFile]bool{}
	if h.fm != nil {
		used[h.fm.init] = true
	}
	for _, s := range append(h.expired, h.segs...) {
		if s.init != nil {
			used[s.init] = true
		}
	}
	kept := h.inits[:0]
	for _, f := range h.inits {
		if used[f] {
			kept = append(kept, f)
		} else {
			h.remove(f.rel)
		}
	}
	clear(h.inits[len(kept):])
	h.inits = kept
}

// writePlaylist replaces the playlist atomically (temp file + rename), so a
// player never reads half of it.
func (h *hlsStream) writePlaylist() error {
	if len(h.segs) == 0 {
		return nil
	}
	return h.writeAtomic(h.m3u8Rel, h.playlist())
}

// writeAtomic writes a file under the hls path through a temporary file
// and a rename, so a player never reads half of it.
func (h *hlsStream) writeAtomic(rel string, data []byte) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := h.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := rel + ".tmp"
	if err := h.root.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return h.root.Rename(tmp, rel)
}

// notify sends on_hls for a new segment (SRS's callback fields).
func (h *hlsStream) notify(s *segment) {
	cwd, _ := os.Getwd()
	fields := map[string]string{
		"duration": strconv.FormatFloat(s.dur.Seconds(), 'f', 3, 64),
		"file":     filepath.Join(h.cfg.Path, s.rel),
		"url":      filepath.ToSlash(s.rel),
		"m3u8":     filepath.Join(h.cfg.Path, h.m3u8Rel),
		"m3u8_url": filepath.ToSlash(h.m3u8Rel),
		"seq_no":   strconv.FormatUint(s.seq, 10),
		"cwd":      cwd,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	who := h.publisher
	if who.ID == "" {
		who = h.client
	}
	if err := h.srv.rt.Host.Notify(ctx, "on_hls", who, h.key.ref(), fields); err != nil {
		h.log.Warn("on_hls event", "error", err)
	}
}
