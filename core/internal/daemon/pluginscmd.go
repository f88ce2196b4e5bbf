package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rill-media/rill/core/internal/config"
	"github.com/rill-media/rill/core/internal/pluginhost"
	"github.com/rill-media/rill/sdk/wire"
)

// PluginsUsage is the help of `rill plugins`.
const PluginsUsage = `usage:
  rill plugins list [-c conf.hcl | -d DIR]       the plugins in the plugin directory
  rill plugins describe [-c conf.hcl | -d DIR] NAME|PATH
                                                 one plugin's self-description as JSON
  rill plugins check PATH                        launch a plugin binary as the core would
                                                 (handshake, API version, a dry-run
                                                 configuration), then stop it

The plugin directory is -d, else plugin_dir of the config (-c, default
conf.hcl), else "plugins".`

// describeTimeout bounds one plugin's --rill-describe or check.
const describeTimeout = 20 * time.Second

// Described is what `rill plugins describe` prints: the plugin's Info, the
// binary it came from and its SHA-256 (what a sha256 = "..." pin takes).
type Described struct {
	wire.Info
	Path          string `json:"path"`
	SHA256        string `json:"sha256"`
	CoreAPI       uint32 `json:"core_api_version"`
	APICompatible bool   `json:"api_compatible"`
}

// Plugins runs `rill plugins ARGS`, writing to out; the error is what the
// command failed on (the caller prints it and exits 1).
func Plugins(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(PluginsUsage)
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("rill plugins "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	conf := fs.String("c", "conf.hcl", "config file whose plugin_dir is read")
	dir := fs.String("d", "", "plugin directory (overrides the config's)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("rill plugins %s: %v\n%s", sub, err, PluginsUsage)
	}
	pluginDir := func() string {
		if *dir != "" {
			return *dir
		}
		src, err := os.ReadFile(*conf)
		if err != nil {
			return config.DefaultPluginDir
		}
		return pluginDirOf(*conf, src) // relative to where rill runs, as at a start
	}
	ctx := context.Background()
	switch sub {
	case "list":
		if fs.NArg() != 0 {
			return errors.New(PluginsUsage)
		}
		return listPlugins(ctx, pluginDir(), out)
	case "describe":
		if fs.NArg() != 1 {
			return errors.New(PluginsUsage)
		}
		path := fs.Arg(0)
		if !strings.ContainsRune(path, os.PathSeparator) {
			path = filepath.Join(pluginDir(), path)
		}
		d, err := describe(ctx, path)
		if err != nil && d.Name == "" {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if e := enc.Encode(d); e != nil {
			return e
		}
		return err
	case "check":
		if fs.NArg() != 1 {
			return errors.New(PluginsUsage)
		}
		return checkPlugin(ctx, fs.Arg(0), out)
	default:
		return fmt.Errorf("rill plugins: unknown command %q\n%s", sub, PluginsUsage)
	}
}

// describe runs path --rill-describe. With an API version the core does not
// speak it returns the Info it read and an error naming both versions.
func describe(ctx context.Context, path string) (Described, error) {
	sum, err := pluginhost.FileSHA256(path)
	if err != nil {
		return Described{}, fmt.Errorf("plugin %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	info, err := pluginhost.DescribeRaw(ctx, path, nil, nil)
	if err != nil {
		return Described{}, err
	}
	d := Described{Info: info, Path: path, SHA256: sum, CoreAPI: wire.APIVersion, APICompatible: info.APIVersion == wire.APIVersion}
	if err := pluginhost.CheckInfo(path, info); err != nil {
		return d, err
	}
	return d, nil
}

func listPlugins(ctx context.Context, dir string, out io.Writer) error {
	found, skipped, err := pluginhost.Discover(dir)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tVERSION\tAPI\tCAPABILITIES\tLISTENERS\tHTTP ROUTES\tVHOST BLOCK\tSHA256\tSTATUS\n")
	bad := 0
	for _, f := range found {
		d, err := describe(ctx, f.Path)
		status := "ok"
		if err != nil {
			status, bad = err.Error(), bad+1
		}
		var ls []string
		for _, l := range d.Listeners {
			ls = append(ls, fmt.Sprintf("%s(%s %s)", l.Name, l.Network, strings.Join(l.DefaultAddrs, ",")))
		}
		name, version, api, sum := f.Name, d.Version, "-", d.SHA256
		if d.Name != "" {
			api = fmt.Sprint(d.APIVersion)
		}
		if len(sum) > 12 {
			sum = sum[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(version), api, dash(strings.Join(d.Capabilities, ",")), dash(strings.Join(ls, " ")),
			dash(strings.Join(d.HTTPRoutes, " ")), dash(d.Block()), dash(sum), status)
	}
	paths := make([]string, 0, len(skipped))
	for p := range skipped {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\tskipped: %s\n", filepath.Base(p), skipped[p])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(found) == 0 {
		fmt.Fprintf(out, "no plugins in %s\n", dir)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d plugins in %s cannot run (see STATUS)", bad, len(found), dir)
	}
	return nil
}

// dash stands for an empty table cell.
func dash(s string) string {
	if s == "" || s == "." {
		return "-"
	}
	return s
}

// checkPlugin launches the binary at path as a start would (the go-plugin
// handshake, the API version, the name), has it validate an empty
// configuration (no vhost enables it), and stops it.
func checkPlugin(ctx context.Context, path string, out io.Writer) error {
	d, err := describe(ctx, path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	log := hclog.New(&hclog.LoggerOptions{Name: "rill", Level: hclog.Warn, Output: os.Stderr})
	host := pluginhost.New(pluginhost.Options{LogLevel: "warn", Logger: log.Named("plugin")})
	spec := pluginhost.Spec{Name: d.Name, Path: path, Settings: json.RawMessage("{}"), Info: d.Info,
		Env: map[string]string{}, Listen: map[string][]string{}}
	if err := host.Validate(ctx, []pluginhost.Spec{spec}); err != nil {
		return fmt.Errorf("plugin %s (%s): %w", d.Name, path, err)
	}
	fmt.Fprintf(out, "ok: %s %s, plugin API v%d (core v%d), sha256 %s\n", d.Name, d.Version, d.APIVersion, wire.APIVersion, d.SHA256)
	return nil
}
