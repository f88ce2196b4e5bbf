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

// gopMaxFrames bounds the tap's GOP cache (SRS's gop_cache_max_frames).
const gopMaxFrames = 2500

func (s *Server) subscribe(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef) (source, error) {
	wait := s.cfg.Load().PlayWait.Std()
	q := live.NewQueue(0, 0)
	log := s.log.With("client_id", client.ID, "stream", ref.Key())
	q.OnDrop = func(lost int, why string) {
		log.Warn("srt player behind, skipping to the next keyframe", "packets", lost, "reason", why)
	}
	return s.tap.Pull(ctx, ref, live.Options{
		Client: client, Subscribe: sdk.SubscribeOptions{Wait: wait},
		GopCache: true, GopMaxFrames: gopMaxFrames,
	}, q)
}
