package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/hooks"
	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/core/internal/security"
	"github.com/rill-media/rill/sdk/wire"
)

// vhostControl is what the core itself enforces for a vhost: callbacks and
// security rules.
type vhostControl struct {
	hooks    hooks.Config
	security security.Rules
}

var hookEvents = []string{
	hooks.OnConnect, hooks.OnClose, hooks.OnPublish, hooks.OnUnpublish, hooks.OnPlay, hooks.OnStop,
	hooks.OnDvr, hooks.OnHls, hooks.OnHlsNotify,
}

// parseControl reads every vhost's hooks (or http_hooks) and security
// blocks, reporting problems with file, line and key.
func parseControl(cfg *config.Config) (map[string]*vhostControl, error) {
	out := map[string]*vhostControl{}
	var errs []error
	bad := func(path []string, format string, args ...any) {
		key := strings.Join(path[2:], ".")
		errs = append(errs, fmt.Errorf("%s: vhost %q key %q: %s", cfg.PosOf(path...), path[1], key, fmt.Sprintf(format, args...)))
	}
	for _, name := range sortedKeys(cfg.Vhosts) {
		v := cfg.Vhosts[name]
		vc := &vhostControl{hooks: hooks.Config{URLs: map[string][]string{}}}
		out[name] = vc
		for _, blockName := range []string{"hooks", "http_hooks"} {
			block, ok := v.Blocks[blockName]
			if !ok {
				continue
			}
			vc.hooks.Enabled = true
			for _, k := range sortedKeys(block) {
				path := []string{"vhost", name, blockName, k}
				val := block[k]
				switch {
				case k == "enabled":
					b, ok := val.(bool)
					if !ok {
						bad(path, "want a bool")
					}
					vc.hooks.Enabled = b
				case k == "timeout":
					s, _ := val.(string)
					d, err := time.ParseDuration(s)
					if err != nil || d <= 0 {
						bad(path, "want a duration such as \"5s\"")
					}
					vc.hooks.Timeout = d
				case k == "retries":
					n, ok := val.(int64)
					if !ok || n < 0 || n > 10 {
						bad(path, "want a whole number from 0 to 10")
					}
					vc.hooks.Retries = int(n)
				case contains(hookEvents, k):
					urls, err := urlList(val, k == hooks.OnHlsNotify)
					if err != nil {
						bad(path, "%v", err)
					}
					vc.hooks.URLs[k] = append(vc.hooks.URLs[k], urls...)
				default:
					bad(path, "unknown key (want enabled, timeout, retries or one of %s)", strings.Join(hookEvents, ", "))
				}
			}
		}
		if block, ok := v.Blocks["security"]; ok {
			vc.security.Enabled = true
			for _, k := range sortedKeys(block) {
				path := []string{"vhost", name, "security", k}
				switch k {
				case "enabled":
					b, ok := block[k].(bool)
					if !ok {
						bad(path, "want a bool")
					}
					vc.security.Enabled = b
				case "rules":
					list, ok := block[k].([]any)
					if !ok {
						bad(path, "want a list such as [\"allow publish 127.0.0.1\", \"deny play all\"]")
						continue
					}
					for i, x := range list {
						s, _ := x.(string)
						r, err := security.ParseRule(s)
						if err != nil {
							bad(append(path[:len(path):len(path)], fmt.Sprintf("[%d]", i)), "%v", err)
							continue
						}
						vc.security.Rules = append(vc.security.Rules, r)
					}
				default:
					bad(path, "unknown key (want enabled or rules)")
				}
			}
		}
	}
	return out, errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func urlList(v any, template bool) ([]string, error) {
	var raw []any
	switch x := v.(type) {
	case string:
		raw = []any{x}
	case []any:
		raw = x
	default:
		return nil, fmt.Errorf("want a URL or a list of URLs")
	}
	var out []string
	for _, x := range raw {
		s, ok := x.(string)
		if !ok || !(strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) {
			return nil, fmt.Errorf("want http:// or https:// URLs, got %v", x)
		}
		out = append(out, s)
	}
	return out, nil
}

// control applies security rules and callbacks for the hub and for the
// client events plugins report. It implements hub.Gate.
type control struct {
	caller *hooks.Caller
	log    hclog.Logger
	hub    *hub.Hub
	vhosts atomic.Pointer[map[string]*vhostControl]
}

var _ hub.Gate = (*control)(nil)

func (c *control) vhost(name string) *vhostControl {
	m := *c.vhosts.Load()
	if vc, ok := m[name]; ok {
		return vc
	}
	if vc, ok := m[hub.DefaultVhost]; ok {
		return vc
	}
	return &vhostControl{}
}

// streamURL is SRS's stream_url: /app/stream for the default vhost.
func streamURL(s wire.StreamRef) string {
	u := "/" + s.App + "/" + s.Stream
	if s.Vhost != hub.DefaultVhost {
		u = s.Vhost + u
	}
	return u
}

func hostIP(ip string) string {
	if h, _, err := net.SplitHostPort(ip); err == nil {
		return h
	}
	return ip
}

// body builds SRS's callback body.
func body(client wire.ClientInfo, s wire.StreamRef, streamID string) map[string]any {
	b := map[string]any{
		"client_id": client.ID, "ip": hostIP(client.IP), "vhost": s.Vhost, "app": s.App, "stream": s.Stream,
		"param": s.Param, "tcUrl": s.TcURL, "pageUrl": client.PageURL, "stream_url": streamURL(s),
	}
	if streamID != "" {
		b["stream_id"] = streamID
	}
	return b
}

func (c *control) AllowPublish(ctx context.Context, client wire.ClientInfo, s wire.StreamRef, streamID string) error {
	vc := c.vhost(s.Vhost)
	if err := vc.security.Check("publish", hostIP(client.IP)); err != nil {
		c.log.Warn("publish refused by security rules", "client_id", client.ID, "stream", s.Key(), "error", err)
		return wire.Errorf(wire.ErrForbidden, "%v", err)
	}
	if err := c.caller.Call(ctx, vc.hooks, hooks.OnPublish, body(client, s, streamID)); err != nil {
		c.log.Warn("publish refused by callback", "client_id", client.ID, "stream", s.Key(), "error", err)
		return wire.Errorf(wire.ErrForbidden, "%v", err)
	}
	return nil
}

func (c *control) Unpublished(client wire.ClientInfo, s wire.StreamRef, streamID string) {
	c.caller.Notify(c.vhost(s.Vhost).hooks, hooks.OnUnpublish, body(client, s, streamID))
}

// clientEvent handles a plugin's client event: on_connect and on_play may
// refuse; on_stop and on_close are sent in the background.
func (c *control) clientEvent(ctx context.Context, plugin string, ev wire.ClientEvent) error {
	s := ev.Stream
	if s.Vhost == "" || c.hub.Policy().Vhosts[s.Vhost] == nil {
		s.Vhost = hub.DefaultVhost
	}
	vc := c.vhost(s.Vhost)
	log := c.log.With("plugin", plugin, "client_id", ev.Client.ID, "ip", ev.Client.IP, "stream", s.Key())
	switch ev.Type {
	case wire.ClientConnect:
		b := body(ev.Client, s, "")
		delete(b, "stream_url")
		if err := c.caller.Call(ctx, vc.hooks, hooks.OnConnect, b); err != nil {
			log.Warn("connect refused by callback", "error", err)
			return wire.Errorf(wire.ErrForbidden, "%v", err)
		}
		log.Debug("client connected", "type", ev.Client.Type)
	case wire.ClientPlay:
		if err := vc.security.Check("play", hostIP(ev.Client.IP)); err != nil {
			log.Warn("play refused by security rules", "error", err)
			return wire.Errorf(wire.ErrForbidden, "%v", err)
		}
		if err := c.caller.Call(ctx, vc.hooks, hooks.OnPlay, body(ev.Client, s, c.streamID(s))); err != nil {
			log.Warn("play refused by callback", "error", err)
			return wire.Errorf(wire.ErrForbidden, "%v", err)
		}
		log.Info("play started", "type", ev.Client.Type)
	case wire.ClientStop:
		c.caller.Notify(vc.hooks, hooks.OnStop, body(ev.Client, s, c.streamID(s)))
		log.Info("play stopped")
	case wire.ClientClose:
		c.caller.Notify(vc.hooks, hooks.OnClose, map[string]any{
			"client_id": ev.Client.ID, "ip": hostIP(ev.Client.IP), "vhost": s.Vhost, "app": s.App,
			"send_bytes": ev.SendBytes, "recv_bytes": ev.RecvBytes,
		})
		log.Debug("client closed", "send_bytes", ev.SendBytes, "recv_bytes", ev.RecvBytes)
	default:
		return wire.Errorf(wire.ErrInvalid, "unknown client event %d", ev.Type)
	}
	return nil
}

func (c *control) streamID(s wire.StreamRef) string {
	for _, si := range c.hub.Streams() {
		if si.Ref.Key() == s.Key() {
			return si.ID
		}
	}
	return ""
}

// notify turns a plugin event (on_hls, on_dvr) into callbacks.
func (c *control) notify(plugin string, n wire.Notification) error {
	if !contains([]string{hooks.OnDvr, hooks.OnHls, hooks.OnHlsNotify}, n.Event) {
		return wire.Errorf(wire.ErrInvalid, "unknown event %q", n.Event)
	}
	s := n.Stream
	if c.hub.Policy().Vhosts[s.Vhost] == nil {
		s.Vhost = hub.DefaultVhost
	}
	// SRS's on_hls and on_dvr run in the publisher's context: its client
	// id and ip, the stream's tcUrl and param. A plugin's writer knows the
	// stream only by name; the hub knows its (last) publisher.
	client, streamID := n.Client, ""
	for _, si := range c.hub.Streams() {
		if si.Ref.Key() != s.Key() {
			continue
		}
		streamID = si.ID
		if si.LastPublisher != nil {
			client = *si.LastPublisher
		}
		if s.TcURL == "" {
			s.TcURL = si.Ref.TcURL
		}
		if s.Param == "" {
			s.Param = si.Ref.Param
		}
		break
	}
	b := body(client, s, streamID)
	keys := make([]string, 0, len(n.Fields))
	for k := range n.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b[k] = typedField(k, n.Fields[k])
	}
	c.caller.Notify(c.vhost(s.Vhost).hooks, n.Event, b)
	if n.Event == hooks.OnHls {
		c.caller.Notify(c.vhost(s.Vhost).hooks, hooks.OnHlsNotify, b)
	}
	c.log.Debug("plugin event", "plugin", plugin, "event", n.Event, "client_id", n.Client.ID, "stream", s.Key())
	return nil
}

// typedField gives SRS's JSON types to the numeric fields of on_hls.
func typedField(k, v string) any {
	switch k {
	case "duration":
		var f float64
		if _, err := fmt.Sscanf(v, "%g", &f); err == nil {
			return f
		}
	case "seq_no":
		var n int64
		if _, err := fmt.Sscanf(v, "%d", &n); err == nil {
			return n
		}
	}
	return v
}
