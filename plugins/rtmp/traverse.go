package main

import (
	"errors"
	"fmt"
	"net"

	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/sdk"
)

// traverseTimeout bounds one origin's answer to a token check.
const traverseTimeout = 5000 // ms

// traverse is SRS's token_traverse on an edge (check_edge_token_traverse_auth):
// before the edge accepts a client, an origin checks it. The edge plays the
// client's stream at the origin with the client's tcUrl param and stream
// param, so the origin's own on_connect and on_play hooks and security
// rules see the client's token (a Rill origin reports on_connect once the
// stream is named, as the play does here); the origin's refusal refuses the
// client here. An unreachable origin passes to the next; with none
// reachable the client is refused (the check could not be made).
func (c *conn) traverse(ref sdk.StreamRef, opts vhostOptions, code string) error {
	if !opts.TokenTraverse || len(opts.Origins) == 0 {
		return nil
	}
	var unreachable []error
	for range opts.Origins {
		origin := opts.Origins[(c.s.edge.nextCheck.Add(1)-1)%uint64(len(opts.Origins))]
		err := checkAtOrigin(upstreamURL(origin, ref, opts.UpstreamVhost))
		if err == nil {
			c.log.Debug("token traverse: origin accepted the client", "stream", ref.Key(), "origin", origin)
			return nil
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			unreachable = append(unreachable, fmt.Errorf("origin %s: %w", origin, err))
			continue
		}
		c.s.rejected.Add(1)
		_ = c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", code, "refused by the origin (token_traverse)"))
		return fmt.Errorf("token traverse: origin %s refused the client of %s: %w", origin, ref.Key(), err)
	}
	c.s.rejected.Add(1)
	_ = c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", code, "no origin reachable for the token check (token_traverse)"))
	return fmt.Errorf("token traverse: no origin reachable to check the client of %s: %w", ref.Key(), errors.Join(unreachable...))
}

// checkAtOrigin plays url until the origin starts the play (accepted) or
// refuses it, then hangs up.
func checkAtOrigin(url string) error {
	sess := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
		o.PullTimeoutMs = traverseTimeout
	})
	defer func() { _ = sess.Dispose() }()
	return sess.Pull(url)
}
