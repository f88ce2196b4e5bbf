package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rill-media/rill/sdk"
)

// defaultAddr is SRS's srt_server { listen 10080; }.
const defaultAddr = "0.0.0.0:10080"

const defaultVhost = "__defaultVhost__"

// settings is the plugin block: plugin "srt" { ... } (SRS srt_server {}).
//
// The plugin binds its UDP socket itself, from bind, instead of declaring a
// listener for the core to bind: gosrt's srt.Listen opens its own socket
// and cannot serve an existing net.PacketConn, and the core's `listen` key
// only exists for listeners the core binds. So `listen` is not used here;
// the port is freed when the plugin process exits and bound again when the
// core restarts it.
type settings struct {
	// Bind lists the UDP addresses to serve SRT on (default 0.0.0.0:10080).
	Bind []string `json:"bind"`
	// Latency is the SRT latency for both directions (SRS latency, also
	// recvlatency/peerlatency below), default 120ms.
	Latency *sdk.Duration `json:"latency"`
	// RecvLatency and PeerLatency override Latency for one direction.
	RecvLatency *sdk.Duration `json:"recvlatency"`
	PeerLatency *sdk.Duration `json:"peerlatency"`
	// PeerIdleTimeout closes a connection whose peer sent nothing for this
	// long (SRS peer_idle_timeout, default 10s).
	PeerIdleTimeout sdk.Duration `json:"peer_idle_timeout"`
	// Passphrase (10 to 79 characters) makes encryption mandatory: a caller
	// without it or with another one is refused (SRS passphrase).
	Passphrase string `json:"passphrase"`
	// PBKeyLen is the key length in bytes when encrypting: 16, 24 or 32
	// (SRS pbkeylen; 0 lets the caller choose). Set, a caller whose key
	// material has another length is refused (the caller chooses the key
	// in SRT, for both directions).
	PBKeyLen int `json:"pbkeylen"`
	// DefaultApp is the app of a stream id that names none (SRS default_app).
	DefaultApp string `json:"default_app"`
	// MSS, TLPktDrop, TSBPDMode, SendBuf and RecvBuf are SRS's srt_server
	// keys of the same names (0 or unset: gosrt's defaults).
	MSS       int   `json:"mss"`
	TLPktDrop *bool `json:"tlpktdrop"`
	TSBPDMode *bool `json:"tsbpdmode"`
	SendBuf   int   `json:"sendbuf"`
	RecvBuf   int   `json:"recvbuf"`
	// PlayWait is how long a player waits for a publisher.
	PlayWait sdk.Duration `json:"play_wait"`
	// PublishTimeout cuts a publisher that sends no data for this long
	// (default 10s). SRT keepalives keep a silent caller connected past
	// peer_idle_timeout, so this counts data only (SRS publish
	// normal_timeout).
	PublishTimeout sdk.Duration `json:"publish_timeout"`
}

func defaultSettings() settings {
	return settings{
		Bind:            []string{defaultAddr},
		PeerIdleTimeout: sdk.Duration(10 * time.Second),
		DefaultApp:      "live",
		PlayWait:        sdk.Duration(10 * time.Second),
		PublishTimeout:  sdk.Duration(10 * time.Second),
	}
}

// vhostSRT is the plugin's block in a vhost: vhost "x" { srt { ... } } (SRS
// srt { enabled on; srt_to_rtmp on; }).
type vhostSRT struct {
	Enabled   *bool `json:"enabled"`
	SRTToRTMP *bool `json:"srt_to_rtmp"`
	// Passphrase and PBKeyLen override the plugin block's for the callers
	// of this vhost.
	Passphrase *string `json:"passphrase"`
	PBKeyLen   *int    `json:"pbkeylen"`
}

// security is what a vhost asks of its callers' encryption.
type security struct {
	Passphrase string
	PBKeyLen   int // 0: any key length
}

// config is one generation of the plugin's configuration.
type config struct {
	settings
	// vhosts are the vhosts that enable SRT.
	vhosts map[string]bool
	// sec is each vhost's encryption (the plugin block's unless it sets its own).
	sec map[string]security
}

// security returns the encryption rules of a resolved vhost.
func (c *config) security(vhost string) security {
	if s, ok := c.sec[vhost]; ok {
		return s
	}
	return security{Passphrase: c.Passphrase, PBKeyLen: c.PBKeyLen}
}

// vhost resolves a caller's vhost as the hub does: an unknown name is the
// default vhost. ok says whether SRT is enabled there.
func (c *config) vhost(name string) (string, bool) {
	if name == "" {
		name = defaultVhost
	}
	if e, ok := c.vhosts[name]; ok {
		return name, e
	}
	return defaultVhost, c.vhosts[defaultVhost]
}

func parseConfig(cfg sdk.Config) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]bool{}, sec: map[string]security{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	if len(c.Bind) == 0 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"bind"}, Msg: "needs at least one host:port"})
	}
	for i, a := range c.Bind {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, &sdk.ConfigError{Key: []string{"bind", fmt.Sprint(i)}, Msg: fmt.Sprintf("%q is not host:port", a)})
		}
	}
	for _, l := range []struct {
		key string
		d   *sdk.Duration
	}{{"latency", c.Latency}, {"recvlatency", c.RecvLatency}, {"peerlatency", c.PeerLatency}} {
		if l.d != nil && l.d.Std() > 65535*time.Millisecond {
			errs = append(errs, &sdk.ConfigError{Key: []string{l.key}, Msg: "must be at most 65535ms"})
		}
	}
	if c.PeerIdleTimeout.Std() < 100*time.Millisecond {
		errs = append(errs, &sdk.ConfigError{Key: []string{"peer_idle_timeout"}, Msg: "must be at least 100ms"})
	}
	if c.PublishTimeout.Std() < 100*time.Millisecond {
		errs = append(errs, &sdk.ConfigError{Key: []string{"publish_timeout"}, Msg: "must be at least 100ms"})
	}
	if n := len(c.Passphrase); n != 0 && (n < 10 || n > 79) {
		errs = append(errs, &sdk.ConfigError{Key: []string{"passphrase"}, Msg: "must be 10 to 79 characters"})
	}
	switch c.PBKeyLen {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, &sdk.ConfigError{Key: []string{"pbkeylen"}, Msg: "must be 16, 24 or 32"})
	}
	if c.MSS != 0 && (c.MSS < 76 || c.MSS > 1500) {
		errs = append(errs, &sdk.ConfigError{Key: []string{"mss"}, Msg: "must be 76..1500"})
	}
	if c.DefaultApp == "" {
		errs = append(errs, &sdk.ConfigError{Key: []string{"default_app"}, Msg: "must not be empty"})
	}
	if c.SendBuf < 0 || c.RecvBuf < 0 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"sendbuf"}, Msg: "buffer sizes must not be negative"})
	}
	if len(errs) == 0 {
		sc := c.srtConfig()
		if err := sc.Validate(); err != nil {
			errs = append(errs, &sdk.ConfigError{Msg: "the SRT options do not fit together: " + err.Error()})
		}
	}
	for _, v := range cfg.Vhosts {
		var vs vhostSRT
		if err := v.Decode(&vs); err != nil {
			errs = append(errs, err)
		}
		if vs.SRTToRTMP != nil && !*vs.SRTToRTMP {
			errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"srt_to_rtmp"},
				Msg: "off is not supported: SRT streams always go through the hub, where RTMP, HTTP-FLV and HLS play them"})
		}
		c.vhosts[v.Name] = v.Enabled
		sec := security{Passphrase: c.Passphrase, PBKeyLen: c.PBKeyLen}
		if vs.Passphrase != nil {
			sec.Passphrase = *vs.Passphrase
			if n := len(sec.Passphrase); n != 0 && (n < 10 || n > 79) {
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"passphrase"}, Msg: "must be 10 to 79 characters"})
			}
		}
		if vs.PBKeyLen != nil {
			sec.PBKeyLen = *vs.PBKeyLen
			switch sec.PBKeyLen {
			case 0, 16, 24, 32:
			default:
				errs = append(errs, &sdk.ConfigError{Vhost: v.Name, Key: []string{"pbkeylen"}, Msg: "must be 16, 24 or 32"})
			}
		}
		c.sec[v.Name] = sec
	}
	return c, errors.Join(errs...)
}
