package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rtcChromium is chromium with fake camera and microphone, no permission
// prompt, loopback ICE candidates and no mDNS host names.
func rtcChromium(t *testing.T) context.Context {
	t.Helper()
	needTool(t, "chromium")
	return newChromium(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
}

// videoAdvances samples the page's #video currentTime until it moved 1 s
// (bounded: 45 s).
func videoAdvances(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	var first, last float64
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('#video').currentTime`))
		if err != nil {
			t.Fatalf("%s: read currentTime: %v", what, err)
		}
		if first == 0 && cur > 0 {
			first = cur
		}
		last = cur
		if first > 0 && last-first > 1 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	status, _ := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#status`)))
	t.Fatalf("%s: video time did not advance: first %.2f last %.2f (page status %q)", what, first, last, status)
}

// TestConsoleWebRTCPages: headless Chromium opens the console, follows a
// stream's WebRTC link to the WHEP page and plays an RTMP publish (its
// video's time advances); then the WHIP page publishes the fake camera and
// ffprobe reads that stream over RTMP.
func TestConsoleWebRTCPages(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	e := startRTC(t, "")
	ffmpegPublish(t, "rtmp://"+e.rtmpAddr+"/live/crtc", 90)
	waitPublished(t, e.d, "live", "crtc")
	ctx := rtcChromium(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.d.API+"/console/")); err != nil {
		t.Fatalf("open console: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 150*time.Second)
	defer cancel()
	for _, sel := range []string{`#whep-link`, `#whip-link`} {
		if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("console lacks %s: %v", sel, err)
		}
	}
	link := `tr[data-stream="/live/crtc"] a[data-play-rtc]`
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(link))); err != nil {
		t.Fatalf("stream has no WebRTC link in the console: %v", err)
	}
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS(link))); err != nil {
		t.Fatalf("click WebRTC link: %v", err)
	}
	if err := chromedp.Do(tctx, chromedp.WaitVisible(chromedp.CSS(`body[data-kind="whep"] #video`))); err != nil {
		t.Fatalf("WHEP page not opened: %v", err)
	}
	videoAdvances(t, tctx, "WHEP page")
	waitClient(t, e.d, "rtc-play")

	if err := chromedp.Do(tctx, chromedp.Navigate(e.d.API+"/console/whip.html?app=live&stream=browser&autostart=1")); err != nil {
		t.Fatalf("open WHIP page: %v", err)
	}
	Eventually(t, 30*time.Second, "WHIP page connected", func() error {
		st, err := chromedp.Run(tctx, chromedp.Evaluate[string](`window.rtc.state + ' ' + document.querySelector('#status').textContent`))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(st, "connected ") {
			return fmt.Errorf("page state %q", st)
		}
		return nil
	})
	waitPublished(t, e.d, "live", "browser")
	p := ffprobe(t, "rtmp://"+e.rtmpAddr+"/live/browser", 2)
	video := 0
	for _, s := range p.Streams {
		if s.CodecType == "video" && s.CodecName == "h264" && s.Width > 0 {
			video++
		}
	}
	if video == 0 {
		t.Fatalf("ffprobe over RTMP of the browser's WHIP publish: no H.264 video: %+v", p.Streams)
	}
	t.Logf("browser publish over RTMP: %+v", p.Streams)
}
