package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// notifier sends on_dvr for a closed file (Host.Notify in the plugin).
type notifier func(ctx context.Context, client sdk.ClientInfo, stream sdk.StreamRef, fields map[string]string) error

// recorder records one stream: it reads the stream's packets and writes
// them to one file (plan session) or a file every duration (plan segment).
type recorder struct {
	ref    sdk.StreamRef
	client sdk.ClientInfo
	cfg    *vhostConfig
	log    hclog.Logger
	notify notifier
	now    func() time.Time

	st     tracks
	cur    *dvrFile
	jit    *jitter
	first  time.Duration // file time of the file's first packet
	last   time.Duration // file time of the latest packet
	reopen bool          // end the file at the next key frame
	fresh  bool          // no packet in the file yet

	mu    sync.Mutex
	file  string // the file being written, for the API
	files atomic.Uint64
	bytes atomic.Uint64
}

// errStopRecording ends a recording for a problem an operator must fix
// (unwritable directory, disk full, nothing recordable).
var errStopRecording = errors.New("recording stopped")

// newRecorder returns a recorder of ref; a zero client gets a new id.
func newRecorder(ref sdk.StreamRef, client sdk.ClientInfo, cfg *vhostConfig, log hclog.Logger, notify notifier) *recorder {
	if client.ID == "" {
		client = sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "dvr"}
	}
	return &recorder{
		ref: ref, client: client, cfg: cfg, notify: notify, now: time.Now,
		log: log.With("client_id", client.ID, "stream", ref.Key()),
	}
}

// currentFile returns the path being written, "" between files.
func (r *recorder) currentFile() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.file
}

// source is what a recorder reads (sdk.Subscription in the plugin).
type source interface {
	Read(ctx context.Context) (media.Packet, error)
}

// run records until the stream ends, ctx ends or a write fails. It always
// closes (and renames, and reports) the file it was writing.
func (r *recorder) run(ctx context.Context, src source) error {
	defer r.closeFile("stream ended")
	for {
		p, err := src.Read(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := r.packet(p); err != nil {
			return err
		}
	}
}

func (r *recorder) packet(p media.Packet) error {
	switch {
	case p.Kind == media.KindData:
		return r.configPacket(p, &r.st.meta)
	case p.IsConfig() && p.Kind == media.KindVideo:
		return r.configPacket(p, &r.st.video)
	case p.IsConfig() && p.Kind == media.KindAudio:
		return r.configPacket(p, &r.st.audio)
	case p.Kind != media.KindVideo && p.Kind != media.KindAudio:
		return nil
	}
	hasVideo := r.st.video != nil
	// A file starts on a video key frame (audio-only streams: anywhere), so
	// it plays from its first byte.
	startsFile := !hasVideo || (p.Kind == media.KindVideo && p.IsKey())
	var dts, pts time.Duration
	if r.cur != nil {
		// SRS's segment plan counts the packet at hand in the duration.
		dts, pts = r.jit.correct(int(p.Kind), p.DTS, p.PTS)
		full := r.cfg.plan == planSegment && dts-r.first >= r.cfg.duration
		switch {
		case startsFile && r.reopen:
			r.closeFile("codec configuration changed")
		case full && (startsFile || !r.cfg.waitKeyframe):
			r.closeFile("segment duration reached")
			startsFile = true
		}
	}
	if r.cur == nil {
		if !startsFile || (p.Kind == media.KindVideo && !hasVideo) {
			return nil // wait for a key frame (or for the video config)
		}
		if err := r.openFile(); err != nil {
			return err
		}
		dts, pts = r.jit.correct(int(p.Kind), p.DTS, p.PTS)
	}
	if r.fresh {
		r.fresh, r.first = false, dts
	}
	r.last = dts
	q := p
	q.DTS, q.PTS = dts, pts
	if err := r.cur.c.write(q); err != nil {
		return r.fail("write", err)
	}
	r.bytes.Add(uint64(len(p.Payload)))
	return nil
}

// configPacket keeps the latest metadata or codec configuration and passes
// it to the open file.
func (r *recorder) configPacket(p media.Packet, slot **media.Packet) error {
	c := p.Clone()
	*slot = &c
	if r.cur == nil {
		return nil
	}
	q := c
	q.DTS = r.jit.now()
	q.PTS = q.DTS
	reopen, err := r.cur.c.config(q)
	if err != nil {
		return r.fail("write", err)
	}
	r.reopen = r.reopen || reopen
	return nil
}

func (r *recorder) openFile() error {
	path, err := r.cfg.path.render(r.ref.Vhost, r.ref.App, r.ref.Stream, r.now())
	if err != nil {
		r.log.Error("refusing to record: bad file name", "error", err)
		return fmt.Errorf("%w: %v", errStopRecording, err)
	}
	path = unusedName(path)
	warn := func(msg string, args ...any) { r.log.Warn(msg, append([]any{"file", path}, args...)...) }
	f, err := createFile(path, r.cfg.path.format, r.st, journal{Stream: r.ref, Client: r.client}, warn)
	if err != nil {
		r.log.Error("cannot record stream, recording stopped", "file", path, "error", err)
		return fmt.Errorf("%w: %v", errStopRecording, err)
	}
	r.cur, r.jit, r.first, r.last, r.reopen, r.fresh = f, newJitter(r.cfg.jitter), 0, 0, false, true
	r.mu.Lock()
	r.file = path
	r.mu.Unlock()
	r.log.Info("dvr file opened", "file", path, "plan", r.cfg.plan, "format", r.cfg.path.format)
	return nil
}

// fail closes the current file after a write error and stops the recording.
func (r *recorder) fail(what string, err error) error {
	path := r.cur.path
	r.log.Error("cannot write dvr file, recording stopped", "file", path, "op", what, "error", err)
	r.closeFile("write error")
	return fmt.Errorf("%w: %s %s: %v", errStopRecording, what, path, err)
}

// closeFile finishes and renames the current file and sends on_dvr.
func (r *recorder) closeFile(reason string) {
	f := r.cur
	if f == nil {
		return
	}
	r.cur = nil
	r.mu.Lock()
	r.file = ""
	r.mu.Unlock()
	dur := r.last - r.first
	if err := f.close(dur); err != nil {
		r.log.Error("cannot finish dvr file", "file", f.path, "error", err)
		if _, serr := os.Stat(f.path); serr != nil {
			return
		}
	}
	r.files.Add(1)
	r.log.Info("dvr file closed", "file", f.path, "duration", dur.String(), "reason", reason)
	cwd, _ := os.Getwd()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.notify(ctx, r.client, r.ref, map[string]string{"file": f.path, "cwd": cwd}); err != nil {
		r.log.Warn("on_dvr event not delivered to the core", "file", f.path, "error", err)
	}
}

// unusedName returns path, or path with "-1", "-2", ... before its
// extension when a file (or a file being written) already has the name:
// a template without [timestamp] or two segments in the same millisecond
// must not overwrite a recording.
func unusedName(path string) string {
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	p := path
	for i := 1; i < 1000; i++ {
		_, err1 := os.Lstat(p)
		_, err2 := os.Lstat(p + tmpSuffix)
		if errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist) {
			return p
		}
		p = base + "-" + strconv.Itoa(i) + ext
	}
	return p
}
