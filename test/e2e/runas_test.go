package e2e

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// openUp makes path and its parents up to the temp dir (and /dev/shm)
// traversable by other users, as an operator's install directories are:
// the test's directories are 0700 by default.
func openUp(t *testing.T, path string) {
	t.Helper()
	stop := map[string]bool{filepath.Clean(os.TempDir()): true, "/dev/shm": true, "/": true}
	for p := filepath.Clean(path); !stop[p]; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// privilegedPort finds a free loopback TCP port below 1024 (only root may
// bind one).
func privilegedPort(t *testing.T) string {
	t.Helper()
	for p := 900; p < 1024; p++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			addr := ln.Addr().String()
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port in 900-1023")
	return ""
}

// procStatus returns the line of /proc/<pid>/<file> that starts with key.
func procLine(t *testing.T, pid int, file, key string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, key) {
			return l
		}
	}
	t.Fatalf("/proc/%d/%s has no %q", pid, file, key)
	return ""
}

// TestPluginsRunAsNobody: the core runs as root, binds a privileged RTMP
// port and runs the rtmp plugin as nobody with rlimits, beside httpstream
// running as root; a stream published over RTMP (written into its ring by
// the nobody process) plays over HTTP-FLV (read by the root process), so
// the rings and doorbells are shared across the two users.
func TestPluginsRunAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test starts plugins as another user and needs root (uid %d): run make test as root, as CI does", os.Geteuid())
	}
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	openUp(t, filepath.Join(binDir, "plugins"))
	rtmpAddr := privilegedPort(t)
	cfg := Config{
		Plugins: []string{"rtmp", "httpstream"},
		Blocks: map[string]string{
			"rtmp":       fmt.Sprintf("  listen = [%q]\n  user = \"nobody\"\n  max_open_files = 512\n  max_memory = \"2GiB\"", rtmpAddr),
			"httpstream": `  listen = ["127.0.0.1:0"]`,
		},
	}
	d := NewDaemon(t, cfg)
	openUp(t, d.Dir)
	openUp(t, d.ShmDir)
	if code, out := runCheck(t, d.Dir, d.Conf); code != 0 {
		t.Fatalf("rill -t: %d\n%s", code, out)
	}
	if err := d.Start(); err != nil {
		t.Fatalf("start: %v\n%s", err, d.Log())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	if got := procLine(t, ps["rtmp"].PID, "status", "Uid:"); !strings.Contains(got, "\t"+nobody.Uid+"\t") {
		t.Fatalf("rtmp plugin runs as %q, want uid %s", got, nobody.Uid)
	}
	if got := procLine(t, ps["rtmp"].PID, "limits", "Max open files"); len(strings.Fields(got)) < 5 || strings.Fields(got)[3] != "512" || strings.Fields(got)[4] != "512" {
		t.Fatalf("rtmp plugin limits: %q, want 512 512", got)
	}
	if got := procLine(t, ps["rtmp"].PID, "limits", "Max address space"); !strings.Contains(got, "2147483648") {
		t.Fatalf("rtmp plugin limits: %q, want 2147483648", got)
	}
	if got := procLine(t, ps["httpstream"].PID, "status", "Uid:"); !strings.HasPrefix(strings.Fields(got)[1], "0") {
		t.Fatalf("httpstream plugin runs as %q, want root", got)
	}
	ffmpegPublish(t, "rtmp://"+rtmpAddr+"/live/lowpriv", 30)
	waitPublished(t, d, "live", "lowpriv")
	streams := httpProbe(t, "http://"+hlsAddr(t, d)+"/live/lowpriv.flv", 3)
	httpWantCodecs(t, "HTTP-FLV of a stream published to a plugin running as nobody", streams, "h264", "aac")
	// The ring is the shared group's, not world-readable.
	matches, _ := filepath.Glob(filepath.Join(d.ShmDir, "rill-*-s*"))
	if len(matches) == 0 {
		t.Fatalf("no ring in %s", d.ShmDir)
	}
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			continue
		}
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("ring %s mode %v, want 0660", m, fi.Mode().Perm())
		}
	}

	// An unknown user is refused with the key's position.
	cfg.Blocks["rtmp"] = "  listen = [\"127.0.0.1:0\"]\n  user = \"no-such-user-here\""
	bad := NewDaemon(t, cfg)
	code, out := runCheck(t, bad.Dir, bad.Conf)
	if code == 0 || !strings.Contains(out, `"no-such-user-here"`) || !strings.Contains(out, posOfKey(t, bad.Conf, "user")) {
		t.Fatalf("rill -t with an unknown user: exit %d\n%s", code, out)
	}
}
