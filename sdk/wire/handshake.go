package wire

import "github.com/hashicorp/go-plugin"

// Handshake is the go-plugin handshake every Rill plugin and the core share.
// A binary launched without the cookie refuses to run as a plugin; a plugin
// built for another protocol version is refused by the core.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "RILL_PLUGIN_COOKIE",
	MagicCookieValue: "9f1c3a52-rill-media-plugin-v1",
}

// Environment variables the core sets for each plugin process.
const (
	EnvInstance  = "RILL_INSTANCE"   // the core's instance id (names shm segments)
	EnvShmDir    = "RILL_SHM_DIR"    // directory of shm segments
	EnvLogLevel  = "RILL_LOG_LEVEL"  // trace, debug, info, warn, error
	EnvListeners = "RILL_LISTENERS"  // JSON []BoundListener of the inherited sockets
	EnvCorePID   = "RILL_CORE_PID"   // the plugin exits when its core is gone
	EnvServiceID = "RILL_SERVICE_ID" // the core process's service_id, as its callbacks send it
	EnvShmGID    = "RILL_SHM_GID"    // the group rings are shared with (plugins as other users)
	DescribeFlag = "--rill-describe" // prints Info as JSON on stdout and exits
)
