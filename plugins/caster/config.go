package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/wire"
)

const defaultVhost = "__defaultVhost__"

// Default addresses, as SRS's stream_caster { listen 8935; } and { listen 8936; }.
const (
	defaultFLVAddr = "0.0.0.0:8936"
	defaultUDPAddr = "0.0.0.0:8935"
)

// settings is the plugin block: plugin "caster" { ... }. The core binds
// `listen` (FLV over HTTP POST, tcp) and `listen_mpegts_udp` (MPEG-TS over
// UDP) and hands the sockets over, so they survive plugin restarts.
type settings struct {
	// Output names the stream the MPEG-TS over UDP input publishes, as
	// SRS's mpegts_over_udp `output rtmp://127.0.0.1/live/livestream`:
	// the host is the vhost (an IP address or localhost is the default
	// vhost, ?vhost= overrides it), then app and stream.
	Output string `json:"output"`
	// FLVOutput is the template of the FLV over HTTP POST streams, as SRS's
	// flv caster `output rtmp://127.0.0.1/[app]/[stream]`: [app] and
	// [stream] come from the request path /app/stream.flv.
	FLVOutput string `json:"flv_output"`
	// PublishTimeout ends a publisher that sends nothing for this long: a
	// silent UDP sender, or a POST whose body stops (default 10s).
	PublishTimeout sdk.Duration `json:"publish_timeout"`
	// MaxUDPPeers caps the UDP senders tracked at once (publishing,
	// refused or cooling down); datagrams of more peers are dropped
	// (default 16).
	MaxUDPPeers int `json:"max_udp_peers"`
	// MaxTagSize caps one FLV tag of a POST body (default 8 MiB).
	MaxTagSize int `json:"max_tag_size"`
	// Cooldown is how long a UDP sender whose input was refused, cut as
	// malformed or kicked is ignored before it may publish again (5s).
	Cooldown sdk.Duration `json:"cooldown"`
}

func defaultSettings() settings {
	return settings{
		Output:         "rtmp://127.0.0.1/live/livestream",
		FLVOutput:      "rtmp://127.0.0.1/[app]/[stream]",
		PublishTimeout: sdk.Duration(10 * time.Second),
		MaxUDPPeers:    16,
		MaxTagSize:     8 << 20,
		Cooldown:       sdk.Duration(5 * time.Second),
	}
}

// config is one generation of the plugin's configuration.
type config struct {
	settings
	vhosts map[string]bool
}

// output is a parsed output URL template.
type output struct {
	vhost, app, stream string
	param              string // "?k=v" or ""
}

// parseOutput parses an rtmp:// output template; [app] and [stream] are
// kept as they are for resolve.
func parseOutput(s string) (output, error) {
	u, err := url.Parse(s)
	if err != nil {
		return output{}, fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "rtmp" {
		return output{}, fmt.Errorf("scheme %q, want rtmp://host/app/stream", u.Scheme)
	}
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 || i == len(p)-1 {
		return output{}, fmt.Errorf("path %q, want /app/stream", u.Path)
	}
	o := output{app: p[:i], stream: p[i+1:]}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip == nil && host != "localhost" && host != "" {
		o.vhost = host
	}
	q := u.Query()
	if v := q.Get("vhost"); v != "" {
		o.vhost = v
	} else if v := q.Get("domain"); v != "" {
		o.vhost = v
	}
	if u.RawQuery != "" {
		o.param = "?" + u.RawQuery
	}
	return o, nil
}

// resolve fills [app] and [stream] and checks the names.
func (o output) resolve(app, stream string) (output, error) {
	r := o
	r.app = strings.ReplaceAll(strings.ReplaceAll(o.app, "[app]", app), "[stream]", stream)
	r.stream = strings.ReplaceAll(strings.ReplaceAll(o.stream, "[app]", app), "[stream]", stream)
	if !wire.ValidApp(r.app) {
		return output{}, fmt.Errorf("bad app name %q", r.app)
	}
	if !wire.ValidName(r.stream) {
		return output{}, fmt.Errorf("bad stream name %q", r.stream)
	}
	return r, nil
}

// ref is the hub stream of the output in a configuration.
func (c *config) ref(o output, extraParam string) sdk.StreamRef {
	vhost := o.vhost
	if _, ok := c.vhosts[vhost]; !ok {
		vhost = defaultVhost // an unknown vhost is the default one, as the hub has it
	}
	param := o.param
	if extraParam != "" {
		if param == "" {
			param = "?" + extraParam
		} else {
			param += "&" + extraParam
		}
	}
	return sdk.StreamRef{Vhost: vhost, App: o.app, Stream: o.stream, Param: param, TcURL: "rtmp://" + vhost + "/" + o.app}
}

func parseConfig(cfg sdk.Config) (*config, error) {
	c := &config{settings: defaultSettings(), vhosts: map[string]bool{}}
	var errs []error
	if err := cfg.DecodeSettings(&c.settings); err != nil {
		errs = append(errs, err)
	}
	if o, err := parseOutput(c.Output); err != nil {
		errs = append(errs, &sdk.ConfigError{Key: []string{"output"}, Msg: err.Error()})
	} else if _, err := o.resolve("", ""); err != nil || strings.Contains(c.Output, "[") {
		errs = append(errs, &sdk.ConfigError{Key: []string{"output"}, Msg: "must name a fixed app and stream (MPEG-TS over UDP carries no stream name)"})
	}
	if o, err := parseOutput(c.FLVOutput); err != nil {
		errs = append(errs, &sdk.ConfigError{Key: []string{"flv_output"}, Msg: err.Error()})
	} else if _, err := o.resolve("live", "x"); err != nil {
		errs = append(errs, &sdk.ConfigError{Key: []string{"flv_output"}, Msg: err.Error()})
	}
	if c.PublishTimeout.Std() < 100*time.Millisecond {
		errs = append(errs, &sdk.ConfigError{Key: []string{"publish_timeout"}, Msg: "must be at least 100ms"})
	}
	if c.MaxUDPPeers < 1 || c.MaxUDPPeers > 4096 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_udp_peers"}, Msg: "must be 1..4096"})
	}
	if c.MaxTagSize < 64<<10 || c.MaxTagSize > 1<<24-1 {
		errs = append(errs, &sdk.ConfigError{Key: []string{"max_tag_size"}, Msg: "must be 64KiB..16MiB"})
	}
	for _, v := range cfg.Vhosts {
		c.vhosts[v.Name] = v.Enabled
	}
	return c, errors.Join(errs...)
}
