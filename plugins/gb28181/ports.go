package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// errNoPort is returned when every port of the UDP range is taken.
var errNoPort = errors.New("gb28181: no free rtp port")

// portPool hands out one UDP port per stream from [min, max] (SRS's
// rtp_port_min/rtp_port_max) and takes it back when the stream ends. A
// port taken by another program is skipped; the cursor moves on so that a
// port just given back is not reused at once (late packets of the old
// stream would be dropped by SSRC anyway).
type portPool struct {
	mu       sync.Mutex
	host     string
	min, max int
	next     int
	used     map[int]bool
}

func newPortPool(host string, min, max int) *portPool {
	return &portPool{host: host, min: min, max: max, next: min, used: map[int]bool{}}
}

// take binds a free port of the range.
func (p *portPool) take() (net.PacketConn, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.max - p.min + 1
	var last error
	for range n {
		port := p.next
		if p.next++; p.next > p.max {
			p.next = p.min
		}
		if p.used[port] {
			continue
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(p.host, strconv.Itoa(port)))
		if err != nil {
			last = err
			continue
		}
		p.used[port] = true
		return pc, port, nil
	}
	if last != nil {
		return nil, 0, fmt.Errorf("%w in %d-%d on %s (last error: %v)", errNoPort, p.min, p.max, p.host, last)
	}
	return nil, 0, fmt.Errorf("%w in %d-%d on %s: all %d in use", errNoPort, p.min, p.max, p.host, n)
}

// give closes pc and returns its port to the pool.
func (p *portPool) give(pc net.PacketConn, port int) {
	pc.Close()
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// inUse is the number of ports taken.
func (p *portPool) inUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
