package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rill-media/rill/sdk/wire"
)

// Runtime is what a started plugin gets from the core.
type Runtime struct {
	// Host publishes and subscribes streams.
	Host *Host
	// Logger writes to the core's log under the plugin's name. Use
	// Logger.With("client_id", id, "remote_addr", addr) per connection.
	Logger     hclog.Logger
	ServerID   string
	InstanceID string
	// ServiceID is the core process's service_id, as its SRS callbacks
	// send it (for a plugin that calls an HTTP backend itself).
	ServiceID string

	listeners   map[string][]net.Listener
	packetConns map[string][]net.PacketConn
}

// Listeners returns the stream listeners the core bound for the named
// Info.Listeners entry (one per configured address). The core keeps the
// sockets open across plugin restarts: never close them to "free a port".
func (rt *Runtime) Listeners(name string) []net.Listener { return rt.listeners[name] }

// PacketConns returns the datagram sockets bound for the named listener.
func (rt *Runtime) PacketConns(name string) []net.PacketConn { return rt.packetConns[name] }

// Serve runs p as a Rill plugin process. It blocks until the core ends the
// plugin, then exits the process. Call it from main:
//
//	func main() { sdk.Serve(&myplugin.Server{}) }
func Serve(p Plugin) {
	info := p.Info()
	if len(os.Args) > 1 && os.Args[1] == wire.DescribeFlag {
		_ = json.NewEncoder(os.Stdout).Encode(toWireInfo(info))
		os.Exit(0)
	}
	level := hclog.LevelFromString(os.Getenv(wire.EnvLogLevel))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	logger := newDurationLogger(hclog.New(&hclog.LoggerOptions{
		Name:       info.Name,
		Level:      level,
		Output:     os.Stderr, // stdout carries the go-plugin handshake
		JSONFormat: true,
	}))
	go watchCore(logger)
	a := &adapter{p: p, info: info, log: logger}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         plugin.PluginSet{wire.PluginKey: &wire.GRPCPlugin{Impl: a}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
	a.shutdown(context.Background())
	os.Exit(0)
}

// watchCore ends the process when the core that launched it is gone (the
// core also sets PDEATHSIG; this covers the cases where that doesn't fire).
func watchCore(log hclog.Logger) {
	pid, err := strconv.Atoi(os.Getenv(wire.EnvCorePID))
	if err != nil || pid <= 1 {
		return
	}
	for {
		time.Sleep(500 * time.Millisecond)
		if os.Getppid() != pid {
			log.Error("core process is gone, exiting", "core_pid", pid)
			os.Exit(3)
		}
	}
}

func toWireInfo(info Info) wire.Info {
	return wire.Info{
		Name: info.Name, Version: info.Version, APIVersion: APIVersion, Description: info.Description,
		Capabilities: info.Capabilities, Listeners: listenersWire(info.Listeners), HTTPRoutes: info.HTTPRoutes,
		VhostBlock: info.VhostBlock,
	}
}

// NewWirePlugin adapts p to the wire.Plugin that Serve exposes over gRPC,
// logging to log. It is for test harnesses (see sdk/sdktest); plugins call
// Serve.
func NewWirePlugin(p Plugin, log hclog.Logger) wire.Plugin {
	return &adapter{p: p, info: p.Info(), log: log}
}

// adapter turns a plugin author's Plugin into the wire.Plugin the gRPC
// server calls.
type adapter struct {
	p    Plugin
	info Info
	log  hclog.Logger

	mu      sync.Mutex
	host    *Host
	started bool
	stopped bool
}

var _ wire.Plugin = (*adapter)(nil)

func (a *adapter) Describe(context.Context) (wire.Info, error) { return toWireInfo(a.info), nil }

func (a *adapter) Configure(ctx context.Context, req wire.ConfigRequest) ([]wire.ConfigProblem, error) {
	cfg := Config{DryRun: req.DryRun, Generation: req.Generation, Settings: req.SettingsJSON}
	var shared []error
	for _, v := range req.Vhosts {
		vc := VhostConfig{Name: v.Name, Enabled: v.Enabled, Settings: v.SettingsJSON, Vhost: VhostSettings{GopCache: true}}
		if len(v.VhostJSON) > 0 {
			if err := json.Unmarshal(v.VhostJSON, &vc.Vhost); err != nil {
				return nil, fmt.Errorf("vhost %q core settings: %w", v.Name, err)
			}
		}
		if err := vc.ResolveShared(); err != nil {
			shared = append(shared, err)
		}
		cfg.Vhosts = append(cfg.Vhosts, vc)
	}
	if len(shared) > 0 && !req.DryRun {
		// A plugin is never configured with blocks that do not decode; a
		// dry run also reports the plugin's own problems.
		return problemsOf(errors.Join(shared...)), nil
	}
	c, ok := a.p.(Configurer)
	if !ok {
		return problemsOf(errors.Join(append(shared, rejectSettings(cfg))...)), nil
	}
	return problemsOf(errors.Join(append(shared, c.Configure(ctx, cfg))...)), nil
}

// rejectSettings reports keys given to a plugin that takes no configuration.
func rejectSettings(cfg Config) error {
	var errs []error
	var empty struct{}
	if err := cfg.DecodeSettings(&empty); err != nil {
		errs = append(errs, err)
	}
	for _, v := range cfg.Vhosts {
		var m map[string]any
		if err := json.Unmarshal(v.Settings, &m); err == nil {
			delete(m, "enabled")
			for k := range m {
				errs = append(errs, &ConfigError{Vhost: v.Name, Key: []string{k}, Msg: "unknown key"})
			}
		}
	}
	return errors.Join(errs...)
}

func problemsOf(err error) []wire.ConfigProblem {
	if err == nil {
		return nil
	}
	var out []wire.ConfigProblem
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *ConfigError
		if errors.As(err, &ce) {
			out = append(out, wire.ConfigProblem{Vhost: ce.Vhost, KeyPath: ce.Key, Message: ce.Msg, VhostRelative: ce.VhostRelative})
			return
		}
		out = append(out, wire.ConfigProblem{Message: err.Error()})
	}
	walk(err)
	return out
}

func (a *adapter) Start(ctx context.Context, req wire.StartRequest, host wire.Host) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return fmt.Errorf("%w: plugin already started", wire.ErrInvalid)
	}
	rt := &Runtime{
		Logger:      a.log,
		ServerID:    req.ServerID,
		InstanceID:  req.InstanceID,
		ServiceID:   os.Getenv(wire.EnvServiceID),
		listeners:   map[string][]net.Listener{},
		packetConns: map[string][]net.PacketConn{},
	}
	for _, l := range req.Listeners {
		f := os.NewFile(uintptr(3+l.FDIndex), l.Name+":"+l.Addr)
		if f == nil {
			return fmt.Errorf("listener %s %s: no inherited descriptor %d", l.Name, l.Addr, 3+l.FDIndex)
		}
		switch l.Network {
		case "udp":
			pc, err := net.FilePacketConn(f)
			if err != nil {
				return fmt.Errorf("listener %s %s: %w", l.Name, l.Addr, err)
			}
			rt.packetConns[l.Name] = append(rt.packetConns[l.Name], pc)
		default:
			ln, err := net.FileListener(f)
			if err != nil {
				return fmt.Errorf("listener %s %s: %w", l.Name, l.Addr, err)
			}
			rt.listeners[l.Name] = append(rt.listeners[l.Name], ln)
		}
		_ = f.Close() // FileListener/FilePacketConn hold their own dup
	}
	a.host = newHost(host, a.info.Name, req.ShmDir, req.InstanceID, a.log)
	rt.Host = a.host
	if s, ok := a.p.(Starter); ok {
		if err := s.Start(ctx, rt); err != nil {
			return err
		}
	}
	a.started = true
	return nil
}

func (a *adapter) Stop(ctx context.Context, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return a.shutdown(ctx)
}

func (a *adapter) shutdown(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || !a.started {
		a.stopped = true
		return nil
	}
	a.stopped = true
	var err error
	if s, ok := a.p.(Stopper); ok {
		err = s.Stop(ctx)
	}
	if a.host != nil {
		a.host.close()
	}
	return err
}

func (a *adapter) StreamEvent(ctx context.Context, ev wire.StreamEvent) error {
	if w, ok := a.p.(StreamWatcher); ok {
		w.StreamEvent(ctx, eventFromWire(ev))
	}
	return nil
}

func (a *adapter) Kick(ctx context.Context, clientID string) (bool, error) {
	if k, ok := a.p.(Kicker); ok {
		return k.Kick(ctx, clientID), nil
	}
	return false, nil
}

// maxHTTPBody bounds the body of a plugin-provided API route.
const maxHTTPBody = 1 << 20

func (a *adapter) ServeHTTP(ctx context.Context, req wire.HTTPRequest) (wire.HTTPResponse, error) {
	h, ok := a.p.(http.Handler)
	if !ok {
		return wire.HTTPResponse{Status: http.StatusNotFound, Body: []byte("plugin serves no HTTP routes\n")}, nil
	}
	u := req.Path
	if req.RawQuery != "" {
		u += "?" + req.RawQuery
	}
	r, err := http.NewRequestWithContext(ctx, req.Method, u, bytes.NewReader(req.Body))
	if err != nil {
		return wire.HTTPResponse{}, fmt.Errorf("%w: %v", wire.ErrInvalid, err)
	}
	r.Header = http.Header(req.Header)
	r.RemoteAddr = req.RemoteAddr
	r.Body = http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(req.Body)), maxHTTPBody)
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return wire.HTTPResponse{Status: rec.status, Header: rec.header, Body: rec.body.Bytes()}, nil
}

func (a *adapter) Stats(ctx context.Context) (wire.Stats, error) {
	if s, ok := a.p.(StatsReporter); ok {
		return s.Stats(ctx).wire(), nil
	}
	return wire.Stats{}, nil
}

// recorder is a minimal http.ResponseWriter that buffers the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) > maxHTTPBody {
		return 0, errors.New("response too large")
	}
	return r.body.Write(b)
}
