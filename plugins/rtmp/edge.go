package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
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
// lacks). TokenTraverse, VhostName, DebugSrsUpnode and FollowClient are
// the edge's extras (see parseConfig for what Rill does with each).
type clusterBlock struct {
	Mode           string   `json:"mode"`
	Origin         []string `json:"origin"`
	Protocol       *string  `json:"protocol"` // "rtmp" only
	TokenTraverse  *bool    `json:"token_traverse"`
	VhostName      *string  `json:"vhost"`
	DebugSrsUpnode *bool    `json:"debug_srs_upnode"`
	Coworkers      []string `json:"coworkers"`
	OriginCluster  *bool    `json:"origin_cluster"`
	FollowClient   *bool    `json:"follow_client"`
}

// edges runs one pull per wanted stream of a remote-mode vhost.
type edges struct {
	mu     sync.Mutex
	byKey  map[string]*edgePull
	pulled map[string]bool // streams published by our own pulls
	// next is the round-robin counter over the origins: every connect to
	// an origin, of any stream, takes the next one (SRS's SrsLbRoundRobin).
	next atomic.Uint64
	// nextCheck is the same over the token_traverse checks.
	nextCheck atomic.Uint64
}

// edgePull is one running pull; idle is set while nobody wants it and it
// waits edge_idle before it stops.
type edgePull struct {
	cancel context.CancelFunc
	idle   *time.Timer
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
		s.edge.byKey, s.edge.pulled = map[string]*edgePull{}, map[string]bool{}
	}
	switch ev.Type {
	case sdk.StreamWanted:
		if p, ok := s.edge.byKey[key]; ok {
			if p.idle != nil && p.idle.Stop() {
				p.idle = nil
				s.log.Debug("edge pull wanted again before it stopped", "stream", key)
			}
			return
		}
		ctx, cancel := context.WithCancel(s.ctx)
		p := &edgePull{cancel: cancel}
		s.edge.byKey[key] = p
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			run(ctx, ev.Stream)
			s.edge.mu.Lock()
			delete(s.edge.pulled, key)
			if s.edge.byKey[key] == p {
				delete(s.edge.byKey, key)
			}
			s.edge.mu.Unlock()
		}()
	case sdk.StreamUnwanted:
		p, ok := s.edge.byKey[key]
		if !ok || p.idle != nil {
			return
		}
		// The last player left: pull on for edge_idle, so that a player
		// coming back (a reconnect, a page reload) finds the stream warm.
		idle := time.Duration(s.cfg.Load().EdgeIdle)
		p.idle = time.AfterFunc(idle, func() {
			s.edge.mu.Lock()
			defer s.edge.mu.Unlock()
			if s.edge.byKey[key] == p && p.idle != nil {
				p.cancel()
				delete(s.edge.byKey, key)
			}
		})
	}
}

// pull plays the stream from the first reachable origin and publishes it
// into the hub, failing over to the next origin, until ctx ends (the last
// player left).
func (s *Server) pull(ctx context.Context, ref sdk.StreamRef, origins []string, upVhost string) {
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
	// A pull that just stopped (edge_idle ran out as a player came back)
	// may still hold the stream for a moment: wait for it, boundedly.
	var pub *sdk.Publication
	var err error
	for try := 0; ; try++ {
		pctx, cancel := context.WithTimeout(ctx, commandTimeout)
		pub, err = s.rt.Host.Publish(pctx, client, ref)
		cancel()
		if err == nil || !errors.Is(err, sdk.ErrStreamBusy) || try == 20 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		log.Warn("edge pull: publish into the hub failed", "error", err)
		return
	}
	defer pub.Close()
	var unwrap tsUnwrapper
	delay := time.Duration(0)
	for i := 0; ctx.Err() == nil; i++ {
		origin := origins[(s.edge.next.Add(1)-1)%uint64(len(origins))]
		err := pullOnce(ctx, pub, &unwrap, upstreamURL(origin, ref, upVhost), origin, log)
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

// upstreamURL is the URL an edge plays or publishes ref at origin: the
// client's app, stream and param (where its token is: the origin's hooks
// check it, as SRS's edge passes it on), in vhost (cluster { vhost }, else
// the stream's own).
func upstreamURL(origin string, ref sdk.StreamRef, vhost string) string {
	if vhost == "" {
		vhost = ref.Vhost
	}
	var q []string
	if vhost != defaultVhost {
		q = append(q, "vhost="+url.QueryEscape(vhost))
	}
	for _, kv := range strings.FieldsFunc(strings.TrimPrefix(ref.Param, "?"), func(r rune) bool { return r == '&' }) {
		if k, _, _ := strings.Cut(kv, "="); k != "vhost" && k != "domain" {
			q = append(q, kv)
		}
	}
	u := "rtmp://" + origin + "/" + ref.App + "/" + ref.Stream
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}

func pullOnce(ctx context.Context, pub *sdk.Publication, unwrap *tsUnwrapper, url, origin string, log hclog.Logger) error {
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
