package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// newChromium starts Debian's chromium (headless unless
// RILL_CONSOLE_HEADFUL is set) with more flags; it ends with the test.
func newChromium(t *testing.T, flags ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("chromium"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	opts = append(opts, flags...)
	if os.Getenv("RILL_CONSOLE_HEADFUL") == "" {
		opts = append(opts, chromedp.Headless)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	return ctx
}

// TestConsoleListsAndPlaysStream opens the console in headless Chromium
// while ffmpeg publishes over RTMP, checks the stream is listed, starts its
// HTTP-FLV player (mpegts.js) and checks that the video's time advances.
func TestConsoleListsAndPlaysStream(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "chromium")
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks: map[string]string{
			"rtmp":       `  listen = ["127.0.0.1:0"]`,
			"httpstream": `  listen = ["127.0.0.1:0"]`,
		},
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	ffmpegPublish(t, "rtmp://"+ps["rtmp"].Listeners[0].Addr+"/live/console", 60)
	waitPublished(t, d, "live", "console")

	ctx := newChromium(t)

	// The first Run starts the browser: no timeout on its context.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.API+"/console/")); err != nil {
		t.Fatalf("open console: %v", err)
	}
	tctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	const rowSel = `tr[data-stream="/live/console"]`
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(rowSel+` button[data-play="flv"]`))); err != nil {
		t.Fatalf("stream not listed in the console: %v", err)
	}
	row, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(rowSel)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row, "H264") || !strings.Contains(row, "640x360") || !strings.Contains(row, "AAC") {
		t.Fatalf("stream row lacks codec info: %q", row)
	}
	// The rows as first rendered: the stream's incoming bitrate is known
	// (not 0 until a later refresh), the vhost counts its publisher.
	kbpsIn, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('`+rowSel+` td:nth-child(6)').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(kbpsIn); err != nil || n <= 0 {
		t.Errorf("stream kbps in %q at the first render", kbpsIn)
	}
	vhostClients, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.querySelector('#vhosts tbody tr td:nth-child(4)').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(vhostClients); err != nil || n < 1 {
		t.Errorf("vhost clients %q with a publisher on it", vhostClients)
	}
	icon, err := chromedp.Run(tctx, chromedp.Evaluate[int](`fetch(document.querySelector('link[rel=icon]').href).then(r => r.ok ? 200 : r.status)`, chromedp.EvalAwaitPromise))
	if err != nil || icon != 200 {
		t.Errorf("console icon: %d %v", icon, err)
	}
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(rowSel+` button[data-play="flv"]`))); err != nil {
		t.Fatalf("click play: %v", err)
	}
	// The video's currentTime must move: sample it until it has advanced
	// past 1 s of media (bounded in time).
	var first, last float64
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := chromedp.Run(tctx, chromedp.Evaluate[float64](`document.querySelector('#video').currentTime`))
		if err != nil {
			t.Fatalf("read currentTime: %v", err)
		}
		if first == 0 && cur > 0 {
			first = cur
		}
		last = cur
		if first > 0 && last-first > 1 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	status, _ := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS(`#pstatus`)))
	if first == 0 || last-first <= 1 {
		t.Fatalf("video time did not advance: first %.2f last %.2f (player status %q)", first, last, status)
	}
	// The console lists the player it just started as a client.
	Eventually(t, 10*time.Second, "console lists the flv player", func() error {
		clients, err := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS(`#clients tbody`)))
		if err != nil {
			return err
		}
		if !strings.Contains(clients, "flv") {
			return fmt.Errorf("clients table: %q", clients)
		}
		return nil
	})
}
