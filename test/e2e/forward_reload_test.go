package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadExtra replaces the end of d's config, the part written as extra
// (Config.Extra), with extra, sends SIGHUP and waits for the reload.
func reloadExtra(t *testing.T, d *Daemon, old, extra string) {
	t.Helper()
	conf, err := os.ReadFile(d.Conf)
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutSuffix(string(conf), old)
	if !ok {
		t.Fatalf("config does not end with %q:\n%s", old, conf)
	}
	if err := os.WriteFile(d.Conf, []byte(base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(d.Log(), "config reloaded")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, 15*time.Second, "config reloaded", func() error {
		if strings.Count(d.Log(), "config reloaded") <= n {
			if strings.Contains(d.Log(), "reload rejected") {
				return fmt.Errorf("reload rejected:\n%s", d.Log())
			}
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// publisherCID is the client id of the publisher of app/stream on d, ""
// when nobody publishes it.
func publisherCID(t *testing.T, d *Daemon, app, stream string) string {
	t.Helper()
	var r struct {
		Streams []struct {
			Name    string `json:"name"`
			App     string `json:"app"`
			Publish struct {
				Active bool   `json:"active"`
				CID    string `json:"cid"`
			} `json:"publish"`
		} `json:"streams"`
	}
	if err := d.GetJSON("/api/v1/streams/", &r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Streams {
		if s.App == app && s.Name == stream && s.Publish.Active {
			return s.Publish.CID
		}
	}
	return ""
}

func forwardTo(dests ...string) string {
	var list []string
	for _, d := range dests {
		list = append(list, fmt.Sprintf("%q", d))
	}
	return fmt.Sprintf("vhost \"__defaultVhost__\" {\n  forward {\n    destination = [%s]\n  }\n}\n", strings.Join(list, ", "))
}

// TestRTMPForwardReload: a forward added by a reload reaches a stream
// already live, an unchanged destination goes on through a reload that
// adds another, and a forward removed by a reload ends at the destination.
func TestRTMPForwardReload(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	dst, dstAddr := startRTMP(t, "", "")
	src, srcAddr := startRTMP(t, "", "")
	ffmpegPublish(t, "rtmp://"+srcAddr+"/live/late", 120)
	waitPublished(t, src, "live", "late")
	srcCID := publisherCID(t, src, "live", "late")

	extra := forwardTo(dstAddr)
	reloadExtra(t, src, "", extra)
	waitPublished(t, dst, "live", "late")
	p := ffprobe(t, "rtmp://"+dstAddr+"/live/late", 3)
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || len(p.Packets) < 50 {
		t.Fatalf("stream forwarded after the reload: codecs %v, %d packets", codecs, len(p.Packets))
	}
	fwdCID := publisherCID(t, dst, "live", "late")

	// A second destination (nobody listens there): the first one's push
	// goes on untouched.
	const nowhere = "127.0.0.1:1"
	next := forwardTo(dstAddr, nowhere)
	reloadExtra(t, src, extra, next)
	extra = next
	started := regexp.MustCompile(`forward started.*destination=` + regexp.QuoteMeta(nowhere) + `(\D|$)`)
	Eventually(t, 15*time.Second, "forward to the new destination", func() error {
		if !started.MatchString(src.Log()) {
			return fmt.Errorf("no %q in the log", started)
		}
		return nil
	})
	if cid := publisherCID(t, dst, "live", "late"); cid != fwdCID {
		t.Fatalf("forward to the unchanged destination was restarted: publisher %q, was %q", cid, fwdCID)
	}

	// No forward block: the destination loses the stream, the source keeps it.
	reloadExtra(t, src, extra, "")
	Eventually(t, 20*time.Second, "forwarded stream ends", func() error {
		if cid := publisherCID(t, dst, "live", "late"); cid != "" {
			return fmt.Errorf("still published by %s", cid)
		}
		return nil
	})
	if cid := publisherCID(t, src, "live", "late"); cid != srcCID {
		t.Fatalf("source stream disturbed by the reloads: publisher %q, was %q", cid, srcCID)
	}
}
