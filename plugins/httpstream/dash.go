package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/fmp4"
	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// dashSettings is SRS's vhost dash { } block (a shared vhost block read by
// this plugin). Durations take "10s" or a number of seconds, as in SRS.
type dashSettings struct {
	Enabled      *bool        `json:"enabled"`
	Fragment     sdk.Duration `json:"dash_fragment"`
	UpdatePeriod sdk.Duration `json:"dash_update_period"`
	Timeshift    sdk.Duration `json:"dash_timeshift"`
	WindowSize   int          `json:"dash_window_size"`
	Path         string       `json:"dash_path"`
	MPDFile      string       `json:"dash_mpd_file"`
	Cleanup      *bool        `json:"dash_cleanup"`
	Dispose      sdk.Duration `json:"dash_dispose"`
}

// dashConfig is a vhost's resolved DASH configuration.
type dashConfig struct {
	Enabled      bool
	Fragment     time.Duration
	UpdatePeriod time.Duration
	Window       time.Duration // timeShiftBufferDepth: what the MPD lists
	Path         string        // absolute
	MPDFile      string
	Cleanup      bool
	Dispose      time.Duration
}

func parseDash(v sdk.VhostConfig) (dashConfig, error) {
	s := dashSettings{
		Fragment: sdk.Duration(10 * time.Second), UpdatePeriod: sdk.Duration(10 * time.Second),
		Path: "./objs/nginx/html", MPDFile: "[app]/[stream].mpd", Dispose: sdk.Duration(120 * time.Second),
	}
	if err := v.DecodeBlock("dash", &s); err != nil {
		return dashConfig{}, err
	}
	d := dashConfig{
		Enabled: boolOr(s.Enabled, false), Fragment: s.Fragment.Std(), UpdatePeriod: s.UpdatePeriod.Std(),
		Window: s.Timeshift.Std(), MPDFile: s.MPDFile, Cleanup: boolOr(s.Cleanup, true), Dispose: s.Dispose.Std(),
	}
	derr := func(key, msg string) error {
		return &sdk.ConfigError{Vhost: v.Name, Key: []string{"dash", key}, Msg: msg, VhostRelative: true}
	}
	switch {
	case d.Fragment < 500*time.Millisecond || d.Fragment > 10*time.Minute:
		return d, derr("dash_fragment", "must be 500ms..10m")
	case d.UpdatePeriod < 500*time.Millisecond || d.UpdatePeriod > 10*time.Minute:
		return d, derr("dash_update_period", "must be 500ms..10m")
	case s.WindowSize < 0 || s.WindowSize > 10000:
		return d, derr("dash_window_size", "must be 0..10000")
	case s.Timeshift != 0 && s.WindowSize != 0:
		return d, derr("dash_window_size", "set dash_timeshift or dash_window_size, not both")
	case d.Dispose < 0:
		return d, derr("dash_dispose", "must not be negative")
	}
	switch {
	case s.WindowSize > 0:
		d.Window = time.Duration(s.WindowSize) * d.Fragment
	case d.Window == 0:
		d.Window = 300 * time.Second // SRS's dash_timeshift
	}
	if d.Window < d.Fragment {
		return d, derr("dash_timeshift", "must be at least dash_fragment")
	}
	if err := checkTemplate(d.MPDFile); err != nil {
		return d, derr("dash_mpd_file", err.Error())
	}
	if !strings.HasSuffix(d.MPDFile, ".mpd") || strings.Contains(d.MPDFile, "[seq]") {
		return d, derr("dash_mpd_file", "must end in .mpd and not use [seq]")
	}
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return d, derr("dash_path", err.Error())
	}
	d.Path = abs
	return d, nil
}

// dashStream writes one stream's MPEG-DASH live presentation (SRS's dash
// muxer): an MPD with a SegmentTemplate and SegmentTimeline per
// representation, one representation per track (video, audio) with its
// fMP4 initialization segment and media segments cut at video key frames
// after dash_fragment. Files live under dash_path:
//
//	[mpd]                 the MPD (dash_mpd_file)
//	[mpd base]/video-init.mp4, video-N.m4s, audio-init.mp4, audio-N.m4s
//
// A republish starts a new presentation (new availabilityStartTime) and
// the old segments go.
type dashStream struct {
	srv  *Server
	key  streamKey
	log  hclog.Logger
	root *os.Root
	cfg  dashConfig

	mu      sync.Mutex
	running bool
	again   *sdk.StreamRef
	dispose *time.Timer
	cancel  context.CancelFunc

	// Owned by the running goroutine.
	mpdRel  string
	dirRel  string // segments' directory, relative to the path
	vcfg    *media.Packet
	acfg    *media.Packet
	tracks  []*dashTrack
	ast     time.Time // availabilityStartTime: wall clock of DTS 0
	started bool
	segDTS  time.Duration // DTS at which the open segment started
	num     uint64        // number of the open segment
	warned  map[string]bool
	files   []string // every file written, for dispose
}

// dashTrack is one representation.
type dashTrack struct {
	name  string // "video" or "audio"
	track fmp4.Track
	mux   *fmp4.Muxer
	buf   bytes.Buffer
	first time.Duration // DTS of the open segment's first sample
	has   bool          // the open segment has a sample
	segs  []dashSeg
	bytes int64 // of the segments listed, for @bandwidth
}

type dashSeg struct {
	num  uint64
	t, d uint64 // track timescale
	size int
}

func newDashStream(srv *Server, key streamKey, cfg dashConfig) (*dashStream, error) {
	if err := os.MkdirAll(cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("dash path: %w", err)
	}
	root, err := os.OpenRoot(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("dash path: %w", err)
	}
	d := &dashStream{srv: srv, key: key, cfg: cfg, root: root, warned: map[string]bool{},
		log: srv.log.With("stream", key.String(), "dash_path", cfg.Path)}
	d.mpdRel = renderTemplate(cfg.MPDFile, tplVars{Vhost: key.Vhost, App: key.App, Stream: key.Stream, Time: time.Now()})
	if !filepath.IsLocal(d.mpdRel) {
		root.Close()
		return nil, fmt.Errorf("mpd path %q leaves the dash path", d.mpdRel)
	}
	d.dirRel = strings.TrimSuffix(d.mpdRel, ".mpd")
	return d, nil
}

// start begins a publication; the caller holds srv.mu.
func (d *dashStream) start(ref sdk.StreamRef) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		d.again = &ref
		return
	}
	d.launchLocked(ref)
}

func (d *dashStream) launchLocked(ref sdk.StreamRef) {
	if d.dispose != nil {
		d.dispose.Stop()
		d.dispose = nil
	}
	d.running = true
	ctx, cancel := context.WithCancel(d.srv.ctx)
	d.cancel = cancel
	d.srv.wg.Add(1)
	go func() {
		defer d.srv.wg.Done()
		d.run(ctx, ref)
	}()
}

func (d *dashStream) stopped() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.running = false
	if again := d.again; again != nil {
		d.again = nil
		if d.srv.ctx.Err() == nil {
			d.launchLocked(*again)
			return
		}
	}
	if d.cfg.Dispose > 0 {
		d.dispose = time.AfterFunc(d.cfg.Dispose, d.disposeNow)
	}
}

func (d *dashStream) stopNow() {
	d.mu.Lock()
	if d.cancel != nil {
		d.cancel()
	}
	if d.dispose != nil {
		d.dispose.Stop()
	}
	d.mu.Unlock()
}

// disposeNow removes the files of a stream not republished in dash_dispose.
func (d *dashStream) disposeNow() {
	d.srv.mu.Lock()
	d.mu.Lock()
	if d.running || d.srv.dash[d.key] != d {
		d.mu.Unlock()
		d.srv.mu.Unlock()
		return
	}
	delete(d.srv.dash, d.key)
	d.mu.Unlock()
	d.srv.mu.Unlock()
	d.removeAll()
	d.log.Info("dash disposed", "mpd", d.mpdRel)
	d.root.Close()
}

func (d *dashStream) removeAll() {
	for _, f := range d.files {
		d.remove(f)
	}
	d.files = nil
	d.remove(d.mpdRel)
}

func (d *dashStream) remove(rel string) {
	if err := d.root.Remove(rel); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("remove dash file", "file", rel, "error", err)
	}
}

func (d *dashStream) warnOnce(what string, err error) {
	if !d.warned[what] {
		d.warned[what] = true
		d.log.Warn("dash dropped packets", "what", what, "error", err)
	}
}

func (d *dashStream) run(ctx context.Context, ref sdk.StreamRef) {
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "dash"}
	defer d.stopped()
	q := live.NewQueue(0, 0)
	q.OnDrop = func(lost int, why string) {
		d.log.Warn("dash writer behind, skipping to the next keyframe", "packets", lost, "reason", why)
	}
	rd := d.srv.tap.Join(ref, d.srv.liveOptions(d.srv.cfg.Load(), ref.Vhost, client, sdk.SubscribeOptions{Wait: 5 * time.Second, Internal: true}), q)
	defer rd.Leave()
	select {
	case <-rd.Stream().Ready():
	case <-ctx.Done():
		return
	}
	if err := rd.Stream().Err(); err != nil {
		if ctx.Err() == nil {
			d.log.Warn("dash subscribe failed", "error", err)
		}
		return
	}
	// A new presentation: what a previous publication left goes.
	d.removeAll()
	d.vcfg, d.acfg, d.tracks, d.started, d.num = nil, nil, nil, false, 0
	d.log.Info("dash started", "mpd", d.mpdRel, "fragment", d.cfg.Fragment, "window", d.cfg.Window)
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("dash muxer panic, stream's dash ended", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		d.log.Info("dash stopped", "segments", d.num)
	}()
	var ps []media.Packet
	for {
		var err error
		ps, err = q.Next(ctx, ps)
		for _, p := range ps {
			d.write(p)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				d.log.Warn("dash read ended", "error", err)
			}
			return
		}
	}
}

func (d *dashStream) write(p media.Packet) {
	if p.Kind == media.KindData {
		return
	}
	if p.IsConfig() {
		slot := &d.acfg
		if p.Kind == media.KindVideo {
			slot = &d.vcfg
		}
		if old := *slot; old != nil && old.Codec == p.Codec && bytes.Equal(old.Payload, p.Payload) {
			return
		}
		if d.started {
			d.warnOnce("config change", errors.New("codec configuration changed mid-stream: the presentation keeps its first one (republish to change it)"))
			return
		}
		c := p.Clone()
		*slot = &c
		return
	}
	if !d.started && !d.begin(p) {
		return
	}
	tr := d.trackOf(p)
	if tr == nil {
		return
	}
	video := p.Kind == media.KindVideo
	hasVideo := d.tracks[0].name == "video"
	if video || !hasVideo {
		if p.DTS-d.segDTS >= d.cfg.Fragment && (!video || p.IsKey()) {
			d.reap(p.DTS)
		}
	}
	if !tr.has {
		tr.first, tr.has = p.DTS, true
	}
	if err := tr.mux.WritePacket(p); err != nil {
		d.warnOnce("mux "+p.Codec.String(), err)
	}
}

func (d *dashStream) trackOf(p media.Packet) *dashTrack {
	for _, t := range d.tracks {
		if t.track.Codec == p.Codec {
			return t
		}
	}
	return nil
}

// begin makes the tracks and init segments at the first media packet (a
// video key frame when there is video).
func (d *dashStream) begin(p media.Packet) bool {
	if d.vcfg != nil && (p.Kind != media.KindVideo || !p.IsKey()) {
		return false
	}
	if d.vcfg == nil && d.acfg == nil {
		return false
	}
	d.tracks = nil
	for _, c := range []*media.Packet{d.vcfg, d.acfg} {
		if c == nil {
			continue
		}
		tr, err := fmp4.NewTrack(1, *c)
		if err != nil {
			d.warnOnce("track "+c.Codec.String(), err)
			continue
		}
		name := "audio"
		if tr.Kind() == media.KindVideo {
			name = "video"
		}
		init, err := fmp4.AppendInit(nil, []fmp4.Track{tr})
		if err != nil {
			d.warnOnce("init "+name, err)
			continue
		}
		rel := path.Join(d.dirRel, name+"-init.mp4")
		if err := d.writeAtomic(rel, init); err != nil {
			d.log.Error("write dash init segment", "file", rel, "error", err)
			return false
		}
		d.files = append(d.files, rel)
		d.tracks = append(d.tracks, &dashTrack{name: name, track: tr})
	}
	if len(d.tracks) == 0 {
		return false
	}
	d.started = true
	d.ast = time.Now().Add(-p.DTS)
	d.segDTS = p.DTS
	d.num = 1
	return d.openMuxers()
}

func (d *dashStream) openMuxers() bool {
	for _, t := range d.tracks {
		t.buf.Reset()
		// One fragment per segment for audio; video fragments at key
		// frames. NewMuxer writes an init, dropped here.
		m, err := fmp4.NewMuxer(&t.buf, []fmp4.Track{t.track}, fmp4.Options{FragmentDuration: 10 * time.Minute})
		if err != nil {
			d.warnOnce("muxer "+t.name, err)
			return false
		}
		t.buf.Reset()
		t.mux, t.has = m, false
	}
	return true
}

// reap ends the open segment at end (the DTS of the packet that starts the
// next one), writes its files and the MPD.
func (d *dashStream) reap(end time.Duration) {
	for _, t := range d.tracks {
		if err := t.mux.Close(); err != nil {
			d.warnOnce("flush "+t.name, err)
		}
		if !t.has || t.buf.Len() == 0 {
			continue
		}
		rel := path.Join(d.dirRel, t.name+"-"+strconv.FormatUint(d.num, 10)+".m4s")
		if err := d.writeAtomic(rel, t.buf.Bytes()); err != nil {
			d.log.Error("write dash segment", "file", rel, "error", err)
			continue
		}
		d.files = append(d.files, rel)
		// The timeline is contiguous: a segment spans from the cut that
		// opened it to the one that closes it (its first sample may come a
		// frame later, an audio frame not being cut at a video key frame).
		start := t.track.Units(t.first)
		if len(t.segs) > 0 {
			start = t.track.Units(d.segDTS)
		}
		dur := t.track.Units(end) - start
		if dur <= 0 {
			dur = 1
		}
		t.segs = append(t.segs, dashSeg{num: d.num, t: uint64(max(start, 0)), d: uint64(dur), size: t.buf.Len()})
		t.bytes += int64(t.buf.Len())
		d.slide(t)
	}
	if err := d.writeAtomic(d.mpdRel, d.mpd(time.Now())); err != nil {
		d.log.Error("write dash mpd", "file", d.mpdRel, "error", err)
	}
	d.num++
	d.segDTS = end
	d.openMuxers()
}

// slide drops the segments that left the window (deleting their files
// with dash_cleanup).
func (d *dashStream) slide(t *dashTrack) {
	ts := uint64(t.track.Timescale)
	window := uint64(d.cfg.Window.Seconds() * float64(ts))
	var total uint64
	for _, s := range t.segs {
		total += s.d
	}
	for len(t.segs) > 1 && total > window {
		s := t.segs[0]
		total -= s.d
		t.bytes -= int64(s.size)
		t.segs = t.segs[1:]
		if d.cfg.Cleanup {
			rel := path.Join(d.dirRel, t.name+"-"+strconv.FormatUint(s.num, 10)+".m4s")
			d.remove(rel)
			for i, f := range d.files {
				if f == rel {
					d.files = append(d.files[:i], d.files[i+1:]...)
					break
				}
			}
		}
	}
}

// isoDur writes a duration as xs:duration.
func isoDur(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "S"
}

// mpd renders the MPD (ISO/IEC 23009-1, live profile, type dynamic).
func (d *dashStream) mpd(now time.Time) []byte {
	var b strings.Builder
	maxSeg := d.cfg.Fragment
	for _, t := range d.tracks {
		for _, s := range t.segs {
			maxSeg = max(maxSeg, time.Duration(float64(s.d)/float64(t.track.Timescale)*float64(time.Second)))
		}
	}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"`+
		` availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" minBufferTime="%s"`+
		` timeShiftBufferDepth="%s" suggestedPresentationDelay="%s" maxSegmentDuration="%s">`+"\n",
		d.ast.UTC().Format("2006-01-02T15:04:05.000Z"), now.UTC().Format("2006-01-02T15:04:05.000Z"),
		isoDur(d.cfg.UpdatePeriod), isoDur(maxSeg), isoDur(d.cfg.Window), isoDur(2*maxSeg), isoDur(maxSeg))
	fmt.Fprintf(&b, "  <Period id=\"0\" start=\"PT0S\">\n")
	base := path.Base(d.dirRel)
	for i, t := range d.tracks {
		if len(t.segs) == 0 {
			continue
		}
		var total uint64
		for _, s := range t.segs {
			total += s.d
		}
		bw := int64(1)
		if total > 0 {
			bw = max(1, t.bytes*8*int64(t.track.Timescale)/int64(total))
		}
		mime := "video/mp4"
		if t.name == "audio" {
			mime = "audio/mp4"
		}
		fmt.Fprintf(&b, "    <AdaptationSet id=\"%d\" contentType=\"%s\" mimeType=\"%s\" segmentAlignment=\"true\" startWithSAP=\"1\">\n", i, t.name, mime)
		fmt.Fprintf(&b, "      <Representation id=\"%s\" codecs=\"%s\" bandwidth=\"%d\"", t.name, t.track.CodecString(), bw)
		if t.name == "video" {
			fmt.Fprintf(&b, " width=\"%d\" height=\"%d\"", t.track.Width, t.track.Height)
		} else {
			fmt.Fprintf(&b, " audioSamplingRate=\"%d\"", t.track.SampleRate)
		}
		b.WriteString(">\n")
		if t.name == "audio" {
			fmt.Fprintf(&b, "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"%d\"/>\n", t.track.Channels)
		}
		fmt.Fprintf(&b, "        <SegmentTemplate timescale=\"%d\" initialization=\"%s/%s-init.mp4\" media=\"%s/%s-$Number$.m4s\" startNumber=\"%d\">\n",
			t.track.Timescale, base, t.name, base, t.name, t.segs[0].num)
		b.WriteString("          <SegmentTimeline>\n")
		for j, s := range t.segs {
			if j == 0 || s.t != t.segs[j-1].t+t.segs[j-1].d || s.num != t.segs[j-1].num+1 {
				fmt.Fprintf(&b, "            <S t=\"%d\" d=\"%d\"/>\n", s.t, s.d)
			} else {
				fmt.Fprintf(&b, "            <S d=\"%d\"/>\n", s.d)
			}
		}
		b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n")
	}
	b.WriteString("  </Period>\n")
	fmt.Fprintf(&b, "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"%s\"/>\n", now.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteString("</MPD>\n")
	return []byte(b.String())
}

func (d *dashStream) writeAtomic(rel string, data []byte) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp := rel + ".tmp"
	if err := d.root.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return d.root.Rename(tmp, rel)
}
