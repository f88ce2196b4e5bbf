// Command rill-bench is Rill's load tool. It publishes a pre-encoded FLV
// file over RTMP in real time and plays it back with many RTMP or HTTP-FLV
// players (small allocation-free clients, see rtmpclient.go and
// flvclient.go), measuring what players see (bytes, time
// to first video frame, added latency) and what the server spends (CPU and
// memory of all its processes, from /proc).
//
//	rill-bench suite [-quick] [-out docs/BENCHMARKS.md]
//	    starts Rill, lalserver and the physical floor (bench/floor) one
//	    after the other on loopback, runs every scenario against each and
//	    writes the report (make bench, make bench-quick).
//	rill-bench load -publish rtmp://... -play rtmp://...|http://... -n 100 [-pids 1,2] [-match re]
//	    drives a server that is already running.
//
// Everything is bounded in count and time; every process it starts stops
// by itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only when RILL_BENCH_PPROF names an address
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/q191201771/naza/pkg/nazalog"

	"github.com/rill-media/rill/bench/replay"
)

func main() {
	quietLal()
	// The tool shares the machine with the server: spend less on GC.
	debug.SetGCPercent(400)
	// Thousands of players need thousands of descriptors, here and in the
	// servers, which inherit the limit.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}

	// RILL_BENCH_PPROF=127.0.0.1:6062 serves Go's profiler of the load
	// tool (to check it is not the bottleneck); unset, nothing listens.
	if addr := os.Getenv("RILL_BENCH_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	if len(os.Args) < 2 {
		printUsage()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "suite":
		err = runSuite(ctx, os.Args[2:])
	case "load":
		err = runLoad(ctx, os.Args[2:])
	default:
		printUsage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rill-bench:", err)
		os.Exit(1)
	}
}

// quietLal keeps lal's logs (to stdout through nazalog's global logger by
// default) to errors, which go nowhere.
func quietLal() {
	_ = nazalog.Init(func(o *nazalog.Option) {
		o.Level = nazalog.LevelError
		o.IsToStdout = false
		o.Filename = ""
	})
}

func printUsage() {
	fmt.Fprintln(os.Stderr, "usage: rill-bench suite [flags] | rill-bench load [flags] (-h for flags)")
	os.Exit(2)
}

// runLoad drives a running server: one publisher, n players.
func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var (
		pubURL  = fs.String("publish", "", "RTMP URL to publish to (empty: someone else publishes; latency then unknown)")
		playURL = fs.String("play", "", "rtmp:// or http://...flv URL to play")
		n       = fs.Int("n", 100, "players")
		flv     = fs.String("flv", "", "FLV file to publish (default: the 720p30 file under -media)")
		media   = fs.String("media", "objs/bench", "directory of the cached test files")
		win     = fs.Duration("window", 10*time.Second, "measurement window")
		pids    = fs.String("pids", "", "comma-separated server pids (their descendants count too)")
		match   = fs.String("match", "", "regexp on the command line of server processes")
		limit   = fs.Duration("timeout", 5*time.Minute, "give up after this long")
		ramp    = fs.Duration("ramp", 0, "spread the players' joins evenly over this long (0: all at once)")
		lalRTMP = fs.Bool("lal-rtmp", false, "play RTMP with lal's rtmp.PullSession instead of the built-in client")
	)
	_ = fs.Parse(args)
	lalRTMPPlayers = *lalRTMP
	if *playURL == "" || *n < 1 || *n > 20000 {
		return fmt.Errorf("load: need -play and 1 <= -n <= 20000")
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	path := *flv
	if path == "" {
		var err error
		if path, err = mediumHD.ensure(ctx, *media); err != nil {
			return err
		}
	}
	f, err := replay.Load(path)
	if err != nil {
		return err
	}
	set := procSet{}
	for _, s := range strings.Split(*pids, ",") {
		if s = strings.TrimSpace(s); s != "" {
			pid, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("-pids: %w", err)
			}
			set.pids = append(set.pids, pid)
		}
	}
	if *match != "" {
		if set.pattern, err = regexp.Compile(*match); err != nil {
			return fmt.Errorf("-match: %w", err)
		}
	}
	srv := &server{name: "server", procs: set, exited: make(chan struct{})}
	st := stream{playURL: *playURL, file: f, players: *n, clock: noClock{},
		published: func(t0, t1 time.Time) int64 { return 0 }}
	if *pubURL != "" {
		pctx, pcancel := context.WithCancel(ctx)
		defer pcancel()
		pub, err := publishOne(pctx, f, *pubURL)
		if err != nil {
			return err
		}
		st = pub.stream(*playURL, *n)
		sleepCtx(ctx, 3*time.Second) // the server gets a GOP for fast starts
	}
	r := measure(ctx, srv, []stream{st}, timing{ramp: *ramp, join: 10 * time.Second, settle: 2 * time.Second, window: *win, grace: time.Second})
	fmt.Println(r)
	return nil
}

// noClock is the send clock when someone else publishes: no latency.
type noClock struct{}

func (noClock) sentAt(int, int64) (int64, bool) { return 0, false }
