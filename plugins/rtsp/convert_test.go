package main

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/q191201771/lal/pkg/base"

	"github.com/rill-media/rill/sdk/media"
)

func avcc(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestInConverter(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00}
	slice := []byte{0x41, 0x9a, 0x02}
	var got []media.Packet
	emit := func(p media.Packet) error { got = append(got, p.Clone()); return nil }
	var c inConverter
	steps := []struct {
		name string
		pkt  base.AvPacket
		want []string // kinds of the packets emitted: config, key, frame
	}{
		{"frame before any config is dropped", base.AvPacket{PayloadType: base.AvPacketPtAvc, Timestamp: 0, Payload: avcc(slice)}, nil},
		{"in-band sps/pps: config then key", base.AvPacket{PayloadType: base.AvPacketPtAvc, Timestamp: 40, Pts: 80, Payload: avcc(sps, pps, idr)}, []string{"config", "key"}},
		{"same parameter sets: no new config", base.AvPacket{PayloadType: base.AvPacketPtAvc, Timestamp: 80, Payload: avcc(slice)}, []string{"frame"}},
		{"aac without asc is dropped", base.AvPacket{PayloadType: base.AvPacketPtAac, Timestamp: 80, Payload: []byte{1, 2}}, nil},
	}
	for _, st := range steps {
		got = nil
		if err := c.convert(st.pkt, emit); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var kinds []string
		for _, p := range got {
			switch {
			case p.IsConfig():
				kinds = append(kinds, "config")
				if p.Codec != media.CodecH264 || len(p.Payload) < 7 || p.Payload[0] != 1 {
					t.Errorf("%s: config %v", st.name, p)
				}
			case p.IsKey():
				kinds = append(kinds, "key")
				if p.DTS != 40*time.Millisecond || p.PTS != 80*time.Millisecond {
					t.Errorf("%s: dts %v pts %v", st.name, p.DTS, p.PTS)
				}
			default:
				kinds = append(kinds, "frame")
			}
		}
		if len(kinds) != len(st.want) {
			t.Errorf("%s: emitted %v, want %v", st.name, kinds, st.want)
			continue
		}
		for i := range kinds {
			if kinds[i] != st.want[i] {
				t.Errorf("%s: emitted %v, want %v", st.name, kinds, st.want)
			}
		}
	}
	c.asc = []byte{0x12, 0x10}
	got = nil
	_ = c.convert(base.AvPacket{PayloadType: base.AvPacketPtAac, Timestamp: 100, Payload: []byte{1, 2}}, emit)
	if len(got) != 2 || !got[0].IsConfig() || got[1].Codec != media.CodecAAC {
		t.Errorf("aac: %v", got)
	}
}

func TestRTMPMsg(t *testing.T) {
	p := media.Packet{Kind: media.KindVideo, Codec: media.CodecH264, Flags: media.FlagKey, DTS: 2 * time.Second, PTS: 2 * time.Second, Payload: avcc([]byte{0x65, 1, 2})}
	msg, _, ok := rtmpMsg(nil, p)
	if !ok || msg.Header.MsgTypeId != base.RtmpTypeIdVideo || msg.Header.TimestampAbs != 2000 || msg.Payload[0] != 0x17 || !msg.IsAvcKeyNalu() {
		t.Fatalf("rtmpMsg: %+v ok=%v", msg.Header, ok)
	}
	if _, _, ok := rtmpMsg(nil, media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: []byte{2}}); ok {
		t.Errorf("data packet converted")
	}
}
