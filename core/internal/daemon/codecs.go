package daemon

import (
	"github.com/rill-media/rill/core/internal/api"
	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/internal/ringpkt"
	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/shm"
)

// codecInfo describes a stream's codecs for the API from the codec configs
// kept in its ring header, in SRS's shape (video: codec, profile, level,
// width, height; audio: codec, sample_rate, channel, profile). A codec
// without a configuration record (MP3, G.711) is named from the codec of
// the stream's latest record of its kind.
func (d *daemon) codecInfo(si hub.StreamInfo) api.CodecInfo {
	var configs []media.Packet
	d.hub.WithRing(si.ID, func(r *shm.Ring) { configs = ringpkt.Configs(r) })
	var ci api.CodecInfo
	for _, p := range configs {
		switch {
		case p.Kind == media.KindVideo && p.IsConfig():
			v := map[string]any{"codec": p.Codec.String()}
			if w, h, profile, level, err := flv.VideoInfo(p); err == nil {
				v["width"], v["height"], v["profile"], v["level"] = w, h, profile, level
			}
			ci.Video = v
		case p.Kind == media.KindAudio && p.IsConfig():
			a := map[string]any{"codec": p.Codec.String()}
			if rate, ch, profile, err := flv.AudioInfo(p); err == nil {
				a["sample_rate"], a["channel"], a["profile"] = rate, ch, profile
			}
			ci.Audio = a
		}
	}
	if ci.Video == nil && si.Ring.KindCodec[media.KindVideo] != 0 {
		ci.Video = map[string]any{"codec": media.Codec(si.Ring.KindCodec[media.KindVideo]).String()}
	}
	if ci.Audio == nil && si.Ring.KindCodec[media.KindAudio] != 0 {
		ci.Audio = map[string]any{"codec": media.Codec(si.Ring.KindCodec[media.KindAudio]).String()}
	}
	return ci
}
