package main

import (
	"context"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// source is the read side of a played stream. Players read through this
// small interface so that they can move onto a shared per-process tap of
// the stream (one ring reader fanned out to every player) without touching
// the muxing; today each player has its own hub subscription.
type source interface {
	// Read returns the next packet (its payload valid until the next Read),
	// io.EOF at the end of the stream.
	Read(ctx context.Context) (media.Packet, error)
	Close() error
}

// sourceOpener opens a stream for one player, waiting for a publisher as
// long as the settings' play_wait.
type sourceOpener func(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef) (source, error)

func (s *Server) subscribe(ctx context.Context, client sdk.ClientInfo, ref sdk.StreamRef) (source, error) {
	wait := s.cfg.Load().PlayWait.Std()
	sub, err := s.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: wait})
	if err != nil {
		return nil, err
	}
	return sub, nil
}
