//go:build !linux

package main

import "errors"

// guardRTCPPorts needs Linux socket filters; elsewhere RTSP over UDP is
// refused rather than left open to lal's RTCP parser (udpfilter_linux.go).
func guardRTCPPorts(map[int]bool) (int, error) {
	return 0, errors.New("rtsp over udp needs linux socket filters")
}
