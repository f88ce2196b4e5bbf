package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rill-media/rill/bench/replay"
)

// suite is one run of every scenario against every server.
type suite struct {
	quick   bool
	ns      []int
	tm      timing
	join    int   // players joining at once for the first-frame rows
	lowlat  []int // players of the merged-writes-off rows
	rtcNs   []int // WebRTC viewers of the webrtc rows
	rtcSD   bool  // the webrtc rows publish the 500 kbit/s file
	streams int   // publishers of the many-streams row
	perStr  int   // players per stream there

	rillBin, pluginDir, lalBin, floorBin string
	media, tmp                           string
	command                              string
	shmSeconds                           int

	hd, sd *replay.File

	started time.Time
	machine string
	results map[string]map[string]result // scenario → server → result
	shm     shmResult
	hls     map[string]hlsResult
	llhls   *llhlsResult
	llLat   []llLatResult
	only    map[string]bool
	hlsFor  time.Duration
	errs    []string

	srtResyncs int64 // TS resynchronisations of the SRT players
}

const (
	srvRill  = "rill"
	srvLal   = "lalserver"
	srvMerge = "floor-merge"
	srvFrame = "floor-frame"
)

func runSuite(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("suite", flag.ExitOnError)
	var (
		quick    = fs.Bool("quick", false, "N up to 500, short windows (make bench-quick, under 5 minutes)")
		ns       = fs.String("n", "", "fan-out player counts (default 100,500,1000,2000,3000; quick 100,500)")
		out      = fs.String("out", "docs/BENCHMARKS.md", "report to write")
		rillBin  = fs.String("rill", "bin/rill", "Rill daemon")
		plugins  = fs.String("plugins", "bin/plugins", "Rill plugin directory")
		lalBin   = fs.String("lalserver", "bin/lalserver", "lalserver binary")
		floorBin = fs.String("floor", "bin/bench-floor", "floor program (bench/floor)")
		media    = fs.String("media", "objs/bench", "directory of the cached test files")
		servers  = fs.String("servers", "floor,rill,lalserver", "servers to run, in order")
		command  = fs.String("command", "", "the command to show in the report (default: this tool's arguments)")
		noShm    = fs.Bool("no-shm", false, "skip the ring measurement (go test ./sdk/shm)")
		only     = fs.String("scenarios", "rtmp,flv,join,lowlat,many,hls,srt,rtsp,llhls,llhls-latency", "scenarios to run against Rill and lalserver (srt, rtsp, llhls, llhls-latency: Rill only; also webrtc, Rill only, opt-in)")
		limit    = fs.Duration("timeout", 0, "give up after this long (default 8m quick, 60m full)")
		lalRTMP  = fs.Bool("lal-rtmp", false, "play RTMP with lal's rtmp.PullSession instead of the built-in client (for comparison)")
		rtcNs    = fs.String("webrtc-n", "50,200,500", "WebRTC viewer counts of the webrtc rows")
		rtcMedia = fs.String("webrtc-media", "hd", "file the webrtc rows publish: hd (720p 2.5 Mbit/s) or sd (360p 500 kbit/s)")
	)
	_ = fs.Parse(args)
	lalRTMPPlayers = *lalRTMP
	s := &suite{
		quick: *quick, join: 200, lowlat: []int{100, 1000}, rtcNs: []int{50, 200, 500}, streams: 200, perStr: 2,
		rillBin: *rillBin, pluginDir: *plugins, lalBin: *lalBin, floorBin: *floorBin, media: *media,
		command: *command, results: map[string]map[string]result{}, hls: map[string]hlsResult{}, started: time.Now(), machine: machine(),
	}
	s.only = map[string]bool{}
	for _, v := range strings.Split(*only, ",") {
		s.only[strings.TrimSpace(v)] = true
	}
	if s.command == "" {
		s.command = "rill-bench"
	}
	if *quick {
		s.ns = []int{100, 500}
		s.lowlat = []int{100}
		s.tm = timing{join: 10 * time.Second, settle: time.Second, window: 5 * time.Second, grace: time.Second}
		s.shmSeconds = 1
		s.hlsFor = 10 * time.Second
	} else {
		s.hlsFor = 30 * time.Second
		s.ns = []int{100, 500, 1000, 2000, 3000}
		s.tm = timing{join: 15 * time.Second, settle: 5 * time.Second, window: 15 * time.Second, grace: time.Second}
		s.shmSeconds = 2
	}
	if *ns != "" {
		s.ns = nil
		for _, v := range strings.Split(*ns, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 20000 {
				return fmt.Errorf("-n %q: want counts in 1..20000", *ns)
			}
			s.ns = append(s.ns, n)
		}
	}
	s.rtcSD = *rtcMedia == "sd"
	if *rtcMedia != "sd" && *rtcMedia != "hd" {
		return fmt.Errorf("-webrtc-media %q: want hd or sd", *rtcMedia)
	}
	s.rtcNs = nil
	for _, v := range strings.Split(*rtcNs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 5000 {
			return fmt.Errorf("-webrtc-n %q: want counts in 1..5000", *rtcNs)
		}
		s.rtcNs = append(s.rtcNs, n)
	}
	if *limit == 0 {
		*limit = 60 * time.Minute
		if *quick {
			*limit = 8 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()

	hdPath, err := mediumHD.ensure(ctx, s.media)
	if err != nil {
		return err
	}
	sdPath, err := mediumSD.ensure(ctx, s.media)
	if err != nil {
		return err
	}
	if s.hd, err = replay.Load(hdPath); err != nil {
		return err
	}
	if s.sd, err = replay.Load(sdPath); err != nil {
		return err
	}
	if d := s.tm.window + s.tm.grace + 5*time.Second; d > time.Duration(s.hd.Loop)*time.Millisecond {
		return fmt.Errorf("window %v too long for a %d ms file", s.tm.window, s.hd.Loop)
	}
	if s.tmp, err = os.MkdirTemp("", "rill-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(s.tmp)
	logf("media %s: %.0f kbit/s, %d ms per pass; %s: %.0f kbit/s", hdPath, s.hd.Bitrate()/1000, s.hd.Loop, sdPath, s.sd.Bitrate()/1000)

	if !*noShm {
		s.shm = measureShm(ctx, s.shmSeconds)
	}
	for _, name := range strings.Split(*servers, ",") {
		if ctx.Err() != nil {
			break
		}
		switch strings.TrimSpace(name) {
		case "floor":
			if !s.only["rtmp"] && !s.only["flv"] {
				continue // the floor only serves the fan-out tables
			}
			s.runFloor(ctx, "merge")
			s.runFloor(ctx, "frame")
		case srvRill:
			s.runServer(ctx, srvRill)
		case srvLal:
			s.runServer(ctx, srvLal)
		default:
			return fmt.Errorf("-servers: unknown %q", name)
		}
	}
	// llhls and llhls-latency run against Rill alone.
	if s.only["llhls"] && ctx.Err() == nil && strings.Contains(*servers, srvRill) {
		s.runLLHLS(ctx)
	}
	if s.only["llhls-latency"] && ctx.Err() == nil && strings.Contains(*servers, srvRill) {
		s.runLLHLSLatency(ctx)
	}
	if ctx.Err() != nil {
		s.errs = append(s.errs, "the run was cut short: "+ctx.Err().Error())
	}
	rep := s.report()
	if err := os.WriteFile(*out, []byte(rep), 0o644); err != nil {
		return err
	}
	logf("wrote %s in %v", *out, time.Since(s.started).Round(time.Second))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func (s *suite) put(scenario string, r result) {
	if s.results[scenario] == nil {
		s.results[scenario] = map[string]result{}
	}
	s.results[scenario][r.server] = r
	logf("%-12s %s", scenario, r)
}

func (s *suite) fail(scenario, srv, why string) {
	s.put(scenario, result{server: srv, failed: why})
}

// fanoutRamp is how long the n players of a fan-out row take to join: at a
// steady rate of 250 per second, over at least 2 s. Viewers do not arrive
// in the same microsecond, and n simultaneous handshakes would time the
// load tool's own connection queue more than the server (the "players
// joining at once" table keeps that stress case).
func fanoutRamp(n int) time.Duration {
	return max(2*time.Second, time.Duration(n)*time.Second/250)
}

// fanout is the timing of a fan-out row of n players.
func (s *suite) fanout(n int) timing {
	tm := s.tm
	tm.ramp = fanoutRamp(n)
	return tm
}

func (s *suite) runFloor(ctx context.Context, mode string) {
	name := "floor-" + mode
	srv, err := startFloor(ctx, s.tmp, s.floorBin, s.hd.Path, mode, 350*time.Millisecond)
	if err != nil {
		for _, n := range s.ns {
			s.fail(fmt.Sprintf("flv/%d", n), name, err.Error())
		}
		return
	}
	defer srv.stop()
	sleepCtx(ctx, 2500*time.Millisecond) // a GOP for fast starts
	for _, n := range s.ns {
		key := fmt.Sprintf("flv/%d", n)
		if ctx.Err() != nil {
			s.fail(key, name, ctx.Err().Error())
			continue
		}
		s.put(key, measure(ctx, srv, []stream{floorStream(srv, s.hd, n)}, s.fanout(n)))
		sleepCtx(ctx, time.Second)
	}
}

// runServer runs every scenario against Rill or lalserver. Each table gets
// a fresh server process (a Go server keeps the memory of a bigger row for
// a while, which would inflate the next table's RSS); the rows of a table
// run in ascending N on the same process and stream.
func (s *suite) runServer(ctx context.Context, name string) {
	var rtmpKeys, flvKeys []string
	for _, n := range s.ns {
		rtmpKeys = append(rtmpKeys, fmt.Sprintf("rtmp/%d", n))
		flvKeys = append(flvKeys, fmt.Sprintf("flv/%d", n))
	}
	if !s.only["rtmp"] {
		rtmpKeys = nil
	}
	if !s.only["flv"] {
		flvKeys = nil
	}
	s.session(ctx, name, rtmpKeys, func(srv *server) {
		s.published(ctx, srv, "bench", rtmpKeys, func(pub *publisher, row rowFunc) {
			for i, n := range s.ns {
				row(rtmpKeys[i], pub.stream(srv.rtmpURL("bench"), n), s.fanout(n))
			}
		})
	})
	s.session(ctx, name, flvKeys, func(srv *server) {
		s.published(ctx, srv, "bench", flvKeys, func(pub *publisher, row rowFunc) {
			for i, n := range s.ns {
				row(flvKeys[i], pub.stream(srv.flvURL("bench"), n), s.fanout(n))
			}
		})
	})
	short := s.tm
	short.window = 2 * time.Second
	short.settle = 500 * time.Millisecond
	var joinKeys, llKeys []string
	if s.only["join"] {
		joinKeys = []string{"join/rtmp", "join/flv"}
	}
	if s.only["lowlat"] {
		for _, n := range s.lowlat {
			llKeys = append(llKeys, fmt.Sprintf("lowlat/%d", n))
		}
	}
	s.session(ctx, name, append(joinKeys, llKeys...), func(srv *server) {
		s.published(ctx, srv, "bench", joinKeys, func(pub *publisher, row rowFunc) {
			row("join/rtmp", pub.stream(srv.rtmpURL("bench"), s.join), short)
			row("join/flv", pub.stream(srv.flvURL("bench"), s.join), short)
		})
		// Merged writes off on both sides: the lowlat vhost of Rill's
		// config; lalserver writes each message as it comes by default and
		// ignores the vhost.
		const ll = "ll?vhost=lowlat"
		s.published(ctx, srv, ll, llKeys, func(pub *publisher, row rowFunc) {
			for i, n := range s.lowlat {
				row(llKeys[i], pub.stream(srv.rtmpURL(ll), n), s.tm)
			}
		})
	})
	if s.only["many"] {
		s.session(ctx, name, []string{"many"}, func(srv *server) {
			s.put("many", s.many(ctx, srv))
		})
	}
	if s.only["hls"] {
		s.hlsSession(ctx, name)
	}
	if s.only["srt"] && name == srvRill {
		s.srtSession(ctx)
	}
	if s.only["webrtc"] && name == srvRill {
		s.webrtcSession(ctx)
	}
	if s.only["rtsp"] && name == srvRill {
		s.rtspSession(ctx)
	}
}

// rtspPlayers is the RTSP players of the rtsp scenario.
const rtspPlayers = 200

// rtspSession runs the rtsp scenario on a Rill with the rtsp plugin: 200
// RTSP players (RTP interleaved in TCP) of the published stream alone, then
// beside 200 RTMP players of it. lalserver is not run here (its RTSP
// server is off in the benchmark's config).
func (s *suite) rtspSession(ctx context.Context) {
	keys := []string{fmt.Sprintf("rtsp/%d", rtspPlayers), fmt.Sprintf("rtsp/%d+rtmp/%d", rtspPlayers, rtspPlayers)}
	srv, err := startRillWith(ctx, s.tmp, s.rillBin, s.pluginDir, "", rillOpts{rtsp: true})
	if err != nil {
		for _, k := range keys {
			s.fail(k, srvRill, err.Error())
		}
		return
	}
	defer srv.stop()
	logf("rill started: rtmp %s, rtsp %s", srv.rtmpAddr, srv.rtspAddr)
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pub, err := publishOne(pctx, s.hd, srv.rtmpURL("bench"))
	if err != nil {
		for _, k := range keys {
			s.fail(k, srvRill, err.Error())
		}
		return
	}
	defer func() { pcancel(); <-pub.done }()
	sleepCtx(ctx, 2500*time.Millisecond) // a GOP for fast starts
	tm := s.fanout(rtspPlayers)
	for i, streams := range [][]stream{
		{pub.stream(srv.rtspURL("bench"), rtspPlayers)},
		{pub.stream(srv.rtspURL("bench"), rtspPlayers), pub.stream(srv.rtmpURL("bench"), rtspPlayers)},
	} {
		switch {
		case ctx.Err() != nil:
			s.fail(keys[i], srvRill, ctx.Err().Error())
			continue
		case pub.failed() != nil:
			s.fail(keys[i], srvRill, pub.failed().Error())
			continue
		}
		pub.maxLate.Store(0)
		r := measure(ctx, srv, streams, tm)
		r.late = time.Duration(pub.maxLate.Load())
		s.put(keys[i], r)
		sleepCtx(ctx, time.Second)
	}
}

// srtNs are the SRT fan-out rows; srtLatencyPlayers play the latency rows.
var srtNs = []int{100, 500}

const srtLatencyPlayers = 10

// srtSession runs the SRT rows on a fresh Rill with the srt plugin (SRT
// latency 120 ms on both sides): the HD file published over RTMP to N SRT
// players (gosrt), then published over SRT (as MPEG-TS, lal's remuxer) to
// RTMP players of the lowlat vhost (no merged writes), beside the same
// players of an RTMP publish of the file, for the latency SRT adds.
// lalserver has no SRT server: these rows are Rill's alone.
func (s *suite) srtSession(ctx context.Context) {
	var keys []string
	for _, n := range srtNs {
		keys = append(keys, fmt.Sprintf("srt/%d", n))
	}
	latKeys := []string{"srt/latency", "srt/latency-rtmp"}
	all := append(append([]string(nil), keys...), latKeys...)
	if ctx.Err() != nil {
		for _, k := range all {
			s.fail(k, srvRill, ctx.Err().Error())
		}
		return
	}
	srv, err := startRillWith(ctx, s.tmp, s.rillBin, s.pluginDir, "", rillOpts{srt: true})
	if err != nil {
		for _, k := range all {
			s.fail(k, srvRill, err.Error())
		}
		return
	}
	defer srv.stop()
	logf("rill started: rtmp %s, srt %s", srv.rtmpAddr, srv.srtAddr)
	s.published(ctx, srv, "bench", keys, func(pub *publisher, row rowFunc) {
		for i, n := range srtNs {
			row(keys[i], pub.stream(srv.srtURL("", "bench", "request", 120), n), s.fanout(n))
		}
	})
	s.srtResyncs = srtResyncs.Load()
	logf("srt players: %d TS resynchronisations", s.srtResyncs)
	// The SRT publisher's send clock is its SRT write: the latency
	// includes the 120 ms of SRT latency (TSBPD holds each packet that
	// long at the receiver) and the demuxer's A/V interleaving.
	s.publishedURL(ctx, srv, srv.srtURL("lowlat", "srtpub", "publish", 120), latKeys[:1], func(pub *publisher, row rowFunc) {
		row(latKeys[0], pub.stream(srv.rtmpURL("srtpub?vhost=lowlat"), srtLatencyPlayers), s.tm)
	})
	s.publishedURL(ctx, srv, srv.rtmpURL("rtmppub?vhost=lowlat"), latKeys[1:], func(pub *publisher, row rowFunc) {
		row(latKeys[1], pub.stream(srv.rtmpURL("rtmppub?vhost=lowlat"), srtLatencyPlayers), s.tm)
	})
}

// webrtcSession runs the webrtc rows: a fresh Rill with the webrtc plugin,
// one RTMP publisher of the HD file, N WHEP viewers (pion peers in this
// tool) joining at 50 per second (each is an HTTP offer/answer, ICE and a
// DTLS handshake).
func (s *suite) webrtcSession(ctx context.Context) {
	var keys []string
	for _, n := range s.rtcNs {
		keys = append(keys, fmt.Sprintf("webrtc/%d", n))
	}
	if ctx.Err() != nil {
		for _, k := range keys {
			s.fail(k, srvRill, ctx.Err().Error())
		}
		return
	}
	srv, err := startRillWith(ctx, s.tmp, s.rillBin, s.pluginDir, "", rillOpts{webrtc: true})
	if err != nil {
		for _, k := range keys {
			s.fail(k, srvRill, err.Error())
		}
		return
	}
	defer srv.stop()
	logf("rill started with webrtc: rtmp %s, api %s", srv.rtmpAddr, srv.apiAddr)
	f := s.hd
	if s.rtcSD {
		f = s.sd
	}
	s.publishedFile(ctx, srv, f, "bench", keys, func(pub *publisher, row rowFunc) {
		for i, n := range s.rtcNs {
			tm := s.tm
			tm.ramp = max(2*time.Second, time.Duration(n)*time.Second/50)
			tm.join = max(tm.join, 20*time.Second)
			row(keys[i], pub.stream(srv.whepURL("bench"), n), tm)
		}
	})
}

// llhlsRes is the LL-HLS result when the scenario ran.
func (s *suite) llhlsRes() (llhlsResult, bool) {
	if s.llhls == nil {
		return llhlsResult{}, false
	}
	return *s.llhls, true
}

// hlsSession measures keyframe-to-playlist time on a server with HLS on.
func (s *suite) hlsSession(ctx context.Context, name string) {
	defer func() {
		r := s.hls[name]
		if r.failed != "" {
			logf("hls          %-10s failed: %s", name, r.failed)
		} else {
			logf("hls          %-10s segments=%d p50=%v max=%v cpu=%.1f%%", name, r.segments, r.p50.Round(time.Millisecond), r.max.Round(time.Millisecond), r.usage.cpu)
		}
	}()
	if ctx.Err() != nil {
		s.hls[name] = hlsResult{failed: ctx.Err().Error()}
		return
	}
	dir, err := os.MkdirTemp(s.tmp, name+"-hls-")
	if err != nil {
		s.hls[name] = hlsResult{failed: err.Error()}
		return
	}
	var srv *server
	var m3u8 string
	if name == srvRill {
		srv, err = startRill(ctx, s.tmp, s.rillBin, s.pluginDir, dir)
		if srv != nil {
			m3u8 = "http://" + srv.httpAddr + "/live/hls.m3u8"
		}
	} else {
		srv, err = startLal(ctx, s.tmp, s.lalBin, dir)
		if srv != nil {
			m3u8 = "http://" + srv.httpAddr + "/hls/hls.m3u8"
		}
	}
	if err != nil {
		s.hls[name] = hlsResult{failed: err.Error()}
		return
	}
	defer srv.stop()
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pub, err := publishOne(pctx, s.hd, srv.rtmpURL("hls"))
	if err != nil {
		s.hls[name] = hlsResult{failed: err.Error()}
		return
	}
	defer func() { pcancel(); <-pub.done }()
	s.hls[name] = measureHLS(ctx, srv, pub, m3u8, s.hlsFor)
}

// session starts a fresh server, runs body and stops the server; when the
// server does not start, the rows of keys fail with the reason.
func (s *suite) session(ctx context.Context, name string, keys []string, body func(*server)) {
	if len(keys) == 0 {
		return
	}
	if ctx.Err() != nil {
		for _, k := range keys {
			s.fail(k, name, ctx.Err().Error())
		}
		return
	}
	var srv *server
	var err error
	if name == srvRill {
		srv, err = startRill(ctx, s.tmp, s.rillBin, s.pluginDir, "")
	} else {
		srv, err = startLal(ctx, s.tmp, s.lalBin, "")
	}
	if err != nil {
		for _, k := range keys {
			s.fail(k, name, err.Error())
		}
		return
	}
	defer srv.stop()
	logf("%s started: rtmp %s, http %s", name, srv.rtmpAddr, srv.httpAddr)
	body(srv)
}

// rowFunc measures one row against the publisher's stream.
type rowFunc func(key string, st stream, tm timing)

// published publishes the HD file to stream on srv for the rows of body,
// then stops publishing. A publisher that cannot publish or fails fails the
// rows.
func (s *suite) published(ctx context.Context, srv *server, streamName string, keys []string, body func(*publisher, rowFunc)) {
	s.publishedFileURL(ctx, srv, s.hd, srv.rtmpURL(streamName), keys, body)
}

// publishedURL is published to a publish URL (rtmp:// or srt://).
func (s *suite) publishedURL(ctx context.Context, srv *server, pubURL string, keys []string, body func(*publisher, rowFunc)) {
	s.publishedFileURL(ctx, srv, s.hd, pubURL, keys, body)
}

// publishedFile is published with the file f.
func (s *suite) publishedFile(ctx context.Context, srv *server, f *replay.File, streamName string, keys []string, body func(*publisher, rowFunc)) {
	s.publishedFileURL(ctx, srv, f, srv.rtmpURL(streamName), keys, body)
}

// publishedFileURL publishes the file f to pubURL for the rows of body.
func (s *suite) publishedFileURL(ctx context.Context, srv *server, f *replay.File, pubURL string, keys []string, body func(*publisher, rowFunc)) {
	if len(keys) == 0 {
		return
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	pub, err := publishOne(pctx, f, pubURL)
	if err != nil {
		for _, k := range keys {
			s.fail(k, srv.name, err.Error())
		}
		return
	}
	defer func() { pcancel(); <-pub.done }()
	sleepCtx(ctx, 2500*time.Millisecond) // a GOP for fast starts
	body(pub, func(key string, st stream, tm timing) {
		switch {
		case ctx.Err() != nil:
			s.fail(key, srv.name, ctx.Err().Error())
		case pub.failed() != nil:
			s.fail(key, srv.name, pub.failed().Error())
		case !srv.alive():
			s.fail(key, srv.name, "server exited: "+srv.logTail())
		default:
			pub.maxLate.Store(0)
			r := measure(ctx, srv, []stream{st}, tm)
			if err := pub.failed(); err != nil && r.failed == "" {
				r.failed = err.Error()
			}
			r.late = time.Duration(pub.maxLate.Load())
			s.put(key, r)
			sleepCtx(ctx, time.Second)
		}
	})
}

// many runs the many-streams row: s.streams publishers of the 500 kbit/s
// file, s.perStr RTMP players each.
func (s *suite) many(ctx context.Context, srv *server) result {
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	var pubs []*publisher
	defer func() {
		pcancel()
		for _, p := range pubs {
			<-p.done
		}
	}()
	var streams []stream
	for i := range s.streams {
		url := srv.rtmpURL(fmt.Sprintf("m%03d", i))
		p, err := publishOne(pctx, s.sd, url)
		if err != nil {
			return result{server: srv.name, failed: fmt.Sprintf("publisher %d: %v", i, err)}
		}
		pubs = append(pubs, p)
		streams = append(streams, p.stream(url, s.perStr))
		sleepCtx(ctx, 10*time.Millisecond) // spread the keyframes
	}
	sleepCtx(ctx, 2500*time.Millisecond)
	r := measure(ctx, srv, streams, s.tm)
	for _, p := range pubs {
		if err := p.failed(); err != nil && r.failed == "" {
			r.failed = "publisher: " + err.Error()
		}
		r.late = max(r.late, time.Duration(p.maxLate.Load()))
	}
	return r
}

// shmResult is the ring measurement of sdk/shm.
type shmResult struct {
	failed string
	header []string
	rows   [][]string
	note   string
}

// measureShm runs sdk/shm's TestMeasure (1 writer process to 1/4/16
// reader processes) and keeps its table.
func measureShm(ctx context.Context, seconds int) shmResult {
	logf("ring: go test -run TestMeasure ./sdk/shm/ (%d s per run)", seconds)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestMeasure$", "-v", "./sdk/shm/")
	cmd.Env = append(os.Environ(), "RILL_SHM_MEASURE=1", "RILL_SHM_MEASURE_SECONDS="+strconv.Itoa(seconds))
	out, err := cmd.CombinedOutput()
	var res shmResult
	for _, line := range strings.Split(string(out), "\n") {
		// t.Logf lines: "    measure_linux_test.go:NN: <text>"
		_, text, ok := strings.Cut(line, "measure_linux_test.go:")
		if !ok {
			continue
		}
		if _, t, ok := strings.Cut(text, ": "); ok {
			text = t
		}
		f := strings.Fields(strings.ReplaceAll(text, "|", " "))
		switch {
		case strings.Contains(text, "CPUs,"):
			res.note = strings.TrimSpace(text)
		case len(f) > 0 && f[0] == "payload":
			res.header = f
		case len(f) >= 10 && strings.HasSuffix(f[0], "KB"):
			res.rows = append(res.rows, f)
		}
	}
	if err != nil || len(res.rows) == 0 {
		msg := "no table in the output"
		if err != nil {
			msg = err.Error()
		}
		tail := strings.TrimSpace(string(out))
		if len(tail) > 300 {
			tail = tail[len(tail)-300:]
		}
		res.failed = msg + ": " + strings.ReplaceAll(tail, "\n", " ")
	}
	return res
}
