package main

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/rill-media/rill/sdk"
)

// HLS players fetch files: none of them holds a subscription, so nothing
// tells the core that a stream is wanted when its playlist is missing. On an
// edge (or an origin of an origin cluster) the stream only comes when a
// player wants it: a playlist request that finds no playlist holds the
// stream wanted, as one player would, until playlist requests stop for
// hlsDemandHold. The on-demand source (the rtmp plugin's edge pull) starts,
// the stream is published here, the HLS writer makes the playlist, and the
// next requests find it (and keep the demand alive while they come).

// hlsDemandMax bounds the streams held wanted this way (a flood of
// made-up names must not hold subscriptions without bound).
const hlsDemandMax = 256

// demands holds the streams HLS players want.
type demands struct {
	mu    sync.Mutex
	byKey map[streamKey]*demand
}

type demand struct {
	last   time.Time // the last playlist request; guarded by demands.mu
	cancel context.CancelFunc
}

// hlsParam is the param of a playlist request as SRS writes it ("?k=v"),
// without the session id Rill adds (hls_ctx): what goes upstream.
func hlsParam(q url.Values) string {
	q.Del("hls_ctx")
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// hlsDemandHold is how long the last playlist request holds a stream.
func hlsDemandHold(vc *vhostConfig) time.Duration {
	return max(2*vc.HLS.Window, 30*time.Second)
}

// touchHLS notes a playlist request of key; missing says the playlist was
// not found (the stream is not here: want it).
func (s *Server) touchHLS(key streamKey, vc *vhostConfig, ip, param string, missing bool) {
	if vc == nil || !vc.HLS.Enabled || s.ctx == nil {
		return
	}
	s.demand.mu.Lock()
	defer s.demand.mu.Unlock()
	if d, ok := s.demand.byKey[key]; ok {
		d.last = time.Now()
		return
	}
	if !missing {
		return
	}
	if s.demand.byKey == nil {
		s.demand.byKey = map[streamKey]*demand{}
	}
	if len(s.demand.byKey) >= hlsDemandMax {
		s.log.Warn("hls: too many streams wanted by playlist requests, not asking for one more", "stream", key.String(), "max", hlsDemandMax)
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	d := &demand{last: time.Now(), cancel: cancel}
	s.demand.byKey[key] = d
	hold := hlsDemandHold(vc)
	wait := s.cfg.Load().PlayWait
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			cancel()
			s.demand.mu.Lock()
			if s.demand.byKey[key] == d {
				delete(s.demand.byKey, key)
			}
			s.demand.mu.Unlock()
		}()
		s.holdHLS(ctx, key, param, d, ip, hold, wait)
	}()
}

// holdHLS subscribes to key as a waiting player (the core asks the
// on-demand sources for it) and holds the subscription while playlist
// requests come.
func (s *Server) holdHLS(ctx context.Context, key streamKey, param string, d *demand, ip string, hold, wait time.Duration) {
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: ip, Type: "hls-demand"}
	log := s.log.With("stream", key.String(), "client_id", client.ID)
	ref := key.ref()
	ref.Param = param
	sub, err := s.rt.Host.Subscribe(ctx, client, ref, sdk.SubscribeOptions{Wait: max(wait, 10*time.Second)})
	if err != nil {
		log.Debug("hls: stream wanted by a playlist request did not come", "error", err)
		return
	}
	defer sub.Close()
	log.Info("hls: playlist requests hold the stream")
	t := time.NewTicker(min(hold/4, 5*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.demand.mu.Lock()
		idle := time.Since(d.last)
		s.demand.mu.Unlock()
		if idle > hold {
			log.Info("hls: no playlist request for a while, stream released", "idle", idle.Round(time.Second).String())
			return
		}
	}
}
