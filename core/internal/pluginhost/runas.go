package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// RunAs is who a plugin process runs as, and its resource limits: least
// privilege (SRS #1111) for plugins. The core binds privileged ports as
// root and hands them over; the plugin runs as User with rlimits.
type RunAs struct {
	// Cred is set when the plugin runs as another user or group.
	Cred *syscall.Credential
	// User names the user for messages ("nobody (65534:65534)").
	User string
	// NoFile and AS are RLIMIT_NOFILE and RLIMIT_AS; 0 leaves them as the
	// core's.
	NoFile, AS uint64
}

// ResolveRunAs looks up userName and groupName (names or numbers; the
// group defaults to the user's primary group) and checks the core may
// switch to them. shmGID >= 0 is added as a supplementary group, so the
// plugin can map the rings the core shares with that group.
func ResolveRunAs(userName, groupName string, noFile, as int64, shmGID int) (RunAs, error) {
	r := RunAs{NoFile: uint64(max(noFile, 0)), AS: uint64(max(as, 0))}
	if userName == "" && groupName == "" {
		return r, nil
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	r.User = strconv.Itoa(int(uid))
	if userName != "" {
		u, err := lookupUser(userName)
		if err != nil {
			return r, err
		}
		n, _ := strconv.ParseUint(u.Uid, 10, 32)
		g, _ := strconv.ParseUint(u.Gid, 10, 32)
		uid, gid, r.User = uint32(n), uint32(g), u.Username
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		if err != nil {
			return r, err
		}
		gid = g
	}
	if os.Geteuid() != 0 && (uid != uint32(os.Geteuid()) || gid != uint32(os.Getegid())) {
		return r, fmt.Errorf("running a plugin as user %s (uid %d gid %d) needs the core to run as root; it runs as uid %d", r.User, uid, gid, os.Geteuid())
	}
	r.User = fmt.Sprintf("%s (%d:%d)", r.User, uid, gid)
	r.Cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	if shmGID >= 0 && uint32(shmGID) != gid {
		r.Cred.Groups = append(r.Cred.Groups, uint32(shmGID))
	}
	return r, nil
}

// GID is the primary group the plugin runs with (-1: the core's).
func (r RunAs) GID() int {
	if r.Cred == nil {
		return -1
	}
	return int(r.Cred.Gid)
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		// A uid with no passwd entry: run as it, with the same gid.
		return &user.User{Uid: name, Gid: name, Username: name}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("plugin user %q: %w", name, err)
	}
	return u, nil
}

func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("plugin group %q: %w", name, err)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), nil
}

// ExecFlag is the hidden first argument of the core binary that makes it
// the plugin's launcher: it sets the rlimits on itself, then executes the
// plugin in its place (same pid, same descriptors), so the limits hold
// from the plugin's first instruction.
const ExecFlag = "--rill-plugin-exec"

// apply prepares cmd: credentials on the fork, and when limits are set,
// the core binary as launcher in front of the plugin.
func (r RunAs) apply(cmd *exec.Cmd) error {
	cmd.SysProcAttr.Credential = r.Cred
	if r.NoFile == 0 && r.AS == 0 {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the core binary to launch %s with limits: %w", cmd.Path, err)
	}
	args := []string{self, ExecFlag, fmt.Sprintf("nofile=%d", r.NoFile), fmt.Sprintf("as=%d", r.AS), "--"}
	cmd.Args = append(args, cmd.Args...)
	cmd.Path = self
	return nil
}

// ExecWithLimits is the launcher's body (args after ExecFlag): set the
// limits, then replace this process with the plugin. It returns only on
// an error.
func ExecWithLimits(args []string) error {
	var rest []string
	for i, a := range args {
		if a == "--" {
			rest = args[i+1:]
			args = args[:i]
			break
		}
	}
	if len(rest) == 0 {
		return errors.New("plugin launcher: no plugin to run (want nofile=N as=N -- PATH ARGS)")
	}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("plugin launcher: bad limit %q", a)
		}
		if n == 0 {
			continue
		}
		res := map[string]int{"nofile": unix.RLIMIT_NOFILE, "as": unix.RLIMIT_AS}
		which, ok := res[k]
		if !ok {
			return fmt.Errorf("plugin launcher: unknown limit %q", k)
		}
		if err := unix.Setrlimit(which, &unix.Rlimit{Cur: n, Max: n}); err != nil {
			return fmt.Errorf("plugin %s: set %s limit to %d: %w", rest[0], k, n, err)
		}
	}
	return unix.Exec(rest[0], rest, os.Environ())
}
