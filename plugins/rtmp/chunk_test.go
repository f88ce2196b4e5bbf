package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func chunkMsg(csid uint32, typ uint8, ts uint32, body []byte, size int) []byte {
	return appendChunks(nil, csid, typ, 1, ts, body, size)
}

func setChunkSize(v uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return chunkMsg(2, msgSetChunkSize, 0, b[:], 128)
}

func TestChunkRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 300000)
	for _, tc := range []struct {
		name string
		ts   uint32
		size int
	}{
		{"small ts", 1000, 128},
		{"24-bit edge", 0xffffff, 128},
		{"extended", 0xfffffff0, 4096},
		{"big chunk", 5, 60000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in []byte
			if tc.size != 128 {
				in = append(in, setChunkSize(uint32(tc.size))...)
			}
			in = append(in, chunkMsg(7, msgVideo, tc.ts, big, tc.size)...)
			in = append(in, chunkMsg(6, msgAudio, tc.ts+1, []byte{0xaf, 1, 2}, tc.size)...)
			cr := newChunkReader(bytes.NewReader(in))
			if tc.size != 128 {
				if m, err := cr.ReadMessage(); err != nil || m.Type != msgSetChunkSize {
					t.Fatalf("set chunk size: %v %+v", err, m)
				}
			}
			m, err := cr.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != msgVideo || m.Timestamp != tc.ts || !bytes.Equal(m.Payload, big) {
				t.Fatalf("video: type %d ts %d len %d", m.Type, m.Timestamp, len(m.Payload))
			}
			m, err = cr.ReadMessage()
			if err != nil || m.Type != msgAudio || m.Timestamp != tc.ts+1 || len(m.Payload) != 3 {
				t.Fatalf("audio: %v %+v", err, m)
			}
			if _, err := cr.ReadMessage(); !errors.Is(err, io.EOF) {
				t.Fatalf("want EOF, got %v", err)
			}
		})
	}
}

// TestChunkDeltaTimestamps checks fmt 1/2/3 headers that carry deltas, as
// FFmpeg writes them.
func TestChunkDeltaTimestamps(t *testing.T) {
	var in []byte
	in = append(in, 0x06, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 0xaf, 1) // fmt0 csid6 ts100 len2 audio
	in = append(in, 0x46, 0, 0, 20, 0, 0, 2, 8, 0xaf, 1)              // fmt1 delta 20
	in = append(in, 0x86, 0, 0, 23, 0xaf, 1)                          // fmt2 delta 23
	in = append(in, 0xc6, 0xaf, 1)                                    // fmt3: delta 23 again
	cr := newChunkReader(bytes.NewReader(in))
	for _, want := range []uint32{100, 120, 143, 166} {
		m, err := cr.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if m.Timestamp != want {
			t.Fatalf("timestamp %d, want %d", m.Timestamp, want)
		}
	}
}

func TestChunkBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"chunk size 0", setChunkSize(0)},
		{"chunk size high bit", setChunkSize(0x80000000)},
		{"chunk size too big", setChunkSize(maxChunkSize + 1)},
		{"chunk size empty", chunkMsg(2, msgSetChunkSize, 0, nil, 128)},
		{"fmt3 on new csid", []byte{0xc9, 1, 2, 3}},
		{"fmt1 on new csid", []byte{0x49, 0, 0, 0, 0, 0, 1, 8, 0}},
		{"unknown type", chunkMsg(3, 99, 0, []byte{1}, 128)},
		{"huge command", []byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, msgCommandAMF0, 0, 0, 0, 0}},
		{"huge control", []byte{0x02, 0, 0, 0, 0, 0, 5, msgSetChunkSize, 0, 0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := newChunkReader(bytes.NewReader(tc.in))
			_, err := cr.ReadMessage()
			if !errors.Is(err, errProtocol) {
				t.Fatalf("want a protocol error, got %v", err)
			}
		})
	}
}

// TestChunkInflightBound: many chunk streams each announcing a 16 MiB video
// message must not make the reader allocate more than the in-flight cap.
func TestChunkInflightBound(t *testing.T) {
	var in []byte
	in = append(in, setChunkSize(1<<20)...)
	for csid := 3; csid < 60; csid++ {
		in = append(in, byte(csid), 0, 0, 0, 0xff, 0xff, 0xff, msgVideo, 1, 0, 0, 0)
		in = append(in, make([]byte, 1<<20)...)
	}
	cr := newChunkReader(bytes.NewReader(in))
	var err error
	for err == nil {
		_, err = cr.ReadMessage()
	}
	if !errors.Is(err, errProtocol) {
		t.Fatalf("want a protocol error, got %v", err)
	}
	if cr.inflight > maxInflightBytes {
		t.Fatalf("inflight %d", cr.inflight)
	}
}

func TestSplitAggregate(t *testing.T) {
	var agg []byte
	for i, body := range [][]byte{{0xaf, 1, 1}, {0x17, 1, 0, 0, 0}} {
		typ := byte(msgAudio)
		if i == 1 {
			typ = msgVideo
		}
		ts := uint32(5000 + 40*i)
		agg = append(agg, typ, 0, 0, byte(len(body)), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
		agg = append(agg, body...)
		agg = binary.BigEndian.AppendUint32(agg, uint32(11+len(body)))
	}
	var got []message
	err := splitAggregate(message{Type: msgAggregate, Timestamp: 100, Payload: agg}, func(m message) error {
		got = append(got, m)
		return nil
	})
	if err != nil || len(got) != 2 || got[0].Timestamp != 100 || got[1].Timestamp != 140 || got[1].Type != msgVideo {
		t.Fatalf("%v %+v", err, got)
	}
	if err := splitAggregate(message{Payload: agg[:20]}, func(message) error { return nil }); !errors.Is(err, errProtocol) {
		t.Fatalf("truncated aggregate: %v", err)
	}
}

func TestUnwrap(t *testing.T) {
	var u tsUnwrapper
	in := []uint32{0xffffff00, 0xffffff80, 0x10, 0xfffffff0, 0x50}
	want := []int64{0xffffff00, 0xffffff80, 1<<32 + 0x10, 0xfffffff0, 1<<32 + 0x50}
	for i, ts := range in {
		if got := u.unwrap(ts); got != want[i] {
			t.Fatalf("%d: unwrap(%#x) = %#x, want %#x", i, ts, got, want[i])
		}
	}
}

func TestJitter(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode jitterMode
		in   []int64
		want []int64
	}{
		{"full", jitterFull, []int64{5000, 5040, 5080, 90000, 90040, 100}, []int64{0, 40, 80, 90, 130, 140}},
		{"zero", jitterZero, []int64{5000, 5040, 4000}, []int64{0, 40, 0}},
		{"off", jitterOff, []int64{5000, 5040}, []int64{5000, 5040}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := jitter{mode: tc.mode}
			for i, v := range tc.in {
				if got := j.correct(v); got != tc.want[i] {
					t.Fatalf("%d: correct(%d) = %d, want %d", i, v, got, tc.want[i])
				}
			}
		})
	}
}

func FuzzChunkReader(f *testing.F) {
	f.Add(chunkMsg(7, msgVideo, 0xffffff, bytes.Repeat([]byte{1}, 300), 128))
	f.Add(append(setChunkSize(4096), chunkMsg(3, msgCommandAMF0, 0, appendAMF0(nil, "connect"), 4096)...))
	f.Add([]byte{0x06, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 0xaf, 1, 0xc6, 0xaf, 1})
	f.Add(setChunkSize(0))
	f.Fuzz(func(t *testing.T, in []byte) {
		cr := newChunkReader(bytes.NewReader(in))
		for i := 0; i < 1000; i++ {
			m, err := cr.ReadMessage()
			if err != nil {
				return
			}
			if limit, _ := maxMessageSize(m.Type); uint32(len(m.Payload)) > limit {
				t.Fatalf("message type %d of %d bytes passed the limit", m.Type, len(m.Payload))
			}
			if m.Type == msgAggregate {
				_ = splitAggregate(m, func(message) error { return nil })
			}
		}
	})
}
