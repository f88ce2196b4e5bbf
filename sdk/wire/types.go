// Package wire is the go-plugin/gRPC glue between the Rill core and its plugins.
//
// It turns the generated protobuf code (private to the SDK) into plain Go types
// on both sides: the core calls a plugin through *PluginClient and serves the
// Host interface; a plugin (through package sdk) implements Plugin and calls
// the core through a Host client. Plugin authors use package sdk, not this one.
package wire

import (
	"time"
)

// APIVersion is the version of the plugin API negotiated at Describe time.
const APIVersion = 1

// PluginKey is the name under which the plugin is dispensed by go-plugin.
const PluginKey = "rill"

// Listener is a socket a plugin wants the core to bind for it.
type Listener struct {
	Name         string   `json:"name"`
	Network      string   `json:"network"` // "tcp" or "udp"
	DefaultAddrs []string `json:"default_addrs"`
}

// Info describes a plugin.
type Info struct {
	Name         string     `json:"name"`
	Version      string     `json:"version"`
	APIVersion   uint32     `json:"api_version"`
	Description  string     `json:"description,omitempty"`
	Capabilities []string   `json:"capabilities,omitempty"`
	Listeners    []Listener `json:"listeners,omitempty"`
	HTTPRoutes   []string   `json:"http_routes,omitempty"`
	VhostBlock   string     `json:"vhost_block,omitempty"`
}

// Block is the vhost block the plugin reads: VhostBlock, or else its name.
func (i Info) Block() string {
	if i.VhostBlock != "" {
		return i.VhostBlock
	}
	return i.Name
}

// VhostConfig is a plugin's view of one vhost.
type VhostConfig struct {
	Name         string
	Enabled      bool
	SettingsJSON []byte // the plugin's block inside the vhost
	VhostJSON    []byte // the vhost's core settings
}

// ConfigRequest carries a plugin's configuration.
type ConfigRequest struct {
	DryRun       bool
	SettingsJSON []byte
	Vhosts       []VhostConfig
	Generation   uint64
}

// ConfigProblem is one invalid setting, located by vhost and key path.
type ConfigProblem struct {
	Vhost   string
	KeyPath []string
	Message string
	// VhostRelative says KeyPath starts at the vhost block (a shared block
	// such as forward or cluster) rather than at the plugin's own block.
	VhostRelative bool
}

// BoundListener is a socket the core bound and passed to the plugin process.
type BoundListener struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Addr    string `json:"addr"`
	FDIndex uint32 `json:"fd_index"` // fd = 3 + FDIndex in the plugin process
}

// StartRequest is what a plugin gets when it starts.
type StartRequest struct {
	InstanceID string
	ShmDir     string
	ServerID   string
	Listeners  []BoundListener
}

// StreamRef names a stream: vhost/app/stream plus the publisher's or player's parameters.
type StreamRef struct {
	Vhost  string `json:"vhost"`
	App    string `json:"app"`
	Stream string `json:"stream"`
	Param  string `json:"param,omitempty"`
	TcURL  string `json:"tcUrl,omitempty"`
}

// Key is the hub key of the stream: vhost/app/stream.
func (s StreamRef) Key() string { return s.Vhost + "/" + s.App + "/" + s.Stream }

// ClientInfo identifies one connection of a plugin.
type ClientInfo struct {
	ID      string `json:"id"`
	IP      string `json:"ip"`
	Type    string `json:"type"`
	PageURL string `json:"pageUrl,omitempty"`
	SwfURL  string `json:"swfUrl,omitempty"`
	Plugin  string `json:"plugin,omitempty"`
}

// StreamEventType says what happened to a stream.
type StreamEventType int

// Stream event types.
const (
	StreamPublished StreamEventType = iota + 1
	StreamUnpublished
	// StreamWanted: a player waits for a stream nobody publishes (sent to
	// plugins with the CapOnDemandSource capability enabled in the vhost).
	StreamWanted
	// StreamUnwanted: the last player of a stream left.
	StreamUnwanted
)

// CapOnDemandSource is the capability of a plugin that can produce a stream
// when a player wants it (an edge pulling from its origin, an ingest).
const CapOnDemandSource = "on-demand-source"

// CapVhostOptIn is the capability of a plugin that serves a vhost only when
// the vhost has its block (like SRS's hls and dvr sections); other plugins
// serve every vhost unless the vhost's block says enabled = false.
const CapVhostOptIn = "vhost-opt-in"

// CapOwnEnabled is the capability of a plugin that reads the enabled key of
// its vhost block itself (the httpstream plugin: enabled switches HLS files, not
// HTTP-FLV); the core then never disables the plugin for that vhost.
const CapOwnEnabled = "vhost-own-enabled"

// StreamEvent tells a plugin that a stream of one of its vhosts changed.
type StreamEvent struct {
	Type      StreamEventType
	Stream    StreamRef
	StreamID  string
	Ring      string
	Publisher ClientInfo // the publishing client (published, unpublished)
}

// ClientStat is one client as a plugin reports it.
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

// HTTPRequest is a request to a plugin-provided API route.
type HTTPRequest struct {
	Method     string
	Path       string
	RawQuery   string
	Header     map[string][]string
	Body       []byte
	RemoteAddr string
}

// HTTPResponse is a plugin's answer to an HTTPRequest.
type HTTPResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
}

// PublishRequest asks the core to claim a stream for a publisher.
type PublishRequest struct {
	Client ClientInfo
	Stream StreamRef
}

// Publication is the core's answer to a publish: the ring to write.
type Publication struct {
	Ring          string
	StreamID      string
	PublicationID string
}

// SubscribeRequest asks the core for a stream's ring.
type SubscribeRequest struct {
	Client   ClientInfo
	Stream   StreamRef
	Wait     time.Duration
	Internal bool
}

// Subscription is the core's answer to a subscribe: the ring to read.
type Subscription struct {
	Ring           string
	StreamID       string
	SubscriptionID string
	GopCache       bool
	Vhost          string // the vhost the stream resolved to
}

// ClientEventType says whether a client connected or closed.
type ClientEventType int

// Client event types.
const (
	ClientConnect ClientEventType = iota + 1
	ClientClose
	ClientPlay
	ClientStop
)

// ClientEvent reports a client connecting or closing.
type ClientEvent struct {
	Type      ClientEventType
	Client    ClientInfo
	Stream    StreamRef
	SendBytes uint64
	RecvBytes uint64
}

// Notification is a plugin event the core turns into callbacks (on_hls, on_dvr, ...).
type Notification struct {
	Event  string
	Client ClientInfo
	Stream StreamRef
	Fields map[string]string
}
