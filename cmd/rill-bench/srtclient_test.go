package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"

	"github.com/rill-media/rill/bench/replay"
)

// TestSRTClients: the SRT publisher sink's MPEG-TS (lal's remuxer), relayed
// by a gosrt listener to the SRT player, gives back every video frame with
// its coded slice intact, which is what replay.File.Identify looks at.
func TestSRTClients(t *testing.T) {
	ln, err := srt.Listen("srt", "127.0.0.1:0", srt.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conns := make(chan srt.Conn, 2)
	go func() {
		for range 2 {
			req, err := ln.Accept2()
			if err != nil {
				return
			}
			c, err := req.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	url := "srt://" + ln.Addr().String() + "?streamid=%23!::r=live/x,m="
	sink, err := newSRTSink(url + "publish")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.close()
	pubSide := <-conns

	var mu sync.Mutex
	var got [][]byte
	pull, err := dialSRTPlay(context.Background(), url+"request", func(typ uint8, payload []byte) {
		if typ != replay.TagVideo {
			return
		}
		mu.Lock()
		got = append(got, bytes.Clone(sliceNALOf(payload)))
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pull.close()
	playSide := <-conns
	go func() { // the relay: what the publisher sends, to the player
		b := make([]byte, 1500)
		for {
			n, err := pubSide.Read(b)
			if err != nil {
				return
			}
			if _, err := playSide.Write(b[:n]); err != nil {
				return
			}
		}
	}()

	sps := []byte{0x67, 0x42, 0, 0x1e, 0xab, 0x40, 0x50, 0x1e, 0xc8}
	pps := []byte{0x68, 0xce, 0x38, 0x80}
	cfg := []byte{0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	cfg = binary.BigEndian.AppendUint16(cfg, uint16(len(sps)))
	cfg = append(append(cfg, sps...), 1)
	cfg = binary.BigEndian.AppendUint16(cfg, uint16(len(pps)))
	cfg = append(cfg, pps...)
	if err := sink.write(replay.Tag{Type: replay.TagVideo, Payload: cfg, Config: true}, 0); err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := range 50 {
		nal := bytes.Repeat([]byte{byte(i)}, 300+i*97)
		hdr := byte(0x27)
		nal[0] = 0x41
		if i%10 == 0 {
			hdr, nal[0] = 0x17, 0x65
		}
		body := binary.BigEndian.AppendUint32([]byte{hdr, 1, 0, 0, 0}, uint32(len(nal)))
		body = append(body, nal...)
		want = append(want, nal)
		if err := sink.write(replay.Tag{Type: replay.TagVideo, Payload: body}, uint32(i*40)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want)-1 { // the last PES may wait for the next one
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < len(want)-1 {
		t.Fatalf("%d frames back, want %d", len(got), len(want)-1)
	}
	for i, g := range got {
		if !bytes.Equal(g, want[i]) {
			t.Fatalf("frame %d: %d-byte slice, want %d bytes", i, len(g), len(want[i]))
		}
	}
}

// sliceNALOf is the first coded slice of an AVC video tag body.
func sliceNALOf(body []byte) []byte {
	b := body[5:]
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if n <= 0 || n > len(b)-4 {
			return nil
		}
		if t := b[4] & 0x1f; t >= 1 && t <= 5 {
			return b[4 : 4+n]
		}
		b = b[4+n:]
	}
	return nil
}
