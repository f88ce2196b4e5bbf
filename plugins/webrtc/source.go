package main

import (
	"context"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// source is what a player reads: the stream's packets, first its codec
// configs, then from the last keyframe when the vhost keeps a GOP cache.
type source interface {
	Read(ctx context.Context) (media.Packet, error)
	Close() error
}

// sourceOpener opens the stream a player wants. Today every player has a
// ring subscription of its own (hubSource); the shared per-process tap
// (plugins/internal/live) will take its place, one ring reader per stream.
type sourceOpener interface {
	Open(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, wait time.Duration) (source, error)
}

type hubSource struct{ host *sdk.Host }

func (h hubSource) Open(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef, wait time.Duration) (source, error) {
	// Internal: the player is counted once, by Play and the plugin's Stats.
	return h.host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: wait, Internal: true})
}
