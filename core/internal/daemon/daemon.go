package daemon

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/rill-media/rill/core/internal/api"
	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/hooks"
	"github.com/rill-media/rill/core/internal/hub"
	"github.com/rill-media/rill/core/internal/pluginhost"
	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

// capOptIn is the capability of a plugin that serves a vhost only when the
// vhost has its block (like SRS's hls, dvr, http_remux sections).
const capOptIn = wire.CapVhostOptIn

// sharedBlocks are the vhost blocks that are no plugin's own block; every
// plugin of the vhost gets them with the vhost's core settings, and the
// plugins that act on them validate them.
var sharedBlocks = []string{"hooks", "http_hooks", "security", "play", "publish", "cluster", "forward", "rtc", "dash"}

type daemon struct {
	confPath string
	mu       sync.Mutex // guards cfg and infos after start (reload)
	reloadMu sync.Mutex // one reload at a time
	cfg      *config.Config
	ctl      *control
	ctlCfg   map[string]*vhostControl
	log      hclog.Logger
	inst     *hub.Instance
	share    shmShare // the rings' group, when plugins run as other users
	hub      *hub.Hub
	plugins  *pluginhost.Host
	api      *api.Server
	infos    map[string]wire.Info
}

// Version is the Rill version, reported by the API and the callbacks.
const Version = "0.1.0"

// Run loads the config at confPath and serves until SIGINT/SIGTERM
// (SIGHUP reloads). With testOnly it checks the config and asks every
// enabled plugin to check its settings, then returns.
func Run(confPath string, testOnly bool) error {
	cfg, infos, err := loadConfig(context.Background(), confPath)
	if cfg == nil {
		return err
	}
	if found, skipped, err := pluginhost.Discover(cfg.PluginDir); err == nil {
		for path, why := range skipped {
			fmt.Fprintf(os.Stderr, "rill: warning: skipping %s in the plugin directory: %s\n", path, why)
		}
		for _, f := range found {
			if _, ok := cfg.Plugins[f.Name]; !ok {
				fmt.Fprintf(os.Stderr, "rill: plugin %s found in %s but has no plugin %q {} block: not started\n", f.Name, cfg.PluginDir, f.Name)
			}
		}
	}
	for _, n := range cfg.Notes {
		fmt.Fprintf(os.Stderr, "rill: warning: %s\n", n)
	}
	ctlCfg, ctlErr := parseControl(cfg)
	if testOnly || err != nil || ctlErr != nil {
		// Every problem at once, the same list for -t and for a start
		// refused: the plugins that described themselves check their
		// settings even when the core found problems of its own or
		// another plugin did not run. (A start without core problems
		// leaves the plugins' check to pluginhost.Host.Start.)
		errs := []error{err, ctlErr, checkPlugins(context.Background(), cfg, infos)}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		fmt.Printf("the config file %s is ok: the core and %d plugins checked it\n", confPath, len(infos))
		return nil
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "rill", Level: hclog.LevelFromString(cfg.LogLevel), Output: os.Stderr})
	d := &daemon{cfg: cfg, log: log, infos: infos, ctlCfg: ctlCfg, confPath: confPath}
	return d.serve()
}

// checkPlugins is the plugins' part of `rill -t`: each enabled plugin is
// launched and validates its settings and vhost blocks with the dry run a
// start begins with (pluginhost.Host.Validate), then stopped; its problems
// come back located at their keys in the file.
func checkPlugins(ctx context.Context, cfg *config.Config, infos map[string]wire.Info) error {
	specs, err := specsOf(cfg, infos)
	if err != nil {
		return err
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "rill", Level: hclog.Warn, Output: os.Stderr})
	host := pluginhost.New(pluginhost.Options{LogLevel: "warn", Logger: log.Named("plugin")})
	return locate(cfg, infos, host.Validate(ctx, specs))
}

// loadConfig reads the config, discovers the plugins and describes the
// enabled ones. The plugin directory is read from the file before the full
// parse, since vhost blocks may name any plugin found there. With an
// error, the config is nil when the file could not be parsed, or else what
// could be decoded (see config.ParseAll), to find the plugins' problems
// too: never serve it.
func loadConfig(ctx context.Context, path string) (*config.Config, map[string]wire.Info, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	dir := pluginDirOf(path, src)
	var known []string
	if found, _, err := pluginhost.Discover(dir); err == nil {
		for _, f := range found {
			known = append(known, f.Name)
		}
	}
	cfg, err := config.ParseAll(path, src, known)
	if cfg == nil {
		return nil, nil, err
	}
	infos := map[string]wire.Info{}
	var errs []error
	runAs, _, raErr := runAsOf(cfg)
	if raErr != nil {
		errs = append(errs, raErr)
	}
	for _, name := range sortedKeys(cfg.Plugins) {
		p := cfg.Plugins[name]
		if !p.Enabled {
			continue
		}
		bin := p.Path
		if bin == "" {
			bin = filepath.Join(cfg.PluginDir, name)
		}
		info, err := pluginhost.Describe(ctx, bin, p.Env, p.SHA256, runAs[name].Cred)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: plugin %q: %w", cfg.PosOf("plugin", name), name, err))
			continue
		}
		infos[name] = info
	}
	// A plugin whose vhost block is not named after it (httpstream reads
	// SRS's hls { }) makes that block a known one: the vhosts are read
	// again knowing every block the running plugins read.
	again := false
	for _, name := range sortedKeys(infos) {
		if b := blockOf(name, infos[name]); !slices.Contains(known, b) {
			known = append(known, b)
			again = true
		}
	}
	if again {
		if cfg, err = config.ParseAll(path, src, known); cfg == nil {
			return nil, nil, err
		}
	}
	errs = append([]error{err}, errs...)
	for _, name := range sortedKeys(infos) {
		if err := checkListenKeys(cfg, cfg.Plugins[name], infos[name]); err != nil {
			errs = append(errs, err)
		}
	}
	return cfg, infos, errors.Join(errs...)
}

// pluginDirOf reads the top-level plugin_dir attribute, if the file parses.
func pluginDirOf(path string, src []byte) string {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() {
		return config.DefaultPluginDir
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return config.DefaultPluginDir
	}
	if a, ok := body.Attributes["plugin_dir"]; ok {
		if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type().FriendlyName() == "string" {
			return v.AsString()
		}
	}
	return config.DefaultPluginDir
}

// listenKey is the plugin block key of a listener: "listen" for the first
// one, "listen_<name>" for the others.
func listenKey(info wire.Info, i int) string {
	if i == 0 {
		return "listen"
	}
	return "listen_" + info.Listeners[i].Name
}

func checkListenKeys(cfg *config.Config, p *config.Plugin, info wire.Info) error {
	var errs []error
	if len(info.Listeners) == 0 && len(p.Listen) > 0 {
		// Refused rather than ignored: the plugin binds its sockets itself
		// (srt: gosrt opens its own UDP socket), from a key of its own.
		errs = append(errs, fmt.Errorf("%s: plugin %q key %q: the plugin has no socket for the core to bind, so listen would do nothing; see its documentation (srt: bind)",
			cfg.PosOf("plugin", p.Name, "listen"), p.Name, "listen"))
	}
	for i := 1; i < len(info.Listeners); i++ {
		v, ok := p.Settings[listenKey(info, i)]
		if !ok {
			continue
		}
		if _, err := stringList(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: plugin %q key %q: %w", cfg.PosOf("plugin", p.Name, listenKey(info, i)), p.Name, listenKey(info, i), err))
		}
	}
	return errors.Join(errs...)
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of addresses")
	}
	var out []string
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("want a list of address strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// pluginEnabledIn reports whether plugin name serves vhost v.
func pluginEnabledIn(v *config.Vhost, name string, info wire.Info) bool {
	if !v.Enabled {
		return false
	}
	block, ok := v.Blocks[blockOf(name, info)]
	if hasCap(info, wire.CapOwnEnabled) {
		// The plugin reads its block's enabled key itself.
		return ok || !hasCap(info, capOptIn)
	}
	if !ok {
		for _, c := range info.Capabilities {
			if c == capOptIn {
				return false
			}
		}
		return true
	}
	if e, ok := block["enabled"].(bool); ok {
		return e
	}
	return true
}

// blockOf is the name of the plugin's block inside a vhost: its own name
// unless it says another (SRS's section name, as httpstream reads hls).
func blockOf(name string, info wire.Info) string {
	if info.VhostBlock != "" {
		return info.VhostBlock
	}
	return name
}

func policyOf(cfg *config.Config, infos map[string]wire.Info) *hub.Policy {
	pol := &hub.Policy{Vhosts: map[string]*hub.VhostPolicy{}}
	for name, v := range cfg.Vhosts {
		size := v.RingSize
		if size == 0 {
			size = cfg.Shm.RingSize
		}
		vp := &hub.VhostPolicy{GopCache: v.GopCache, Ring: shm.Options{DataSize: int(size), Slots: cfg.Shm.Slots}, Plugins: map[string]bool{}}
		for pn, info := range infos {
			vp.Plugins[pn] = pluginEnabledIn(v, pn, info)
		}
		pol.Vhosts[name] = vp
	}
	return pol
}

func specsOf(cfg *config.Config, infos map[string]wire.Info) ([]pluginhost.Spec, error) {
	var specs []pluginhost.Spec
	runAs, _, err := runAsOf(cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(infos) {
		info := infos[name]
		p := cfg.Plugins[name]
		path := p.Path
		if path == "" {
			path = filepath.Join(cfg.PluginDir, name)
		}
		settings := map[string]any{}
		for k, v := range p.Settings {
			settings[k] = v
		}
		listen := map[string][]string{}
		for i, l := range info.Listeners {
			key := listenKey(info, i)
			if i == 0 {
				if len(p.Listen) > 0 {
					listen[l.Name] = p.Listen
				}
				continue
			}
			if v, ok := settings[key]; ok {
				addrs, _ := stringList(v)
				listen[l.Name] = addrs
				delete(settings, key)
			}
		}
		sj, err := json.Marshal(settings)
		if err != nil {
			return nil, fmt.Errorf("plugin %s settings: %w", name, err)
		}
		spec := pluginhost.Spec{Name: name, Path: path, Listen: listen, Env: p.Env, Settings: sj, Info: info, SHA256: p.SHA256, RunAs: runAs[name]}
		for _, vn := range sortedKeys(cfg.Vhosts) {
			v := cfg.Vhosts[vn]
			block := v.Blocks[blockOf(name, info)]
			if block == nil {
				block = map[string]any{}
			}
			bj, err := json.Marshal(block)
			if err != nil {
				return nil, fmt.Errorf("vhost %s block %s: %w", vn, name, err)
			}
			shared := map[string]any{}
			for _, rb := range sharedBlocks {
				if b, ok := v.Blocks[rb]; ok {
					shared[rb] = b
				}
			}
			vj, err := json.Marshal(map[string]any{"gop_cache": v.GopCache, "blocks": shared})
			if err != nil {
				return nil, fmt.Errorf("vhost %s: %w", vn, err)
			}
			spec.Vhosts = append(spec.Vhosts, wire.VhostConfig{Name: vn, Enabled: pluginEnabledIn(v, name, info), SettingsJSON: bj, VhostJSON: vj})
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// locate turns plugin config problems into file:line:col errors, each at
// its key (or the nearest enclosing key the file has); other errors, also
// those joined with the problems, are kept as they are.
func locate(cfg *config.Config, infos map[string]wire.Info, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, locate(cfg, infos, e))
		}
		return errors.Join(errs...)
	}
	var pe *pluginhost.ProblemsError
	if !errors.As(err, &pe) {
		return err
	}
	type located struct {
		pos hcl.Pos
		err error
	}
	var out []located
	// A shared vhost block (play, publish) is checked by every plugin's
	// SDK alike: the same problem is printed once.
	seen := map[string]bool{}
	for _, p := range pe.Problems {
		if p.VhostRelative {
			k := p.Vhost + "\x00" + strings.Join(p.KeyPath, "\x00") + "\x00" + p.Message
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		var path []string
		if p.Vhost == "" {
			path = append([]string{"plugin", p.Plugin}, p.KeyPath...)
		} else if p.VhostRelative {
			path = append([]string{"vhost", p.Vhost}, p.KeyPath...)
		} else {
			path = append([]string{"vhost", p.Vhost, blockOf(p.Plugin, infos[p.Plugin])}, p.KeyPath...)
		}
		where := fmt.Sprintf("plugin %q", p.Plugin)
		if p.Vhost != "" && p.VhostRelative {
			where = fmt.Sprintf("vhost %q (checked by plugin %q)", p.Vhost, p.Plugin)
		} else if p.Vhost != "" {
			b := blockOf(p.Plugin, infos[p.Plugin])
			where = fmt.Sprintf("vhost %q block %q", p.Vhost, b)
			if b != p.Plugin {
				where += fmt.Sprintf(" (checked by plugin %q)", p.Plugin)
			}
		}
		key := ""
		if len(p.KeyPath) > 0 {
			key = fmt.Sprintf(" key %q", strings.Join(p.KeyPath, "."))
		}
		pos := posOf(cfg, path)
		out = append(out, located{pos, fmt.Errorf("%s: %s%s: %s", config.FormatPos(cfg.File, pos), where, key, p.Message)})
	}
	// In the file's order, as the core's own problems are.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].pos, out[j].pos
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	errs := make([]error, len(out))
	for i, l := range out {
		errs[i] = l.err
	}
	return errors.Join(errs...)
}

// posOf is where the key path is defined, or else its nearest enclosing
// key that is (a key a plugin names but the file does not have, such as a
// required key left out, is reported at its block); the zero position when
// none is.
func posOf(cfg *config.Config, path []string) hcl.Pos {
	for n := len(path); n > 0; n-- {
		if pos, ok := cfg.Pos.Lookup(path[:n]...); ok {
			return pos
		}
	}
	return hcl.Pos{}
}

func (d *daemon) serve() error {
	// Signals are caught before anything starts: a SIGTERM that arrives
	// while plugins start is handled (a clean stop) once serving begins,
	// instead of killing the core with its plugins and segments around.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	inst, removed, err := hub.NewInstance(d.cfg.Shm.Dir)
	if err != nil {
		return err
	}
	if _, d.share, err = runAsOf(d.cfg); err != nil {
		inst.Close()
		return err
	}
	if d.share.on {
		inst.ShareWith(d.share.gid)
	}
	d.inst = inst
	defer inst.Close()
	for _, r := range removed {
		d.log.Warn("removed stale shm segment of a dead core", "path", r)
	}
	serverID := d.cfg.ServerID
	if serverID == "" {
		serverID = "vid-" + randomID(7)
	}
	d.hub = hub.New(inst, policyOf(d.cfg, d.infos), d.log.Named("hub"), d.broadcast)
	serviceID := randomID(8)
	d.ctl = &control{
		caller: &hooks.Caller{ServerID: serverID, ServiceID: serviceID, Version: Version, Log: d.log.Named("hooks")},
		log:    d.log, hub: d.hub,
	}
	d.ctl.vhosts.Store(&d.ctlCfg)
	d.hub.SetGate(d.ctl)
	d.plugins = pluginhost.New(pluginhost.Options{
		InstanceID: inst.ID, ShmDir: inst.Dir, ServerID: serverID, ServiceID: serviceID, LogLevel: d.cfg.LogLevel,
		ShareShm: d.share.on, ShmGID: d.share.gid,
		Logger: d.log.Named("plugin"), HostFor: d.hostFor, Exited: d.pluginExited, Started: d.pluginStarted,
	})
	apiLn, err := net.Listen("tcp", d.cfg.ListenAPI)
	if err != nil {
		return fmt.Errorf("listen api %s: %w", d.cfg.ListenAPI, err)
	}
	d.api = &api.Server{
		ServerID: serverID, ServiceID: serviceID, Version: Version, Started: time.Now(),
		Streams: d.hub, Plugins: d.plugins, Log: d.log.Named("api"), Codecs: d.codecInfo,
		Vhosts: d.vhostNames, VhostInfo: d.vhostInfo, Username: d.cfg.API.Username, Password: d.cfg.API.Password,
		HTTPS: d.cfg.API.HTTPSListen != "",
	}
	if d.cfg.API.AllowReload {
		d.api.Reload = d.reload
	}
	specs, err := specsOf(d.cfg, d.infos)
	if err != nil {
		apiLn.Close()
		return err
	}
	ctx := context.Background()
	if err := d.plugins.Start(ctx, specs); err != nil {
		apiLn.Close()
		d.hub.Close()
		return locate(d.cfg, d.infos, err)
	}
	apiErr := make(chan error, 2)
	go func() { apiErr <- d.api.Serve(apiLn) }()
	if a := d.cfg.API; a.HTTPSListen != "" {
		tlsLn, err := net.Listen("tcp", a.HTTPSListen)
		if err != nil {
			d.plugins.Stop(ctx)
			d.hub.Close()
			return fmt.Errorf("listen api https %s: %w", a.HTTPSListen, err)
		}
		go func() { apiErr <- d.api.ServeTLS(tlsLn, a.HTTPSCert, a.HTTPSKey) }()
		d.log.Info("api https", "addr", tlsLn.Addr().String())
	}
	d.log.Info("rill started", "version", Version, "api", apiLn.Addr().String(), "instance", inst.ID, "server_id", serverID, "plugins", strings.Join(d.plugins.Names(), ","))

	var runErr error
loop:
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.log.Info("SIGHUP received, reloading the config", "file", d.confPath)
				if err := d.reload(); err != nil {
					d.log.Error("reload rejected, the running config stays", "error", err)
				}
				continue
			}
			d.log.Info("signal received, stopping", "signal", s.String())
			break loop
		case err := <-apiErr:
			runErr = fmt.Errorf("api server: %w", err)
			break loop
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.api.Shutdown(sctx)
	d.plugins.Stop(sctx)
	d.hub.Close()
	d.ctl.caller.Close(sctx)
	if err := inst.Close(); err != nil {
		d.log.Warn("remove shm segments", "error", err)
	}
	d.log.Info("rill stopped")
	return runErr
}

func (d *daemon) vhostNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return sortedKeys(d.cfg.Vhosts)
}

// vhostInfo is what the API reports of a vhost's config: SRS's enabled and
// hls { enabled fragment } (fragment defaults to 10 s, as in the httpstream plugin
// and SRS).
func (d *daemon) vhostInfo(name string) api.VhostInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	v := d.cfg.Vhosts[name]
	if v == nil {
		return api.VhostInfo{}
	}
	out := api.VhostInfo{Enabled: v.Enabled}
	// The plugin that reads SRS's hls block (httpstream, or a third
	// party's), if one runs.
	name, info, running := "", wire.Info{}, false
	for _, n := range sortedKeys(d.infos) {
		if blockOf(n, d.infos[n]) == "hls" {
			name, info, running = n, d.infos[n], true
			break
		}
	}
	block, ok := v.Blocks["hls"]
	if !running || !ok || !pluginEnabledIn(v, name, info) {
		return out
	}
	if on, _ := block["enabled"].(bool); !on {
		return out
	}
	out.HLS, out.HLSFragment = true, 10*time.Second
	switch f := block["fragment"].(type) {
	case string:
		if dur, err := time.ParseDuration(f); err == nil {
			out.HLSFragment = dur
		}
	case int64:
		out.HLSFragment = time.Duration(f) * time.Second
	case float64:
		out.HLSFragment = time.Duration(f * float64(time.Second))
	}
	return out
}

// reload applies the config file again: vhosts, callbacks, security rules
// and plugin blocks change without touching what the change does not
// concern. A broken config is rejected with file, line and key, and the
// running config stays.
func (d *daemon) reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, infos, err := loadConfig(ctx, d.confPath)
	if err != nil {
		return err
	}
	for _, n := range cfg.Notes {
		d.log.Warn("config: " + n)
	}
	ctlCfg, err := parseControl(cfg)
	if err != nil {
		return err
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if cfg.Shm.Dir != old.Shm.Dir {
		return fmt.Errorf("%s: shm.dir cannot change on reload (restart the daemon)", cfg.PosOf("shm", "dir"))
	}
	if _, share, err := runAsOf(cfg); err == nil && share != d.share {
		return fmt.Errorf("plugin users: the group the rings are shared with changes (%+v -> %+v): restart the daemon for it", d.share, share)
	}
	if cfg.ListenAPI != old.ListenAPI {
		d.log.Warn("listen_api changes on restart only; the API stays where it is", "listen_api", old.ListenAPI)
	}
	specs, err := specsOf(cfg, infos)
	if err != nil {
		return err
	}
	// The hub learns the new vhosts before plugins configured for them
	// start publishing there.
	pol := policyOf(cfg, infos)
	prevPol := d.hub.Policy()
	d.hub.SetPolicy(mergePolicy(prevPol, pol))
	ch, err := d.plugins.Apply(ctx, specs)
	if err != nil {
		d.hub.SetPolicy(prevPol)
		return locate(cfg, infos, err)
	}
	d.hub.SetPolicy(pol)
	d.ctl.vhosts.Store(&ctlCfg)
	// A plugin newly enabled in a vhost hears of that vhost's live streams,
	// as a restarted plugin does.
	for _, ev := range d.hub.Live() {
		now, before := pol.Vhosts[ev.Stream.Vhost], prevPol.Vhosts[ev.Stream.Vhost]
		if now == nil {
			continue
		}
		for name, on := range now.Plugins {
			if on && (before == nil || !before.Plugins[name]) {
				d.plugins.Send(name, ev)
			}
		}
	}
	d.mu.Lock()
	d.cfg, d.infos = cfg, infos
	d.mu.Unlock()
	d.log.Info("config reloaded", "file", d.confPath, "vhosts", strings.Join(sortedKeys(cfg.Vhosts), ","),
		"started", strings.Join(ch.Started, ","), "stopped", strings.Join(ch.Stopped, ","),
		"restarted", strings.Join(ch.Restarted, ","), "reconfigured", strings.Join(ch.Reconfigured, ","))
	return nil
}

// mergePolicy is the union of two policies, used while a reload is applied.
func mergePolicy(a, b *hub.Policy) *hub.Policy {
	out := &hub.Policy{Vhosts: map[string]*hub.VhostPolicy{}}
	for n, v := range a.Vhosts {
		out.Vhosts[n] = v
	}
	for n, v := range b.Vhosts {
		out.Vhosts[n] = v
	}
	return out
}

// broadcast sends a stream event to every plugin enabled in its vhost.
func (d *daemon) broadcast(ev wire.StreamEvent) {
	vp := d.hub.Policy().Vhosts[ev.Stream.Vhost]
	if vp == nil {
		return
	}
	sourcesOnly := ev.Type == wire.StreamWanted || ev.Type == wire.StreamUnwanted
	d.mu.Lock()
	infos := d.infos
	d.mu.Unlock()
	for name, on := range vp.Plugins {
		if on && (!sourcesOnly || hasCap(infos[name], wire.CapOnDemandSource)) {
			d.plugins.Send(name, ev)
		}
	}
}

func hasCap(info wire.Info, c string) bool {
	for _, x := range info.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// pluginStarted replays the live streams of its vhosts to a (re)started plugin.
func (d *daemon) pluginStarted(name string) {
	pol := d.hub.Policy()
	for _, ev := range d.hub.Live() {
		if vp := pol.Vhosts[ev.Stream.Vhost]; vp != nil && vp.Plugins[name] {
			d.plugins.Send(name, ev)
		}
	}
}

func (d *daemon) pluginExited(name string, pid int) {
	d.hub.PluginGone(name)
	if pid > 0 {
		bell := pluginhost.BellPath(d.inst.Dir, d.inst.ID, pid)
		for _, p := range []string{bell, bell + shm.BellFIFO} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				d.log.Warn("remove doorbell of exited plugin", "plugin", name, "pid", pid, "error", err)
			}
		}
	}
}

func (d *daemon) hostFor(plugin string) wire.Host { return &hostBridge{plugin: plugin, d: d} }

// hostBridge is the Host service one plugin calls; it stamps every call
// with the plugin's name.
type hostBridge struct {
	plugin string
	d      *daemon
}

func (b *hostBridge) Publish(ctx context.Context, req wire.PublishRequest) (wire.Publication, error) {
	return b.d.hub.Publish(ctx, b.plugin, req)
}

func (b *hostBridge) Unpublish(_ context.Context, id string) error {
	return b.d.hub.Unpublish(b.plugin, id)
}

func (b *hostBridge) Subscribe(ctx context.Context, req wire.SubscribeRequest) (wire.Subscription, error) {
	if req.Wait > 60*time.Second {
		req.Wait = 60 * time.Second
	}
	return b.d.hub.Subscribe(ctx, b.plugin, req)
}

func (b *hostBridge) Unsubscribe(_ context.Context, id string) error {
	return b.d.hub.Unsubscribe(b.plugin, id)
}

func (b *hostBridge) ClientEvent(ctx context.Context, ev wire.ClientEvent) error {
	return b.d.ctl.clientEvent(ctx, b.plugin, ev)
}

func (b *hostBridge) Notify(_ context.Context, n wire.Notification) error {
	return b.d.ctl.notify(b.plugin, n)
}

func randomID(n int) string {
	const alpha = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alpha[int(b[i])%len(alpha)]
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
