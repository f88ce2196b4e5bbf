package main

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
)

// settings is the plugin "gb28181" {} block.
type settings struct {
	// ServerID is the SIP server's GB28181 id (SRS sip { serial }).
	ServerID string `json:"server_id"`
	// Realm is the SIP domain and digest realm (SRS sip { realm }).
	Realm string `json:"realm"`
	// Password is the global device password; Passwords overrides it per
	// device id. With neither, REGISTER needs no authentication.
	Password  string            `json:"password"`
	Passwords map[string]string `json:"passwords"`
	// DigestQOP offers qop="auth" in the digest challenge (RFC 2617): the
	// device's answer then covers a nonce count and a client nonce, and a
	// repeated count is refused. Devices that ignore it still register;
	// without qop a nonce authenticates one REGISTER only.
	DigestQOP bool `json:"digest_qop"`
	// Candidate is the IP address put in the SDP of an INVITE: where
	// devices send media (SRS stream_caster { host } / candidate).
	Candidate string `json:"candidate"`
	// KeepaliveTimeout expires a device that sent no keepalive MESSAGE nor
	// REGISTER for this long; its streams end.
	KeepaliveTimeout sdk.Duration `json:"keepalive_timeout"`
	// AutoInvite invites every channel of a device when its catalog
	// arrives (SRS sip { auto_play }); otherwise channels are invited when
	// a player wants their stream.
	AutoInvite bool `json:"auto_invite"`
	// Transport is how devices send media: "udp", "tcp" (TCP passive:
	// the device connects to the media port; "tcp_passive" is the same)
	// or "tcp_active" (the server connects to the port the device's SDP
	// answer gives).
	Transport string `json:"transport"`
	// RTPPortMin and RTPPortMax give each UDP stream a port of its own
	// from this range (SRS stream_caster { rtp_port_min rtp_port_max }),
	// bound at invite and given back when the stream ends; the SSRC is
	// still checked. 0 (the default) sends every UDP stream to the one
	// listen_media_udp port, where streams are told apart by SSRC.
	RTPPortMin int `json:"rtp_port_min"`
	RTPPortMax int `json:"rtp_port_max"`
	// Vhost is the vhost the devices' streams belong to.
	Vhost string `json:"vhost"`
	// MediaTimeout ends a stream whose media does not decode: nothing
	// decodable within this long of its first packet (junk, a codec we do
	// not read), or no packet and no frame for this long once publishing
	// (SRS rtp_idle_timeout). The device is sent BYE.
	MediaTimeout sdk.Duration `json:"media_timeout"`
	// ReorderPackets and ReorderWait bound how long a missing RTP packet
	// is waited for: until this many later packets arrived or this long
	// passed; then it is counted lost and the frame it belonged to is
	// dropped.
	ReorderPackets int          `json:"reorder_packets"`
	ReorderWait    sdk.Duration `json:"reorder_wait"`
	// IdleTimeout sends BYE to a channel invited on demand (for a player)
	// once it has had no player for this long, and its stream ends; the
	// next player invites it again. 0 keeps it streaming. Default 30s
	// (SRS's rtp_idle_timeout).
	IdleTimeout sdk.Duration `json:"idle_timeout"`
	// MaxDevices bounds the registry (REGISTER floods).
	MaxDevices int `json:"max_devices"`
}

// vhostSettings is the gb28181 {} block of a vhost.
type vhostSettings struct {
	Enabled *bool `json:"enabled"`
	// App and Stream name a channel's stream; Stream may use [deviceid]
	// and [channelid].
	App    string `json:"app"`
	Stream string `json:"stream"`
}

type config struct {
	settings
	app, stream string
	enabled     bool
}

var idRE = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)

func defaultSettings() settings {
	return settings{
		ServerID: "34020000002000000001", Realm: "3402000000", Candidate: "127.0.0.1",
		KeepaliveTimeout: sdk.Duration(30 * time.Second), AutoInvite: true, DigestQOP: true, Transport: "udp",
		Vhost: "__defaultVhost__", MaxDevices: 1000, MediaTimeout: sdk.Duration(10 * time.Second),
		IdleTimeout: sdk.Duration(30 * time.Second), ReorderPackets: defaultReorderPackets, ReorderWait: sdk.Duration(defaultReorderWait),
	}
}

func parseConfig(cfg sdk.Config) (*config, error) {
	s := defaultSettings()
	if err := cfg.DecodeSettings(&s); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(key, msg string) { errs = append(errs, &sdk.ConfigError{Key: []string{key}, Msg: msg}) }
	if !idRE.MatchString(s.ServerID) {
		bad("server_id", fmt.Sprintf("%q is not a GB28181 id", s.ServerID))
	}
	switch s.Transport {
	case "udp", "tcp", "tcp_active":
	case "tcp_passive":
		s.Transport = "tcp"
	default:
		bad("transport", fmt.Sprintf("%q: want \"udp\", \"tcp\" (passive) or \"tcp_active\"", s.Transport))
	}
	switch {
	case s.RTPPortMin == 0 && s.RTPPortMax == 0:
	case s.RTPPortMin < 1 || s.RTPPortMax > 65535 || s.RTPPortMin > s.RTPPortMax:
		bad("rtp_port_min", fmt.Sprintf("rtp_port_min %d and rtp_port_max %d: want 1 <= min <= max <= 65535", s.RTPPortMin, s.RTPPortMax))
	}
	if s.KeepaliveTimeout.Std() < time.Second {
		bad("keepalive_timeout", "must be at least 1s")
	}
	if s.MediaTimeout.Std() < 100*time.Millisecond {
		bad("media_timeout", "must be at least 100ms")
	}
	if s.ReorderPackets < 1 || s.ReorderPackets > 1024 {
		bad("reorder_packets", fmt.Sprintf("%d: want 1 to 1024", s.ReorderPackets))
	}
	if w := s.ReorderWait.Std(); w < 0 || w > 5*time.Second {
		bad("reorder_wait", "want 0 to 5s")
	}
	if s.IdleTimeout.Std() < 0 {
		bad("idle_timeout", "must not be negative")
	}
	if s.MaxDevices < 1 {
		bad("max_devices", "must be at least 1")
	}
	c := &config{settings: s, app: "live", stream: "[deviceid]_[channelid]"}
	for _, v := range cfg.Vhosts {
		var vs vhostSettings
		if err := v.Decode(&vs); err != nil {
			errs = append(errs, err)
			continue
		}
		if v.Name != s.Vhost {
			continue
		}
		c.enabled = v.Enabled
		if vs.App != "" {
			c.app = vs.App
		}
		if vs.Stream != "" {
			c.stream = vs.Stream
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// streamName maps a device's channel to its stream name.
func (c *config) streamName(device, channel string) string {
	return strings.NewReplacer("[deviceid]", device, "[channelid]", channel).Replace(c.stream)
}

// password returns the password of a device and whether one is required.
func (c *config) password(device string) (string, bool) {
	if p, ok := c.Passwords[device]; ok {
		return p, true
	}
	return c.Password, c.Password != ""
}
