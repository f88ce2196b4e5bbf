package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// keepAliveConn is one raw HTTP/1.1 client connection kept open between
// requests.
type keepAliveConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialKeepAlive(addr string) (*keepAliveConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &keepAliveConn{c: c, r: bufio.NewReader(c)}, nil
}

// get sends one keep-alive GET and reads the whole answer; the server must
// not announce that it closes the connection.
func (k *keepAliveConn) get(path string) (int, string, error) {
	_ = k.c.SetDeadline(time.Now().Add(10 * time.Second))
	defer k.c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	if resp.Close {
		return resp.StatusCode, string(b), errors.New("server closes the connection after the answer")
	}
	return resp.StatusCode, string(b), nil
}

// cpuTimeOf returns the user plus system CPU time pid has used.
func cpuTimeOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after "(comm)" start at field 3 (state); utime and stime are
	// fields 14 and 15, in USER_HZ ticks (100 a second on Linux).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

func fdCount(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// TestHTTPIdleKeepAliveBounded opens 3000 keep-alive connections to the
// HTTP port, each served one request and then left idle: the httpstream plugin
// burns no CPU on them, its memory grows by a bounded amount per
// connection, an RTMP publish still plays over HTTP-FLV, and the idle
// connections still answer.
func TestHTTPIdleKeepAliveBounded(t *testing.T) {
	t.Parallel()
	httpNeedFFmpeg(t)
	const n = 3000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 12000 {
		lim.Cur = min(lim.Max, 12000)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	static := t.TempDir()
	const body = "idle keep-alive\n"
	if err := os.WriteFile(filepath.Join(static, "idle.txt"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// A long idle_timeout, so that nothing is closed during the test.
	d, ps := hostileDaemon(t, "", fmt.Sprintf("  dir = %q\n  idle_timeout = \"10m\"", static), "")
	rtmpAddr, httpAddr := ps["rtmp"].Listeners[0].Addr, ps["httpstream"].Listeners[0].Addr
	pid := ps["httpstream"].PID

	// Warm up the HTTP server before the baseline.
	warm, err := dialKeepAlive(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if code, got, err := warm.get("/idle.txt"); err != nil || code != 200 || got != body {
		t.Fatalf("GET /idle.txt: %d %q %v", code, got, err)
	}
	warm.c.Close()
	time.Sleep(500 * time.Millisecond)
	rssBefore, fdsBefore := rssOf(pid), fdCount(pid)

	conns := make([]*keepAliveConn, n)
	defer func() {
		for _, k := range conns {
			if k != nil {
				k.c.Close()
			}
		}
	}()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		firstEr error
	)
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				k, err := dialKeepAlive(httpAddr)
				if err == nil {
					conns[i] = k
					var code int
					var got string
					if code, got, err = k.get("/idle.txt"); err == nil && (code != 200 || got != body) {
						err = fmt.Errorf("HTTP %d %q", code, got)
					}
				}
				if err != nil {
					errMu.Lock()
					if firstEr == nil {
						firstEr = fmt.Errorf("connection %d: %w", i, err)
					}
					errMu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstEr != nil {
		t.Fatal(firstEr)
	}
	fds := fdCount(pid)
	if fds < fdsBefore+n {
		t.Fatalf("httpstream plugin holds %d fds (%d before): the idle connections are not all open", fds, fdsBefore)
	}

	// Idle: the plugin must not spin on the connections it holds.
	time.Sleep(time.Second)
	cpu0 := cpuTimeOf(t, pid)
	time.Sleep(3 * time.Second)
	cpu := cpuTimeOf(t, pid) - cpu0
	rss := rssOf(pid)
	t.Logf("httpstream plugin with %d idle keep-alive connections: %s CPU over 3s idle; RSS %d KiB before, %d KiB with them (%.1f KiB each); fds %d -> %d",
		n, cpu, rssBefore, rss, float64(rss-rssBefore)/n, fdsBefore, fds)
	if cpu > 300*time.Millisecond {
		t.Fatalf("httpstream plugin used %s of CPU in 3s with %d idle connections", cpu, n)
	}
	if rss > rssBefore+n*40 {
		t.Fatalf("%d idle connections cost %d KiB (more than 40 KiB each)", n, rss-rssBefore)
	}

	// A stream still plays over HTTP-FLV.
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/idle", 60)
	waitPublished(t, d, "live", "idle")
	if err := ffprobeRun("http://"+httpAddr+"/live/idle.flv", 2); err != nil {
		t.Fatalf("HTTP-FLV with %d idle connections: %v", n, err)
	}

	// The idle connections were kept, not dropped: they answer again.
	for i := 0; i < n; i += 100 {
		if code, got, err := conns[i].get("/idle.txt"); err != nil || code != 200 || got != body {
			t.Fatalf("idle connection %d, second request: %d %q %v", i, code, got, err)
		}
	}
}

// TestHTTPIdleTimeoutClosesKeepAlive: with idle_timeout = "1s" the server
// closes a keep-alive connection that sends no further request, and with
// read_header_timeout = "2s" one that never sends a request.
func TestHTTPIdleTimeoutClosesKeepAlive(t *testing.T) {
	t.Parallel()
	_, ps := hostileDaemon(t, "", "  idle_timeout = \"1s\"\n  read_header_timeout = \"2s\"", "")
	httpAddr := ps["httpstream"].Listeners[0].Addr

	start := time.Now()
	silent, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	k, err := dialKeepAlive(httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer k.c.Close()
	code, _, err := k.get("/no-such-file.txt")
	if err != nil || code != http.StatusNotFound {
		t.Fatalf("GET /no-such-file.txt: %d %v", code, err)
	}
	// The same connection serves a second request (it is kept alive).
	if code, _, err = k.get("/no-such-file.txt"); err != nil || code != http.StatusNotFound {
		t.Fatalf("second GET on the connection: %d %v", code, err)
	}
	for _, c := range []struct {
		what string
		r    io.Reader
		nc   net.Conn
	}{{"idle keep-alive connection", k.r, k.c}, {"connection that never sent a request", silent, silent}} {
		_ = c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := c.r.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("%s: read %d bytes, %v; want the server to close it", c.what, n, err)
		}
		t.Logf("%s closed by the server (%v) %s after the test started", c.what, err, time.Since(start).Round(10*time.Millisecond))
	}
}
