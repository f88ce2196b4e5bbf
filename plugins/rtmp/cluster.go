package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// Origin cluster (SRS cluster { origin_cluster on; coworkers ...; }): an
// origin asked for a stream it does not have asks its coworkers, over
// SRS's /api/v1/clusters, which of them has a publisher of it, and pulls
// the stream from that one into its own hub. SRS answers an RTMP player
// with a 302 redirect instead; FFmpeg and lal's clients do not follow it
// (an onStatus of level error ends their play), and HTTP-FLV and HLS
// players cannot, so Rill serves the stream itself: every protocol plays
// it, and an edge pulling from any origin gets it.

const (
	// clusterRetry is how often a wanted stream nobody has is asked for.
	clusterRetry = time.Second
	// clusterAskTimeout bounds one coworker's answer.
	clusterAskTimeout = 3 * time.Second
	// clusterAnswerMax bounds the bytes of one answer read.
	clusterAnswerMax = 64 << 10
)

// clusterAnswer is the part of SRS's /api/v1/clusters answer an origin
// reads (SrsHttpHooks::discover_co_workers): data.origin.ip and port.
type clusterAnswer struct {
	Code int `json:"code"`
	Data struct {
		Origin *struct {
			IP   string `json:"ip"`
			Port int    `json:"port"`
		} `json:"origin"`
	} `json:"data"`
}

var errNotOnCoworker = errors.New("no coworker has a publisher of the stream")

// discover asks the registry (if any), then the coworkers, for the origin
// of ref; coworker names who answered ("registry" for the registry).
func (s *Server) discover(ctx context.Context, hc *http.Client, ref sdk.StreamRef, coworkers []string) (origin, coworker string, err error) {
	var errs []error
	if s.reg != nil {
		o, err := s.reg.lookup(ctx, ref)
		if err == nil {
			return o, "registry", nil
		}
		errs = append(errs, err)
	}
	if len(coworkers) > 0 {
		o, cw, err := discover(ctx, hc, ref, coworkers)
		if err == nil {
			return o, cw, nil
		}
		errs = append(errs, err)
	}
	return "", "", errors.Join(errs...)
}

// discover asks the coworkers in turn for the origin of ref and returns
// the RTMP host:port of the first that has it.
func discover(ctx context.Context, hc *http.Client, ref sdk.StreamRef, coworkers []string) (origin, coworker string, err error) {
	var errs []error
	for _, cw := range coworkers {
		o, err := askCoworker(ctx, hc, ref, cw)
		if err == nil {
			return o, cw, nil
		}
		errs = append(errs, err)
	}
	if ctx.Err() != nil {
		return "", "", ctx.Err()
	}
	return "", "", fmt.Errorf("%w: %w", errNotOnCoworker, errors.Join(errs...))
}

func askCoworker(ctx context.Context, hc *http.Client, ref sdk.StreamRef, coworker string) (string, error) {
	q := url.Values{"vhost": {ref.Vhost}, "ip": {""}, "app": {ref.App}, "stream": {ref.Stream}, "coworker": {coworker}}
	u := "http://" + coworker + "/api/v1/clusters?" + q.Encode()
	ctx, cancel := context.WithTimeout(ctx, clusterAskTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("coworker %s: %w", coworker, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("coworker %s: %w", coworker, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, clusterAnswerMax))
	if err != nil {
		return "", fmt.Errorf("coworker %s: read answer: %w", coworker, err)
	}
	return parseClusterAnswer(coworker, resp.StatusCode, body)
}

// parseClusterAnswer reads a coworker's answer: the RTMP address of the
// origin that has the stream, or an error saying why there is none.
func parseClusterAnswer(coworker string, status int, body []byte) (string, error) {
	if status != http.StatusOK {
		return "", fmt.Errorf("coworker %s: http status %d", coworker, status)
	}
	var a clusterAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", fmt.Errorf("coworker %s: answer is not SRS's clusters json: %w", coworker, err)
	}
	if a.Code != 0 {
		return "", fmt.Errorf("coworker %s: answer code %d", coworker, a.Code)
	}
	o := a.Data.Origin
	if o == nil {
		return "", fmt.Errorf("coworker %s: stream not there", coworker)
	}
	if o.IP == "" || o.Port <= 0 || o.Port > 65535 {
		return "", fmt.Errorf("coworker %s: answer has no usable origin (ip %q, port %d)", coworker, o.IP, o.Port)
	}
	return net.JoinHostPort(o.IP, strconv.Itoa(o.Port)), nil
}

// liveHere reports whether a publisher other than our own relays feeds
// the stream key in this daemon's hub.
func (s *Server) liveHere(key string) bool {
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	l, ok := s.fwd.live[key]
	return ok && l.pub.Type != clusterClientType
}

// clusterClientType is the client type of an origin-cluster pull (the
// core's /api/v1/clusters never names a stream fed by one).
const clusterClientType = "rtmp-cluster"

// clusterPull serves a wanted stream of an origin-cluster vhost from the
// coworker that has it, until ctx ends (nobody wants it any more). It holds
// the stream only while it pulls: between pulls the stream is free for a
// publisher of ours (a republish after the coworker died).
func (s *Server) clusterPull(ctx context.Context, ref sdk.StreamRef, coworkers []string) {
	log := s.log.With("stream", ref.Key())
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in rtmp origin-cluster pull", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	hc := &http.Client{Timeout: clusterAskTimeout}
	var lastErr string
	for i := 0; ctx.Err() == nil; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(clusterRetry):
			}
		}
		if s.liveHere(ref.Key()) {
			continue // published here: nothing to pull
		}
		origin, coworker, err := s.discover(ctx, hc, ref, coworkers)
		if err != nil {
			if ctx.Err() == nil && err.Error() != lastErr {
				log.Info("origin cluster: stream not found on the coworkers, asking again", "coworkers", fmt.Sprint(coworkers), "error", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		if err := s.pullFromCoworker(ctx, ref, origin, coworker); err != nil && ctx.Err() == nil {
			log.Warn("origin cluster pull ended", "coworker", coworker, "origin", origin, "error", err)
		}
	}
	log.Info("origin cluster pull stopped")
}

// pullFromCoworker publishes the stream into the hub from origin for as
// long as origin serves it.
func (s *Server) pullFromCoworker(ctx context.Context, ref sdk.StreamRef, origin, coworker string) error {
	client := sdk.ClientInfo{ID: sdk.NewClientID(), IP: "127.0.0.1", Type: clusterClientType}
	key := ref.Key()
	s.edge.mu.Lock()
	s.edge.pulled[key] = true
	s.edge.mu.Unlock()
	defer func() {
		s.edge.mu.Lock()
		delete(s.edge.pulled, key)
		s.edge.mu.Unlock()
	}()
	pctx, cancel := context.WithTimeout(ctx, commandTimeout)
	pub, err := s.rt.Host.Publish(pctx, client, ref)
	cancel()
	if err != nil {
		return fmt.Errorf("publish into the hub: %w", err)
	}
	defer pub.Close()
	log := s.log.With("stream", key, "client_id", client.ID)
	log.Info("origin cluster: pulling from coworker", "coworker", coworker, "origin", origin)
	var unwrap tsUnwrapper
	return pullOnce(ctx, pub, &unwrap, upstreamURL(origin, ref, ""), origin, log)
}

// errRedirected ends a connection answered with a 302 redirect.
var errRedirected = errors.New("redirected")

// maybeRedirect is SRS's answer to an RTMP player of an origin-cluster
// vhost (bug #92) when rtmp { cluster_redirect = true }: a stream not
// published here but on a coworker is answered with an onStatus error
// NetConnection.Connect.Rejected carrying ex.code 302, ex.redirect (the
// coworker's tcUrl) and ex.redirect2 (its full URL), and the connection is
// closed. Clients that follow it (Flash, SRS's own) play from the coworker;
// FFmpeg and lal's clients do not (their play ends), hence off by default.
func (c *conn) maybeRedirect(ref sdk.StreamRef, opts vhostOptions) error {
	if !opts.OriginCluster || !opts.Redirect || c.s.rt == nil || c.s.liveHere(ref.Key()) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	origin, coworker, err := c.s.discover(ctx, &http.Client{Timeout: clusterAskTimeout}, ref, opts.Coworkers)
	if err != nil {
		c.log.Debug("origin cluster: no coworker has the stream, the player waits here", "stream", ref.Key(), "error", err)
		return nil
	}
	u := upstreamURL(origin, ref, "")
	tcURL := u
	if i := strings.Index(u, "?"); i >= 0 {
		tcURL = u[:i]
	}
	tcURL = tcURL[:strings.LastIndexByte(tcURL, '/')]
	ex := []amf0Pair{{"code", 302.0}, {"redirect", tcURL}, {"redirect2", u}}
	if err := c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", "NetConnection.Connect.Rejected", "RTMP 302 Redirect", amf0Pair{"ex", ex})); err != nil {
		return err
	}
	c.log.Info("origin cluster: player redirected", "stream", ref.Key(), "coworker", coworker, "to", u)
	return fmt.Errorf("%w to %s", errRedirected, u)
}
