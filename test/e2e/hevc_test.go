package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"
)

// streamVideo returns the video object of a stream in /api/v1/streams/.
func streamVideo(d *Daemon, app, stream string) (map[string]any, error) {
	var r struct {
		Streams []struct {
			Name  string         `json:"name"`
			App   string         `json:"app"`
			Video map[string]any `json:"video"`
		} `json:"streams"`
	}
	if err := d.GetJSON("/api/v1/streams/", &r); err != nil {
		return nil, err
	}
	for _, s := range r.Streams {
		if s.App == app && s.Name == stream {
			if s.Video == nil {
				return nil, fmt.Errorf("stream %s/%s has no video yet", app, stream)
			}
			return s.Video, nil
		}
	}
	return nil, fmt.Errorf("stream %s/%s not listed", app, stream)
}

// testEnhancedRTMP publishes a clip over Enhanced RTMP from Go and plays
// it back with a Go RTMP player started before the publisher, so the
// player gets every frame.
func testEnhancedRTMP(t *testing.T, codec, apiCodec string, size bool) {
	c := loadClip(t, codec, "")
	d, addr := startRTMP(t, "", "")
	url := "rtmp://" + addr + "/live/" + codec
	player := startMsgPlayer(t, url) // waits (play_wait) for the publisher

	stop := make(chan struct{})
	type result struct {
		sent int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		n, err := publishClip(t, c, url, 1, stop)
		res <- result{n, err}
	}()
	defer close(stop)

	Eventually(t, 20*time.Second, "api shows the video codec", func() error {
		v, err := streamVideo(d, "live", codec)
		if err != nil {
			return err
		}
		if v["codec"] != apiCodec {
			return fmt.Errorf("video %v, want codec %s", v, apiCodec)
		}
		if size && (v["width"] != 320.0 || v["height"] != 240.0) {
			return fmt.Errorf("video %v, want 320x240", v)
		}
		return nil
	})

	var r result
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("publisher did not finish a 4 s clip within 30 s")
	}
	if r.err != nil {
		t.Fatalf("publish: %v", r.err)
	}
	if r.sent != len(c.video) {
		t.Fatalf("sent %d video frames, the clip has %d", r.sent, len(c.video))
	}
	videoTags := func() []rtmpMsg {
		var v []rtmpMsg
		for _, m := range player.snapshot() {
			if m.typ == base.RtmpTypeIdVideo {
				v = append(v, m)
			}
		}
		return v
	}
	// Everything sent reaches the player (the stream ends after the last
	// frame, so wait for all of it).
	Eventually(t, 20*time.Second, "player receives every frame", func() error {
		if n := len(videoTags()); n < r.sent+1 {
			return fmt.Errorf("%d video messages of %d", n, r.sent+1)
		}
		return nil
	})
	got := checkVideoTags(t, "rtmp "+codec, c, videoTags())
	if got != r.sent {
		t.Fatalf("player got %d coded frames, %d sent", got, r.sent)
	}
	// The last audio frames come after the last video frame in the
	// stream: wait for them too.
	audio := 0
	Eventually(t, 20*time.Second, "player receives every audio frame", func() error {
		audio = 0
		for _, m := range player.snapshot() {
			if m.typ == base.RtmpTypeIdAudio {
				audio++
			}
		}
		if audio < c.audio { // +1 for the AAC sequence header
			return fmt.Errorf("player got %d audio messages, %d frames sent", audio, c.audio)
		}
		return nil
	})
	t.Logf("%s: %d video frames and %d audio messages played back", codec, got, audio)
}

// TestHEVCRTMPPublishPlay: H.265 over Enhanced RTMP (FourCC hvc1), published
// and played by Go clients, compared frame by frame.
func TestHEVCRTMPPublishPlay(t *testing.T) { testEnhancedRTMP(t, "hevc", "H265", true) }

// TestAV1RTMPPublishPlay: AV1 over Enhanced RTMP (FourCC av01).
func TestAV1RTMPPublishPlay(t *testing.T) { testEnhancedRTMP(t, "av1", "AV1", false) }
