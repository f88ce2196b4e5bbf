package main

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// source is what a player reads: the stream's packets, first its codec
// configs, then from the last keyframe when the vhost keeps a GOP cache.
type source interface {
	Read(ctx context.Context) (media.Packet, error)
	Close() error
}

// sourceOpener opens the stream a player wants.
type sourceOpener interface {
	Open(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, wait time.Duration) (source, error)
}

// tapSource reads streams through the process's live tap
// (plugins/internal/live): every WebRTC player of a stream shares one ring
// subscription, read loop and GOP cache; each has a bounded queue, and one
// that falls behind skips to the next keyframe (logged) while the others go
// on.
type tapSource struct {
	tap *live.Tap
	log hclog.Logger
}

// gopMaxFrames bounds the tap's GOP cache (SRS's gop_cache_max_frames).
const gopMaxFrames = 2500

func (t tapSource) Open(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, wait time.Duration) (source, error) {
	q := live.NewQueue(0, 0)
	log := t.log.With("client_id", client.ID, "stream", ref.Key())
	q.OnDrop = func(lost int, why string) {
		log.Warn("webrtc player behind, skipping to the next keyframe", "packets", lost, "reason", why)
	}
	// Internal: the player is counted once, by Play and the plugin's Stats.
	return t.tap.Pull(ctx, ref, live.Options{
		Client: client, Subscribe: sdk.SubscribeOptions{Wait: wait, Internal: true},
		GopCache: true, GopMaxFrames: gopMaxFrames,
	}, q)
}
