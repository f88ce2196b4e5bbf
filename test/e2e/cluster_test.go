package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
	d := StartDaemon(t, Config{
		Plugins: []string{"rtmp", "httpstream"},
		API:     api,
		Blocks: map[string]string{
			"rtmp":       `  listen = ["127.0.0.1:0"]`,
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
}
`, t.TempDir(), cluster),
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
