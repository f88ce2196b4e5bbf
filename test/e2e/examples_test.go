package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The out-of-tree example plugin (examples/streamstats, its own module
// against sdk/ only) runs under the real core beside the rtmp plugin: it
// reads an ffmpeg-published stream of the vhost that enables it and serves
// what it counted on the API port; a vhost without its block is not read.
func TestExampleStreamStatsPlugin(t *testing.T) {
	t.Parallel()
	needTool(t, "ffmpeg")
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "streamstats"},
		Blocks:  map[string]string{"rtmp": `listen = ["127.0.0.1:0"]`, "streamstats": `window = "2s"`},
		Extra: "vhost \"__defaultVhost__\" {\n  streamstats {\n    enabled = true\n  }\n}\n" +
			"vhost \"quiet.example.com\" {\n}\n",
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "streamstats")
	addr := ps["rtmp"].Listeners[0].Addr
	pub := ffmpegPublish(t, "rtmp://"+addr+"/live/counted", 30)
	quiet := ffmpegPublish(t, "rtmp://"+addr+"/live/quiet?vhost=quiet.example.com", 30)
	waitPublished(t, d, "live", "counted")

	type kind struct {
		Codec   string `json:"codec"`
		Packets int    `json:"packets"`
	}
	type snap struct {
		Key     string          `json:"key"`
		Vhost   string          `json:"vhost"`
		Live    bool            `json:"live"`
		Packets int             `json:"packets"`
		Keys    int             `json:"key_frames"`
		FPS     float64         `json:"fps"`
		Kinds   map[string]kind `json:"kinds"`
	}
	var one struct {
		Code   int  `json:"code"`
		Stream snap `json:"stream"`
	}
	Eventually(t, 20*time.Second, "streamstats counts the stream", func() error {
		if err := d.GetJSON("/api/v1/streamstats/live/counted", &one); err != nil {
			return err
		}
		s := one.Stream
		if !s.Live || s.Keys < 2 || s.FPS <= 0 || s.Kinds["video"].Codec != "H264" || s.Kinds["audio"].Codec != "AAC" || s.Kinds["audio"].Packets == 0 {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	var all struct {
		Streams []snap `json:"streams"`
	}
	if err := d.GetJSON("/api/v1/streamstats/", &all); err != nil {
		t.Fatal(err)
	}
	for _, s := range all.Streams {
		if s.Vhost == "quiet.example.com" {
			t.Fatalf("a vhost without a streamstats block was read: %+v", all.Streams)
		}
	}
	// The publisher leaves: the plugin's reader ends with the stream.
	_ = pub.Process.Kill()
	_ = quiet.Process.Kill()
	Eventually(t, 20*time.Second, "the stream shows ended", func() error {
		if err := d.GetJSON("/api/v1/streamstats/live/counted", &one); err != nil {
			return err
		}
		if one.Stream.Live {
			return fmt.Errorf("%+v", one.Stream)
		}
		return nil
	})
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(d.API + "/api/v1/streamstats/live/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown stream: %d", resp.StatusCode)
	}
}
