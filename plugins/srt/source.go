package main

import (
	"context"

	"github.com/rill-media/rill/plugins/internal/live"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// source is the read side of a played stream, one per player.
type source interface {
	// Read returns the next packet (its payload valid until the next Read),
	// io.EOF at the end of the stream.
	Read(ctx context.Context) (media.Packet, error)
	Close() error
}

// sourceOpener opens a stream for one player, waiting for a publisher as
// long as the settings' play_wait.
type sourceOpener func(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef) (source, error)

// Players of a stream share the process's live tap (plugins/internal/live):
// one ring subscription, one read loop and one GOP cache per stream, however
// many SRT players it has. Each player reads through a bounded live.Queue,
// drained by its own goroutine: a player that falls behind loses its
// backlog and resumes at the next keyframe (logged), the others go on.

func (s *Server) subscribe(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef) (source, error) {
	p, err := s.tap.Pull(ctx, ref, live.Options{
		Client: client, Subscribe: sdk.SubscribeOptions{Wait: s.cfg.Load().PlayWait.Std()},
		GopCache: true, GopMaxFrames: live.DefaultGopMaxFrames,
	}, s.log.With("client_id", client.ID, "stream", ref.Key()))
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}
