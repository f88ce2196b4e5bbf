// Package pluginhost launches, configures, supervises and restarts plugin
// processes, and owns the sockets they serve on.
package pluginhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
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
// A non-empty sum (hex SHA-256) pins the binary: another one is not run.
// A non-nil cred runs it as that user, as its launch will be.
func Describe(ctx context.Context, path string, env map[string]string, sum string, cred *syscall.Credential) (wire.Info, error) {
	if err := VerifyBinary(path, sum); err != nil {
		return wire.Info{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := DescribeRaw(ctx, path, env, cred)
	if err != nil {
		return wire.Info{}, err
	}
	if err := CheckInfo(path, info); err != nil {
		return wire.Info{}, err
	}
	return info, nil
}

// DescribeRaw runs path --rill-describe and parses what it prints, without
// judging it (see CheckInfo).
func DescribeRaw(ctx context.Context, path string, env map[string]string, cred *syscall.Credential) (wire.Info, error) {
	cmd := exec.CommandContext(ctx, path, wire.DescribeFlag)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
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
	return info, nil
}

// CheckInfo refuses a plugin the core cannot run: another plugin API
// version (the message names both), or a name that is not its file's.
func CheckInfo(path string, info wire.Info) error {
	if info.APIVersion != wire.APIVersion {
		return fmt.Errorf("describe plugin %q: plugin API version %d, core speaks %d", path, info.APIVersion, wire.APIVersion)
	}
	if info.Name != filepath.Base(path) {
		return fmt.Errorf("describe plugin %q: plugin calls itself %q; binary, config block and Info.Name must match", path, info.Name)
	}
	return nil
}

// FileSHA256 is the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ErrChecksum says a plugin binary is not the one its config pins.
var ErrChecksum = errors.New("plugin binary checksum mismatch")

// VerifyBinary checks the binary at path against the pinned hex SHA-256
// sum; an empty sum pins nothing.
func VerifyBinary(path, sum string) error {
	if sum == "" {
		return nil
	}
	got, err := FileSHA256(path)
	if err != nil {
		return fmt.Errorf("checksum plugin %q: %w", path, err)
	}
	if !strings.EqualFold(got, sum) {
		return fmt.Errorf("%w: %s has sha256 %s, the config pins sha256 = %q", ErrChecksum, path, got, sum)
	}
	return nil
}
