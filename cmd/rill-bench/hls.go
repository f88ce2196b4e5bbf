package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// hlsResult is the HLS row: how long after the keyframe that closes a
// segment the playlist lists that segment.
type hlsResult struct {
	failed   string
	segments int
	p50, max time.Duration
	usage    usage
}

// measureHLS publishes through pub and polls the playlist every 20 ms for
// dur. A segment is closed by the first keyframe after the fragment
// duration, so the time from that keyframe's send to the first poll that
// lists the segment is what the server adds (up to one poll interval too).
func measureHLS(ctx context.Context, srv *server, pub *publisher, m3u8 string, dur time.Duration) hlsResult {
	var r hlsResult
	cl := &http.Client{Timeout: 2 * time.Second}
	seen := map[string]bool{}
	var lat []time.Duration
	primed := false
	smp := startSampler(srv.procs, 250*time.Millisecond)
	deadline := time.Now().Add(dur)
	var lastErr string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		uris, err := fetchPlaylist(cl, m3u8)
		now := time.Now()
		if err != nil {
			lastErr = err.Error()
		}
		for _, u := range uris {
			if seen[u] {
				continue
			}
			seen[u] = true
			if !primed {
				continue // listed before we looked
			}
			if k, ok := pub.lastKeyframe(now.UnixNano()); ok {
				lat = append(lat, now.Sub(time.Unix(0, k)))
			}
		}
		if len(uris) > 0 {
			primed = true
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	r.usage = smp.finish()
	if pub.failed() != nil {
		r.failed = pub.failed().Error()
		return r
	}
	if len(lat) == 0 {
		r.failed = "no new segment listed in " + dur.String()
		if lastErr != "" {
			r.failed += " (" + lastErr + ")"
		}
		return r
	}
	slices.Sort(lat)
	r.segments, r.p50, r.max = len(lat), lat[len(lat)/2], lat[len(lat)-1]
	return r
}

// fetchPlaylist returns the segment URIs of a media playlist.
func fetchPlaylist(cl *http.Client, url string) ([]string, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: url, status: resp.Status}
	}
	var uris []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			uris = append(uris, line)
		}
	}
	return uris, nil
}

type statusError struct{ url, status string }

func (e *statusError) Error() string { return e.url + ": " + e.status }

// lastKeyframe returns the send time of the newest keyframe sent at or
// before now.
func (p *publisher) lastKeyframe(now int64) (int64, bool) {
	var best int64
	for i, t := range p.file.Tags {
		if !t.Keyframe {
			continue
		}
		if s := p.lastSent[i].Load(); s != 0 && s <= now && s > best {
			best = s
		}
	}
	return best, best != 0
}
