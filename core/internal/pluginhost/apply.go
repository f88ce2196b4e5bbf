package pluginhost

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Change summarizes what Apply did.
type Change struct {
	Started, Stopped, Restarted, Reconfigured []string
}

// sameProcess reports whether a plugin can keep its process and sockets
// under the new spec (only its settings and vhosts changed).
func sameProcess(a, b Spec) bool {
	return a.Path == b.Path && reflect.DeepEqual(a.Listen, b.Listen) && reflect.DeepEqual(a.Env, b.Env) &&
		reflect.DeepEqual(a.Info.Listeners, b.Info.Listeners) && a.SHA256 == b.SHA256 && reflect.DeepEqual(a.RunAs, b.RunAs)
}

func sameConfig(a, b Spec) bool {
	if !jsonEqual(a.Settings, b.Settings) || len(a.Vhosts) != len(b.Vhosts) {
		return false
	}
	for i := range a.Vhosts {
		x, y := a.Vhosts[i], b.Vhosts[i]
		if x.Name != y.Name || x.Enabled != y.Enabled || !jsonEqual(x.SettingsJSON, y.SettingsJSON) || !jsonEqual(x.VhostJSON, y.VhostJSON) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	_ = json.Unmarshal(a, &x)
	_ = json.Unmarshal(b, &y)
	return reflect.DeepEqual(x, y)
}

// Apply moves the running plugins to a new set of specs (a reload). It
// validates everything first — every continuing plugin checks its new
// configuration with a dry run, every new plugin is launched and checks
// its own — and changes nothing when anything is wrong. Then it
// reconfigures the plugins whose settings changed (their process, sockets
// and clients untouched), starts the new ones, stops the removed ones, and
// restarts those whose binary, sockets or environment changed.
func (h *Host) Apply(ctx context.Context, specs []Spec) (Change, error) {
	var ch Change
	h.mu.Lock()
	h.gen++
	gen := h.gen
	cur := make(map[string]*proc, len(h.procs))
	for n, p := range h.procs {
		cur[n] = p
	}
	h.mu.Unlock()

	want := map[string]Spec{}
	for _, s := range specs {
		want[s.Name] = s
	}
	var keep, fresh []*proc
	var restart []string
	for _, s := range specs {
		p, ok := cur[s.Name]
		switch {
		case !ok:
		case sameProcess(p.spec, s):
			if !sameConfig(p.spec, s) {
				keep = append(keep, p)
			}
			continue
		default:
			restart = append(restart, s.Name)
		}
		// new plugins, and changed processes, are validated on a new
		// process launched beside the old one (sockets bound when they
		// do not collide with the old process's; see below).
		if ok {
			continue
		}
		np := &proc{h: h, spec: s, log: h.log.Named(s.Name), state: StateStarting, since: time.Now(), events: make(chan eventItem, 4096), done: make(chan struct{})}
		fresh = append(fresh, np)
	}
	abort := func(err error) (Change, error) {
		for _, p := range fresh {
			p.kill()
			_ = closeAll(p.bound)
		}
		return Change{}, err
	}
	for _, p := range fresh {
		if err := p.bindAll(); err != nil {
			return abort(err)
		}
		if err := p.launch(ctx); err != nil {
			return abort(fmt.Errorf("plugin %s: %w", p.spec.Name, err))
		}
	}
	var problems []Problem
	check := func(p *proc, s Spec) error {
		p.mu.Lock()
		rpc := p.rpc
		p.mu.Unlock()
		if rpc == nil {
			return fmt.Errorf("plugin %s is restarting; try the reload again", s.Name)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ps, err := rpc.Configure(cctx, ConfigRequestFor(s, true, gen))
		if err != nil {
			return fmt.Errorf("plugin %s: validate config: %w", s.Name, err)
		}
		for _, pr := range ps {
			problems = append(problems, Problem{Plugin: s.Name, ConfigProblem: pr})
		}
		return nil
	}
	for _, p := range keep {
		if err := check(p, want[p.spec.Name]); err != nil {
			return abort(err)
		}
	}
	for _, p := range fresh {
		if err := check(p, p.spec); err != nil {
			return abort(err)
		}
	}
	if len(problems) > 0 {
		return abort(&ProblemsError{Problems: problems})
	}

	// Apply. Reconfigure in place first: no client of these is touched.
	for _, p := range keep {
		s := want[p.spec.Name]
		p.mu.Lock()
		rpc := p.rpc
		p.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ps, err := rpc.Configure(cctx, ConfigRequestFor(s, false, gen))
		cancel()
		if err != nil || len(ps) > 0 {
			p.log.Error("plugin rejected a configuration it had validated", "error", err, "problems", ps)
			continue
		}
		p.mu.Lock()
		p.spec.Settings, p.spec.Vhosts = s.Settings, s.Vhosts
		p.mu.Unlock()
		ch.Reconfigured = append(ch.Reconfigured, s.Name)
	}
	var stopList []*proc
	for n, p := range cur {
		if _, ok := want[n]; !ok {
			stopList = append(stopList, p)
		}
	}
	for _, n := range restart {
		stopList = append(stopList, cur[n])
	}
	h.stopProcs(ctx, stopList)
	for _, p := range stopList {
		if _, ok := want[p.spec.Name]; !ok {
			ch.Stopped = append(ch.Stopped, p.spec.Name)
		}
	}
	// Changed processes start anew on their new sockets, now that the old
	// process released its own.
	for _, n := range restart {
		np := &proc{h: h, spec: want[n], log: h.log.Named(n), state: StateStarting, since: time.Now(), events: make(chan eventItem, 4096), done: make(chan struct{})}
		if err := np.bindAll(); err == nil {
			err = np.launch(ctx)
			if err == nil {
				fresh = append(fresh, np)
				ch.Restarted = append(ch.Restarted, n)
				continue
			}
			_ = closeAll(np.bound)
			h.log.Error("plugin could not be restarted with its new config", "plugin", n, "error", err)
		} else {
			h.log.Error("plugin could not bind its new sockets", "plugin", n, "error", err)
		}
	}
	for _, p := range fresh {
		if err := p.configureAndStart(ctx, gen); err != nil {
			h.log.Error("plugin failed to start after reload", "plugin", p.spec.Name, "error", err)
			p.kill()
			_ = closeAll(p.bound)
			continue
		}
		h.mu.Lock()
		h.procs[p.spec.Name] = p
		sctx, cancel := context.WithCancel(context.Background())
		p.cancel = cancel
		go p.supervise(sctx)
		go p.deliver(sctx)
		h.mu.Unlock()
		if _, was := cur[p.spec.Name]; !was {
			ch.Started = append(ch.Started, p.spec.Name)
		}
		if h.opts.Started != nil {
			h.opts.Started(p.spec.Name)
		}
	}
	return ch, nil
}

// ConfigRequestFor is the Configure request of spec.
func ConfigRequestFor(s Spec, dry bool, gen uint64) wireConfigRequest {
	return wireConfigRequest{DryRun: dry, SettingsJSON: s.Settings, Vhosts: s.Vhosts, Generation: gen}
}

// stopProcs stops the given plugins gracefully and forgets them.
func (h *Host) stopProcs(ctx context.Context, procs []*proc) {
	h.mu.Lock()
	for _, p := range procs {
		if h.procs[p.spec.Name] == p {
			delete(h.procs, p.spec.Name)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func(p *proc) {
			defer wg.Done()
			p.stop(ctx)
		}(p)
	}
	wg.Wait()
}
