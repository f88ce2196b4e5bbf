package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rill-media/rill/sdk/wire"
)

// Spec is what the core wants of one plugin.
type Spec struct {
	Name string
	Path string
	// Listen are the addresses of the plugin's listeners, by listener name;
	// a listener without an entry gets the plugin's default addresses.
	Listen   map[string][]string
	Env      map[string]string
	Settings json.RawMessage
	Vhosts   []wire.VhostConfig
	// Info is the plugin's self-description (from Describe).
	Info wire.Info
	// SHA256 (hex) pins the binary; each launch checks it. Empty: not pinned.
	SHA256 string
	// RunAs is the user and rlimits of the process (zero: the core's).
	RunAs RunAs
}

// Options configures a Host.
type Options struct {
	InstanceID string
	ShmDir     string
	ServerID   string
	// ServiceID is the core process's id in SRS callbacks (service_id);
	// plugins that call an HTTP backend themselves send the same.
	ServiceID string
	// ShareShm says rings are shared with group ShmGID (plugins run as
	// other users); plugins make their doorbells that group's too.
	ShareShm bool
	ShmGID   int
	LogLevel string
	Logger   hclog.Logger
	// HostFor returns the Host service the named plugin calls.
	HostFor func(plugin string) wire.Host
	// Exited is called after a plugin process ended (crash or stop).
	Exited func(plugin string, pid int)
	// Started is called after a plugin (re)started and can take events.
	Started func(plugin string)
	// HealthInterval is how often a plugin is pinged (default 2s).
	HealthInterval time.Duration
}

// State of a plugin process.
type State string

// Plugin states as the API shows them.
const (
	StateStarting   State = "starting"
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateStopped    State = "stopped"
)

// Status is a snapshot of one plugin for the API.
type Status struct {
	Name      string       `json:"name"`
	Version   string       `json:"version"`
	Path      string       `json:"path"`
	PID       int          `json:"pid"`
	State     State        `json:"state"`
	Restarts  int          `json:"restarts"`
	Since     time.Time    `json:"since"`
	LastError string       `json:"last_error,omitempty"`
	Listeners []ListenAddr `json:"listeners"`
	// Failures counts the launches in a row that ended within 30 s of
	// their start (or failed outright); CrashLoop is Failures >= 3.
	Failures  int  `json:"failures"`
	CrashLoop bool `json:"crash_loop"`
	// BackoffMS is how long the core waits before its next launch attempt
	// (0 while running); NextRestart is when that attempt is due.
	BackoffMS   int64      `json:"backoff_ms"`
	NextRestart *time.Time `json:"next_restart,omitempty"`
}

// crashLoopAfter failures in a row make a plugin "in a crash loop"; a
// process that ends within quickDeath of its start counts as a failure.
const (
	crashLoopAfter = 3
	quickDeath     = 30 * time.Second
)

// ListenAddr is a socket bound for a plugin.
type ListenAddr struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Addr    string `json:"addr"`
}

// Host supervises the plugin processes.
type Host struct {
	opts Options
	log  hclog.Logger

	mu    sync.Mutex
	procs map[string]*proc
	gen   uint64
}

// New returns a Host with no plugins.
func New(opts Options) *Host {
	if opts.HealthInterval <= 0 {
		opts.HealthInterval = 2 * time.Second
	}
	return &Host{opts: opts, log: opts.Logger, procs: map[string]*proc{}}
}

// proc is one supervised plugin.
type proc struct {
	h     *Host
	spec  Spec
	bound []*bound
	log   hclog.Logger

	mu        sync.Mutex
	client    *plugin.Client
	rpc       *wire.PluginClient
	pid       int
	state     State
	restarts  int
	since     time.Time
	lastError string
	failures  int           // quick deaths or failed launches in a row
	backoff   time.Duration // delay before the next launch, 0 while running
	nextTry   time.Time

	events chan eventItem
	cancel context.CancelFunc
	done   chan struct{}
}

// Problem is a configuration problem a plugin reported, with its location.
type Problem struct {
	Plugin string
	wire.ConfigProblem
}

// ProblemsError carries every problem the plugins found in a configuration.
type ProblemsError struct{ Problems []Problem }

func (e *ProblemsError) Error() string {
	msg := "plugins rejected the configuration:"
	for _, p := range e.Problems {
		msg += fmt.Sprintf("\n  plugin %s: vhost %q key %v: %s", p.Plugin, p.Vhost, p.KeyPath, p.Message)
	}
	return msg
}

// Start binds every plugin's sockets, launches the plugins, validates the
// whole configuration with all of them (all or nothing: on any problem
// nothing is started and every process is stopped), then configures and
// starts them and supervises them until Stop.
func (h *Host) Start(ctx context.Context, specs []Spec) error {
	gen := h.nextGen()
	var procs []*proc
	fail := func(err error) error {
		for _, p := range procs {
			p.kill()
			_ = closeAll(p.bound)
		}
		return err
	}
	for _, s := range specs {
		p := h.newProc(s)
		procs = append(procs, p)
		if err := p.bindAll(); err != nil {
			return fail(err)
		}
		if err := p.launch(ctx); err != nil {
			return fail(fmt.Errorf("plugin %s: %w", s.Name, err))
		}
	}
	if err := errors.Join(check(ctx, procs, gen)...); err != nil {
		return fail(err)
	}
	for _, p := range procs {
		if err := p.configureAndStart(ctx, gen); err != nil {
			return fail(fmt.Errorf("plugin %s: %w", p.spec.Name, err))
		}
	}
	h.mu.Lock()
	for _, p := range procs {
		h.procs[p.spec.Name] = p
		sctx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		go p.supervise(sctx)
		go p.deliver(sctx)
	}
	h.mu.Unlock()
	for _, p := range procs {
		if h.opts.Started != nil {
			h.opts.Started(p.spec.Name)
		}
	}
	return nil
}

// Validate does what Start does before it starts anything, and no more:
// it launches every plugin, has each check the whole configuration with a
// dry run, and stops them again (what `rill -t` runs). The sockets are not
// bound, so a check does not need the ports of a daemon already serving
// them; a plugin cannot tell, since it gets its sockets only at Start.
// Unlike Start it goes on past a plugin that fails to launch, so that
// every problem is reported: the result joins a *ProblemsError with every
// configuration problem and the error of each plugin that could not run.
func (h *Host) Validate(ctx context.Context, specs []Spec) error {
	gen := h.nextGen()
	var procs []*proc
	var errs []error
	for _, s := range specs {
		p := h.newProc(s)
		if err := p.launch(ctx); err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: %w", s.Name, err))
			continue
		}
		procs = append(procs, p)
	}
	errs = append(errs, check(ctx, procs, gen)...)
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.kill()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// check has every launched plugin validate its configuration with a dry
// run. It returns one *ProblemsError with every problem reported, and the
// error of each plugin that could not be asked.
func check(ctx context.Context, procs []*proc, gen uint64) []error {
	var errs []error
	var problems []Problem
	for _, p := range procs {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		ps, err := p.rpc.Configure(cctx, p.configReq(true, gen))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: validate config: %w", p.spec.Name, err))
			continue
		}
		for _, pr := range ps {
			problems = append(problems, Problem{Plugin: p.spec.Name, ConfigProblem: pr})
		}
	}
	if len(problems) > 0 {
		errs = append([]error{&ProblemsError{Problems: problems}}, errs...)
	}
	return errs
}

func (h *Host) nextGen() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	return h.gen
}

func (h *Host) newProc(s Spec) *proc {
	return &proc{h: h, spec: s, log: h.log.Named(s.Name), state: StateStarting, since: time.Now(), events: make(chan eventItem, 4096), done: make(chan struct{})}
}

func (p *proc) bindAll() error {
	for _, l := range p.spec.Info.Listeners {
		addrs, ok := p.spec.Listen[l.Name]
		if !ok {
			addrs = l.DefaultAddrs
		}
		for _, a := range addrs {
			b, err := bind(l.Name, a, l.Network)
			if err != nil {
				return fmt.Errorf("plugin %s: %w", p.spec.Name, err)
			}
			p.bound = append(p.bound, b)
		}
	}
	return nil
}

// eventItem is a queued stream event.
type eventItem = wire.StreamEvent

// wireConfigRequest is the Configure request type.
type wireConfigRequest = wire.ConfigRequest

func (p *proc) configReq(dry bool, gen uint64) wire.ConfigRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ConfigRequestFor(p.spec, dry, gen)
}

// launch starts the process and completes the go-plugin handshake.
func (p *proc) launch(ctx context.Context) error {
	// A pinned binary is checked at every launch: a restart after the file
	// was replaced by another build is refused, not run.
	if err := VerifyBinary(p.spec.Path, p.spec.SHA256); err != nil {
		return err
	}
	cmd := exec.Command(p.spec.Path)
	var listeners []wire.BoundListener
	for i, b := range p.bound {
		cmd.ExtraFiles = append(cmd.ExtraFiles, b.file)
		listeners = append(listeners, wire.BoundListener{Name: b.name, Network: b.network, Addr: b.addr, FDIndex: uint32(i)})
	}
	lj, _ := json.Marshal(listeners)
	cmd.Env = append(os.Environ(),
		wire.EnvInstance+"="+p.h.opts.InstanceID,
		wire.EnvShmDir+"="+p.h.opts.ShmDir,
		wire.EnvLogLevel+"="+p.h.opts.LogLevel,
		wire.EnvListeners+"="+string(lj),
		wire.EnvCorePID+"="+strconv.Itoa(os.Getpid()),
		wire.EnvServiceID+"="+p.h.opts.ServiceID,
	)
	for k, v := range p.spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Own process group (a Ctrl-C on the terminal reaches the core, which
	// stops plugins in order) and death with the core.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.h.opts.ShareShm {
		cmd.Env = append(cmd.Env, wire.EnvShmGID+"="+strconv.Itoa(p.h.opts.ShmGID))
	}
	if err := p.spec.RunAs.apply(cmd); err != nil {
		return err
	}
	var sockets *plugin.UnixSocketConfig
	if c := p.spec.RunAs.Cred; c != nil {
		// The sockets between core and plugin (the Host service's through
		// the broker too) must be the plugin user's group's.
		gid := int(c.Gid)
		if p.h.opts.ShareShm {
			gid = p.h.opts.ShmGID
		}
		sockets = &plugin.UnixSocketConfig{Group: strconv.Itoa(gid)}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		Plugins:          plugin.PluginSet{wire.PluginKey: &wire.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           newPluginLogger(p.log),
		StartTimeout:     15 * time.Second,
		UnixSocketConfig: sockets,
	})
	cp, err := client.Client()
	if err != nil {
		client.Kill()
		return fmt.Errorf("launch %s: %w", p.spec.Path, err)
	}
	raw, err := cp.Dispense(wire.PluginKey)
	if err != nil {
		client.Kill()
		return fmt.Errorf("dispense: %w", err)
	}
	rpc := raw.(*wire.PluginClient)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := rpc.Describe(dctx)
	if err != nil {
		client.Kill()
		return fmt.Errorf("describe: %w", err)
	}
	if info.Name != p.spec.Name || info.APIVersion != wire.APIVersion {
		client.Kill()
		return fmt.Errorf("plugin at %s says it is %q API v%d, want %q API v%d", p.spec.Path, info.Name, info.APIVersion, p.spec.Name, wire.APIVersion)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil && rc.Pid > 0 {
		pid = rc.Pid
	}
	p.mu.Lock()
	p.client, p.rpc, p.pid = client, rpc, pid
	p.spec.Info.Version = info.Version
	p.mu.Unlock()
	p.log.Info("plugin launched", "pid", pid, "version", info.Version, "path", p.spec.Path)
	return nil
}

func (p *proc) configureAndStart(ctx context.Context, gen uint64) error {
	p.mu.Lock()
	rpc := p.rpc
	p.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	problems, err := rpc.Configure(cctx, p.configReq(false, gen))
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	if len(problems) > 0 {
		var ps []Problem
		for _, pr := range problems {
			ps = append(ps, Problem{Plugin: p.spec.Name, ConfigProblem: pr})
		}
		return &ProblemsError{Problems: ps}
	}
	var listeners []wire.BoundListener
	for i, b := range p.bound {
		listeners = append(listeners, wire.BoundListener{Name: b.name, Network: b.network, Addr: b.addr, FDIndex: uint32(i)})
	}
	err = rpc.Start(cctx, wire.StartRequest{
		InstanceID: p.h.opts.InstanceID, ShmDir: p.h.opts.ShmDir, ServerID: p.h.opts.ServerID, Listeners: listeners,
	}, p.h.opts.HostFor(p.spec.Name))
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	p.mu.Lock()
	p.state, p.since, p.lastError = StateRunning, time.Now(), ""
	p.mu.Unlock()
	return nil
}

// supervise watches the process and restarts it with backoff when it dies
// or stops answering health checks.
func (p *proc) supervise(ctx context.Context) {
	defer close(p.done)
	backoff := 250 * time.Millisecond
	for {
		reason := p.watch(ctx)
		pid := p.currentPID()
		p.kill()
		if p.h.opts.Exited != nil {
			p.h.opts.Exited(p.spec.Name, pid)
		}
		if ctx.Err() != nil {
			p.setState(StateStopped, "")
			return
		}
		p.mu.Lock()
		ranFor := time.Since(p.since)
		p.mu.Unlock()
		if ranFor > quickDeath {
			backoff = 250 * time.Millisecond
			p.setFailures(0)
		} else {
			p.setFailures(-1)
		}
		p.log.Error("plugin process ended, restarting", "pid", pid, "reason", reason, "backoff", backoff)
		p.setState(StateRestarting, reason)
		for {
			p.waiting(backoff)
			select {
			case <-ctx.Done():
				p.setState(StateStopped, "")
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
			p.mu.Lock()
			p.restarts++
			p.mu.Unlock()
			err := p.launch(ctx)
			if err == nil {
				p.h.mu.Lock()
				gen := p.h.gen
				p.h.mu.Unlock()
				if err = p.configureAndStart(ctx, gen); err != nil {
					p.kill()
				}
			}
			if err == nil {
				p.waiting(0)
				p.log.Info("plugin restarted", "pid", p.currentPID(), "restarts", p.restartCount())
				if p.h.opts.Started != nil {
					p.h.opts.Started(p.spec.Name)
				}
				break
			}
			if ctx.Err() != nil {
				p.setState(StateStopped, "")
				return
			}
			p.log.Error("plugin restart failed", "error", err, "backoff", backoff)
			p.setState(StateRestarting, err.Error())
			p.setFailures(-1)
		}
	}
}

// watch returns why the running process must be replaced, or "" when ctx ended.
func (p *proc) watch(ctx context.Context) string {
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	lastPing := time.Now()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-poll.C:
		}
		p.mu.Lock()
		client := p.client
		p.mu.Unlock()
		if client == nil || client.Exited() {
			return "process exited"
		}
		if time.Since(lastPing) < p.h.opts.HealthInterval {
			continue
		}
		lastPing = time.Now()
		if err := ping(client); err != nil {
			fails++
			p.log.Warn("plugin health check failed", "error", err, "failures", fails)
			if fails >= 3 {
				return "health check failed 3 times: " + err.Error()
			}
		} else {
			fails = 0
		}
	}
}

func ping(c *plugin.Client) error {
	cp, err := c.Client()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cp.Ping() }()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		return errors.New("ping timed out after 2s")
	}
}

// deliver sends stream events to the plugin in order, one at a time.
func (p *proc) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-p.events:
			p.mu.Lock()
			rpc, state := p.rpc, p.state
			p.mu.Unlock()
			if rpc == nil || state != StateRunning {
				continue // a restarted plugin gets the live streams replayed
			}
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := rpc.StreamEvent(ectx, ev); err != nil {
				p.log.Warn("stream event not delivered", "stream", ev.Stream.Key(), "error", err)
			}
			cancel()
		}
	}
}

func (p *proc) kill() {
	p.mu.Lock()
	client := p.client
	p.client, p.rpc = nil, nil
	p.mu.Unlock()
	if client != nil {
		client.Kill()
	}
}

func (p *proc) setState(s State, lastErr string) {
	p.mu.Lock()
	p.state, p.since = s, time.Now()
	if lastErr != "" {
		p.lastError = lastErr
	}
	p.mu.Unlock()
}

func (p *proc) currentPID() int { p.mu.Lock(); defer p.mu.Unlock(); return p.pid }

// waiting records the delay before the next launch (0: none due) and, for
// a delay, counts one more failure in a row.
func (p *proc) waiting(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.backoff = d
	if d == 0 {
		p.nextTry = time.Time{}
		return
	}
	p.nextTry = time.Now().Add(d)
}

// setFailures sets the failures in a row; -1 adds one.
func (p *proc) setFailures(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n < 0 {
		p.failures++
	} else {
		p.failures = n
	}
}

func (p *proc) restartCount() int { p.mu.Lock(); defer p.mu.Unlock(); return p.restarts }

// Send queues a stream event for plugin name (dropped with a warning when
// its queue is full).
func (h *Host) Send(name string, ev wire.StreamEvent) {
	h.mu.Lock()
	p := h.procs[name]
	h.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case p.events <- ev:
	default:
		p.log.Warn("stream event queue full, event dropped", "stream", ev.Stream.Key())
	}
}

// Names lists the supervised plugins.
func (h *Host) Names() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.procs))
	for n := range h.procs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Client returns the RPC client of a running plugin, or nil.
func (h *Host) Client(name string) *wire.PluginClient {
	h.mu.Lock()
	p := h.procs[name]
	h.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != StateRunning {
		return nil
	}
	return p.rpc
}

// Info returns the description of a supervised plugin.
func (h *Host) Info(name string) (wire.Info, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.procs[name]
	if p == nil {
		return wire.Info{}, false
	}
	return p.spec.Info, true
}

// Statuses returns a snapshot of every plugin.
func (h *Host) Statuses() []Status {
	h.mu.Lock()
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	out := make([]Status, 0, len(procs))
	for _, p := range procs {
		p.mu.Lock()
		st := Status{
			Name: p.spec.Name, Version: p.spec.Info.Version, Path: p.spec.Path, PID: p.pid, State: p.state,
			Restarts: p.restarts, Since: p.since, LastError: p.lastError, Listeners: []ListenAddr{},
			Failures: p.failures, CrashLoop: p.failures >= crashLoopAfter, BackoffMS: p.backoff.Milliseconds(),
		}
		if p.state == StateRunning && time.Since(p.since) > quickDeath {
			st.Failures, st.CrashLoop = 0, false // it has run long enough
		}
		if !p.nextTry.IsZero() {
			t := p.nextTry
			st.NextRestart = &t
		}
		if p.state != StateRunning && p.state != StateStarting {
			st.PID = 0
		}
		p.mu.Unlock()
		for _, b := range p.bound {
			st.Listeners = append(st.Listeners, ListenAddr{Name: b.name, Network: b.network, Addr: b.addr})
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stop stops every plugin: a graceful Stop call bounded by ctx, then the
// process is killed, then its sockets are closed.
//
// Plugins without sockets (recorders, transcoders: clients of the others)
// stop first, then the ones that serve the network.
func (h *Host) Stop(ctx context.Context) {
	h.mu.Lock()
	var first, then []*proc
	for _, p := range h.procs {
		if len(p.bound) == 0 {
			first = append(first, p)
		} else {
			then = append(then, p)
		}
	}
	h.mu.Unlock()
	h.stopProcs(ctx, first)
	h.stopProcs(ctx, then)
}

// stop asks the plugin to stop gracefully (bounded by ctx and 5 s), ends
// its supervision, kills the process and closes its sockets.
func (p *proc) stop(ctx context.Context) {
	p.mu.Lock()
	rpc := p.rpc
	p.mu.Unlock()
	if rpc != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := rpc.Stop(sctx, 3*time.Second); err != nil {
			p.log.Warn("plugin did not stop gracefully", "error", err)
		}
		cancel()
	}
	if p.cancel != nil {
		p.cancel() // supervision ends: the exit that follows is no crash
		<-p.done
	} else {
		p.kill()
	}
	_ = closeAll(p.bound)
}

// BellPath is where a plugin process keeps its doorbell (see sdk).
func BellPath(shmDir, instance string, pid int) string {
	return filepath.Join(shmDir, fmt.Sprintf("rill-%s-bell-%d", instance, pid))
}
