package main

import (
	"context"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
)

// pidFileName is the pid file of the running children, in log_dir.
const pidFileName = "exec.pids"

// server is the exec plugin.
type server struct {
	log hclog.Logger

	mu       sync.Mutex
	cfg      *config
	sup      *supervisor // nil until Start
	stopped  bool
	streams  map[string]sdk.StreamRef // published streams of enabled vhosts, by key
	children map[string]*child        // wanted children, by spec key
	leaving  []*child                 // stopped children not yet gone
}

var (
	_ sdk.Configurer    = (*server)(nil)
	_ sdk.Starter       = (*server)(nil)
	_ sdk.Stopper       = (*server)(nil)
	_ sdk.StreamWatcher = (*server)(nil)
	_ sdk.StatsReporter = (*server)(nil)
)

func newServer() *server {
	return &server{
		log:      hclog.NewNullLogger(),
		streams:  map[string]sdk.StreamRef{},
		children: map[string]*child{},
	}
}

func (s *server) Info() sdk.Info {
	return sdk.Info{
		Name:         "exec",
		Version:      "1.0.0",
		Description:  "ingest, transcode and exec: supervises FFmpeg and other programs (SRS ingest/transcode/exec)",
		Capabilities: []string{sdk.CapVhostOptIn},
	}
}

// Configure validates the plugin block and every vhost's exec block, then
// applies them: children whose command did not change keep running.
func (s *server) Configure(_ context.Context, cfg sdk.Config) error {
	c, err := parseConfig(cfg)
	if err != nil || cfg.DryRun {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = c
	// The core sends no events for a vhost where the plugin is off.
	for key, ref := range s.streams {
		if c.vhosts[ref.Vhost] == nil {
			delete(s.streams, key)
		}
	}
	if s.sup != nil {
		s.sup.setLimits(c)
	}
	s.reconcileLocked()
	return nil
}

func (s *server) Start(_ context.Context, rt *sdk.Runtime) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = rt.Logger
	c := s.cfg
	if c == nil { // not configured: defaults, no vhost
		var err error
		if c, err = parseConfig(sdk.Config{}); err != nil {
			return err
		}
		s.cfg = c
	}
	pidPath := filepath.Join(c.logDir, pidFileName)
	if killed, err := sweepLeftovers(pidPath); err != nil {
		s.log.Warn("read pid file of a previous run", "path", pidPath, "error", err)
	} else if len(killed) > 0 {
		s.log.Warn("killed children left by a previous run", "pgids", killed)
	}
	s.sup = &supervisor{log: s.log, spawner: processSpawner(), pids: newPIDFile(pidPath)}
	s.sup.setLimits(c)
	s.reconcileLocked()
	return nil
}

// Stop ends every child (SIGTERM, then SIGKILL after kill_timeout) and
// waits for them until ctx ends.
func (s *server) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	all := append([]*child(nil), s.leaving...)
	for _, c := range s.children {
		all = append(all, c)
	}
	s.children = map[string]*child{}
	s.leaving = nil
	s.mu.Unlock()
	for _, c := range all {
		c.Stop()
	}
	for _, c := range all {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	sup := s.sup
	s.mu.Unlock()
	if sup != nil {
		sup.pids.removeFile() // every child is gone
	}
	return nil
}

// StreamEvent starts the transcode engines and publish programs of a
// published stream and stops them when it is unpublished.
func (s *server) StreamEvent(_ context.Context, ev sdk.StreamEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ev.Stream.Key()
	switch ev.Type {
	case sdk.StreamPublished:
		s.streams[key] = ev.Stream
	case sdk.StreamUnpublished:
		delete(s.streams, key)
	default:
		return
	}
	s.reconcileLocked()
}

// reconcileLocked starts and stops children so that exactly the wanted
// ones run: the ingests of every vhost, and the transcode engines and
// publish programs of every published stream. A child whose key and
// command are unchanged is not touched. Call with s.mu held.
func (s *server) reconcileLocked() {
	if s.sup == nil || s.stopped {
		return
	}
	want := s.wantedLocked()
	replaced := map[string]<-chan struct{}{}
	for key, c := range s.children {
		if w, ok := want[key]; ok && w.fingerprint() == c.spec.fingerprint() {
			continue
		}
		c.Stop()
		delete(s.children, key)
		s.leaving = append(s.leaving, c)
		replaced[key] = c.Done()
	}
	// Forget stopped children that are gone; a new child waits for a
	// predecessor of the same key that is still going (a stream published
	// again at once must not find the old transcoder still publishing).
	left := s.leaving[:0]
	for _, c := range s.leaving {
		select {
		case <-c.Done():
		default:
			left = append(left, c)
			if replaced[c.spec.key] == nil {
				replaced[c.spec.key] = c.Done()
			}
		}
	}
	s.leaving = left
	keys := make([]string, 0, len(want))
	for key := range want {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if _, ok := s.children[key]; !ok {
			s.children[key] = s.sup.start(want[key], replaced[key])
		}
	}
}

// wantedLocked renders the children the config and the live streams ask
// for. A stream whose values fail the checks is logged and left alone.
func (s *server) wantedLocked() map[string]childSpec {
	c := s.cfg
	want := map[string]childSpec{}
	for _, v := range c.vhosts {
		for _, sp := range v.ingests {
			want[sp.key] = sp
		}
	}
	for _, ref := range s.streams {
		v := c.vhosts[ref.Vhost]
		if v == nil {
			continue
		}
		if v.transcode.transcodes(ref) {
			for _, e := range v.transcode.engines {
				sp, err := c.transcodeSpec(v.transcode, e, ref)
				if err != nil {
					s.log.Warn("stream not transcoded", "stream", ref.Key(), "engine", e.name, "error", err)
					continue
				}
				want[sp.key] = sp
			}
		}
		for _, p := range v.publish {
			sp, err := c.publishSpec(v, p, ref)
			if err != nil {
				s.log.Warn("publish program not run", "stream", ref.Key(), "command", quoteArgv(p.argv), "error", err)
				continue
			}
			want[sp.key] = sp
		}
	}
	return want
}

// Stats reports the children: running now, started, restarted after an
// exit nobody asked for, and failures (such exits and failed starts).
func (s *server) Stats(context.Context) sdk.Stats {
	s.mu.Lock()
	sup := s.sup
	byKind := map[string]uint64{}
	for _, c := range s.children {
		byKind[c.spec.kind]++
	}
	s.mu.Unlock()
	st := sdk.Stats{Counters: map[string]uint64{
		"ingests":    byKind[kindIngest],
		"transcodes": byKind[kindTranscode],
		"execs":      byKind[kindExec],
	}}
	if sup != nil {
		st.Counters["running"] = uint64(max(sup.running.Load(), 0))
		st.Counters["started"] = sup.started.Load()
		st.Counters["restarts"] = sup.restarts.Load()
		st.Counters["failures"] = sup.failures.Load()
	}
	return st
}

// limits are the supervisor's tunables; a reload changes them for the
// children started after it.
type limits struct {
	logDir      string
	logMax      int64
	backoffMin  time.Duration
	backoffMax  time.Duration
	killTimeout time.Duration
}
