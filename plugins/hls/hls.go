package main

import (
	"bufio"
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
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/tsmux"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// keepExpired is how many segments that left the playlist stay on disk, for
// players that fetched the playlist just before.
const keepExpired = 2

// maxJump is a timestamp jump that ends the segment and starts a new one
// after an EXT-X-DISCONTINUITY (THREATS.md #4).
const (
	maxJumpForward  = 10 * time.Second
	maxJumpBackward = 500 * time.Millisecond
)

// hlsStream writes one stream's playlist and segments (SRS's hls muxer).
// It survives unpublish for cfg.Dispose so that a republish continues the
// sequence numbers after an EXT-X-DISCONTINUITY.
type hlsStream struct {
	srv  *Server
	key  streamKey
	log  hclog.Logger
	root *os.Root

	mu      sync.Mutex
	cfg     hlsConfig
	running bool
	dispose *time.Timer
	cancel  context.CancelFunc

	// Owned by the running goroutine.
	client sdk.ClientInfo
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
		return
	}
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
	sub, err := h.srv.rt.Host.Subscribe(ctx, h.client, ref, sdk.SubscribeOptions{Wait: 5 * time.Second, Internal: true})
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("hls subscribe failed", "error", err)
		}
		return
	}
	defer sub.Close()
	// A republish starts a new timeline: the muxer starts over and the next
	// segment gets a discontinuity.
	h.mux = tsmux.New()
	h.hasVideo = false
	if len(h.segs) > 0 || h.seq > 0 {
		h.disc = true
	}
	h.log.Info("hls started", "m3u8", h.m3u8Rel, "fragment", h.cfg.Fragment, "window", h.cfg.Window)
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("hls muxer panic, stream's hls ended", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		h.reap(h.lastEnd(), true)
		h.log.Info("hls stopped", "segments", h.seq)
	}()
	for {
		p, err := sub.Read(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				h.log.Warn("hls read ended", "error", err)
			}
			return
		}
		h.write(p)
	}
}

// stopped schedules the dispose of the files after an unpublish.
func (h *hlsStream) stopped() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
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
	if !tsmux.Supported(p.Codec) {
		h.warnOnce(p.Codec.String(), tsmux.ErrUnsupported)
		return
	}
	if p.IsConfig() {
		if _, err := h.mux.AppendPacket(nil, p); err != nil {
			h.warnOnce("config "+p.Codec.String(), err)
			return
		}
		if p.Kind == media.KindVideo {
			h.hasVideo = true
		}
		return
	}
	frag := h.cfg.Fragment
	if c := h.cur; c != nil {
		if p.DTS > c.last+maxJumpForward || p.DTS < c.last-maxJumpBackward {
			h.log.Warn("timestamp jump, new segment after a discontinuity", "from", c.last, "to", p.DTS)
			h.reap(h.lastEnd(), false)
			h.disc = true
		}
	}
	video := p.Kind == media.KindVideo
	if c := h.cur; c != nil {
		d := p.DTS - c.start
		switch {
		case video && d >= frag && (p.IsKey() || !h.cfg.WaitKeyframe):
			h.reap(p.DTS, false)
		case !video && !h.hasVideo && d >= frag:
			h.reap(p.DTS, false)
		case !video && h.hasVideo && float64(d) >= h.cfg.AOFRatio*float64(frag):
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
	b, err := h.mux.AppendPacket(h.buf[:0], p)
	h.buf = b
	if err != nil {
		h.warnOnce(p.Codec.String(), err)
		return
	}
	c := h.cur
	if c.err == nil {
		if _, err := c.w.Write(b); err != nil {
			c.err = err
			h.log.Error("write hls segment", "file", c.tmp, "error", err)
		}
	}
	if p.DTS > c.last {
		c.last = p.DTS
	}
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
	s := &segment{seq: h.seq, start: dts, last: dts, disc: h.disc, opened: now}
	s.tmp = renderTemplate(h.cfg.TSFile, h.vars(s.seq, now, 0)) + ".tmp"
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
	f, err := h.root.OpenFile(s.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		h.warnOnce("create segment", err)
		return false
	}
	s.f, s.w = f, bufio.NewWriterSize(f, 64<<10)
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
	s.dur = end - s.start
	if s.dur <= 0 {
		s.dur = time.Millisecond
	}
	if err := s.w.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	if err := s.f.Close(); err != nil && s.err == nil {
		s.err = err
	}
	s.rel = renderTemplate(h.cfg.TSFile, h.vars(s.seq, s.opened, s.dur))
	if s.err == nil && filepath.IsLocal(s.rel) {
		s.err = h.root.Rename(s.tmp, s.rel)
	}
	if s.err != nil {
		h.log.Error("hls segment lost", "file", s.tmp, "error", s.err)
		h.remove(s.tmp)
		h.disc = true
		return
	}
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
	}
	if err := h.writePlaylist(); err != nil {
		h.log.Error("write hls playlist", "file", h.m3u8Rel, "error", err)
	}
	h.notify(s)
	_ = final
}

// playlist renders the media playlist (RFC 8216 §4.3).
func (h *hlsStream) playlist() []byte {
	target := int(math.Ceil(h.cfg.Fragment.Seconds() * h.cfg.TDRatio))
	for _, s := range h.segs {
		if t := int(math.Ceil(s.dur.Seconds())); t > target {
			target = t
		}
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", h.segs[0].seq)
	if h.discSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", h.discSeq)
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	for _, s := range h.segs {
		if s.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f, no desc\n%s\n", s.dur.Seconds(), h.segmentURI(s))
	}
	return []byte(b.String())
}

// segmentURI is the segment's URI in the playlist: relative to the
// playlist's directory, or entry_prefix + its path under the hls path.
func (h *hlsStream) segmentURI(s *segment) string {
	if h.cfg.EntryPrefix != "" {
		return strings.TrimSuffix(h.cfg.EntryPrefix, "/") + "/" + filepath.ToSlash(s.rel)
	}
	rel, err := filepath.Rel(filepath.Dir(h.m3u8Rel), s.rel)
	if err != nil {
		rel = s.rel
	}
	return filepath.ToSlash(rel)
}

// writePlaylist replaces the playlist atomically (temp file + rename), so a
// player never reads half of it.
func (h *hlsStream) writePlaylist() error {
	if len(h.segs) == 0 {
		return nil
	}
	if dir := filepath.Dir(h.m3u8Rel); dir != "." {
		if err := h.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := h.m3u8Rel + ".tmp"
	if err := h.root.WriteFile(tmp, h.playlist(), 0o644); err != nil {
		return err
	}
	return h.root.Rename(tmp, h.m3u8Rel)
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
