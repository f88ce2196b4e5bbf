package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// lal's RTSP sessions read RTCP over UDP on sockets of their own, in
// goroutines of their own, and index the datagram before checking its
// length (a 1-byte datagram, or a sender report shorter than 28 bytes,
// panics the process). Those sockets cannot be wrapped, so each RTCP
// socket a SETUP binds gets a socket filter (classic BPF, run by the
// kernel) that drops what lal would fail on, before the SETUP response
// names the port to the client.

// rtcpMinSR is the size of an RTCP sender report lal's ParseSr reads.
const rtcpMinSR = 28

var (
	udpHdrOnce sync.Once
	udpHdrLen  uint32 // bytes before the UDP payload that a socket filter sees
	udpHdrErr  error
)

// udpFilterOffset finds out once whether this kernel's socket filters see
// a UDP datagram from its UDP header (8 bytes) or from its payload (0): a
// filter keeping datagrams of at least 9 bytes is put on a loopback socket
// that is then sent an 8-byte payload.
func udpFilterOffset() (uint32, error) {
	udpHdrOnce.Do(func() {
		udpHdrLen, udpHdrErr = probeUDPFilter()
	})
	return udpHdrLen, udpHdrErr
}

func probeUDPFilter() (uint32, error) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_LEN},
		{Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: 9, Jt: 0, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	}
	raw, err := rc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = attach(int(fd), prog) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	sc, err := net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		return 0, err
	}
	defer sc.Close()
	if _, err := sc.Write(make([]byte, 8)); err != nil {
		return 0, err
	}
	_ = rc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 64)
	if _, _, err := rc.ReadFromUDP(buf); err == nil {
		return 8, nil // the 8-byte payload passed "len >= 9": the header is counted
	}
	return 0, nil
}

func attach(fd int, prog []unix.SockFilter) error {
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp)
}

// rtcpFilter keeps RTCP datagrams lal can read: at least 2 bytes, and a
// sender report (packet type 200 in the second byte) of at least 28.
func rtcpFilter(hdr uint32) []unix.SockFilter {
	return []unix.SockFilter{
		/* 0 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_LEN},
		/* 1 */ {Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: hdr + 2, Jt: 1, Jf: 0},
		/* 2 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0},
		/* 3 */ {Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: hdr + 1},
		/* 4 */ {Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 200, Jt: 0, Jf: 3},
		/* 5 */ {Code: unix.BPF_LD | unix.BPF_W | unix.BPF_LEN},
		/* 6 */ {Code: unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, K: hdr + rtcpMinSR, Jt: 1, Jf: 0},
		/* 7 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0},
		/* 8 */ {Code: unix.BPF_RET | unix.BPF_K, K: 0xffffffff},
	}
}

// guardRTCPPorts puts the RTCP filter on this process's UDP sockets bound
// to the given local ports (the ones lal bound for a SETUP). It returns how
// many sockets it filtered.
func guardRTCPPorts(ports map[int]bool) (int, error) {
	hdr, err := udpFilterOffset()
	if err != nil {
		return 0, fmt.Errorf("probe udp socket filters: %w", err)
	}
	prog := rtcpFilter(hdr)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if t, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_DGRAM {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		port := 0
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = a.Port
		case *unix.SockaddrInet6:
			port = a.Port
		}
		if !ports[port] {
			continue
		}
		if err := attach(fd, prog); err != nil {
			return n, fmt.Errorf("filter udp port %d: %w", port, err)
		}
		n++
	}
	return n, nil
}
