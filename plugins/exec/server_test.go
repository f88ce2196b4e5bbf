package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/sdk"
)

// fakeFFmpeg writes a script that stands for ffmpeg: it sleeps, whatever
// its arguments.
func fakeFFmpeg(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func configure(t *testing.T, s *server, settings, block string) {
	t.Helper()
	cfg := sdk.Config{Settings: json.RawMessage(settings), Vhosts: []sdk.VhostConfig{vhostCfg("__defaultVhost__", block)}}
	if err := s.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
}

// pids returns the running pid of every wanted child by key.
func (s *server) pids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, c := range s.children {
		out[k] = c.PID()
	}
	return out
}

func waitPIDs(t *testing.T, s *server, keys ...string) map[string]int {
	t.Helper()
	var got map[string]int
	eventually(t, fmt.Sprintf("children %v run", keys), func() error {
		got = s.pids()
		if len(got) != len(keys) {
			return fmt.Errorf("children %v", got)
		}
		for _, k := range keys {
			if got[k] == 0 {
				return fmt.Errorf("children %v", got)
			}
		}
		return nil
	})
	return got
}

func TestServerReloadTouchesOnlyWhatChanged(t *testing.T) {
	ff := fakeFFmpeg(t)
	logDir := t.TempDir()
	settings := fmt.Sprintf(`{"ffmpeg":%q,"rtmp":"127.0.0.1:1935","log_dir":%q,"backoff_min":"20ms","kill_timeout":"300ms"}`, ff, logDir)
	s := newServer()
	configure(t, s, settings, `{"ingest":{"a":{"input":"file","url":"a.mp4"},"b":{"input":"file","url":"b.mp4"},"d":{"input":"stream","url":"rtmp://x/y/z"}},
		"transcode":{"engine":{"sd":{"vcodec":"libx264","vwidth":320}}},
		"publish":["sleep 61"]}`)
	if err := s.Start(context.Background(), &sdk.Runtime{Logger: hclog.NewNullLogger()}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	before := waitPIDs(t, s, "ingest/__defaultVhost__/a", "ingest/__defaultVhost__/b", "ingest/__defaultVhost__/d")

	// A published stream gets its transcode and publish program; its own
	// transcode output gets only the publish program.
	ref := sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "cam"}
	out := sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "cam_sd", Param: "?vhost=__defaultVhost__&rill_transcode=sd"}
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamPublished, Stream: ref})
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamPublished, Stream: out})
	execKey := "exec/__defaultVhost__/live/cam/" + shortHash("sleep 61")
	execOutKey := "exec/__defaultVhost__/live/cam_sd/" + shortHash("sleep 61")
	trKey := "transcode/__defaultVhost__/live/cam/sd"
	waitPIDs(t, s, "ingest/__defaultVhost__/a", "ingest/__defaultVhost__/b", "ingest/__defaultVhost__/d", trKey, execKey, execOutKey)

	// Reload: a removed, b changed, c added, d and the stream's children as they were.
	configure(t, s, settings, `{"ingest":{"b":{"input":"file","url":"b2.mp4"},"c":{"input":"file","url":"c.mp4"},"d":{"input":"stream","url":"rtmp://x/y/z"}},
		"transcode":{"engine":{"sd":{"vcodec":"libx264","vwidth":320}}},
		"publish":["sleep 61"]}`)
	mid := s.pids()
	after := waitPIDs(t, s, "ingest/__defaultVhost__/b", "ingest/__defaultVhost__/c", "ingest/__defaultVhost__/d", trKey, execKey, execOutKey)
	if after["ingest/__defaultVhost__/d"] != before["ingest/__defaultVhost__/d"] || after[trKey] != mid[trKey] || after[execKey] != mid[execKey] {
		t.Fatalf("untouched children restarted: %v -> %v", mid, after)
	}
	if after["ingest/__defaultVhost__/b"] == before["ingest/__defaultVhost__/b"] {
		t.Fatalf("changed ingest b kept pid %d", before["ingest/__defaultVhost__/b"])
	}
	eventually(t, "removed ingest a gone", func() error {
		if len(groupMembers(before["ingest/__defaultVhost__/a"])) != 0 {
			return fmt.Errorf("still running")
		}
		return nil
	})

	// Unpublish stops the stream's children only.
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamUnpublished, Stream: ref})
	waitPIDs(t, s, "ingest/__defaultVhost__/b", "ingest/__defaultVhost__/c", "ingest/__defaultVhost__/d", execOutKey)
	eventually(t, "stream's children gone", func() error {
		if len(groupMembers(after[trKey])) != 0 || len(groupMembers(after[execKey])) != 0 {
			return fmt.Errorf("still running")
		}
		return nil
	})
	// A stopped child counts as running until its supervisor has seen its
	// whole group exit, a few milliseconds after the members are gone.
	eventually(t, "counters after unpublish", func() error {
		st := s.Stats(context.Background())
		if st.Counters["ingests"] != 3 || st.Counters["execs"] != 1 || st.Counters["transcodes"] != 0 || st.Counters["running"] != 4 {
			return fmt.Errorf("counters %v", st.Counters)
		}
		return nil
	})

	// Stop ends everything.
	last := s.pids()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for k, pid := range last {
		if len(groupMembers(pid)) != 0 {
			t.Errorf("%s (pid %d) still running after Stop", k, pid)
		}
	}
	if _, err := os.Stat(filepath.Join(logDir, pidFileName)); !os.IsNotExist(err) {
		t.Errorf("pid file after Stop: %v", err)
	}
}

func TestServerDryRunChangesNothing(t *testing.T) {
	s := newServer()
	cfg := sdk.Config{DryRun: true, Vhosts: []sdk.VhostConfig{vhostCfg("v", `{"publish":["true"]}`)}}
	if err := s.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if s.cfg != nil {
		t.Fatal("dry run applied the config")
	}
}

func TestServerRepublishWaitsForTheOldTranscoder(t *testing.T) {
	ff := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(ff, []byte("#!/bin/sh\ntrap '' TERM\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newServer()
	configure(t, s, fmt.Sprintf(`{"ffmpeg":%q,"log_dir":%q,"kill_timeout":"500ms"}`, ff, t.TempDir()),
		`{"transcode":{"engine":{"sd":{"vcodec":"libx264"}}}}`)
	if err := s.Start(context.Background(), &sdk.Runtime{Logger: hclog.NewNullLogger()}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	ref := sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "cam"}
	key := "transcode/__defaultVhost__/live/cam/sd"
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamPublished, Stream: ref})
	old := waitPIDs(t, s, key)[key]
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamUnpublished, Stream: ref})
	s.StreamEvent(context.Background(), sdk.StreamEvent{Type: sdk.StreamPublished, Stream: ref})
	eventually(t, "new transcoder", func() error {
		pid := s.pids()[key]
		if pid == 0 || pid == old {
			return fmt.Errorf("pid %d", pid)
		}
		if len(groupMembers(old)) != 0 {
			t.Fatalf("new transcoder %d started while the old one %d still runs", pid, old)
		}
		return nil
	})
}
