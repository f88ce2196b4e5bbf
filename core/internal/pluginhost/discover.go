// Package pluginhost launches, configures, supervises and restarts plugin
// processes, and owns the sockets they serve on.
package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/rill-media/rill/sdk/wire"
)

var pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Found is an executable in the plugin directory.
type Found struct {
	Name string
	Path string
}

// Discover lists the plugin executables in dir. Entries that are not regular
// executable files, or whose names are not valid plugin names, are skipped
// and reported in skipped (with the reason) for the caller to log.
func Discover(dir string) (found []Found, skipped map[string]string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read plugin dir %q: %w", dir, err)
	}
	skipped = map[string]string{}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			skipped[path] = err.Error()
		case !fi.Mode().IsRegular():
			skipped[path] = "not a regular file"
		case fi.Mode().Perm()&0o111 == 0:
			skipped[path] = "not executable"
		case !pluginNameRE.MatchString(e.Name()):
			skipped[path] = "file name is not a plugin name (^[a-z][a-z0-9_-]{0,31}$)"
		default:
			found = append(found, Found{Name: e.Name(), Path: path})
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found, skipped, nil
}

// Describe runs a plugin binary with --rill-describe and returns its Info.
// It is how the core learns which sockets to bind before the launch.
// env is added to the environment, as it will be for the launch.
func Describe(ctx context.Context, path string, env map[string]string) (wire.Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, wire.DescribeFlag)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return wire.Info{}, fmt.Errorf("describe plugin %q: %w (stderr: %.200s)", path, err, errb.String())
	}
	var info wire.Info
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return wire.Info{}, fmt.Errorf("describe plugin %q: not a Rill plugin (bad describe output: %v)", path, err)
	}
	if info.APIVersion != wire.APIVersion {
		return wire.Info{}, fmt.Errorf("describe plugin %q: plugin API version %d, core speaks %d", path, info.APIVersion, wire.APIVersion)
	}
	if info.Name != filepath.Base(path) {
		return wire.Info{}, fmt.Errorf("describe plugin %q: plugin calls itself %q; binary, config block and Info.Name must match", path, info.Name)
	}
	return info, nil
}
