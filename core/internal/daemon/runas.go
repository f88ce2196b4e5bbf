package daemon

import (
	"fmt"
	"sort"

	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/pluginhost"
)

// shmShare is the group the rings are shared with when plugins run as
// other users: the primary group of the first such plugin (by name).
// Every plugin that runs as another user gets it as a supplementary group.
type shmShare struct {
	on  bool
	gid int
}

// runAsOf resolves the user, group and rlimits of every enabled plugin.
func runAsOf(cfg *config.Config) (map[string]pluginhost.RunAs, shmShare, error) {
	names := make([]string, 0, len(cfg.Plugins))
	for n, p := range cfg.Plugins {
		if p.Enabled {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	share := shmShare{gid: -1}
	for _, n := range names {
		p := cfg.Plugins[n]
		if p.User == "" && p.Group == "" {
			continue
		}
		r, err := pluginhost.ResolveRunAs(p.User, p.Group, 0, 0, -1)
		if err != nil {
			return nil, share, fmt.Errorf("%s: plugin %q: %w", cfg.PosOf("plugin", n, "user"), n, err)
		}
		share = shmShare{on: true, gid: r.GID()}
		break
	}
	out := map[string]pluginhost.RunAs{}
	for _, n := range names {
		p := cfg.Plugins[n]
		r, err := pluginhost.ResolveRunAs(p.User, p.Group, p.MaxOpenFiles, p.MaxMemory, share.gid)
		if err != nil {
			return nil, share, fmt.Errorf("%s: plugin %q: %w", cfg.PosOf("plugin", n), n, err)
		}
		out[n] = r
	}
	return out, share, nil
}
