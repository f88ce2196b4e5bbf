// Package sdk is what a Rill plugin imports: Serve, the Plugin interfaces,
// and the Host through which a plugin publishes and plays streams.
//
// # A plugin in five minutes
//
// docs/plugins.md in the repository is the tutorial, around a complete
// out-of-tree example (examples/streamstats, its own module).
//
// A plugin is an executable in the core's plugin directory whose file name
// is its name. Its main hands an implementation to Serve:
//
//	package main
//
//	import "github.com/rill-media/rill/sdk"
//
//	type hello struct{ rt *sdk.Runtime }
//
//	func (h *hello) Info() sdk.Info {
//		return sdk.Info{
//			Name:      "hello", // = binary name = config block name
//			Version:   "1.0.0",
//			Listeners: []sdk.Listener{{Name: "hello", Network: "tcp", DefaultAddrs: []string{"0.0.0.0:7000"}}},
//		}
//	}
//
//	func (h *hello) Start(ctx context.Context, rt *sdk.Runtime) error {
//		h.rt = rt
//		for _, ln := range rt.Listeners("hello") {
//			go h.accept(ln) // the core bound it; it survives our restarts
//		}
//		return nil
//	}
//
//	func main() { sdk.Serve(&hello{}) }
//
// The operator enables it with a block in conf.hcl:
//
//	plugin "hello" { listen = ["0.0.0.0:7000"]  greeting = "hi" }
//	vhost "__defaultVhost__" { hello { enabled = true } }
//
// Keys other than listen, enabled, path and env reach Configure as
// Config.Settings; the plugin's block in each vhost reaches it as
// VhostConfig.Settings. Decode them with DecodeSettings/Decode, which reject
// unknown keys, and return *ConfigError so the operator sees file:line:key.
//
// # Lifecycle
//
// The core runs "plugin --rill-describe" to learn Info (the sockets to bind),
// binds the listeners, launches the process through hashicorp/go-plugin,
// calls Configure with DryRun for every plugin (all or nothing), then
// Configure and Start. A crashed plugin is relaunched with backoff and gets
// the same sockets; Stop is called before a clean shutdown. Optional
// interfaces: Configurer, Starter, Stopper, StreamWatcher, Kicker,
// StatsReporter, and http.Handler for Info.HTTPRoutes on the API port.
//
// # Media
//
// Media never crosses gRPC. Host.Publish answers with a shared-memory ring
// that the Publication writes; Host.Subscribe answers with the same ring,
// which the Subscription reads at its own pace (a slow reader skips ahead
// to a keyframe and never slows the writer). Subscribe once per stream per
// process and fan the packets out to your own clients. Packets are
// media.Packet values: length-prefixed NAL units for video, raw frames for
// audio, decoder configuration records flagged FlagConfig. (Rill's own
// plugins convert them to and from RTMP/FLV tags with the module's
// internal/flv package, which is not part of the SDK.)
//
// # Logging and client ids
//
// Log through Runtime.Logger (go-hclog; never write to stdout, which carries
// the go-plugin handshake). Give each connection an id from NewClientID and
// a logger from Logger.With("client_id", id, "remote_addr", addr): the same
// id goes to Host calls, so the API, callbacks and logs agree.
package sdk
