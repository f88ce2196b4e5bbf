package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
)

// defaultVhost is SRS's fallback vhost.
const defaultVhost = sdk.DefaultVhost

// subscribeWait is how long a recording waits for the stream's publisher.
const subscribeWait = 5 * time.Second

// server is the dvr plugin.
type server struct {
	rt     *sdk.Runtime
	log    hclog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	vhosts  map[string]*vhostConfig
	streams map[string]*stream // by vhost/app/stream
	// scanned are the recording directories already searched for files a
	// killed recorder left unfinished.
	scanned map[string]bool

	files  atomic.Uint64
	bytes  atomic.Uint64
	errors atomic.Uint64
}

// stream is a live stream of a vhost with DVR, or one the API asked for.
type stream struct {
	ref  sdk.StreamRef
	live bool // published (the core told us)
	// override is the API's word for this publication: +1 record, -1 don't.
	override int
	// byAPI: the API started it without a publish event (the core sends
	// none for a vhost with dvr { enabled = false }); forget it when its
	// recording ends.
	byAPI bool
	rec   *recording
	// publisher is the publishing client: on_dvr names it, as SRS does.
	publisher sdk.ClientInfo
}

// recording is a running recorder.
type recording struct {
	r      *recorder
	cancel context.CancelFunc
	done   chan struct{}
	since  time.Time
}

var (
	_ sdk.Configurer    = (*server)(nil)
	_ sdk.Starter       = (*server)(nil)
	_ sdk.Stopper       = (*server)(nil)
	_ sdk.StreamWatcher = (*server)(nil)
	_ sdk.StatsReporter = (*server)(nil)
	_ http.Handler      = (*server)(nil)
)

func newServer() *server {
	return &server{vhosts: map[string]*vhostConfig{}, streams: map[string]*stream{}, scanned: map[string]bool{}}
}

// apiRoutes are served on the core's API port; the core also forwards
// SRS's RAW form (/api/v1/raw?rpc=update&scope=dvr...) here.
var apiRoutes = []string{"/api/v1/dvr"}

func (s *server) Info() sdk.Info {
	return sdk.Info{
		Name:        "dvr",
		Version:     "1.0.0",
		Description: "records live streams to FLV and fragmented MP4 files (SRS DVR)",
		// Only vhosts with a dvr block; enabled = false there still lets
		// the API start a recording (the plugin reads enabled itself).
		Capabilities: []string{sdk.CapVhostOptIn, sdk.CapOwnEnabled},
		HTTPRoutes:   apiRoutes,
	}
}

// Configure validates every vhost's dvr block, then applies them all.
func (s *server) Configure(_ context.Context, cfg sdk.Config) error {
	if err := cfg.DecodeSettings(&struct{}{}); err != nil {
		return err
	}
	vhosts := map[string]*vhostConfig{}
	var errs []error
	for _, vc := range cfg.Vhosts {
		v, err := parseVhost(vc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vhosts[vc.Name] = v
	}
	if err := errors.Join(errs...); err != nil || cfg.DryRun {
		return err
	}
	s.mu.Lock()
	s.vhosts = vhosts
	s.mu.Unlock()
	s.recoverUnfinished()
	s.reconcile()
	return nil
}

func (s *server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.rt, s.log = rt, rt.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.recoverUnfinished()
	s.reconcile()
	return nil
}

// recoverUnfinished searches the recording directories not searched yet
// (at start, and those a reload adds) for files that a killed recorder
// left as .tmp: each is finished, renamed and reported with on_dvr, in
// the background.
func (s *server) recoverUnfinished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt == nil || s.ctx.Err() != nil {
		return
	}
	var roots []string
	for _, v := range s.vhosts {
		if r := v.path.root; !s.scanned[r] {
			s.scanned[r] = true
			roots = append(roots, r)
		}
	}
	if len(roots) == 0 {
		return
	}
	sort.Strings(roots)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cwd, _ := os.Getwd()
		for _, root := range roots {
			files, err := recoverDir(root)
			if err != nil {
				s.errors.Add(1)
				s.log.Error("cannot finish every unfinished dvr file", "dir", root, "error", err)
			}
			for _, f := range files {
				s.files.Add(1)
				log := s.log.With("client_id", f.client.ID, "stream", f.stream.Key())
				log.Warn("dvr file left unfinished by a stopped recorder: finished and renamed", "file", f.file, "duration", f.duration.String())
				ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
				err := s.rt.Host.Notify(ctx, "on_dvr", f.client, f.stream, map[string]string{"file": f.file, "cwd": cwd})
				cancel()
				if err != nil {
					log.Warn("on_dvr event not delivered to the core", "file", f.file, "error", err)
				}
			}
		}
	}()
}

// Stop ends every recording: each closes, renames and reports its file.
func (s *server) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// vhostOf returns the config for vhost, falling back to the default vhost
// as SRS does. Call with s.mu held.
func (s *server) vhostOf(vhost string) *vhostConfig {
	if v, ok := s.vhosts[vhost]; ok {
		return v
	}
	return s.vhosts[defaultVhost]
}

// StreamEvent starts recording a published stream of a vhost that records
// it, and stops recording an unpublished one.
func (s *server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	key := ev.Stream.Key()
	s.mu.Lock()
	switch ev.Type {
	case sdk.StreamPublished:
		st := s.streams[key]
		if st == nil {
			st = &stream{}
			s.streams[key] = st
		}
		st.ref, st.live, st.byAPI, st.publisher = ev.Stream, true, false, ev.Publisher
	case sdk.StreamUnpublished:
		if st := s.streams[key]; st != nil {
			delete(s.streams, key)
			if st.rec != nil {
				st.rec.cancel()
			}
		}
	}
	s.mu.Unlock()
	s.reconcile()
}

// reconcile starts and stops recordings so that every known stream is
// recorded exactly when its vhost config and the API say so.
func (s *server) reconcile() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt == nil {
		return // not started yet
	}
	for key, st := range s.streams {
		v := s.vhostOf(st.ref.Vhost)
		want := v != nil && st.live && (st.override > 0 || (st.override == 0 && v.records(st.ref.App, st.ref.Stream)))
		if v != nil && st.override > 0 && !v.configured {
			want = false
		}
		switch {
		case want && st.rec == nil:
			s.startLocked(st, v, nil, st.publisher)
		case !want && st.rec != nil:
			st.rec.cancel()
		case !want && !st.live && st.rec == nil:
			delete(s.streams, key)
		}
	}
}

// startLocked starts recording st with v. sub is an open subscription, or
// nil to subscribe in the recording's goroutine. Call with s.mu held.
func (s *server) startLocked(st *stream, v *vhostConfig, sub *sdk.Subscription, client sdk.ClientInfo) *recording {
	ctx, cancel := context.WithCancel(s.ctx)
	r := newRecorder(st.ref, client, v, s.log, func(ctx context.Context, c sdk.ClientInfo, ref sdk.StreamRef, f map[string]string) error {
		s.files.Add(1)
		return s.rt.Host.Notify(ctx, "on_dvr", c, ref, f)
	})
	rec := &recording{r: r, cancel: cancel, done: make(chan struct{}), since: time.Now()}
	st.rec = rec
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(rec.done)
		defer cancel()
		s.record(ctx, r, sub)
		s.mu.Lock()
		if st.rec == rec {
			st.rec = nil
			if key := st.ref.Key(); st.byAPI && s.streams[key] == st {
				delete(s.streams, key)
			}
		}
		s.mu.Unlock()
	}()
	return rec
}

func (s *server) record(ctx context.Context, r *recorder, sub *sdk.Subscription) {
	if sub == nil {
		var err error
		sub, err = s.rt.Host.Subscribe(ctx, r.client, r.ref, sdk.SubscribeOptions{Internal: true, Wait: subscribeWait})
		if err != nil {
			if ctx.Err() == nil {
				s.errors.Add(1)
				r.log.Error("cannot read stream to record it", "error", err)
			}
			return
		}
	}
	defer sub.Close()
	r.log.Info("dvr recording started", "plan", r.cfg.plan, "path", r.cfg.path.raw)
	err := r.run(ctx, sub)
	s.bytes.Add(r.bytes.Load())
	if err != nil {
		s.errors.Add(1)
		if !errors.Is(err, errStopRecording) { // those were logged where they happened
			r.log.Error("dvr recording stopped", "error", err)
		}
		return
	}
	r.log.Info("dvr recording stopped", "files", r.files.Load())
}

// Stats reports counters: recordings running, files closed, bytes of
// media recorded by finished recordings, errors.
func (s *server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	n := 0
	for _, st := range s.streams {
		if st.rec != nil {
			n++
		}
	}
	s.mu.Unlock()
	return sdk.Stats{Counters: map[string]uint64{
		"recordings": uint64(n), "files": s.files.Load(), "bytes": s.bytes.Load(), "errors": s.errors.Load(),
	}}
}

// recordingInfo is one running recording as the API shows it.
type recordingInfo struct {
	Vhost  string `json:"vhost"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	File   string `json:"file"`
	Plan   string `json:"plan"`
	Since  string `json:"since"`
}

func (s *server) recordings() []recordingInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []recordingInfo{}
	for _, st := range s.streams {
		if st.rec == nil {
			continue
		}
		out = append(out, recordingInfo{
			Vhost: st.ref.Vhost, App: st.ref.App, Stream: st.ref.Stream, File: st.rec.r.currentFile(),
			Plan: st.rec.r.cfg.plan, Since: st.rec.since.UTC().Format(time.RFC3339),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Vhost+"/"+out[i].App+"/"+out[i].Stream < out[j].Vhost+"/"+out[j].App+"/"+out[j].Stream
	})
	return out
}
