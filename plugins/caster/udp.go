package main

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/rill-media/rill/plugins/internal/tsdemux"
)

// peerQueue is how many datagrams wait for a UDP peer's goroutine (while
// its hooks run, or when it falls behind); more are dropped and counted.
const peerQueue = 512

// udpInput serves one MPEG-TS over UDP socket (SRS mpegts_over_udp): every
// sender address is a client that publishes the configured output. A second
// sender of the same output is refused (the stream is busy) and ignored
// for the cooldown, as is a sender cut for malformed input or kicked.
type udpInput struct {
	s  *Server
	pc net.PacketConn

	mu       sync.Mutex
	peers    map[string]*udpPeer
	cooldown map[string]time.Time
	lastWarn time.Time
	stopped  bool
	wg       sync.WaitGroup
}

type udpPeer struct {
	c  *client
	ch chan []byte
}

func newUDPInput(s *Server, pc net.PacketConn) *udpInput {
	return &udpInput{s: s, pc: pc, peers: map[string]*udpPeer{}, cooldown: map[string]time.Time{}}
}

// stop ends the read loop. The socket is the core's: it is not closed, a
// past read deadline unblocks the read.
func (u *udpInput) stop() {
	u.mu.Lock()
	u.stopped = true
	u.mu.Unlock()
	_ = u.pc.SetReadDeadline(time.Now())
}

func (u *udpInput) run() {
	defer u.wg.Wait()
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := u.pc.ReadFrom(buf)
		if err != nil {
			u.mu.Lock()
			stopped := u.stopped
			u.mu.Unlock()
			if stopped || u.s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			u.s.log.Warn("mpegts caster read", "addr", u.pc.LocalAddr().String(), "error", err)
			time.Sleep(10 * time.Millisecond) // a failing socket must not spin
			continue
		}
		if n == 0 {
			continue
		}
		u.datagram(addr, buf[:n])
	}
}

// datagram hands b to its sender's client, creating the client for a new
// sender within the peer cap.
func (u *udpInput) datagram(addr net.Addr, b []byte) {
	key := addr.String()
	now := time.Now()
	u.mu.Lock()
	p := u.peers[key]
	if p == nil {
		if until, ok := u.cooldown[key]; ok {
			if now.Before(until) {
				u.mu.Unlock()
				u.s.dropped.Add(1)
				return
			}
			delete(u.cooldown, key)
		}
		for k, until := range u.cooldown {
			if now.After(until) {
				delete(u.cooldown, k)
			}
		}
		cfg := u.s.cfg.Load()
		if len(u.peers)+len(u.cooldown) >= cfg.MaxUDPPeers || u.stopped {
			warn := now.Sub(u.lastWarn) > 5*time.Second
			if warn {
				u.lastWarn = now
			}
			u.mu.Unlock()
			u.s.dropped.Add(1)
			if warn {
				u.s.log.Warn("mpegts caster peer dropped: too many udp senders", "remote_addr", key, "max_udp_peers", cfg.MaxUDPPeers)
			}
			return
		}
		p = u.newPeer(addr, cfg)
		u.peers[key] = p
		u.wg.Add(1)
		go u.serve(key, p, cfg)
	}
	u.mu.Unlock()
	select {
	case p.ch <- append([]byte(nil), b...):
	default:
		u.s.dropped.Add(1)
	}
}

func (u *udpInput) newPeer(addr net.Addr, cfg *config) *udpPeer {
	ip := addr.String()
	if ua, ok := addr.(*net.UDPAddr); ok {
		ip = ua.IP.String()
	}
	o, _ := parseOutput(cfg.Output) // validated by Configure
	ref := cfg.ref(o, "")
	url := "udp://" + u.pc.LocalAddr().String() + " -> " + ref.TcURL + "/" + ref.Stream
	return &udpPeer{c: newClient(u.s, typeUDP, ip, addr.String(), ref, url, nil), ch: make(chan []byte, peerQueue)}
}

// serve publishes one sender's datagrams until it is silent for
// publish_timeout, sends what is not MPEG-TS, is kicked or the plugin stops.
func (u *udpInput) serve(key string, p *udpPeer, cfg *config) {
	defer u.wg.Done()
	c := p.c
	err := u.publish(p, cfg)
	c.finish(err)
	u.mu.Lock()
	delete(u.peers, key)
	if err != nil && (c.pubFailed() || errors.Is(err, errMalformed) || c.kicked.Load()) {
		u.cooldown[key] = time.Now().Add(cfg.Cooldown.Std())
	}
	u.mu.Unlock()
}

func (u *udpInput) publish(p *udpPeer, cfg *config) (err error) {
	c := p.c
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in mpegts caster peer, closing it", "panic", fmt.Sprint(r))
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	if err := c.begin(); err != nil {
		c.failed.Store(true)
		return err
	}
	dm := tsdemux.New(c.write)
	defer logWarnings(c, dm)
	timeout := cfg.PublishTimeout.Std()
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		select {
		case <-c.done:
			return errors.New(c.closedReason())
		case <-u.s.ctx.Done():
			return errors.New("plugin stopping")
		case <-idle.C:
			return fmt.Errorf("timeout: no data for %s", timeout)
		case b := <-p.ch:
			idle.Reset(timeout)
			c.recvBytes.Add(uint64(len(b)))
			if err := dm.Feed(b); err != nil {
				if errors.Is(err, tsdemux.ErrMalformed) {
					return fmt.Errorf("%w: %w", errMalformed, err)
				}
				return err
			}
		}
	}
}

// logWarnings logs the tolerated problems of the stream once, at the end.
func logWarnings(c *client, dm *tsdemux.Demuxer) {
	if len(dm.Warnings()) == 0 {
		return
	}
	args := make([]any, 0, 2*len(dm.Warnings()))
	for k, v := range dm.Warnings() {
		args = append(args, strings.ReplaceAll(k, " ", "_"), v)
	}
	c.log.Info("mpeg-ts problems tolerated", args...)
}
