package api

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector exports Rill's state in Prometheus form. Counters that the
// sources only know as current values (ring bytes, per-client bytes) are
// accumulated from deltas so they never go backwards.
type collector struct {
	s *Server

	mu        sync.Mutex
	recvLast  map[string]uint64
	sendLast  map[string]uint64
	recvTotal uint64
	sendTotal uint64
	clientIDs map[string]bool
	clientsN  uint64
	// per stream (by hub stream id), dropped when the stream ends
	streamSend map[string]uint64   // bytes sent to the stream's players, accumulated
	streamFPS  map[string]fpsMark  // the last scrape's video frame count
	clientSent map[string]clientAt // each player's bytes at the last scrape

	streams, clients, recvBytes, sendBytes, clientsTotal *prometheus.Desc
	pluginUp, pluginRestarts, pluginCPU, pluginRSS       *prometheus.Desc
	pluginBackoff, pluginCrashLoop                       *prometheus.Desc
	pluginCounter, build                                 *prometheus.Desc
	streamRecv, streamSendBytes, streamPlayers           *prometheus.Desc
	streamFrames, streamFPSDesc                          *prometheus.Desc
}

// fpsMark is a stream's video frame count at a time.
type fpsMark struct {
	frames uint64
	at     time.Time
}

// clientAt is a client's sent bytes at the last scrape and its stream.
type clientAt struct {
	stream string
	sent   uint64
}

var streamLabels = []string{"vhost", "app", "stream"}

func newCollector(s *Server) *collector {
	return &collector{
		s: s, recvLast: map[string]uint64{}, sendLast: map[string]uint64{}, clientIDs: map[string]bool{},
		streamSend: map[string]uint64{}, streamFPS: map[string]fpsMark{}, clientSent: map[string]clientAt{},
		streamRecv:      prometheus.NewDesc("rill_stream_receive_bytes_total", "Media bytes published into the stream since its publish.", streamLabels, nil),
		streamSendBytes: prometheus.NewDesc("rill_stream_send_bytes_total", "Bytes sent to the stream's players since its publish, as the plugins report them.", streamLabels, nil),
		streamPlayers:   prometheus.NewDesc("rill_stream_players", "Players of the stream (every protocol, as the plugins report them).", streamLabels, nil),
		streamFrames:    prometheus.NewDesc("rill_stream_video_frames_total", "Video frames published into the stream since its publish.", streamLabels, nil),
		streamFPSDesc:   prometheus.NewDesc("rill_stream_video_fps", "Video frames per second published, over the time since the previous scrape (since the publish at the first).", streamLabels, nil),
		streams:         prometheus.NewDesc("rill_streams", "Streams with an active publisher.", nil, nil),
		clients:         prometheus.NewDesc("rill_clients", "Connected clients (players and publishers) reported by the plugins.", nil, nil),
		clientsTotal:    prometheus.NewDesc("rill_clients_total", "Clients seen since start.", nil, nil),
		recvBytes:       prometheus.NewDesc("rill_receive_bytes_total", "Media bytes published into the hub.", nil, nil),
		sendBytes:       prometheus.NewDesc("rill_send_bytes_total", "Bytes sent to clients, as the plugins report them.", nil, nil),
		pluginUp:        prometheus.NewDesc("rill_plugin_up", "1 when the plugin process is running.", []string{"plugin"}, nil),
		pluginRestarts:  prometheus.NewDesc("rill_plugin_restarts_total", "Restarts of the plugin process since start.", []string{"plugin"}, nil),
		pluginBackoff:   prometheus.NewDesc("rill_plugin_restart_backoff_seconds", "Delay before the next launch of a plugin that ended (0 while it runs).", []string{"plugin"}, nil),
		pluginCrashLoop: prometheus.NewDesc("rill_plugin_crash_loop", "1 while the plugin has ended quickly or failed to launch 3 times or more in a row.", []string{"plugin"}, nil),
		pluginCPU:       prometheus.NewDesc("rill_plugin_cpu_seconds_total", "CPU time of the plugin process (the current one).", []string{"plugin"}, nil),
		pluginRSS:       prometheus.NewDesc("rill_plugin_resident_memory_bytes", "Resident memory of the plugin process.", []string{"plugin"}, nil),
		pluginCounter:   prometheus.NewDesc("rill_plugin_counter", "A counter a plugin reports (e.g. ring_drops).", []string{"plugin", "name"}, nil),
		build:           prometheus.NewDesc("rill_build_info", "Rill version.", []string{"version", "server_id"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streams, c.clients, c.clientsTotal, c.recvBytes, c.sendBytes, c.pluginUp, c.pluginRestarts, c.pluginBackoff, c.pluginCrashLoop, c.pluginCPU, c.pluginRSS, c.pluginCounter, c.build,
		c.streamRecv, c.streamSendBytes, c.streamPlayers, c.streamFrames, c.streamFPSDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	active := 0
	now := time.Now()
	infos := c.s.Streams.Streams()
	c.mu.Lock()
	for _, si := range infos {
		if si.Active {
			active++
		}
		if !si.HasRing {
			continue
		}
		last := c.recvLast[si.ID]
		if si.Ring.BytesWritten < last { // a republish got a fresh ring
			last = 0
		}
		c.recvTotal += si.Ring.BytesWritten - last
		c.recvLast[si.ID] = si.Ring.BytesWritten
	}
	stats := c.s.clientStats(ctx)
	seen := map[string]uint64{}
	players := map[string]int{} // by vhost/app/stream
	sentNow := map[string]clientAt{}
	for _, cl := range stats {
		seen[cl.Client.ID] = cl.SendBytes
		if cur, last := cl.SendBytes, c.sendLast[cl.Client.ID]; cur >= last {
			c.sendTotal += cur - last
		}
		if !c.clientIDs[cl.Client.ID] {
			c.clientIDs[cl.Client.ID] = true
			c.clientsN++
		}
		if cl.Publish {
			continue
		}
		key := cl.Stream.Key()
		players[key]++
		prev, ok := c.clientSent[cl.Client.ID]
		if !ok || prev.stream != key || cl.SendBytes < prev.sent {
			prev = clientAt{stream: key}
		}
		c.streamSend[key] += cl.SendBytes - prev.sent
		sentNow[cl.Client.ID] = clientAt{stream: key, sent: cl.SendBytes}
	}
	c.clientSent = sentNow
	c.sendLast = seen
	for id := range c.clientIDs { // keep the set bounded to current clients
		if _, ok := seen[id]; !ok {
			delete(c.clientIDs, id)
		}
	}
	type streamRow struct {
		labels             []string
		recv, sent, frames uint64
		players            int
		fps                float64
	}
	var rows []streamRow
	live := map[string]bool{}
	for _, si := range infos {
		if !si.Active || !si.HasRing {
			continue
		}
		key := si.Ref.Key()
		live[key], live[si.ID] = true, true
		frames := si.Ring.KindRecords[1]
		mark, ok := c.streamFPS[si.ID]
		if !ok || frames < mark.frames {
			mark = fpsMark{at: si.Published}
		}
		fps := 0.0
		if dt := now.Sub(mark.at).Seconds(); dt > 0.001 {
			fps = float64(frames-mark.frames) / dt
		}
		c.streamFPS[si.ID] = fpsMark{frames: frames, at: now}
		rows = append(rows, streamRow{
			labels: []string{si.Ref.Vhost, si.Ref.App, si.Ref.Stream},
			recv:   si.Ring.BytesWritten, sent: c.streamSend[key], frames: frames, players: players[key], fps: fps,
		})
	}
	for k := range c.streamSend { // bounded to live streams
		if !live[k] {
			delete(c.streamSend, k)
		}
	}
	for k := range c.streamFPS {
		if !live[k] {
			delete(c.streamFPS, k)
		}
	}
	recv, send, total := c.recvTotal, c.sendTotal, c.clientsN
	c.mu.Unlock()
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(c.streamRecv, prometheus.CounterValue, float64(r.recv), r.labels...)
		ch <- prometheus.MustNewConstMetric(c.streamSendBytes, prometheus.CounterValue, float64(r.sent), r.labels...)
		ch <- prometheus.MustNewConstMetric(c.streamPlayers, prometheus.GaugeValue, float64(r.players), r.labels...)
		ch <- prometheus.MustNewConstMetric(c.streamFrames, prometheus.CounterValue, float64(r.frames), r.labels...)
		ch <- prometheus.MustNewConstMetric(c.streamFPSDesc, prometheus.GaugeValue, r.fps, r.labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.build, prometheus.GaugeValue, 1, c.s.Version, c.s.ServerID)
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(len(stats)))
	ch <- prometheus.MustNewConstMetric(c.clientsTotal, prometheus.CounterValue, float64(total))
	ch <- prometheus.MustNewConstMetric(c.recvBytes, prometheus.CounterValue, float64(recv))
	ch <- prometheus.MustNewConstMetric(c.sendBytes, prometheus.CounterValue, float64(send))
	for _, st := range c.s.Plugins.Statuses() {
		up := 0.0
		if st.State == "running" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.pluginUp, prometheus.GaugeValue, up, st.Name)
		ch <- prometheus.MustNewConstMetric(c.pluginRestarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
		ch <- prometheus.MustNewConstMetric(c.pluginBackoff, prometheus.GaugeValue, float64(st.BackoffMS)/1000, st.Name)
		loop := 0.0
		if st.CrashLoop {
			loop = 1
		}
		ch <- prometheus.MustNewConstMetric(c.pluginCrashLoop, prometheus.GaugeValue, loop, st.Name)
		if st.PID > 0 {
			pid := fmt.Sprint(st.PID)
			if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
				ch <- prometheus.MustNewConstMetric(c.pluginCPU, prometheus.CounterValue, float64(statTicks(b))/clkTck, st.Name)
			}
			ch <- prometheus.MustNewConstMetric(c.pluginRSS, prometheus.GaugeValue, float64(rssKB(pid)*1024), st.Name)
		}
	}
	for _, name := range c.s.Plugins.Names() {
		pc := c.s.Plugins.Client(name)
		if pc == nil {
			continue
		}
		st, err := pc.Stats(ctx)
		if err != nil {
			continue
		}
		for k, v := range st.Counters {
			ch <- prometheus.MustNewConstMetric(c.pluginCounter, prometheus.CounterValue, float64(v), name, strings.ToLower(k))
		}
	}
}

// metricsHandler serves /metrics: Rill's collector plus the core process's
// CPU, memory and Go runtime.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "rill_core"}))
	reg.MustRegister(collectors.NewGoCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
