package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type writerStats struct {
	PID       int    `json:"pid"`
	Written   uint64 `json:"written"`
	Errors    uint64 `json:"errors"`
	LastError string `json:"last_error"`
}

type readerStats struct {
	PID       int    `json:"pid"`
	Received  uint64 `json:"received"`
	Corrupt   uint64 `json:"corrupt"`
	Gaps      uint64 `json:"gaps"`
	Dropped   uint64 `json:"dropped"`
	EOFs      uint64 `json:"eofs"`
	Reading   bool   `json:"reading"`
	Published uint64 `json:"published_events"`
	LastError string `json:"last_error"`
}

func patternConfig() Config {
	return Config{
		Plugins: []string{"testwriter", "testreader"},
		Blocks: map[string]string{
			"testwriter": `  rate = 500
  size = 2048`,
		},
	}
}

func (d *Daemon) writer(t *testing.T) writerStats {
	t.Helper()
	var w writerStats
	if err := d.GetJSON("/test/writer/", &w); err != nil {
		t.Fatalf("writer stats: %v", err)
	}
	return w
}

func (d *Daemon) reader() (readerStats, error) {
	var r readerStats
	err := d.GetJSON("/test/reader/", &r)
	return r, err
}

func waitRunning(t *testing.T, d *Daemon, names ...string) map[string]PluginStatus {
	t.Helper()
	var ps map[string]PluginStatus
	Eventually(t, 20*time.Second, "plugins running", func() error {
		var err error
		ps, err = d.Plugins()
		if err != nil {
			return err
		}
		for _, n := range names {
			if p, ok := ps[n]; !ok || p.State != "running" || p.PID == 0 {
				return fmt.Errorf("plugin %s: %+v", n, ps[n])
			}
		}
		return nil
	})
	return ps
}

// checkClean stops the daemon and checks that no plugin process and no shm
// file survive it.
func checkClean(t *testing.T, d *Daemon, pids ...int) {
	t.Helper()
	if err := d.Stop(); err != nil {
		t.Fatalf("daemon stop: %v\n%s", err, d.Log())
	}
	Eventually(t, 5*time.Second, "plugin processes gone", func() error {
		for _, pid := range pids {
			if pidAlive(pid) {
				return fmt.Errorf("pid %d still alive", pid)
			}
		}
		return nil
	})
	if left := shmFiles(d.ShmDir); len(left) > 0 {
		t.Fatalf("shm files left behind: %v", left)
	}
}

func TestMediaFlowsBetweenPlugins(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, patternConfig())
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 20*time.Second, "reader receives 500 packets", func() error {
		r, err := d.reader()
		if err != nil {
			return err
		}
		if r.Received < 500 {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	r, _ := d.reader()
	if r.Corrupt != 0 {
		t.Fatalf("reader saw %d corrupt packets: %+v", r.Corrupt, r)
	}

	var versions struct {
		Code   int    `json:"code"`
		Server string `json:"server"`
		PID    string `json:"pid"`
		Data   struct {
			Major   int    `json:"major"`
			Version string `json:"version"`
		} `json:"data"`
	}
	if err := d.GetJSON("/api/v1/versions", &versions); err != nil {
		t.Fatal(err)
	}
	if versions.Code != 0 || versions.Server == "" || versions.PID == "" || versions.Data.Version == "" {
		t.Fatalf("versions: %+v", versions)
	}

	var streams struct {
		Code    int `json:"code"`
		Streams []struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			App       string `json:"app"`
			Clients   int    `json:"clients"`
			RecvBytes uint64 `json:"recv_bytes"`
			Publish   struct {
				Active bool   `json:"active"`
				CID    string `json:"cid"`
			} `json:"publish"`
		} `json:"streams"`
	}
	if err := d.GetJSON("/api/v1/streams/", &streams); err != nil {
		t.Fatal(err)
	}
	if len(streams.Streams) != 1 {
		t.Fatalf("want 1 stream, got %+v", streams)
	}
	s := streams.Streams[0]
	if s.App != "live" || s.Name != "pattern" || !s.Publish.Active || s.Publish.CID == "" || s.Clients != 1 || s.RecvBytes == 0 {
		t.Fatalf("stream: %+v", s)
	}

	var sum struct {
		Code int `json:"code"`
		Data struct {
			OK   bool `json:"ok"`
			Self struct {
				PID      int    `json:"pid"`
				MemKbyte uint64 `json:"mem_kbyte"`
			} `json:"self"`
			System struct {
				CPUs int `json:"cpus"`
			} `json:"system"`
		} `json:"data"`
	}
	if err := d.GetJSON("/api/v1/summaries", &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Data.OK || sum.Data.Self.PID != d.cmd.Process.Pid || sum.Data.Self.MemKbyte == 0 || sum.Data.System.CPUs == 0 {
		t.Fatalf("summaries: %+v", sum)
	}
	checkClean(t, d, ps["testwriter"].PID, ps["testreader"].PID)
}

// probeListener dials the reader's probe port every 20 ms until stop and
// counts refusals: the core owns the socket, so a restart never refuses.
func probeListener(t *testing.T, addr string, stop <-chan struct{}) (dials, refused *atomic.Int64, done *sync.WaitGroup) {
	dials, refused = &atomic.Int64{}, &atomic.Int64{}
	done = &sync.WaitGroup{}
	done.Add(1)
	go func() {
		defer done.Done()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			dials.Add(1)
			if err != nil {
				refused.Add(1)
				t.Logf("dial %s: %v", addr, err)
				continue
			}
			// A connection accepted while the plugin restarts waits in the
			// backlog and is answered by the new process.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
				refused.Add(1)
				t.Logf("read from %s: %v", addr, err)
			}
			c.Close()
		}
	}()
	return dials, refused, done
}

func TestReaderKilledIsRestarted(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, patternConfig())
	ps := waitRunning(t, d, "testwriter", "testreader")
	oldReader, writer := ps["testreader"], ps["testwriter"]
	if len(oldReader.Listeners) != 1 {
		t.Fatalf("reader listeners: %+v", oldReader.Listeners)
	}
	Eventually(t, 20*time.Second, "reader receives", func() error {
		r, err := d.reader()
		if err == nil && r.Received < 100 {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})
	stop := make(chan struct{})
	dials, refused, done := probeListener(t, oldReader.Listeners[0].Addr, stop)
	time.Sleep(200 * time.Millisecond)
	w0 := d.writer(t)
	if err := syscall.Kill(oldReader.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var newReader PluginStatus
	Eventually(t, 15*time.Second, "reader restarted", func() error {
		ps, err := d.Plugins()
		if err != nil {
			return err
		}
		newReader = ps["testreader"]
		if newReader.State != "running" || newReader.PID == oldReader.PID || newReader.Restarts != 1 {
			return fmt.Errorf("%+v", newReader)
		}
		return nil
	})
	Eventually(t, 15*time.Second, "restarted reader receives", func() error {
		r, err := d.reader()
		if err != nil {
			return err
		}
		if r.PID != newReader.PID || r.Received < 200 || r.Corrupt != 0 {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	done.Wait()
	if dials.Load() < 10 || refused.Load() != 0 {
		t.Fatalf("probe port: %d dials, %d refused or unanswered", dials.Load(), refused.Load())
	}
	// The writer never noticed: same process, no restart, no write error,
	// still writing.
	ps2, _ := d.Plugins()
	w1 := d.writer(t)
	if ps2["testwriter"].PID != writer.PID || ps2["testwriter"].Restarts != 0 || w1.Errors != 0 || w1.Written <= w0.Written {
		t.Fatalf("writer disturbed: before %+v %+v, after %+v %+v", writer, w0, ps2["testwriter"], w1)
	}
	if !strings.Contains(d.Log(), "plugin process ended, restarting") {
		t.Fatalf("no restart logged:\n%s", d.Log())
	}
	checkClean(t, d, writer.PID, oldReader.PID, newReader.PID)
}

func TestWriterKilledReaderSeesEndAndResumes(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, patternConfig())
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 20*time.Second, "reader receives", func() error {
		r, err := d.reader()
		if err == nil && r.Received < 100 {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})
	if err := syscall.Kill(ps["testwriter"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "reader sees end of stream", func() error {
		r, err := d.reader()
		if err == nil && r.EOFs < 1 {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})
	r0, _ := d.reader()
	Eventually(t, 20*time.Second, "reader resumes after the writer's restart", func() error {
		r, err := d.reader()
		if err == nil && (r.Received < r0.Received+200 || !r.Reading) {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})
	r, _ := d.reader()
	if r.Corrupt != 0 || r.PID != ps["testreader"].PID {
		t.Fatalf("reader: %+v (pid before %d)", r, ps["testreader"].PID)
	}
	ps2, _ := d.Plugins()
	if ps2["testwriter"].Restarts != 1 || ps2["testreader"].Restarts != 0 {
		t.Fatalf("restarts: %+v", ps2)
	}
	checkClean(t, d, ps2["testwriter"].PID, ps2["testreader"].PID, ps["testwriter"].PID)
}

func TestCoreKilledLeavesNothingForTheNextStart(t *testing.T) {
	t.Parallel()
	d := StartDaemon(t, patternConfig())
	ps := waitRunning(t, d, "testwriter", "testreader")
	Eventually(t, 20*time.Second, "stream live", func() error {
		r, err := d.reader()
		if err == nil && r.Received < 50 {
			err = fmt.Errorf("%+v", r)
		}
		return err
	})
	if len(shmFiles(d.ShmDir)) == 0 {
		t.Fatal("no shm files while a stream is live")
	}
	d.Kill()
	Eventually(t, 5*time.Second, "plugins die with their core", func() error {
		for _, p := range ps {
			if pidAlive(p.PID) {
				return fmt.Errorf("plugin %s pid %d alive", p.Name, p.PID)
			}
		}
		return nil
	})
	stale := shmFiles(d.ShmDir)
	if len(stale) == 0 {
		t.Fatal("a SIGKILLed core should leave its segments for the next start to sweep")
	}
	cfg := patternConfig()
	cfg.ShmDir = d.ShmDir
	d2 := StartDaemon(t, cfg)
	ps2 := waitRunning(t, d2, "testwriter", "testreader")
	left := map[string]bool{}
	for _, f := range shmFiles(d.ShmDir) {
		left[f] = true
	}
	for _, f := range stale {
		if left[f] {
			t.Fatalf("stale segment %s not swept; dir has %v", f, shmFiles(d.ShmDir))
		}
	}
	if !strings.Contains(d2.Log(), "removed stale shm segment") {
		t.Fatalf("sweep not logged:\n%s", d2.Log())
	}
	checkClean(t, d2, ps2["testwriter"].PID, ps2["testreader"].PID)
}

func TestConfigErrorsNameFileLineAndKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		cfg   Config
		wants []string
	}{
		{
			name:  "unknown core key",
			cfg:   Config{Plugins: []string{"testwriter"}, Extra: "vhost \"__defaultVhost__\" {\n  gop_cach = true\n}\n"},
			wants: []string{"conf.hcl:", "gop_cach", "unknown key"},
		},
		{
			name:  "unknown plugin key",
			cfg:   Config{Plugins: []string{"testwriter"}, Blocks: map[string]string{"testwriter": "  bogus = 1"}},
			wants: []string{"conf.hcl:", "bogus", "unknown key"},
		},
		{
			name:  "bad plugin value",
			cfg:   Config{Plugins: []string{"testwriter"}, Blocks: map[string]string{"testwriter": "  rate = -5"}},
			wants: []string{"conf.hcl:", "rate", "must be"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDaemon(t, tc.cfg)
			err := d.Start()
			if err == nil {
				t.Fatalf("daemon started with a broken config")
			}
			if werr := d.Wait(10 * time.Second); werr == nil {
				t.Fatalf("daemon exited 0 on a broken config")
			}
			log := d.Log()
			for _, w := range tc.wants {
				if !strings.Contains(log, w) {
					t.Fatalf("error output lacks %q:\n%s", w, log)
				}
			}
			if left := shmFiles(d.ShmDir); len(left) > 0 {
				t.Fatalf("shm files left: %v", left)
			}
		})
	}
}

func TestNonExecutableInPluginDirIsSkipped(t *testing.T) {
	t.Parallel()
	cfg := patternConfig()
	d := NewDaemon(t, cfg)
	if err := os.WriteFile(filepath.Join(d.Dir, "plugins", "README"), []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	ps := waitRunning(t, d, "testwriter", "testreader")
	checkClean(t, d, ps["testwriter"].PID, ps["testreader"].PID)
}
