package wire

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/rill-media/rill/sdk/internal/pb"
)

// Plugin is what a plugin process implements (package sdk adapts a plugin
// author's type to it) and what the core calls through *PluginClient.
type Plugin interface {
	Describe(ctx context.Context) (Info, error)
	Configure(ctx context.Context, req ConfigRequest) ([]ConfigProblem, error)
	Start(ctx context.Context, req StartRequest, host Host) error
	Stop(ctx context.Context, timeout time.Duration) error
	StreamEvent(ctx context.Context, ev StreamEvent) error
	Kick(ctx context.Context, clientID string) (bool, error)
	ServeHTTP(ctx context.Context, req HTTPRequest) (HTTPResponse, error)
	Stats(ctx context.Context) (Stats, error)
}

// Host is what the core implements and a plugin calls.
type Host interface {
	Publish(ctx context.Context, req PublishRequest) (Publication, error)
	Unpublish(ctx context.Context, publicationID string) error
	Subscribe(ctx context.Context, req SubscribeRequest) (Subscription, error)
	Unsubscribe(ctx context.Context, subscriptionID string) error
	ClientEvent(ctx context.Context, ev ClientEvent) error
	Notify(ctx context.Context, n Notification) error
}

// GRPCPlugin is the go-plugin plugin.GRPCPlugin of Rill. In a plugin process
// Impl is set; in the core it is left nil and GRPCClient returns *PluginClient.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Plugin
}

var _ plugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the plugin service (plugin side).
func (p *GRPCPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("wire: no plugin implementation")
	}
	pb.RegisterPluginServer(s, &pluginServer{impl: p.Impl, broker: broker})
	return nil
}

// GRPCClient returns a *PluginClient (core side).
func (p *GRPCPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &PluginClient{rpc: pb.NewPluginClient(c), broker: broker}, nil
}

// PluginClient is the core's handle on one plugin process.
type PluginClient struct {
	rpc    pb.PluginClient
	broker *plugin.GRPCBroker
}

// Describe asks the plugin who it is.
func (c *PluginClient) Describe(ctx context.Context) (Info, error) {
	r, err := c.rpc.Describe(ctx, &pb.DescribeRequest{CoreApiVersion: APIVersion})
	if err != nil {
		return Info{}, FromStatus(err)
	}
	return infoFromPB(r), nil
}

// Configure sends the plugin its configuration and returns what it rejected.
func (c *PluginClient) Configure(ctx context.Context, req ConfigRequest) ([]ConfigProblem, error) {
	in := &pb.ConfigureRequest{DryRun: req.DryRun, SettingsJson: req.SettingsJSON, Generation: req.Generation}
	for _, v := range req.Vhosts {
		in.Vhosts = append(in.Vhosts, &pb.VhostConfig{Name: v.Name, Enabled: v.Enabled, SettingsJson: v.SettingsJSON, VhostJson: v.VhostJSON})
	}
	r, err := c.rpc.Configure(ctx, in)
	if err != nil {
		return nil, FromStatus(err)
	}
	var out []ConfigProblem
	for _, p := range r.Problems {
		out = append(out, ConfigProblem{Vhost: p.Vhost, KeyPath: p.KeyPath, Message: p.Message, VhostRelative: p.VhostRelative})
	}
	return out, nil
}

// Start serves host to the plugin through the broker and starts the plugin.
func (c *PluginClient) Start(ctx context.Context, req StartRequest, host Host) error {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		pb.RegisterHostServer(s, &hostServer{impl: host})
		return s
	})
	in := &pb.StartRequest{HostBrokerId: id, InstanceId: req.InstanceID, ShmDir: req.ShmDir, ServerId: req.ServerID}
	for _, l := range req.Listeners {
		in.Listeners = append(in.Listeners, &pb.BoundListener{Name: l.Name, Network: l.Network, Addr: l.Addr, FdIndex: l.FDIndex})
	}
	_, err := c.rpc.Start(ctx, in)
	return FromStatus(err)
}

// Stop asks the plugin to stop gracefully within timeout.
func (c *PluginClient) Stop(ctx context.Context, timeout time.Duration) error {
	_, err := c.rpc.Stop(ctx, &pb.StopRequest{TimeoutMs: timeout.Milliseconds()})
	return FromStatus(err)
}

// StreamEvent tells the plugin about a stream of its vhosts.
func (c *PluginClient) StreamEvent(ctx context.Context, ev StreamEvent) error {
	_, err := c.rpc.StreamEvent(ctx, &pb.StreamEventRequest{
		Type: pb.StreamEventRequest_Type(ev.Type), Stream: streamToPB(ev.Stream), StreamId: ev.StreamID, Ring: ev.Ring,
		Publisher: clientToPB(ev.Publisher),
	})
	return FromStatus(err)
}

// Kick disconnects a client of the plugin; found is false when it has no such client.
func (c *PluginClient) Kick(ctx context.Context, clientID string) (bool, error) {
	r, err := c.rpc.Kick(ctx, &pb.KickRequest{ClientId: clientID})
	if err != nil {
		return false, FromStatus(err)
	}
	return r.Found, nil
}

// ServeHTTP forwards an API request to the plugin.
func (c *PluginClient) ServeHTTP(ctx context.Context, req HTTPRequest) (HTTPResponse, error) {
	r, err := c.rpc.ServeHTTP(ctx, &pb.HTTPRequest{
		Method: req.Method, Path: req.Path, RawQuery: req.RawQuery, Header: headerToPB(req.Header),
		Body: req.Body, RemoteAddr: req.RemoteAddr,
	})
	if err != nil {
		return HTTPResponse{}, FromStatus(err)
	}
	return HTTPResponse{Status: int(r.Status), Header: headerFromPB(r.Header), Body: r.Body}, nil
}

// Stats asks the plugin for its clients and counters.
func (c *PluginClient) Stats(ctx context.Context) (Stats, error) {
	r, err := c.rpc.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		return Stats{}, FromStatus(err)
	}
	return statsFromPB(r), nil
}

type pluginServer struct {
	pb.UnimplementedPluginServer
	impl   Plugin
	broker *plugin.GRPCBroker
}

func (s *pluginServer) Describe(ctx context.Context, _ *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	info, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	return infoToPB(info), nil
}

func (s *pluginServer) Configure(ctx context.Context, in *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	req := ConfigRequest{DryRun: in.DryRun, SettingsJSON: in.SettingsJson, Generation: in.Generation}
	for _, v := range in.Vhosts {
		req.Vhosts = append(req.Vhosts, VhostConfig{Name: v.Name, Enabled: v.Enabled, SettingsJSON: v.SettingsJson, VhostJSON: v.VhostJson})
	}
	problems, err := s.impl.Configure(ctx, req)
	if err != nil {
		return nil, ToStatus(err)
	}
	out := &pb.ConfigureResponse{}
	for _, p := range problems {
		out.Problems = append(out.Problems, &pb.ConfigProblem{Vhost: p.Vhost, KeyPath: p.KeyPath, Message: p.Message, VhostRelative: p.VhostRelative})
	}
	return out, nil
}

func (s *pluginServer) Start(ctx context.Context, in *pb.StartRequest) (*pb.StartResponse, error) {
	conn, err := s.broker.Dial(in.HostBrokerId)
	if err != nil {
		return nil, ToStatus(fmt.Errorf("dial host service: %w", err))
	}
	req := StartRequest{InstanceID: in.InstanceId, ShmDir: in.ShmDir, ServerID: in.ServerId}
	for _, l := range in.Listeners {
		req.Listeners = append(req.Listeners, BoundListener{Name: l.Name, Network: l.Network, Addr: l.Addr, FDIndex: l.FdIndex})
	}
	if err := s.impl.Start(ctx, req, &hostClient{rpc: pb.NewHostClient(conn)}); err != nil {
		return nil, ToStatus(err)
	}
	return &pb.StartResponse{}, nil
}

func (s *pluginServer) Stop(ctx context.Context, in *pb.StopRequest) (*pb.StopResponse, error) {
	return &pb.StopResponse{}, ToStatus(s.impl.Stop(ctx, time.Duration(in.TimeoutMs)*time.Millisecond))
}

func (s *pluginServer) StreamEvent(ctx context.Context, in *pb.StreamEventRequest) (*pb.StreamEventResponse, error) {
	err := s.impl.StreamEvent(ctx, StreamEvent{
		Type: StreamEventType(in.Type), Stream: streamFromPB(in.Stream), StreamID: in.StreamId, Ring: in.Ring,
		Publisher: clientFromPB(in.Publisher),
	})
	return &pb.StreamEventResponse{}, ToStatus(err)
}

func (s *pluginServer) Kick(ctx context.Context, in *pb.KickRequest) (*pb.KickResponse, error) {
	found, err := s.impl.Kick(ctx, in.ClientId)
	if err != nil {
		return nil, ToStatus(err)
	}
	return &pb.KickResponse{Found: found}, nil
}

func (s *pluginServer) ServeHTTP(ctx context.Context, in *pb.HTTPRequest) (*pb.HTTPResponse, error) {
	r, err := s.impl.ServeHTTP(ctx, HTTPRequest{
		Method: in.Method, Path: in.Path, RawQuery: in.RawQuery, Header: headerFromPB(in.Header),
		Body: in.Body, RemoteAddr: in.RemoteAddr,
	})
	if err != nil {
		return nil, ToStatus(err)
	}
	return &pb.HTTPResponse{Status: int32(r.Status), Header: headerToPB(r.Header), Body: r.Body}, nil
}

func (s *pluginServer) Stats(ctx context.Context, _ *pb.StatsRequest) (*pb.StatsResponse, error) {
	st, err := s.impl.Stats(ctx)
	if err != nil {
		return nil, ToStatus(err)
	}
	return statsToPB(st), nil
}

type hostServer struct {
	pb.UnimplementedHostServer
	impl Host
}

func (s *hostServer) Publish(ctx context.Context, in *pb.PublishRequest) (*pb.PublishResponse, error) {
	p, err := s.impl.Publish(ctx, PublishRequest{Client: clientFromPB(in.Client), Stream: streamFromPB(in.Stream)})
	if err != nil {
		return nil, ToStatus(err)
	}
	return &pb.PublishResponse{Ring: p.Ring, StreamId: p.StreamID, PublicationId: p.PublicationID}, nil
}

func (s *hostServer) Unpublish(ctx context.Context, in *pb.UnpublishRequest) (*pb.UnpublishResponse, error) {
	return &pb.UnpublishResponse{}, ToStatus(s.impl.Unpublish(ctx, in.PublicationId))
}

func (s *hostServer) Subscribe(ctx context.Context, in *pb.SubscribeRequest) (*pb.SubscribeResponse, error) {
	sub, err := s.impl.Subscribe(ctx, SubscribeRequest{
		Client: clientFromPB(in.Client), Stream: streamFromPB(in.Stream),
		Wait: time.Duration(in.WaitMs) * time.Millisecond, Internal: in.Internal,
	})
	if err != nil {
		return nil, ToStatus(err)
	}
	return &pb.SubscribeResponse{Ring: sub.Ring, StreamId: sub.StreamID, SubscriptionId: sub.SubscriptionID, GopCache: sub.GopCache, Vhost: sub.Vhost}, nil
}

func (s *hostServer) Unsubscribe(ctx context.Context, in *pb.UnsubscribeRequest) (*pb.UnsubscribeResponse, error) {
	return &pb.UnsubscribeResponse{}, ToStatus(s.impl.Unsubscribe(ctx, in.SubscriptionId))
}

func (s *hostServer) ClientEvent(ctx context.Context, in *pb.ClientEventRequest) (*pb.ClientEventResponse, error) {
	err := s.impl.ClientEvent(ctx, ClientEvent{
		Type: ClientEventType(in.Type), Client: clientFromPB(in.Client), Stream: streamFromPB(in.Stream),
		SendBytes: in.SendBytes, RecvBytes: in.RecvBytes,
	})
	return &pb.ClientEventResponse{}, ToStatus(err)
}

func (s *hostServer) Notify(ctx context.Context, in *pb.NotifyRequest) (*pb.NotifyResponse, error) {
	err := s.impl.Notify(ctx, Notification{Event: in.Event, Client: clientFromPB(in.Client), Stream: streamFromPB(in.Stream), Fields: in.Fields})
	return &pb.NotifyResponse{}, ToStatus(err)
}

type hostClient struct {
	rpc pb.HostClient
}

func (c *hostClient) Publish(ctx context.Context, req PublishRequest) (Publication, error) {
	r, err := c.rpc.Publish(ctx, &pb.PublishRequest{Client: clientToPB(req.Client), Stream: streamToPB(req.Stream)})
	if err != nil {
		return Publication{}, FromStatus(err)
	}
	return Publication{Ring: r.Ring, StreamID: r.StreamId, PublicationID: r.PublicationId}, nil
}

func (c *hostClient) Unpublish(ctx context.Context, id string) error {
	_, err := c.rpc.Unpublish(ctx, &pb.UnpublishRequest{PublicationId: id})
	return FromStatus(err)
}

func (c *hostClient) Subscribe(ctx context.Context, req SubscribeRequest) (Subscription, error) {
	r, err := c.rpc.Subscribe(ctx, &pb.SubscribeRequest{
		Client: clientToPB(req.Client), Stream: streamToPB(req.Stream), WaitMs: req.Wait.Milliseconds(), Internal: req.Internal,
	})
	if err != nil {
		return Subscription{}, FromStatus(err)
	}
	return Subscription{Ring: r.Ring, StreamID: r.StreamId, SubscriptionID: r.SubscriptionId, GopCache: r.GopCache, Vhost: r.Vhost}, nil
}

func (c *hostClient) Unsubscribe(ctx context.Context, id string) error {
	_, err := c.rpc.Unsubscribe(ctx, &pb.UnsubscribeRequest{SubscriptionId: id})
	return FromStatus(err)
}

func (c *hostClient) ClientEvent(ctx context.Context, ev ClientEvent) error {
	_, err := c.rpc.ClientEvent(ctx, &pb.ClientEventRequest{
		Type: pb.ClientEventRequest_Type(ev.Type), Client: clientToPB(ev.Client), Stream: streamToPB(ev.Stream),
		SendBytes: ev.SendBytes, RecvBytes: ev.RecvBytes,
	})
	return FromStatus(err)
}

func (c *hostClient) Notify(ctx context.Context, n Notification) error {
	_, err := c.rpc.Notify(ctx, &pb.NotifyRequest{Event: n.Event, Client: clientToPB(n.Client), Stream: streamToPB(n.Stream), Fields: n.Fields})
	return FromStatus(err)
}
