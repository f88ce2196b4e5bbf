// Package ringpkt maps media packets to ring records and back: the one
// definition of how a media.Packet sits in an sdk/shm record (kind, codec,
// media flags in the record flags above the ring's own, timestamps in
// nanoseconds), shared by the SDK and the core so that the core reads ring
// headers without importing the plugin SDK.
package ringpkt

import (
	"time"

	"github.com/rill-media/rill/sdk/media"
	"github.com/rill-media/rill/sdk/shm"
)

// FlagShift is where a packet's media.Flags start in a record's flags; the
// bits below are the ring's (shm.FlagSync).
const FlagShift = 8

// Meta is the record header of p.
func Meta(p media.Packet) shm.Meta {
	return shm.Meta{
		Kind:  uint8(p.Kind),
		Codec: uint8(p.Codec),
		Flags: uint32(p.Flags) << FlagShift,
		DTS:   int64(p.DTS),
		PTS:   int64(p.PTS),
	}
}

// Packet is the packet of record r; its payload aliases r's.
func Packet(r shm.Record) media.Packet {
	return media.Packet{
		Kind:    media.Kind(r.Kind),
		Codec:   media.Codec(r.Codec),
		Flags:   media.Flags(r.Flags >> FlagShift),
		DTS:     time.Duration(r.DTS),
		PTS:     time.Duration(r.PTS),
		Payload: r.Payload,
	}
}

// Configs returns the codec configurations and metadata kept in a ring's
// header, as packets (copies).
func Configs(r *shm.Ring) []media.Packet {
	var out []media.Packet
	for _, rec := range r.Configs() {
		out = append(out, Packet(rec).Clone())
	}
	return out
}
