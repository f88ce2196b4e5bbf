package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestHTTPFLVTSAACPlay publishes an H.264+AAC file and plays it back as
// HTTP-FLV, HTTP-TS and HTTP-AAC with ffprobe.
func TestHTTPFLVTSAACPlay(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	d := StartDaemon(t, httpConfig(file, "av", "  loop = true", "", ""))
	addr := hlsAddr(t, d)
	base := "http://" + addr + "/live/av"
	httpWaitStream(t, d, base+".flv")

	httpWantCodecs(t, "flv", httpProbe(t, base+".flv", 3), "h264", "aac")
	httpWantCodecs(t, "ts", httpProbe(t, base+".ts", 3), "h264", "aac")
	httpWantCodecs(t, "aac", httpProbe(t, base+".aac", 3), "aac")

	// Streaming responses: chunked, CORS, right content type.
	resp, err := http.Get(base + ".flv")
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 13)
	if _, err := io.ReadFull(resp.Body, hdr); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if string(hdr[:3]) != "FLV" || hdr[4] != 0x05 {
		t.Fatalf("flv header % x", hdr)
	}
	if resp.Header.Get("Content-Type") != "video/x-flv" || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("flv response headers: %v %v", resp.Header, resp.TransferEncoding)
	}

	// OPTIONS and HEAD.
	req, _ := http.NewRequest(http.MethodOptions, base+".flv", nil)
	or, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	or.Body.Close()
	if or.StatusCode != 200 || or.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(or.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("OPTIONS: %s %v", or.Status, or.Header)
	}

	// An unknown stream is a 404 with a clear body (after play_wait).
	code, _, body := httpGet(t, "http://"+addr+"/live/nosuchstream.flv")
	if code != http.StatusNotFound || !strings.Contains(body, "stream not found") {
		t.Fatalf("unknown stream: %d %q", code, body)
	}
	code, _, _ = httpGet(t, "http://"+addr+"/live/bad%00name.flv")
	if code != http.StatusForbidden && code != http.StatusNotFound && code != http.StatusBadRequest {
		t.Fatalf("NUL in stream name: %d", code)
	}
}

// TestHTTPMP3Play publishes H.264+MP3 and plays the .mp3 and .flv URLs.
func TestHTTPMP3Play(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "mp3", 10)
	d := StartDaemon(t, httpConfig(file, "mp3", "  loop = true", "", ""))
	addr := hlsAddr(t, d)
	base := "http://" + addr + "/live/mp3"
	httpWaitStream(t, d, base+".flv")
	httpWantCodecs(t, "mp3", httpProbe(t, base+".mp3", 3), "mp3")
	httpWantCodecs(t, "flv", httpProbe(t, base+".flv", 3), "h264", "mp3")
	httpWantCodecs(t, "ts", httpProbe(t, base+".ts", 3), "h264", "mp3")
	// The API names MP3, which has no configuration record in the ring.
	var st struct {
		Streams []struct {
			Name  string         `json:"name"`
			Video map[string]any `json:"video"`
			Audio map[string]any `json:"audio"`
		} `json:"streams"`
	}
	if err := d.GetJSON("/api/v1/streams/", &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Streams) != 1 || st.Streams[0].Audio["codec"] != "MP3" || st.Streams[0].Video["codec"] != "H264" {
		t.Errorf("API streams %+v, want video H264 and audio MP3", st.Streams)
	}
	// .aac of an MP3 stream: a 404 at once, not a 200 that sends nothing.
	httpWantAudioRefused(t, base+".aac", "audio is MP3, .aac needs AAC audio")
}

// TestHTTPAudioCodecMismatch publishes H.264+AAC: .mp3 answers 404 with the
// reason (as SRS), .aac plays, and the refusal is logged with the client id.
func TestHTTPAudioCodecMismatch(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	d := StartDaemon(t, httpConfig(file, "aaconly", "  loop = true", "", ""))
	addr := hlsAddr(t, d)
	base := "http://" + addr + "/live/aaconly"
	httpWaitStream(t, d, base+".flv")
	httpWantAudioRefused(t, base+".mp3", "audio is AAC, .mp3 needs MP3 audio")
	req, _ := http.NewRequest(http.MethodHead, base+".mp3", nil)
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("HEAD .mp3: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD .mp3 of an AAC stream: %s, want 404", resp.Status)
	}
	httpWantCodecs(t, "aac", httpProbe(t, base+".aac", 3), "aac")
	Eventually(t, 10*time.Second, "refusal logged with its client id", func() error {
		for _, l := range strings.Split(d.Log(), "\n") {
			if strings.Contains(l, "player refused") && strings.Contains(l, "needs MP3 audio") && strings.Contains(l, "client_id=") {
				return nil
			}
		}
		return fmt.Errorf("no \"player refused\" line with the reason and client_id in the log")
	})
}

// httpWantAudioRefused checks that url answers 404 with reason in the body.
// The client's timeout bounds the wait: a 200 that then sends nothing (the
// fault) ends in a timeout, not a 404.
func httpWantAudioRefused(t *testing.T, url, reason string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		t.Fatalf("GET %s: %s, reading the body: %v", url, resp.Status, err)
	}
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), reason) {
		t.Fatalf("GET %s: %s %q, want 404 saying %q", url, resp.Status, b, reason)
	}
}

// TestHTTPFLVSlowPlayerDropped: a player that never reads is dropped once
// its queue is over the bound, while another player keeps playing.
func TestHTTPFLVSlowPlayerDropped(t *testing.T) {
	t.Parallel()
	file := httpTestFLV(t, "av", 10)
	d := StartDaemon(t, httpConfig(file, "slow", "  loop = true", "  queue_duration = \"2s\"\n  queue_bytes = 262144\n  mw_latency = \"100ms\"", ""))
	addr := hlsAddr(t, d)
	url := "http://" + addr + "/live/slow.flv"
	httpWaitStream(t, d, url)

	// The stalled player: a tiny receive buffer and no reads.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	stalled, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "GET /live/slow.flv HTTP/1.1\r\nHost: %s\r\n\r\n", addr)

	// The good player reads all the time.
	var got atomic.Int64
	good, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Body.Close()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := good.Body.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	Eventually(t, 60*time.Second, "stalled player dropped", func() error {
		if !httpLogContains(d, "player dropped") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	before := got.Load()
	Eventually(t, 20*time.Second, "good player still receiving", func() error {
		if got.Load() <= before+10000 {
			return fmt.Errorf("received %d, was %d", got.Load(), before)
		}
		return nil
	})
	// The stalled connection was closed by the server: draining it ends,
	// with a reset (the server drops what the kernel still held for it).
	_ = stalled.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, bufio.NewReader(stalled)); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("stalled player's connection not closed by the server: %v", err)
	}
}
