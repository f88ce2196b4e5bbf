package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pion/webrtc/v3"

	"github.com/rill-media/rill/sdk"
)

// session is one WebRTC peer: a publisher (WHIP, /rtc/v1/publish/) or a
// player (WHEP, /rtc/v1/play/). Its id is the client id of the API, the
// callbacks and its log lines.
type session struct {
	s       *Server
	id      string
	token   string
	publish bool
	ref     sdk.StreamRef
	info    sdk.ClientInfo
	opts    vhostOptions
	url     string
	log     hclog.Logger
	started time.Time

	pc *webrtc.PeerConnection

	// sigMu serializes PATCHes (trickle ICE, ICE restart) on the session;
	// etag is its WHIP/WHEP entity tag (RFC 9725 §4.3.1), under sigMu.
	sigMu sync.Mutex
	etag  string

	sendBytes atomic.Uint64
	recvBytes atomic.Uint64
	nack      nackStats // the viewer's retransmission requests (nack.go)
	connected atomic.Bool
	// videoSSRC is a publisher's video SSRC (0 until its track came); pli
	// limits the keyframe requests forwarded to it.
	videoSSRC  atomic.Uint32
	videoCodec atomic.Uint32 // media.Codec of a publisher's video track
	pli        pliLimiter

	closeOnce sync.Once
	done      chan struct{}
	cleaned   chan struct{}

	mu      sync.Mutex
	pub     *sdk.Publication
	playing bool // the core allowed the player: PlayStopped is due
	player  *player

	avsync avSync // publisher: audio on the video's timeline
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Server) newSession(publish bool, ref sdk.StreamRef, opts vhostOptions, ip string) *session {
	id := sdk.NewClientID()
	typ := "rtc-play"
	if publish {
		typ = "rtc-publish"
	}
	return &session{
		s: s, id: id, token: newToken(), publish: publish, ref: ref, opts: opts,
		info: sdk.ClientInfo{ID: id, IP: ip, Type: typ},
		url:  "webrtc://" + ref.Vhost + "/" + ref.App + "/" + ref.Stream,
		log:  s.log.With("client_id", id, "remote_addr", ip, "stream", ref.Key(), "type", typ),
		done: make(chan struct{}), cleaned: make(chan struct{}), started: time.Now(),
	}
}

// close ends the session once: the peer connection, the publication (on
// unpublish) or the play (on_stop). Safe from any goroutine.
func (ss *session) close(reason string) {
	ss.closeOnce.Do(func() {
		close(ss.done)
		ss.s.wg.Add(1)
		go func() {
			defer ss.s.wg.Done()
			defer close(ss.cleaned)
			ss.cleanup(reason)
		}()
	})
}

func (ss *session) cleanup(reason string) {
	ss.mu.Lock()
	pc := ss.pc
	ss.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
	ss.mu.Lock()
	pub, playing := ss.pub, ss.playing
	ss.pub, ss.playing = nil, false
	ss.mu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			ss.log.Warn("unpublish", "error", err)
		}
	}
	if playing && ss.s.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ss.s.rt.Host.PlayStopped(ctx, ss.info, ss.ref); err != nil {
			ss.log.Debug("report play stopped", "error", err)
		}
		cancel()
	}
	ss.s.removeSession(ss)
	ss.log.Info("webrtc session closed", "reason", reason, "duration", time.Since(ss.started).Round(time.Millisecond).String(),
		"send_bytes", ss.sendBytes.Load(), "recv_bytes", ss.recvBytes.Load(),
		"nack_asked", ss.nack.asked.Load(), "nack_resent", ss.nack.resent.Load(),
		"nack_refused", ss.nack.tooOld.Load()+ss.nack.repeated.Load()+ss.nack.budget.Load()+ss.nack.unknown.Load())
}

func (ss *session) stat() sdk.ClientStat {
	return sdk.ClientStat{
		Client: ss.info, Stream: ss.ref, Publish: ss.publish, Alive: time.Since(ss.started),
		SendBytes: ss.sendBytes.Load(), RecvBytes: ss.recvBytes.Load(), URL: ss.url,
	}
}

// watch closes the session when the peer connection fails or closes, and
// when ICE and DTLS are not done within stun_timeout (a peer that never
// completes them, docs/THREATS.md row 19).
func (ss *session) watch(onConnected func()) {
	var once sync.Once
	ss.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ss.log.Debug("peer connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.connected.Store(true)
			once.Do(func() {
				if onConnected != nil {
					ss.s.wg.Add(1)
					go func() {
						defer ss.s.wg.Done()
						onConnected()
					}()
				}
			})
		case webrtc.PeerConnectionStateFailed:
			ss.close("ice or dtls failed (peer gone)")
		case webrtc.PeerConnectionStateClosed:
			ss.close("peer connection closed")
		}
	})
	ss.s.wg.Add(1)
	go func() {
		defer ss.s.wg.Done()
		t := time.NewTimer(ss.opts.StunTimeout)
		defer t.Stop()
		select {
		case <-ss.done:
		case <-ss.s.ctx.Done():
			ss.close("plugin stopping")
		case <-t.C:
			switch {
			case !ss.connected.Load():
				ss.close("ice and dtls not completed within stun_timeout " + ss.opts.StunTimeout.String())
			case ss.publish && ss.recvBytes.Load() == 0:
				ss.close("no media from the publisher within stun_timeout " + ss.opts.StunTimeout.String())
			}
		}
	}()
}
