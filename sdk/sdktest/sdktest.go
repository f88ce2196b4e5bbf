// Package sdktest runs a plugin in-process over real gRPC (go-plugin's test
// connection) against an in-memory host that keeps real shared-memory rings
// in a temporary directory: a plugin author's unit tests exercise the same
// code paths as under the core, without the core.
//
//	h := sdktest.New(t, &myplugin.Server{})
//	h.Configure(t, sdktest.Config{Settings: `{"greeting":"hi"}`})
//	h.Start(t)
//	pub := h.Publish(t, sdk.StreamRef{Vhost: "__defaultVhost__", App: "live", Stream: "x"})
//	pub.Write(pkt) // the plugin got a StreamPublished event and may read it
package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/shm"
	"github.com/rill-media/rill/sdk/wire"
)

// Harness is one plugin under test and its in-memory host.
type Harness struct {
	Plugin *wire.PluginClient
	Host   *Host
	client *plugin.GRPCClient
}

// New serves p over an in-process gRPC connection. The connection and the
// host's rings are closed at the end of the test.
func New(t testing.TB, p sdk.Plugin) *Harness {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: p.Info().Name, Level: hclog.Warn, Output: os.Stderr})
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		wire.PluginKey: &wire.GRPCPlugin{Impl: sdk.NewWirePlugin(p, log)},
	})
	raw, err := client.Dispense(wire.PluginKey)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	dir, err := os.MkdirTemp("/dev/shm", "rill-sdktest-")
	if err != nil {
		dir = t.TempDir()
	}
	h := &Harness{Plugin: raw.(*wire.PluginClient), client: client, Host: newHost(dir)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Plugin.Stop(ctx, 3*time.Second)
		_ = client.Close()
		h.Host.close()
		_ = os.RemoveAll(dir)
	})
	return h
}

// Config is a configuration in the JSON form the core sends.
type Config struct {
	Settings string  // the plugin block's keys, as JSON
	Vhosts   []Vhost // default: one __defaultVhost__, enabled, with gop_cache
}

// Vhost is one vhost of a Config.
type Vhost struct {
	Name     string
	Disabled bool
	Settings string // the plugin's block in the vhost, as JSON
	Shared   string // the vhost's shared blocks as a JSON object, e.g. {"forward":{...}}
}

// Configure sends cfg and returns the problems the plugin reported.
func (h *Harness) Configure(t testing.TB, cfg Config) []wire.ConfigProblem {
	t.Helper()
	if len(cfg.Vhosts) == 0 {
		cfg.Vhosts = []Vhost{{Name: "__defaultVhost__"}}
	}
	req := wire.ConfigRequest{SettingsJSON: []byte(orEmpty(cfg.Settings))}
	for _, v := range cfg.Vhosts {
		vj, _ := json.Marshal(map[string]any{"gop_cache": true, "blocks": json.RawMessage(orEmpty(v.Shared))})
		req.Vhosts = append(req.Vhosts, wire.VhostConfig{Name: v.Name, Enabled: !v.Disabled, SettingsJSON: []byte(orEmpty(v.Settings)), VhostJSON: vj})
	}
	problems, err := h.Plugin.Configure(context.Background(), req)
	if err != nil {
		t.Fatalf("configure: %v", err)
	}
	return problems
}

func orEmpty(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// Start starts the plugin with the harness's host.
func (h *Harness) Start(t testing.TB) {
	t.Helper()
	h.Host.plugin = h.Plugin
	err := h.Plugin.Start(context.Background(), wire.StartRequest{InstanceID: "sdktest", ShmDir: h.Host.dir, ServerID: "vid-sdktest"}, h.Host)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
}

// Publish claims a stream on the test's side (as another plugin would) and
// tells the plugin it was published; write packets to the returned writer.
func (h *Harness) Publish(t testing.TB, ref sdk.StreamRef) *Publication {
	t.Helper()
	pub, err := h.Host.Publish(context.Background(), wire.PublishRequest{Client: wire.ClientInfo{ID: "sdktestpub"}, Stream: wire.StreamRef{Vhost: ref.Vhost, App: ref.App, Stream: ref.Stream, Param: ref.Param, TcURL: ref.TcURL}})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	seg, err := shm.Open(pub.Ring, true)
	if err != nil {
		t.Fatalf("open ring: %v", err)
	}
	t.Cleanup(func() { seg.Close() })
	return &Publication{h: h, id: pub.PublicationID, Writer: shm.NewWriter(seg.Ring), seg: seg}
}

// Publication is a stream the test writes.
type Publication struct {
	// Writer writes ring records; use it with shm.Meta, or sdk.Publication's
	// layout (media flags shifted left by 8, FlagSync on keyframes).
	Writer *shm.Writer
	h      *Harness
	id     string
	seg    *shm.Segment
}

// End unpublishes the stream.
func (p *Publication) End() { _ = p.h.Host.Unpublish(context.Background(), p.id) }

// Host is the in-memory host: one ring per stream, events recorded.
type Host struct {
	dir    string
	plugin *wire.PluginClient

	mu     sync.Mutex
	seq    int
	rings  map[string]*shm.Segment // by stream key
	pubs   map[string]string       // publication id -> stream key
	events []wire.ClientEvent
	notes  []wire.Notification
}

func newHost(dir string) *Host {
	return &Host{dir: dir, rings: map[string]*shm.Segment{}, pubs: map[string]string{}}
}

func (h *Host) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.rings {
		s.Ring.End()
		s.Close()
	}
}

// ClientEvents returns the client events the plugin reported.
func (h *Host) ClientEvents() []wire.ClientEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wire.ClientEvent(nil), h.events...)
}

// Notifications returns the events (on_hls, on_dvr, ...) the plugin reported.
func (h *Host) Notifications() []wire.Notification {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wire.Notification(nil), h.notes...)
}

// Publish implements wire.Host.
func (h *Host) Publish(ctx context.Context, req wire.PublishRequest) (wire.Publication, error) {
	h.mu.Lock()
	key := req.Stream.Key()
	if s, ok := h.rings[key]; ok && !s.Ring.Ended() {
		h.mu.Unlock()
		return wire.Publication{}, wire.Errorf(wire.ErrStreamBusy, "stream %s is already published", key)
	}
	h.seq++
	path := filepath.Join(h.dir, fmt.Sprintf("ring-%d", h.seq))
	seg, err := shm.Create(path, shm.Options{DataSize: 1 << 20, Slots: 1024})
	if err != nil {
		h.mu.Unlock()
		return wire.Publication{}, err
	}
	h.rings[key] = seg
	id := fmt.Sprintf("pub-%d", h.seq)
	h.pubs[id] = key
	pl := h.plugin
	h.mu.Unlock()
	if pl != nil {
		go func() {
			_ = pl.StreamEvent(context.Background(), wire.StreamEvent{Type: wire.StreamPublished, Stream: req.Stream, StreamID: key, Ring: path, Publisher: req.Client})
		}()
	}
	return wire.Publication{Ring: path, StreamID: key, PublicationID: id}, nil
}

// Unpublish implements wire.Host.
func (h *Host) Unpublish(ctx context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	key, ok := h.pubs[id]
	if !ok {
		return wire.Errorf(wire.ErrNotFound, "no publication %s", id)
	}
	delete(h.pubs, id)
	h.rings[key].Ring.End()
	return nil
}

// Subscribe implements wire.Host (waiting up to req.Wait for a publisher).
func (h *Host) Subscribe(ctx context.Context, req wire.SubscribeRequest) (wire.Subscription, error) {
	deadline := time.Now().Add(req.Wait)
	for {
		h.mu.Lock()
		s, ok := h.rings[req.Stream.Key()]
		h.mu.Unlock()
		if ok && !s.Ring.Ended() {
			return wire.Subscription{Ring: s.Path, StreamID: req.Stream.Key(), SubscriptionID: "sub-" + req.Client.ID, GopCache: true, Vhost: req.Stream.Vhost}, nil
		}
		if time.Now().After(deadline) {
			return wire.Subscription{}, wire.Errorf(wire.ErrNotFound, "stream %s is not published", req.Stream.Key())
		}
		select {
		case <-ctx.Done():
			return wire.Subscription{}, wire.Errorf(wire.ErrTimeout, "%v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Unsubscribe implements wire.Host.
func (h *Host) Unsubscribe(context.Context, string) error { return nil }

// ClientEvent implements wire.Host: it records the event and allows it.
func (h *Host) ClientEvent(_ context.Context, ev wire.ClientEvent) error {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	return nil
}

// Notify implements wire.Host: it records the notification.
func (h *Host) Notify(_ context.Context, n wire.Notification) error {
	h.mu.Lock()
	h.notes = append(h.notes, n)
	h.mu.Unlock()
	return nil
}
