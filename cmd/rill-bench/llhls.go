package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// llhlsResult is the LL-HLS row: n players polling a low-latency playlist
// with blocking reload (_HLS_msn/_HLS_part) and fetching each part as it
// comes, as hls.js does in low-latency mode.
type llhlsResult struct {
	failed    string
	players   int
	window    time.Duration
	playlists int64 // blocking playlist answers (200)
	parts     int64 // parts fetched (200)
	bytes     int64
	errors    int64
	p50, p99  time.Duration // how long a blocking reload was held
	usage     usage
}

func (r llhlsResult) String() string {
	if r.failed != "" {
		return "failed: " + r.failed
	}
	secs := r.window.Seconds()
	return fmt.Sprintf("players=%d playlists/s=%.0f parts/s=%.0f mbit/s=%.1f errors=%d hold p50=%v p99=%v cpu=%.1f%% rss=%d MiB",
		r.players, float64(r.playlists)/secs, float64(r.parts)/secs, float64(r.bytes)*8/secs/1e6, r.errors,
		r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.usage.cpu, r.usage.peakRSS/1024)
}

var benchHintRE = regexp.MustCompile(`(?m)^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]*-ll-(\d+)-(\d+)\.m4s)"`)

// runLLHLS runs the llhls row (-scenarios llhls; Rill only): 500 players,
// 30 s (10 s with -quick).
func (s *suite) runLLHLS(ctx context.Context) {
	window := 30 * time.Second
	if s.quick {
		window = 10 * time.Second
	}
	r := s.llhlsSession(ctx, 500, window)
	s.llhls = &r
	logf("llhls        %-10s %s", srvRill, r)
}

// llhlsRillConfig is Rill with rtmp, httpstream and LL-HLS in the default
// vhost: plugin dir, API, RTMP and HTTP addresses, hls path.
const llhlsRillConfig = `# written by rill-bench (llhls)
plugin_dir = %q
listen_api = %q
log_level  = "warn"

shm {
  dir = "/dev/shm"
}

plugin "rtmp" {
  listen = [%q]
}

plugin "httpstream" {
  listen = [%q]
}

vhost "__defaultVhost__" {
  gop_cache = true
  hls {
    enabled     = true
    ll_hls      = true
    part_target = "500ms"
    fragment    = %q
    window      = "20s"
    path        = %q
  }
}
`

// startRillLLHLS starts bin/rill with llhlsRillConfig (segments of
// fragment) and waits until its plugins run.
func startRillLLHLS(ctx context.Context, dir, bin, pluginDir, hlsDir, fragment string) (*server, error) {
	addrs, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &server{name: "rill", rtmpAddr: addrs[0], httpAddr: addrs[1]}
	if pluginDir, err = filepath.Abs(pluginDir); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "rill-llhls.hcl")
	if err := os.WriteFile(conf, fmt.Appendf(nil, llhlsRillConfig, pluginDir, addrs[2], addrs[0], addrs[1], fragment, hlsDir), 0o644); err != nil {
		return nil, err
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	if err := s.launch(dir, bin, "-c", conf); err != nil {
		return nil, err
	}
	if err := waitRillPlugins(ctx, s, addrs[2], 20*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// llhlsSession starts Rill with ll_hls (2 s segments, 500 ms parts), one
// publisher of the HD file, and n players for the window.
func (s *suite) llhlsSession(ctx context.Context, n int, window time.Duration) llhlsResult {
	dir, err := os.MkdirTemp(s.tmp, "rill-llhls-")
	if err != nil {
		return llhlsResult{failed: err.Error()}
	}
	srv, err := startRillLLHLS(ctx, s.tmp, s.rillBin, s.pluginDir, dir, "2s")
	if err != nil {
		return llhlsResult{failed: err.Error()}
	}
	defer srv.stop()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pub, err := publishOne(pctx, s.hd, srv.rtmpURL("llhls"))
	if err != nil {
		return llhlsResult{failed: err.Error()}
	}
	defer func() { pcancel(); <-pub.done }()
	base := "http://" + srv.httpAddr + "/live/"
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * n, MaxConnsPerHost: 2 * n, IdleConnTimeout: 30 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	// Wait (bounded) for the playlist.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, err := llGetBench(ctx, cl, base+"llhls.m3u8", nil); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return llhlsResult{failed: "no low-latency playlist: " + err.Error()}
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	r := llhlsResult{players: n, window: window}
	var mu sync.Mutex
	var holds []time.Duration
	var counting atomic.Bool
	wctx, wcancel := context.WithTimeout(ctx, window+5*time.Second)
	defer wcancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the joins over 2 s.
			sleepCtx(wctx, time.Duration(i)*2*time.Second/time.Duration(n))
			buf := make([]byte, 64<<10)
			url := base + "llhls.m3u8"
			for range 100000 {
				if wctx.Err() != nil {
					return
				}
				t0 := time.Now()
				body, _, err := llGetBench(wctx, cl, url, buf)
				held := time.Since(t0)
				if err != nil {
					if wctx.Err() == nil && counting.Load() {
						atomic.AddInt64(&r.errors, 1)
					}
					sleepCtx(wctx, 100*time.Millisecond)
					url = base + "llhls.m3u8"
					continue
				}
				m := benchHintRE.FindSubmatch(body)
				if m == nil {
					sleepCtx(wctx, 100*time.Millisecond)
					continue
				}
				if counting.Load() {
					atomic.AddInt64(&r.playlists, 1)
					mu.Lock()
					holds = append(holds, held)
					mu.Unlock()
				}
				// Fetch the hinted part (blocks until it exists), then ask
				// for the playlist that holds it. (m points into buf.)
				partURL := base + string(m[1])
				msn, _ := strconv.Atoi(string(m[2]))
				part, _ := strconv.Atoi(string(m[3]))
				_, nb, err := llGetBench(wctx, cl, partURL, buf)
				if counting.Load() {
					if err != nil {
						if wctx.Err() == nil {
							atomic.AddInt64(&r.errors, 1)
						}
					} else {
						atomic.AddInt64(&r.parts, 1)
						atomic.AddInt64(&r.bytes, nb)
					}
				}
				url = fmt.Sprintf("%sllhls.m3u8?_HLS_msn=%d&_HLS_part=%d", base, msn, part)
			}
		}()
	}
	// Warm up while the players join, then measure the window.
	sleepCtx(ctx, 3*time.Second)
	atomic.StoreInt64(&r.errors, 0)
	counting.Store(true)
	smp := startSampler(srv.procs, 250*time.Millisecond)
	sleepCtx(ctx, window)
	counting.Store(false)
	r.usage = smp.finish()
	wcancel()
	wg.Wait()
	if pub.failed() != nil {
		r.failed = pub.failed().Error()
		return r
	}
	if len(holds) == 0 {
		r.failed = "no blocking reload answered"
		return r
	}
	slices.Sort(holds)
	r.p50, r.p99 = holds[len(holds)/2], holds[len(holds)*99/100]
	return r
}

// llGetBench GETs url; it returns the body (for playlists, in buf) and the
// number of bytes read.
func llGetBench(ctx context.Context, cl *http.Client, url string, buf []byte) ([]byte, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, 0, &statusError{url: url, status: resp.Status}
	}
	if buf == nil {
		n, err := io.Copy(io.Discard, resp.Body)
		return nil, n, err
	}
	n, err := io.ReadFull(resp.Body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return buf[:n], int64(n), nil
	}
	if err != nil {
		return nil, int64(n), err
	}
	// Longer than buf (a part): count the rest.
	rest, err := io.Copy(io.Discard, resp.Body)
	return buf[:n], int64(n) + rest, err
}
