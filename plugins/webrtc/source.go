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

// maxPlayBacklog and maxPlayBacklogBytes bound what a WebRTC player may
// fall behind before it skips to the next keyframe: about 3 s of a
// 2.5 Mbit/s 30 fps stream with audio (the GOP cache a player starts with
// fits), not the tap's default minute, so a starved player's latency stays
// bounded and the process does not keep its backlog in memory (4 MiB let
// the bench's starved viewers lag 13 s).
const (
	maxPlayBacklog      = 400
	maxPlayBacklogBytes = 1 << 20
)

// tapSource reads streams through the process's live tap
// (plugins/internal/live): every WebRTC player of a stream shares one ring
// subscription, read loop and GOP cache; each has a bounded queue, and one
// that falls behind skips to the next keyframe (logged) while the others go
// on.
type tapSource struct {
	tap *live.Tap
	log hclog.Logger
}

func (t tapSource) Open(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, wait time.Duration) (source, error) {
	// Internal: the player is counted once, by Play and the plugin's Stats.
	p, err := t.tap.PullBounded(ctx, ref, live.Options{
		Client: client, Subscribe: sdk.SubscribeOptions{Wait: wait, Internal: true},
		GopCache: true, GopMaxFrames: live.DefaultGopMaxFrames,
	}, maxPlayBacklog, maxPlayBacklogBytes, t.log.With("client_id", client.ID, "stream", ref.Key()))
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}
