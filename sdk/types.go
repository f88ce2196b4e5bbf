package sdk

import (
	"time"

	"github.com/rill-media/rill/sdk/wire"
)

// The SDK's own public types. They mirror the wire protocol's (package
// sdk/wire, which third parties need not read) field for field and are
// converted at the process boundary, so the protocol can change without
// changing a plugin's source, and a plugin's godoc is the SDK's alone.

// Listener is a socket the plugin wants; the core binds it (so the port
// survives plugin restarts) and passes the descriptor at launch.
type Listener struct {
	Name         string   `json:"name"`
	Network      string   `json:"network"` // "tcp" or "udp"
	DefaultAddrs []string `json:"default_addrs"`
}

// StreamRef names a stream: vhost/app/stream plus the client's parameters.
type StreamRef struct {
	Vhost  string `json:"vhost"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	Param  string `json:"param,omitempty"` // the query string, "?k=v..." as the client sent it
	TcURL  string `json:"tcUrl,omitempty"`
}

// Key is the hub key of the stream: vhost/app/stream.
func (s StreamRef) Key() string { return s.Vhost + "/" + s.App + "/" + s.Stream }

// ClientInfo identifies a connection. ID is the client id shown by the API,
// the callbacks and every log line about the connection; Type is SRS's
// client type (rtmp-play, flv-play, fmle-publish, srt-publish, ...).
type ClientInfo struct {
	ID      string `json:"id"`
	IP      string `json:"ip"`
	Type    string `json:"type"`
	PageURL string `json:"pageUrl,omitempty"`
	SwfURL  string `json:"swfUrl,omitempty"`
	Plugin  string `json:"plugin,omitempty"` // filled by the SDK and the core
}

// StreamEventType says what happened to a stream.
type StreamEventType int

// Stream event types.
const (
	StreamPublished StreamEventType = iota + 1
	StreamUnpublished
	// StreamWanted: a player waits for a stream nobody publishes. Only
	// plugins with CapOnDemandSource get it (an edge starts pulling).
	StreamWanted
	// StreamUnwanted: the last player of the stream left (stop pulling).
	StreamUnwanted
)

// StreamEvent tells a plugin that a stream of one of its vhosts was
// published or unpublished (or is wanted or no longer wanted).
type StreamEvent struct {
	Type      StreamEventType
	Stream    StreamRef
	StreamID  string
	Ring      string
	Publisher ClientInfo // the publishing client (published, unpublished)
}

// ClientStat is one client as the plugin reports it to the core.
type ClientStat struct {
	Client    ClientInfo
	Stream    StreamRef
	Publish   bool
	Alive     time.Duration
	SendBytes uint64
	RecvBytes uint64
	URL       string
}

// Stats is a plugin's report of its clients and counters.
type Stats struct {
	Clients  []ClientStat
	Counters map[string]uint64
}

func (s StreamRef) wire() wire.StreamRef {
	return wire.StreamRef{Vhost: s.Vhost, App: s.App, Stream: s.Stream, Param: s.Param, TcURL: s.TcURL}
}

func refFromWire(s wire.StreamRef) StreamRef {
	return StreamRef{Vhost: s.Vhost, App: s.App, Stream: s.Stream, Param: s.Param, TcURL: s.TcURL}
}

func (c ClientInfo) wire() wire.ClientInfo {
	return wire.ClientInfo{ID: c.ID, IP: c.IP, Type: c.Type, PageURL: c.PageURL, SwfURL: c.SwfURL, Plugin: c.Plugin}
}

func clientFromWire(c wire.ClientInfo) ClientInfo {
	return ClientInfo{ID: c.ID, IP: c.IP, Type: c.Type, PageURL: c.PageURL, SwfURL: c.SwfURL, Plugin: c.Plugin}
}

func eventFromWire(ev wire.StreamEvent) StreamEvent {
	return StreamEvent{
		Type: StreamEventType(ev.Type), Stream: refFromWire(ev.Stream), StreamID: ev.StreamID,
		Ring: ev.Ring, Publisher: clientFromWire(ev.Publisher),
	}
}

func (s Stats) wire() wire.Stats {
	out := wire.Stats{Counters: s.Counters}
	for _, c := range s.Clients {
		out.Clients = append(out.Clients, wire.ClientStat{
			Client: c.Client.wire(), Stream: c.Stream.wire(), Publish: c.Publish, Alive: c.Alive,
			SendBytes: c.SendBytes, RecvBytes: c.RecvBytes, URL: c.URL,
		})
	}
	return out
}

func listenersWire(ls []Listener) []wire.Listener {
	var out []wire.Listener
	for _, l := range ls {
		out = append(out, wire.Listener{Name: l.Name, Network: l.Network, DefaultAddrs: l.DefaultAddrs})
	}
	return out
}
