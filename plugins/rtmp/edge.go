package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/q191201771/lal/pkg/base"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// clusterBlock is SRS's vhost cluster {} section. Mode and Origin make an
// edge (it pulls from its origins); OriginCluster and Coworkers make an
// origin of an origin cluster (it asks its coworkers for the streams it
// lacks). The keys decoded as raw JSON are refused by name.
type clusterBlock struct {
	Mode           string          `json:"mode"`
	Origin         []string        `json:"origin"`
	Protocol       *string         `json:"protocol"` // "rtmp" only
	TokenTraverse  json.RawMessage `json:"token_traverse"`
	VhostName      json.RawMessage `json:"vhost"`
	DebugSrsUpnode json.RawMessage `json:"debug_srs_upnode"`
	Coworkers      []string        `json:"coworkers"`
	OriginCluster  *bool           `json:"origin_cluster"`
	FollowClient   json.RawMessage `json:"follow_client"`
}

// edges runs one pull per wanted stream of a remote-mode vhost.
type edges struct {
	mu     sync.Mutex
	byKey  map[string]context.CancelFunc
	pulled map[string]bool // streams published by our own pulls
}

func (e *edges) isPulled(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pulled[key]
}

// edgeEvent handles StreamWanted/StreamUnwanted for remote-mode vhosts
// and origin-cluster vhosts: run pulls the stream until its ctx ends.
func (s *Server) edgeEvent(ev sdk.StreamEvent, run func(ctx context.Context, ref sdk.StreamRef)) {
	key := ev.Stream.Key()
	s.edge.mu.Lock()
	defer s.edge.mu.Unlock()
	if s.edge.byKey == nil {
		s.edge.byKey, s.edge.pulled = map[string]context.CancelFunc{}, map[string]bool{}
	}
	switch ev.Type {
	case sdk.StreamWanted:
		if _, ok := s.edge.byKey[key]; ok {
			return
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.edge.byKey[key] = cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			run(ctx, ev.Stream)
			s.edge.mu.Lock()
			delete(s.edge.pulled, key)
			s.edge.mu.Unlock()
		}()
	case sdk.StreamUnwanted:
		if cancel, ok := s.edge.byKey[key]; ok {
			cancel()
			delete(s.edge.byKey, key)
		}
	}
}

// pull plays the stream from the first reachable origin and publishes it
// into the hub, failing over to the next origin, until ctx ends (the last
// player left).
func (s *Server) pull(ctx context.Context, ref sdk.StreamRef, origins []string) {
	log := s.log.With("stream", ref.Key())
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in rtmp edge pull", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: "rtmp-edge"}
	// Claim the stream for the whole pull, across origin failovers, so its
	// players wait instead of seeing an end of stream. Mark it as ours
	// before the hub announces it, so that its StreamPublished does not
	// send it back to the origin.
	s.edge.mu.Lock()
	s.edge.pulled[ref.Key()] = true
	s.edge.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, commandTimeout)
	pub, err := s.rt.Host.Publish(pctx, client, ref)
	cancel()
	if err != nil {
		log.Warn("edge pull: publish into the hub failed", "error", err)
		return
	}
	defer pub.Close()
	var unwrap tsUnwrapper
	delay := time.Duration(0)
	for i := 0; ctx.Err() == nil; i++ {
		origin := origins[i%len(origins)]
		err := pullOnce(ctx, pub, &unwrap, ref, origin, log)
		if ctx.Err() != nil {
			break
		}
		if i%len(origins) == len(origins)-1 {
			delay = min(max(delay*2, 500*time.Millisecond), 5*time.Second)
		}
		log.Warn("edge pull ended, trying the next origin", "origin", origin, "error", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	log.Info("edge pull stopped")
}

func pullOnce(ctx context.Context, pub *sdk.Publication, unwrap *tsUnwrapper, ref sdk.StreamRef, origin string, log hclog.Logger) error {
	url := "rtmp://" + origin + "/" + ref.App + "/" + ref.Stream
	if ref.Vhost != defaultVhost {
		url += "?vhost=" + ref.Vhost
	}
	var (
		mu   sync.Mutex
		werr error
		done bool
	)
	sess := lalrtmp.NewPullSession(func(o *lalrtmp.PullSessionOption) {
		o.PullTimeoutMs = 5000
		o.ReadAvTimeoutMs = 10000
	})
	sess.WithOnReadRtmpAvMsg(func(msg base.RtmpMsg) {
		mu.Lock()
		defer mu.Unlock()
		if done || werr != nil {
			return
		}
		pkt, ok := packetFromMsg(msg.Header.MsgTypeId, msg.Payload)
		if !ok {
			return
		}
		d := time.Duration(unwrap.unwrap(msg.Header.TimestampAbs)) * time.Millisecond
		pkt.DTS += d
		pkt.PTS += d
		if err := pub.Write(pkt); err != nil {
			werr = err
		}
	})
	defer func() {
		mu.Lock()
		done = true // no more writes once we return
		mu.Unlock()
		_ = sess.Dispose()
	}()
	if err := sess.Pull(url); err != nil {
		return fmt.Errorf("pull %s: %w", url, err)
	}
	log.Info("edge pulling", "origin", origin)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-sess.WaitChan():
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			return werr
		}
		if err == nil {
			err = errors.New("origin closed the stream")
		}
		return err
	}
}

// packetFromMsg converts an RTMP audio, video or data message to a packet
// (zero timestamp), as the publish path does.
func packetFromMsg(typ uint8, body []byte) (media.Packet, bool) {
	if len(body) == 0 {
		return media.Packet{}, false
	}
	if typ == msgDataAMF0 {
		if _, err := flv.MetadataFromAMF0(body); err != nil {
			return media.Packet{}, false
		}
		return media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: flv.StripSetDataFrame(body)}, true
	}
	if typ != msgAudio && typ != msgVideo {
		return media.Packet{}, false
	}
	pkt, err := flv.FromTag(typ, 0, body)
	return pkt, err == nil
}
