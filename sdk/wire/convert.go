package wire

import (
	"time"

	"github.com/rill-media/rill/sdk/internal/pb"
)

func streamToPB(s StreamRef) *pb.StreamRef {
	return &pb.StreamRef{Vhost: s.Vhost, App: s.App, Stream: s.Stream, Param: s.Param, TcUrl: s.TcURL}
}

func streamFromPB(s *pb.StreamRef) StreamRef {
	if s == nil {
		return StreamRef{}
	}
	return StreamRef{Vhost: s.Vhost, App: s.App, Stream: s.Stream, Param: s.Param, TcURL: s.TcUrl}
}

func clientToPB(c ClientInfo) *pb.ClientInfo {
	return &pb.ClientInfo{Id: c.ID, Ip: c.IP, Type: c.Type, PageUrl: c.PageURL, SwfUrl: c.SwfURL, Plugin: c.Plugin}
}

func clientFromPB(c *pb.ClientInfo) ClientInfo {
	if c == nil {
		return ClientInfo{}
	}
	return ClientInfo{ID: c.Id, IP: c.Ip, Type: c.Type, PageURL: c.PageUrl, SwfURL: c.SwfUrl, Plugin: c.Plugin}
}

func headerToPB(h map[string][]string) map[string]*pb.HeaderValues {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]*pb.HeaderValues, len(h))
	for k, v := range h {
		out[k] = &pb.HeaderValues{Values: v}
	}
	return out
}

func headerFromPB(h map[string]*pb.HeaderValues) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if v != nil {
			out[k] = v.Values
		}
	}
	return out
}

func infoFromPB(r *pb.DescribeResponse) Info {
	info := Info{
		Name: r.Name, Version: r.Version, APIVersion: r.ApiVersion, Description: r.Description,
		Capabilities: r.Capabilities, HTTPRoutes: r.HttpRoutes, VhostBlock: r.VhostBlock,
	}
	for _, l := range r.Listeners {
		info.Listeners = append(info.Listeners, Listener{Name: l.Name, Network: l.Network, DefaultAddrs: l.DefaultAddrs})
	}
	return info
}

func infoToPB(info Info) *pb.DescribeResponse {
	r := &pb.DescribeResponse{
		Name: info.Name, Version: info.Version, ApiVersion: info.APIVersion, Description: info.Description,
		Capabilities: info.Capabilities, HttpRoutes: info.HTTPRoutes, VhostBlock: info.VhostBlock,
	}
	for _, l := range info.Listeners {
		r.Listeners = append(r.Listeners, &pb.Listener{Name: l.Name, Network: l.Network, DefaultAddrs: l.DefaultAddrs})
	}
	return r
}

func statsToPB(s Stats) *pb.StatsResponse {
	r := &pb.StatsResponse{Counters: s.Counters}
	for _, c := range s.Clients {
		r.Clients = append(r.Clients, &pb.ClientStat{
			Client: clientToPB(c.Client), Stream: streamToPB(c.Stream), Publish: c.Publish,
			AliveMs: c.Alive.Milliseconds(), SendBytes: c.SendBytes, RecvBytes: c.RecvBytes, Url: c.URL,
		})
	}
	return r
}

func statsFromPB(r *pb.StatsResponse) Stats {
	s := Stats{Counters: r.Counters}
	for _, c := range r.Clients {
		s.Clients = append(s.Clients, ClientStat{
			Client: clientFromPB(c.Client), Stream: streamFromPB(c.Stream), Publish: c.Publish,
			Alive: time.Duration(c.AliveMs) * time.Millisecond, SendBytes: c.SendBytes, RecvBytes: c.RecvBytes, URL: c.Url,
		})
	}
	return s
}
