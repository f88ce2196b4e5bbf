package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/plugins/internal/fmp4"
	"github.com/rill-media/rill/sdk/media"
)

// HLS variants (SRS #463): hls { variants = ["[stream]", "[stream]_sd"] }
// makes /[app]/[stream]_master.m3u8 a master playlist (RFC 8216 §4.3.4.2)
// of the renditions that are live with HLS, typically the outputs of
// plugin "exec" transcode engines, each with the BANDWIDTH (peak segment
// bit rate), AVERAGE-BANDWIDTH, RESOLUTION and CODECS measured from what
// its HLS writer wrote.

// masterSuffix ends the stream name of a master playlist request.
const masterSuffix = "_master"

// variantInfo is a rendition as a master playlist lists it.
type variantInfo struct {
	peak, avg     int64 // bits per second
	width, height int
	codecs        string
	at            time.Time
}

// checkVariant validates a rendition template: stream-name variables only,
// rendering to a valid stream name.
func checkVariant(tpl string) error {
	if tpl == "" {
		return errors.New("must not be empty")
	}
	probe := strings.NewReplacer("[stream]", "s", "[app]", "a", "[vhost]", "v").Replace(tpl)
	if strings.ContainsAny(probe, "[]/") || !validName(probe) {
		return errors.New("must be a stream name, with [stream], [app] or [vhost] only")
	}
	return nil
}

// renderVariant is the stream name of rendition template tpl of stream
// base.
func renderVariant(tpl, base string, key streamKey) string {
	return strings.NewReplacer("[stream]", base, "[app]", key.App, "[vhost]", key.Vhost).Replace(tpl)
}

// variantBase returns the stream whose rendition tpl key's stream is, if
// it is one.
func variantBase(tpl string, key streamKey) (string, bool) {
	t := strings.NewReplacer("[app]", key.App, "[vhost]", key.Vhost).Replace(tpl)
	pre, suf, ok := strings.Cut(t, "[stream]")
	if !ok || strings.Contains(suf, "[stream]") {
		return "", false
	}
	name := key.Stream
	if len(name) <= len(pre)+len(suf) || !strings.HasPrefix(name, pre) || !strings.HasSuffix(name, suf) {
		return "", false
	}
	return name[len(pre) : len(name)-len(suf)], true
}

// updateVariant measures the stream after a new segment (writer goroutine).
func (h *hlsStream) updateVariant() {
	vi := &variantInfo{at: time.Now()}
	var bytes int64
	var dur time.Duration
	for _, s := range h.segs {
		bytes += s.size
		dur += s.dur
		if s.dur > 0 {
			vi.peak = max(vi.peak, s.size*8*int64(time.Second)/int64(s.dur))
		}
	}
	if dur > 0 {
		vi.avg = bytes * 8 * int64(time.Second) / int64(dur)
	}
	var codecs []string
	for _, c := range []*media.Packet{h.vcfg, h.acfg} {
		if c == nil || !h.writable(c.Codec) {
			continue
		}
		tr, err := fmp4.NewTrack(1, *c)
		if err != nil {
			continue
		}
		if cs := tr.CodecString(); cs != "" {
			codecs = append(codecs, cs)
		}
		if tr.Kind() == media.KindVideo {
			vi.width, vi.height = tr.Width, tr.Height
		}
	}
	vi.codecs = strings.Join(codecs, ",")
	h.variant.Store(vi)
}

// serveMaster answers a master playlist request of a vhost with variants,
// and reports whether the request was one.
func (s *Server) serveMaster(w http.ResponseWriter, r *http.Request, vc *vhostConfig, key streamKey) bool {
	if vc == nil || len(vc.HLS.Variants) == 0 || !strings.HasSuffix(key.Stream, masterSuffix) {
		return false
	}
	base := strings.TrimSuffix(key.Stream, masterSuffix)
	if base == "" {
		return false
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	n := 0
	for _, tpl := range vc.HLS.Variants {
		name := renderVariant(tpl, base, key)
		if !validName(name) {
			continue
		}
		s.mu.Lock()
		h := s.hls[streamKey{Vhost: key.Vhost, App: key.App, Stream: name}]
		s.mu.Unlock()
		if h == nil {
			continue
		}
		h.mu.Lock()
		running := h.running
		h.mu.Unlock()
		vi := h.variant.Load()
		if !running {
			continue
		}
		if vi == nil || vi.peak == 0 {
			continue
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d", vi.peak, vi.avg)
		if vi.codecs != "" {
			fmt.Fprintf(&b, ",CODECS=\"%s\"", vi.codecs)
		}
		if vi.width > 0 && vi.height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", vi.width, vi.height)
		}
		b.WriteString("\n" + name + ".m3u8\n")
		n++
	}
	if n == 0 {
		httpError(w, http.StatusNotFound, "%s: no rendition of %s is live with hls", key.String(), base)
		return true
	}
	w.Header().Set("Content-Type", fmtM3U8.contentType())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
	return true
}
