package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"

	"github.com/rill-media/rill/bench/replay"
)

// A WHEP viewer of the load tool: a pion peer connection receiving H.264,
// each access unit handed to the player as the FLV video body it came
// from (the first coded slice is what replay.File.Identify matches), so
// that first frame, latency and full-rate share are counted as for RTMP
// and HTTP-FLV players. Audio is read and counted as bytes.

var (
	whepAPIOnce sync.Once
	whepAPI     *webrtc.API
	whepAPIErr  error
)

// whepClientAPI is one pion API for every viewer: loopback host candidates,
// no mDNS, H.264 and Opus, NACK and RTCP reports (as browsers send).
func whepClientAPI() (*webrtc.API, error) {
	whepAPIOnce.Do(func() {
		var se webrtc.SettingEngine
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		me := &webrtc.MediaEngine{}
		fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb},
			PayloadType: 102,
		}, webrtc.RTPCodecTypeVideo); err != nil {
			whepAPIErr = err
			return
		}
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
			PayloadType:        111,
		}, webrtc.RTPCodecTypeAudio); err != nil {
			whepAPIErr = err
			return
		}
		// NACKs as a browser sends them: libwebrtc asks for a lost packet
		// at most 10 times (kMaxNackRetries); pion's generator, left at
		// its default, repeats it every 100 ms while it stays in its
		// 512-packet log.
		ir := &interceptor.Registry{}
		gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(10))
		if err != nil {
			whepAPIErr = err
			return
		}
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
		me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
		ir.Add(gen)
		if err := webrtc.ConfigureRTCPReports(ir); err != nil {
			whepAPIErr = err
			return
		}
		whepAPI = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir))
	})
	return whepAPI, whepAPIErr
}

// whepSession is one viewer.
type whepSession struct {
	pc       *webrtc.PeerConnection
	location string
	api      string
	doneCh   chan error
	once     sync.Once
}

func (w *whepSession) end(err error) {
	w.once.Do(func() { w.doneCh <- err })
}

func (w *whepSession) close() {
	_ = w.pc.Close()
	if w.location != "" {
		c := http.Client{Timeout: 2 * time.Second}
		if req, err := http.NewRequest(http.MethodDelete, w.api+w.location, nil); err == nil {
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
	w.end(nil)
}

// dialWHEP plays whep://host:port/app/stream (the API's address): it posts
// the offer to /rtc/v1/whep/ and returns once the answer is set; done gets
// the session's end.
func dialWHEP(ctx context.Context, raw string, onMessage func(typ uint8, payload []byte)) (*whepSession, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	i := strings.LastIndex(u.Path, "/")
	if i <= 0 {
		return nil, fmt.Errorf("whep url %q: want whep://host:port/app/stream", raw)
	}
	api, err := whepClientAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	w := &whepSession{pc: pc, api: "http://" + u.Host, doneCh: make(chan error, 1)}
	fail := func(err error) (*whepSession, error) {
		_ = pc.Close()
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed:
			w.end(errors.New("webrtc connection failed"))
		case webrtc.PeerConnectionStateClosed:
			w.end(errors.New("webrtc connection closed"))
		}
	})
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if track.Kind() != webrtc.RTPCodecTypeVideo {
			buf := make([]byte, 1500)
			for {
				n, _, err := track.Read(buf)
				if err != nil {
					return
				}
				onMessage(replay.TagAudio, buf[:n])
			}
		}
		readWHEPVideo(track, onMessage)
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		return fail(errors.New("ice gathering did not complete in 10s"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	q := url.Values{"app": {strings.Trim(u.Path[:i], "/")}, "stream": {u.Path[i+1:]}}
	for k, v := range u.Query() {
		q[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.api+"/rtc/v1/whep/?"+q.Encode(), strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	c := http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return fail(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fail(fmt.Errorf("whep %s: %d %s", raw, resp.StatusCode, strings.TrimSpace(string(body))))
	}
	w.location = resp.Header.Get("Location")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// readWHEPVideo rebuilds access units and hands each on as an FLV AVC
// NALU body: header, then the first coded slice length-prefixed.
func readWHEPVideo(track *webrtc.TrackRemote, onMessage func(typ uint8, payload []byte)) {
	// A jitter buffer of at most 300 ms (a browser's is of that order):
	// a frame whose packets are still missing then is dropped, not held
	// back with everything behind it (512 packets are 8 s of a
	// 500 kbit/s stream).
	sb := samplebuilder.New(512, &codecs.H264Packet{}, 90000, samplebuilder.WithMaxTimeDelay(300*time.Millisecond))
	var body []byte
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		sb.Push(pkt)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			nal := firstSlice(s.Data)
			if nal == nil {
				continue
			}
			ft := byte(0x27)
			if nal[0]&0x1f == 5 {
				ft = 0x17
			}
			body = append(body[:0], ft, 1, 0, 0, 0)
			body = binary.BigEndian.AppendUint32(body, uint32(len(nal)))
			body = append(body, nal...)
			onMessage(replay.TagVideo, body)
		}
	}
}

// firstSlice returns the first coded slice NAL unit (types 1-5) of an
// Annex-B access unit.
func firstSlice(au []byte) []byte {
	for len(au) > 0 {
		i := indexStartCode(au)
		if i < 0 {
			return nil
		}
		au = au[i:]
		for len(au) > 0 && au[0] == 0 {
			au = au[1:]
		}
		if len(au) == 0 || au[0] != 1 {
			return nil
		}
		au = au[1:]
		end := indexStartCode(au)
		n := au
		if end >= 0 {
			n = au[:end]
		}
		if len(n) > 0 && n[0]&0x1f >= 1 && n[0]&0x1f <= 5 {
			// Trailing zero bytes belong to the next start code.
			for len(n) > 1 && n[len(n)-1] == 0 {
				n = n[:len(n)-1]
			}
			return n
		}
		if end < 0 {
			return nil
		}
		au = au[end:]
	}
	return nil
}

// indexStartCode is the offset of the next 00 00 01 (or 00 00 00 01).
func indexStartCode(b []byte) int {
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 {
			if b[i+2] == 1 {
				return i
			}
			if i+3 < len(b) && b[i+2] == 0 && b[i+3] == 1 {
				return i
			}
		}
	}
	return -1
}
