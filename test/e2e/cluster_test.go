package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// freeAddr returns a loopback address free at the time of the call, for
// daemons that must know each other's API address before they start.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clusterNode is one daemon of a cluster test: rtmp and httpstream.
type clusterNode struct {
	d          *Daemon
	rtmp, http string
}

func startClusterNode(t *testing.T, name, api, cluster string) clusterNode {
	t.Helper()
	return startClusterNodeWith(t, name, api, cluster, "", "")
}

// startClusterNodeWith is startClusterNode with more keys in the rtmp
// plugin block and in the default vhost.
func startClusterNodeWith(t *testing.T, name, api, cluster, rtmpBlock, vhost string) clusterNode {
	t.Helper()
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		API:     api,
		Blocks: map[string]string{
			"rtmp":       "  listen = [\"127.0.0.1:0\"]\n" + rtmpBlock,
			"httpstream": `  listen = ["127.0.0.1:0"]`,
		},
		Extra: fmt.Sprintf(`vhost "__defaultVhost__" {
  hls {
    enabled  = true
    fragment = "1s"
    window   = "6s"
    path     = %q
  }
  cluster {
%s
  }
%s
}
`, t.TempDir(), cluster, vhost),
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s daemon log:\n%s", name, d.Log())
		}
	})
	ps := waitRunning(t, d, "rtmp", "httpstream")
	return clusterNode{d: d, rtmp: ps["rtmp"].Listeners[0].Addr, http: hlsAddr(t, d)}
}

// flvReader reads an HTTP-FLV stream in the background and counts bytes,
// until the test ends.
type flvReader struct{ n atomic.Int64 }

func readFLV(t *testing.T, url string) *flvReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	r := &flvReader{}
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			r.n.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return r
}

// growsBy waits until the reader got more bytes than now plus n.
func (r *flvReader) growsBy(t *testing.T, what string, n int64, timeout time.Duration) {
	t.Helper()
	from := r.n.Load()
	Eventually(t, timeout, what, func() error {
		if got := r.n.Load() - from; got <= n {
			return fmt.Errorf("%d bytes since, want more than %d", got, n)
		}
		return nil
	})
}

type clustersReply struct {
	Code int `json:"code"`
	Data struct {
		Query  map[string]string `json:"query"`
		Origin *struct {
			IP      string   `json:"ip"`
			Port    int      `json:"port"`
			Vhost   string   `json:"vhost"`
			API     string   `json:"api"`
			Routers []string `json:"routers"`
		} `json:"origin"`
	} `json:"data"`
}

func wantCodecs(t *testing.T, what string, p probeOut) {
	t.Helper()
	codecs := map[string]string{}
	for _, s := range p.Streams {
		codecs[s.CodecType] = s.CodecName
	}
	if codecs["video"] != "h264" || codecs["audio"] != "aac" || len(p.Packets) < 50 {
		t.Fatalf("%s: codecs %v, %d packets", what, codecs, len(p.Packets))
	}
}

// TestOriginClusterStatic: two origins that know each other by the static
// coworkers list and an edge of both. A stream published to origin A
// plays from origin B (which asks A over /api/v1/clusters and pulls it)
// and from the edge, over RTMP, HTTP-FLV and HLS. Origin A's daemon is
// killed; the stream is published again to B; the edge's players go on
// on the same connections.
func TestOriginClusterStatic(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	apiA, apiB := freeAddr(t), freeAddr(t)
	a := startClusterNode(t, "origin A", apiA, fmt.Sprintf("    origin_cluster = true\n    coworkers = [%q]", apiB))
	b := startClusterNode(t, "origin B", apiB, fmt.Sprintf("    origin_cluster = true\n    coworkers = [%q]", apiA))
	edge := startClusterNode(t, "edge", "", fmt.Sprintf("    mode = \"remote\"\n    origin = [%q, %q]", a.rtmp, b.rtmp))

	ffmpegPublish(t, "rtmp://"+a.rtmp+"/live/oc", 120)
	waitPublished(t, a.d, "live", "oc")

	// SRS's lookup: A has a publisher of it, B does not.
	var ra, rb clustersReply
	q := "/api/v1/clusters?vhost=__defaultVhost__&ip=127.0.0.1&app=live&stream=oc&coworker=" + apiA
	if err := a.d.GetJSON(q, &ra); err != nil {
		t.Fatal(err)
	}
	_, portA, _ := net.SplitHostPort(a.rtmp)
	if ra.Code != 0 || ra.Data.Origin == nil || ra.Data.Origin.IP != "127.0.0.1" || fmt.Sprint(ra.Data.Origin.Port) != portA ||
		ra.Data.Origin.API != apiA || ra.Data.Query["stream"] != "oc" || ra.Data.Query["app"] != "live" {
		t.Fatalf("origin A's clusters answer: %+v (origin %+v), want ip 127.0.0.1 port %s", ra, ra.Data.Origin, portA)
	}
	if err := b.d.GetJSON("/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=oc", &rb); err != nil {
		t.Fatal(err)
	}
	if rb.Code != 0 || rb.Data.Origin != nil {
		t.Fatalf("origin B's clusters answer before any player: %+v", rb)
	}

	// Origin B has no publisher: its players get A's stream.
	wantCodecs(t, "rtmp from origin B", ffprobe(t, "rtmp://"+b.rtmp+"/live/oc", 3))
	httpWantCodecs(t, "http-flv from origin B", httpProbe(t, "http://"+b.http+"/live/oc.flv", 3), "h264", "aac")
	if !strings.Contains(b.d.Log(), "origin cluster: pulling from coworker") {
		t.Fatal("origin B did not log its pull from the coworker")
	}
	// B's copy is not announced as B's own (no loop between coworkers).
	if err := b.d.GetJSON("/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=oc", &rb); err != nil {
		t.Fatal(err)
	}
	if rb.Data.Origin != nil {
		t.Fatalf("origin B announces its relayed copy: %+v", rb.Data.Origin)
	}

	// The edge pulls from A (its first origin) for RTMP and HTTP-FLV players.
	wantCodecs(t, "rtmp from the edge", ffprobe(t, "rtmp://"+edge.rtmp+"/live/oc", 3))
	httpWantCodecs(t, "http-flv from the edge", httpProbe(t, "http://"+edge.http+"/live/oc.flv", 3), "h264", "aac")

	// Long-lived players keep the stream pulled on B and on the edge;
	// their HLS muxers run on the pulled streams.
	onB := readFLV(t, "http://"+b.http+"/live/oc.flv")
	onEdge := readFLV(t, "http://"+edge.http+"/live/oc.flv")
	edgeRTMP := newGoPlayer(t, "rtmp://"+edge.rtmp+"/live/oc")
	onB.growsBy(t, "http-flv on B", 50<<10, 20*time.Second)
	onEdge.growsBy(t, "http-flv on the edge", 50<<10, 20*time.Second)
	for _, n := range []struct {
		name string
		node clusterNode
	}{{"origin B", b}, {"edge", edge}} {
		url := "http://" + n.node.http + "/live/oc.m3u8"
		waitPlaylist(t, url, 30*time.Second, "hls on "+n.name, func(p hlsPlaylist) error {
			if len(p.URIs) < 2 {
				return fmt.Errorf("%d segments", len(p.URIs))
			}
			return nil
		})
		httpWantCodecs(t, "hls from "+n.name, httpProbe(t, url, 2), "h264", "aac")
	}

	// Origin A dies; the stream is published again, to B. The edge fails
	// over to B and its players go on.
	a.d.Kill()
	ffmpegPublish(t, "rtmp://"+b.rtmp+"/live/oc", 120)
	waitPublished(t, b.d, "live", "oc")
	onEdge.growsBy(t, "http-flv on the edge after the failover", 200<<10, 40*time.Second)
	v := edgeRTMP.video.Load()
	Eventually(t, 40*time.Second, "rtmp player on the edge after the failover", func() error {
		if got := edgeRTMP.video.Load() - v; got < 50 {
			return fmt.Errorf("%d video messages since", got)
		}
		return nil
	})
	if !strings.Contains(edge.d.Log(), "origin="+b.rtmp) {
		t.Fatalf("the edge did not log pulling from origin B %s", b.rtmp)
	}
	// B's publisher now answers the lookup.
	if err := b.d.GetJSON("/api/v1/clusters?vhost=__defaultVhost__&app=live&stream=oc", &rb); err != nil {
		t.Fatal(err)
	}
	if rb.Data.Origin == nil {
		t.Fatal("origin B does not announce its own publisher")
	}
}

// logLines returns the lines of a daemon's log holding every one of subs.
func logLines(d *Daemon, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(d.Log(), "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// TestEdgeExtras: an edge of two origins that check tokens in on_connect.
// token_traverse: a client with a good token plays through the edge, one
// with a bad token is refused by the origin's hook and so by the edge.
// Round robin: two streams are pulled from the two origins. The pull goes
// on for edge_idle after its last player left (a player coming back finds
// it) and stops after. HLS alone on the edge (no other player) makes the
// edge pull the stream.
func TestEdgeExtras(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	file := makeFLV(t, 90)
	var pushes sync.WaitGroup
	t.Cleanup(pushes.Wait) // after the daemons stopped (cleanups run last first)
	tb := newTokenBackend(t, []string{"good"}, []string{"good"})
	hooks := fmt.Sprintf("  hooks {\n    on_connect = [%q]\n    on_publish = [%q]\n    timeout = \"5s\"\n  }", tb.URL+"/auth", tb.URL+"/auth")
	o1 := startClusterNodeWith(t, "origin 1", "", `    mode = "local"`, "", hooks)
	o2 := startClusterNodeWith(t, "origin 2", "", `    mode = "local"`, "", hooks)
	for _, o := range []clusterNode{o1, o2} {
		for _, st := range []string{"a", "b", "c"} {
			url := "rtmp://" + o.rtmp + "/live/" + st + "?token=good"
			pushes.Add(1)
			go func() {
				defer pushes.Done()
				_ = pushFLV(t, file, url, 0, 1)
			}()
		}
		for _, st := range []string{"a", "b", "c"} {
			waitPublished(t, o.d, "live", st)
		}
	}
	edge := startClusterNodeWith(t, "edge", "",
		fmt.Sprintf("    mode = \"remote\"\n    origin = [%q, %q]\n    token_traverse = true\n    debug_srs_upnode = false\n    follow_client = false", o1.rtmp, o2.rtmp),
		`  edge_idle = "20s"`, "")

	// token_traverse: the origin's hook decides.
	wantCodecs(t, "rtmp from the edge with a good token", ffprobe(t, "rtmp://"+edge.rtmp+"/live/a?token=good", 2))
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "15000000", "-show_streams",
		"rtmp://"+edge.rtmp+"/live/a?token=bad").CombinedOutput()
	if err == nil {
		t.Fatalf("a bad token played through the edge: %s", out)
	}
	if c := tb.calls("on_connect", "bad"); len(c) != 1 || c[0].allowed || c[0].stream != "a" {
		t.Fatalf("on_connect at the origins with the bad token: %+v", c)
	}
	if l := logLines(edge.d, "token traverse: origin", "refused the client", "client_id="); len(l) != 1 {
		t.Fatalf("edge log lines of the refusal: %q", l)
	}

	// The first player left; one comes back within edge_idle: same pull.
	wantCodecs(t, "rtmp from the edge again", ffprobe(t, "rtmp://"+edge.rtmp+"/live/a?token=good", 2))
	if l := logLines(edge.d, "edge pulling", "live/a"); len(l) != 1 {
		t.Fatalf("edge pulls of live/a: %q, want one (the second player came within edge_idle)", l)
	}
	if len(logLines(edge.d, "edge pull wanted again before it stopped", "live/a")) == 0 {
		t.Fatal("the edge did not note the pull wanted again")
	}

	// Round robin: the next stream is pulled from the other origin.
	httpWantCodecs(t, "http-flv from the edge", httpProbe(t, "http://"+edge.http+"/live/b.flv?token=good", 2), "h264", "aac")
	pa, pb := logLines(edge.d, "edge pulling", "live/a"), logLines(edge.d, "edge pulling", "live/b")
	if len(pb) != 1 {
		t.Fatalf("edge pulls of live/b: %q", pb)
	}
	for _, o := range []string{o1.rtmp, o2.rtmp} {
		if strings.Contains(pa[0], o) == strings.Contains(pb[0], o) {
			t.Fatalf("live/a and live/b pulled from the same origin:\n%s\n%s", pa[0], pb[0])
		}
	}

	// HLS alone: the playlist request makes the edge pull (with its token).
	url := "http://" + edge.http + "/live/c.m3u8?token=good"
	if code, _, _ := httpGet(t, url); code != http.StatusNotFound {
		t.Fatalf("first playlist request of a stream not pulled yet: %d, want 404", code)
	}
	waitPlaylist(t, url, 40*time.Second, "hls of live/c on the edge", func(p hlsPlaylist) error {
		if len(p.URIs) < 2 {
			return fmt.Errorf("%d segments", len(p.URIs))
		}
		return nil
	})
	if len(logLines(edge.d, "edge pulling", "live/c")) != 1 {
		t.Fatal("the edge did not pull live/c for the hls player")
	}

	// Nobody plays live/a any more: the pull stops after edge_idle.
	Eventually(t, 60*time.Second, "edge pull of live/a stopped", func() error {
		if len(logLines(edge.d, "edge pull stopped", "live/a")) == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
}

// startRedis runs Debian's redis-server on a free loopback port for the
// test and returns a client of it.
func startRedis(t *testing.T) (string, *redis.Client) {
	t.Helper()
	needTool(t, "redis-server")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	Eventually(t, 10*time.Second, "redis-server answers", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err()
	})
	return addr, rdb
}

func registryGet(rdb *redis.Client, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return rdb.Get(ctx, key).Result()
}

// TestOriginClusterRedis: the two origins have no coworkers list; they
// find each other's streams in a Redis registry (Debian's redis-server,
// started here). A stream published to A is registered with A's address;
// B and the edge play it (RTMP, HTTP-FLV, HLS); A's daemon is killed and
// its key expires (no heartbeat); the stream published again to B is
// registered with B's address and the edge's players go on.
func TestOriginClusterRedis(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	raddr, rdb := startRedis(t)
	reg := fmt.Sprintf("  cluster_registry = \"redis://%s/0\"\n  cluster_registry_ttl = \"3s\"", raddr)
	a := startClusterNodeWith(t, "origin A", "", "    origin_cluster = true", reg, "")
	b := startClusterNodeWith(t, "origin B", "", "    origin_cluster = true", reg, "")
	edge := startClusterNode(t, "edge", "", fmt.Sprintf("    mode = \"remote\"\n    origin = [%q, %q]", a.rtmp, b.rtmp))

	const key = "rill:origin:__defaultVhost__/live/rc"
	ffmpegPublish(t, "rtmp://"+a.rtmp+"/live/rc", 120)
	waitPublished(t, a.d, "live", "rc")
	Eventually(t, 10*time.Second, "stream registered with origin A", func() error {
		v, err := registryGet(rdb, key)
		if err != nil || v != a.rtmp {
			return fmt.Errorf("registry %s = %q, %v; want %s", key, v, err, a.rtmp)
		}
		return nil
	})

	wantCodecs(t, "rtmp from origin B", ffprobe(t, "rtmp://"+b.rtmp+"/live/rc", 3))
	httpWantCodecs(t, "http-flv from origin B", httpProbe(t, "http://"+b.http+"/live/rc.flv", 3), "h264", "aac")
	if len(logLines(b.d, "origin cluster: pulling from coworker", "coworker=registry", "origin="+a.rtmp)) == 0 {
		t.Fatal("origin B did not pull from A through the registry")
	}
	// B's copy is not registered as B's.
	if v, _ := registryGet(rdb, key); v != a.rtmp {
		t.Fatalf("registry names %q after B pulled, want A %s", v, a.rtmp)
	}

	onEdge := readFLV(t, "http://"+edge.http+"/live/rc.flv")
	edgeRTMP := newGoPlayer(t, "rtmp://"+edge.rtmp+"/live/rc")
	onEdge.growsBy(t, "http-flv on the edge", 50<<10, 20*time.Second)
	for _, n := range []struct {
		name string
		node clusterNode
	}{{"origin B", b}, {"edge", edge}} {
		// HLS alone on B (no other player holds the pull there now): the
		// playlist request wants the stream.
		url := "http://" + n.node.http + "/live/rc.m3u8"
		waitPlaylist(t, url, 40*time.Second, "hls on "+n.name, func(p hlsPlaylist) error {
			if len(p.URIs) < 2 {
				return fmt.Errorf("%d segments", len(p.URIs))
			}
			return nil
		})
		httpWantCodecs(t, "hls from "+n.name, httpProbe(t, url, 2), "h264", "aac")
	}

	// A dies without a word: its key expires.
	a.d.Kill()
	Eventually(t, 30*time.Second, "origin A's registry key expired", func() error {
		v, err := registryGet(rdb, key)
		if !errors.Is(err, redis.Nil) {
			return fmt.Errorf("registry %s = %q, %v", key, v, err)
		}
		return nil
	})
	ffmpegPublish(t, "rtmp://"+b.rtmp+"/live/rc", 120)
	waitPublished(t, b.d, "live", "rc")
	Eventually(t, 10*time.Second, "stream registered with origin B", func() error {
		v, err := registryGet(rdb, key)
		if err != nil || v != b.rtmp {
			return fmt.Errorf("registry %s = %q, %v; want %s", key, v, err, b.rtmp)
		}
		return nil
	})
	onEdge.growsBy(t, "http-flv on the edge after the failover", 200<<10, 40*time.Second)
	v := edgeRTMP.video.Load()
	Eventually(t, 40*time.Second, "rtmp player on the edge after the failover", func() error {
		if got := edgeRTMP.video.Load() - v; got < 50 {
			return fmt.Errorf("%d video messages since", got)
		}
		return nil
	})
}

// TestOriginClusterRedirect: with rtmp { cluster_redirect = true } an
// origin answers an RTMP player of a stream its coworker has with SRS's
// 302 redirect (onStatus NetConnection.Connect.Rejected, ex.redirect2 the
// coworker's URL) and closes; FFmpeg does not follow it; HTTP-FLV players
// of the same origin still get the stream pulled from the coworker.
func TestOriginClusterRedirect(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	apiA, apiB := freeAddr(t), freeAddr(t)
	a := startClusterNode(t, "origin A", apiA, fmt.Sprintf("    origin_cluster = true\n    coworkers = [%q]", apiB))
	b := startClusterNodeWith(t, "origin B", apiB, fmt.Sprintf("    origin_cluster = true\n    coworkers = [%q]", apiA), "",
		"  rtmp {\n    cluster_redirect = true\n  }")
	ffmpegPublish(t, "rtmp://"+a.rtmp+"/live/rd", 60)
	waitPublished(t, a.d, "live", "rd")

	r := dialRaw(t, b.rtmp, true)
	r.connect("live", "rtmp://"+b.rtmp+"/live")
	r.play("rd")
	_ = r.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got []byte
	buf := make([]byte, 64<<10)
	for len(got) < 1<<20 {
		n, err := r.nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("origin B did not close the redirected player; read %q", got)
			}
			break
		}
	}
	for _, want := range []string{"NetConnection.Connect.Rejected", "RTMP 302 Redirect", "redirect2", "rtmp://" + a.rtmp + "/live/rd", "rtmp://" + a.rtmp + "/live"} {
		if !strings.Contains(string(got), want) {
			t.Fatalf("the answer to the player has no %q: %q", want, got)
		}
	}
	Eventually(t, 10*time.Second, "origin B logs the redirect", func() error {
		if len(logLines(b.d, "origin cluster: player redirected", "live/rd")) != 1 {
			return fmt.Errorf("no log line")
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rw_timeout", "15000000", "-show_streams",
		"rtmp://"+b.rtmp+"/live/rd").CombinedOutput()
	if err == nil && strings.Contains(string(out), "codec_name=h264") {
		t.Fatalf("ffprobe played through a redirect (it follows them now: the default could change): %s", out)
	}
	t.Logf("ffprobe at the redirect: %v: %s", err, strings.TrimSpace(string(out)))

	httpWantCodecs(t, "http-flv from origin B", httpProbe(t, "http://"+b.http+"/live/rd.flv", 3), "h264", "aac")
}
