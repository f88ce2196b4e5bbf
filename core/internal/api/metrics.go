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

	streams, clients, recvBytes, sendBytes, clientsTotal *prometheus.Desc
	pluginUp, pluginRestarts, pluginCPU, pluginRSS       *prometheus.Desc
	pluginCounter, build                                 *prometheus.Desc
}

func newCollector(s *Server) *collector {
	return &collector{
		s: s, recvLast: map[string]uint64{}, sendLast: map[string]uint64{}, clientIDs: map[string]bool{},
		streams:        prometheus.NewDesc("rill_streams", "Streams with an active publisher.", nil, nil),
		clients:        prometheus.NewDesc("rill_clients", "Connected clients (players and publishers) reported by the plugins.", nil, nil),
		clientsTotal:   prometheus.NewDesc("rill_clients_total", "Clients seen since start.", nil, nil),
		recvBytes:      prometheus.NewDesc("rill_receive_bytes_total", "Media bytes published into the hub.", nil, nil),
		sendBytes:      prometheus.NewDesc("rill_send_bytes_total", "Bytes sent to clients, as the plugins report them.", nil, nil),
		pluginUp:       prometheus.NewDesc("rill_plugin_up", "1 when the plugin process is running.", []string{"plugin"}, nil),
		pluginRestarts: prometheus.NewDesc("rill_plugin_restarts_total", "Restarts of the plugin process since start.", []string{"plugin"}, nil),
		pluginCPU:      prometheus.NewDesc("rill_plugin_cpu_seconds_total", "CPU time of the plugin process (the current one).", []string{"plugin"}, nil),
		pluginRSS:      prometheus.NewDesc("rill_plugin_resident_memory_bytes", "Resident memory of the plugin process.", []string{"plugin"}, nil),
		pluginCounter:  prometheus.NewDesc("rill_plugin_counter", "A counter a plugin reports (e.g. ring_drops).", []string{"plugin", "name"}, nil),
		build:          prometheus.NewDesc("rill_build_info", "Rill version.", []string{"version", "server_id"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streams, c.clients, c.clientsTotal, c.recvBytes, c.sendBytes, c.pluginUp, c.pluginRestarts, c.pluginCPU, c.pluginRSS, c.pluginCounter, c.build} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	active := 0
	c.mu.Lock()
	for _, si := range c.s.Streams.Streams() {
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
	for _, cl := range stats {
		seen[cl.Client.ID] = cl.SendBytes
		if cur, last := cl.SendBytes, c.sendLast[cl.Client.ID]; cur >= last {
			c.sendTotal += cur - last
		}
		if !c.clientIDs[cl.Client.ID] {
			c.clientIDs[cl.Client.ID] = true
			c.clientsN++
		}
	}
	c.sendLast = seen
	for id := range c.clientIDs { // keep the set bounded to current clients
		if _, ok := seen[id]; !ok {
			delete(c.clientIDs, id)
		}
	}
	recv, send, total := c.recvTotal, c.sendTotal, c.clientsN
	c.mu.Unlock()
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
