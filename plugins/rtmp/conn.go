package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	lalrtmp "github.com/q191201771/lal/pkg/rtmp"

	"github.com/rill-media/rill/internal/flv"
	"github.com/rill-media/rill/sdk"
	"github.com/rill-media/rill/sdk/media"
)

// Chunk stream ids and the message stream id we use when writing.
const (
	csidControl = 2
	csidCommand = 3
	csidData    = 5
	csidAudio   = 6
	csidVideo   = 7
	msgStreamID = 1
)

// User control event types (RTMP 1.0 §7.1.7).
const (
	ucStreamBegin  = 0
	ucStreamEOF    = 1
	ucSetBufferLen = 3
	ucPingRequest  = 6
	ucPingResponse = 7
)

const (
	windowAckSize     = 2500000 // what SRS announces
	commandTimeout    = 10 * time.Second
	minPlayerDeadline = 10 * time.Second
)

type role int

const (
	roleNone role = iota
	rolePublish
	rolePlay
)

// errClosedByPeer ends a connection that the peer closed or that asked to.
var errClosedByPeer = errors.New("closed")

// conn is one RTMP connection, publisher or player.
type conn struct {
	s       *Server
	nc      net.Conn
	id      string
	log     hclog.Logger
	started time.Time
	cfg     *config

	// wmu serializes writes: command replies from the read loop and the
	// player's merged writes.
	wmu       sync.Mutex
	wbuf      []byte
	outChunk  int
	sendBytes atomic.Uint64
	recvBytes atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	reason    atomic.Value // string

	// Read-loop state.
	cr          *chunkReader
	tcURL       string
	app         string
	pageURL     string
	swfURL      string
	fmle        bool
	objEncoding float64
	ackWindow   uint32
	lastAck     uint64
	connected   bool

	mu   sync.Mutex // guards the fields below for Stats
	info sdk.ClientInfo
	ref  sdk.StreamRef
	role role
	// playing: the core allowed this player (Play); PlayStopped is due.
	playing bool
	pub     *sdk.Publication
	player  *player
	vopts   vhostOptions

	unwrap     tsUnwrapper
	gotMedia   bool
	warnedOnce map[string]bool
}

func newConn(s *Server, nc net.Conn) *conn {
	id := sdk.NewClientID()
	ip := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(ip); err == nil {
		ip = h
	}
	c := &conn{
		s: s, nc: nc, id: id, started: time.Now(), cfg: s.cfg.Load(),
		log:      s.log.With("client_id", id, "remote_addr", nc.RemoteAddr().String()),
		outChunk: defaultChunkSize, done: make(chan struct{}),
		info: sdk.ClientInfo{ID: id, IP: ip},
	}
	return c
}

// countingReader counts the bytes read from the socket.
type countingReader struct {
	c *conn
}

func (r countingReader) Read(b []byte) (int, error) {
	n, err := r.c.nc.Read(b)
	r.c.recvBytes.Add(uint64(n))
	return n, err
}

// close ends the connection once, logging reason.
func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.reason.Store(reason)
		close(c.done)
		c.nc.Close()
	})
}

func (c *conn) serve() {
	defer c.s.removeConn(c)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in rtmp connection, closing it", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.close("internal error")
		}
		c.cleanup()
	}()
	err := c.run()
	reason, _ := c.reason.Load().(string)
	c.close(errReason(err))
	if reason == "" {
		reason, _ = c.reason.Load().(string)
	}
	c.mu.Lock()
	r := c.role
	c.mu.Unlock()
	level := hclog.Info
	if errors.Is(err, errProtocol) || errors.Is(err, errAMF0) {
		level = hclog.Warn
	}
	if r == roleNone && level == hclog.Info && reason == "closed by peer" {
		level = hclog.Debug
	}
	c.log.Log(level, "connection closed", "reason", reason, "duration", time.Since(c.started).Round(time.Millisecond).String(),
		"send_bytes", c.sendBytes.Load(), "recv_bytes", c.recvBytes.Load())
}

func errReason(err error) string {
	switch {
	case err == nil, errors.Is(err, errClosedByPeer), errors.Is(err, io.EOF):
		return "closed by peer"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

func (c *conn) cleanup() {
	c.mu.Lock()
	pub, pl, ref, info := c.pub, c.player, c.ref, c.info
	c.pub, c.player = nil, nil
	connected := c.connected
	c.mu.Unlock()
	if pub != nil {
		if err := pub.Close(); err != nil {
			c.log.Warn("unpublish", "stream", ref.Key(), "error", err)
		}
		c.log.Info("publish stopped", "stream", ref.Key())
	}
	if pl != nil {
		pl.f.leave(pl)
		c.log.Info("play stopped", "stream", ref.Key())
	}
	c.mu.Lock()
	playing := c.playing
	c.playing = false
	c.mu.Unlock()
	if playing && c.s.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := c.s.rt.Host.PlayStopped(ctx, info, ref); err != nil {
			c.log.Debug("report play stopped", "error", err)
		}
		cancel()
	}
	if connected && c.s.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.s.rt.Host.ClientClosed(ctx, info, ref, c.sendBytes.Load(), c.recvBytes.Load()); err != nil {
			c.log.Debug("report client closed", "error", err)
		}
	}
}

func (c *conn) stat() sdk.ClientStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	url := c.tcURL
	if c.ref.Stream != "" {
		url = strings.TrimSuffix(c.tcURL, "/") + "/" + c.ref.Stream
	}
	return sdk.ClientStat{
		Client: c.info, Stream: c.ref, Publish: c.role == rolePublish, Alive: time.Since(c.started),
		SendBytes: c.sendBytes.Load(), RecvBytes: c.recvBytes.Load(), URL: url,
	}
}

// run does the handshake and the message loop.
func (c *conn) run() error {
	hsTimeout := time.Duration(c.cfg.HandshakeTimeout)
	// One deadline covers the handshake and the commands up to publish or
	// play (slowloris, docs/THREATS.md row 7).
	_ = c.nc.SetDeadline(time.Now().Add(hsTimeout))
	// Players send little (acknowledgements, a few commands): a small
	// buffer per connection; a publisher gets a larger one (onPublish).
	br := bufio.NewReaderSize(countingReader{c}, 1<<10)
	first, err := br.Peek(1)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if first[0] != 3 { // C0: RTMP version 3 (§5.2.2); 6 is RTMPE, not supported
		return protoErr("not an rtmp handshake: first byte 0x%02x", first[0])
	}
	var hs lalrtmp.HandshakeServer
	if err := hs.ReadC0C1(br); err != nil {
		return fmt.Errorf("handshake c0c1: %w", err)
	}
	if err := hs.WriteS0S1S2(countingWriter{c}); err != nil {
		return fmt.Errorf("handshake s0s1s2: %w", err)
	}
	if err := hs.ReadC2(br); err != nil {
		return fmt.Errorf("handshake c2: %w", err)
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.cr = newChunkReader(br)
	for {
		m, err := c.cr.ReadMessage()
		if err != nil {
			select {
			case <-c.done:
				return net.ErrClosed
			default:
			}
			return err
		}
		if err := c.handle(m); err != nil {
			return err
		}
		if err := c.maybeAck(); err != nil {
			return err
		}
	}
}

type countingWriter struct{ c *conn }

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.c.nc.Write(b)
	w.c.sendBytes.Add(uint64(n))
	return n, err
}

// maybeAck sends an Acknowledgement every window of received bytes (§5.4.3);
// the sequence number wraps at 2^32 as the spec and peers expect
// (docs/THREATS.md row 5).
func (c *conn) maybeAck() error {
	if c.ackWindow == 0 {
		return nil
	}
	got := c.recvBytes.Load()
	if got-c.lastAck < uint64(c.ackWindow) {
		return nil
	}
	c.lastAck = got
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(got))
	return c.writeMessage(csidControl, msgAck, 0, 0, b[:])
}

func (c *conn) handle(m message) error {
	switch m.Type {
	case msgSetChunkSize, msgAbort, msgAck, msgSharedObjAMF0, msgSharedObjAMF3:
		return nil
	case msgWindowAckSize:
		if len(m.Payload) < 4 {
			return protoErr("window acknowledgement size with a %d-byte payload", len(m.Payload))
		}
		c.ackWindow = binary.BigEndian.Uint32(m.Payload)
		return nil
	case msgSetPeerBandwidth:
		if len(m.Payload) < 5 {
			return protoErr("set peer bandwidth with a %d-byte payload", len(m.Payload))
		}
		return nil
	case msgUserControl:
		return c.handleUserControl(m.Payload)
	case msgCommandAMF3:
		if len(m.Payload) < 1 {
			return protoErr("empty amf3 command")
		}
		return c.handleCommand(m.Payload[1:])
	case msgCommandAMF0:
		return c.handleCommand(m.Payload)
	case msgDataAMF3:
		if len(m.Payload) < 1 {
			return protoErr("empty amf3 data message")
		}
		m.Payload, m.Type = m.Payload[1:], msgDataAMF0
		return c.handleMedia(m)
	case msgAudio, msgVideo, msgDataAMF0:
		return c.handleMedia(m)
	case msgAggregate:
		return splitAggregate(m, c.handleMedia)
	}
	return protoErr("unknown message type %d", m.Type)
}

// handleUserControl validates a User Control message before anything reads
// it: lal's session code panics on an empty one (docs/THREATS.md).
func (c *conn) handleUserControl(b []byte) error {
	if len(b) < 2 {
		return protoErr("user control message of %d bytes", len(b))
	}
	ev := binary.BigEndian.Uint16(b)
	switch ev {
	case ucPingRequest:
		if len(b) < 6 {
			return protoErr("ping request of %d bytes", len(b))
		}
		var out [6]byte
		binary.BigEndian.PutUint16(out[:], ucPingResponse)
		copy(out[2:], b[2:6])
		return c.writeMessage(csidControl, msgUserControl, 0, 0, out[:])
	case ucSetBufferLen:
		if len(b) < 10 {
			return protoErr("set buffer length of %d bytes", len(b))
		}
	}
	return nil
}

// writeMessage chunks and writes one message now.
func (c *conn) writeMessage(csid uint32, typ uint8, streamID uint32, ts uint32, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendChunks(c.wbuf[:0], csid, typ, streamID, ts, body, c.outChunk)
	n, err := c.nc.Write(c.wbuf)
	c.sendBytes.Add(uint64(n))
	if cap(c.wbuf) > 64<<10 {
		c.wbuf = nil
	}
	return err
}

func (c *conn) writeCommand(streamID uint32, values ...any) error {
	var b []byte
	for _, v := range values {
		b = appendAMF0(b, v)
	}
	csid := uint32(csidCommand)
	if streamID != 0 {
		csid = csidData
	}
	return c.writeMessage(csid, msgCommandAMF0, streamID, 0, b)
}

func (c *conn) writeControl(typ uint8, vals ...uint32) error {
	var b []byte
	for _, v := range vals {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return c.writeMessage(csidControl, typ, 0, 0, b)
}

func status(level, code, desc string, extra ...amf0Pair) []amf0Pair {
	return append([]amf0Pair{{"level", level}, {"code", code}, {"description", desc}}, extra...)
}

func (c *conn) handleCommand(b []byte) error {
	vals, err := decodeAMF0(b)
	if err != nil {
		return fmt.Errorf("command: %w", err)
	}
	if len(vals) < 1 {
		return protoErr("empty command")
	}
	name, ok := vals[0].(string)
	if !ok {
		return protoErr("command name is a %T", vals[0])
	}
	tid := 0.0
	if len(vals) > 1 {
		tid, _ = vals[1].(float64)
	}
	arg := func(i int) any {
		if i < len(vals) {
			return vals[i]
		}
		return nil
	}
	c.log.Debug("rtmp command", "command", name, "transaction_id", tid)
	switch name {
	case "connect":
		return c.onConnect(tid, arg(2))
	case "createStream":
		return c.writeCommand(0, "_result", tid, nil, float64(msgStreamID))
	case "releaseStream":
		c.fmle = true
		return c.writeCommand(0, "_result", tid, nil, nil)
	case "FCPublish":
		c.fmle = true
		return c.writeCommand(0, "onFCPublish", 0.0, nil, status("status", "NetStream.Publish.Start", "Started publishing stream."))
	case "publish":
		s, _ := arg(3).(string)
		return c.onPublish(tid, s)
	case "play":
		s, _ := arg(3).(string)
		return c.onPlay(tid, s)
	case "pause":
		p, _ := arg(3).(bool)
		return c.onPause(p)
	case "FCUnpublish":
		c.endPublish()
		if err := c.writeCommand(0, "onFCUnpublish", 0.0, nil, status("status", "NetStream.Unpublish.Success", "Stop publishing stream.")); err != nil {
			return err
		}
		return c.writeCommand(0, "_result", tid, nil, nil)
	case "deleteStream", "closeStream":
		c.mu.Lock()
		r := c.role
		c.mu.Unlock()
		if r != roleNone {
			return errClosedByPeer
		}
		return nil
	case "getStreamLength", "_checkbw", "checkBandwidth":
		if tid != 0 {
			return c.writeCommand(0, "_result", tid, nil, 0.0)
		}
		return nil
	case "receiveAudio", "receiveVideo", "_result", "_error", "onBWDone", "onStatus", "FCSubscribe", "FCUnsubscribe", "setDataFrame", "@setDataFrame":
		return nil
	}
	c.log.Debug("unknown rtmp command ignored", "command", name)
	if tid != 0 {
		return c.writeCommand(0, "_error", tid, nil, status("error", "NetConnection.Call.Failed", "Method not found ("+name+")."))
	}
	return nil
}

func (c *conn) onConnect(tid float64, obj any) error {
	if c.connected {
		return protoErr("second connect on one connection")
	}
	o, _ := obj.(amf0Obj)
	if o == nil {
		return protoErr("connect without a command object")
	}
	c.app, c.tcURL = o.str("app"), o.str("tcUrl")
	c.pageURL, c.swfURL = o.str("pageUrl"), o.str("swfUrl")
	c.objEncoding, _ = o["objectEncoding"].(float64)
	if c.tcURL == "" {
		c.tcURL = "rtmp://" + defaultVhost + "/" + c.app
	}
	ref := resolveStream(c.tcURL, c.app, "")
	c.mu.Lock()
	c.info.PageURL, c.info.SwfURL = c.pageURL, c.swfURL
	c.ref = sdk.StreamRef{Vhost: ref.Vhost, App: ref.App, Param: ref.Param, TcURL: c.tcURL}
	c.mu.Unlock()
	// on_connect is reported once the stream name is known (publish or
	// play), as SRS does: its body then carries the stream and the param
	// of the stream URL, where clients put their token.
	c.connected = true
	if err := c.writeControl(msgWindowAckSize, windowAckSize); err != nil {
		return err
	}
	if err := c.writeMessage(csidControl, msgSetPeerBandwidth, 0, 0, []byte{0, 0x26, 0x25, 0xa0, 2}); err != nil { // 2500000, dynamic
		return err
	}
	if err := c.writeControl(msgSetChunkSize, uint32(c.cfg.ChunkSize)); err != nil {
		return err
	}
	c.wmu.Lock()
	c.outChunk = c.cfg.ChunkSize
	c.wmu.Unlock()
	props := []amf0Pair{{"fmsVer", "FMS/3,5,3,888"}, {"capabilities", 127.0}, {"mode", 1.0}}
	info2 := status("status", "NetConnection.Connect.Success", "Connection succeeded",
		amf0Pair{"objectEncoding", c.objEncoding},
		amf0Pair{"data", []amf0Pair{{"version", "3,5,3,888"}, {"srs_server", "Rill"}, {"srs_id", c.id}}})
	if err := c.writeCommand(0, "_result", tid, props, info2); err != nil {
		return err
	}
	return c.writeCommand(0, "onBWDone", 0.0, nil)
}

// reportConnect sends the connection's on_connect with the stream it names
// (SRS calls on_connect after identifying the client, in
// SrsRtmpConn::stream_service_cycle → check_vhost). A refusal closes the
// connection.
func (c *conn) reportConnect(ref sdk.StreamRef, code string) error {
	if c.s.rt == nil {
		return nil
	}
	c.mu.Lock()
	info := c.info
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	err := c.s.rt.Host.ClientConnected(ctx, info, ref)
	cancel()
	if errors.Is(err, sdk.ErrForbidden) {
		_ = c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", code, err.Error()))
		c.s.rejected.Add(1)
		return fmt.Errorf("connect refused: %w", err)
	} else if err != nil {
		c.log.Debug("report client connected", "error", err)
	}
	return nil
}

func (c *conn) streamRef(name string) (sdk.StreamRef, error) {
	if !c.connected {
		return sdk.StreamRef{}, protoErr("publish or play before connect")
	}
	c.mu.Lock()
	r := c.role
	c.mu.Unlock()
	if r != roleNone {
		return sdk.StreamRef{}, protoErr("second publish or play on one connection")
	}
	if name == "" {
		return sdk.StreamRef{}, protoErr("publish or play without a stream name")
	}
	return resolveStream(c.tcURL, c.app, name), nil
}

func (c *conn) onPublish(tid float64, name string) error {
	ref, err := c.streamRef(name)
	if err != nil {
		return err
	}
	vhost, opts := c.cfg.vhost(ref.Vhost)
	ref.Vhost = vhost // as the hub resolves it: unknown names fall back to the default vhost
	if err := c.reportConnect(ref, "NetStream.Publish.Rejected"); err != nil {
		return err
	}
	if err := c.traverse(ref, opts, "NetStream.Publish.Rejected"); err != nil {
		return err
	}
	typ := "flash-publish"
	if c.fmle {
		typ = "fmle-publish"
	}
	c.mu.Lock()
	c.info.Type = typ
	c.ref = ref
	c.vopts = opts
	info := c.info
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	pub, err := c.s.rt.Host.Publish(ctx, info, ref)
	cancel()
	if err != nil {
		code, desc := "NetStream.Publish.Rejected", err.Error()
		if errors.Is(err, sdk.ErrStreamBusy) {
			code = "NetStream.Publish.BadName"
			desc = "Stream already publishing"
		}
		_ = c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", code, desc))
		c.s.rejected.Add(1)
		return fmt.Errorf("publish %s refused: %w", ref.Key(), err)
	}
	c.mu.Lock()
	c.role, c.pub = rolePublish, pub
	c.mu.Unlock()
	// Media comes now: read it with fewer system calls. What the small
	// buffer still holds is read through the larger one.
	c.cr.r = bufio.NewReaderSize(c.cr.r, 64<<10)
	c.log.Info("publish started", "stream", ref.Key(), "type", typ, "param", ref.Param, "stream_id", pub.StreamID)
	if c.fmle {
		if err := c.writeCommand(0, "_result", tid, nil, nil); err != nil {
			return err
		}
	}
	if err := c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("status", "NetStream.Publish.Start", "Started publishing stream.", amf0Pair{"clientid", c.id})); err != nil {
		return err
	}
	// SRS publish { firstpkt_timeout }: the first media packet must come soon.
	_ = c.nc.SetDeadline(time.Time{})
	_ = c.nc.SetReadDeadline(time.Now().Add(opts.FirstPktTimeout))
	return nil
}

func (c *conn) endPublish() {
	c.mu.Lock()
	pub := c.pub
	c.pub = nil
	ref := c.ref
	c.mu.Unlock()
	if pub != nil {
		_ = pub.Close()
		c.log.Info("publish stopped", "stream", ref.Key())
	}
}

// handleMedia converts an audio, video or data message into a packet and
// writes it to the publication.
func (c *conn) handleMedia(m message) error {
	c.mu.Lock()
	pub, opts := c.pub, c.vopts
	c.mu.Unlock()
	if pub == nil {
		c.warnOnce("media-before-publish", "media message outside a publish ignored", "type", m.Type)
		return nil
	}
	if len(m.Payload) == 0 {
		return nil // some encoders send empty audio/video messages
	}
	dts := c.unwrap.unwrap(m.Timestamp)
	var pkt media.Packet
	var err error
	if m.Type == msgDataAMF0 {
		if _, merr := flv.MetadataFromAMF0(m.Payload); merr != nil {
			if !errors.Is(merr, flv.ErrNotMetadata) {
				c.warnOnce("bad-metadata", "bad onMetaData ignored", "error", merr)
			}
			return nil
		}
		pkt = media.Packet{Kind: media.KindData, Codec: media.CodecAMF0, Payload: flv.StripSetDataFrame(m.Payload)}
	} else {
		pkt, err = flv.FromTag(m.Type, 0, m.Payload)
		switch {
		case err == nil:
		case errors.Is(err, flv.ErrSkip):
			return nil
		case errors.Is(err, flv.ErrUnsupported):
			c.warnOnce("unsupported", "unsupported media dropped", "type", m.Type, "error", err)
			return nil
		default:
			c.warnOnce("malformed", "malformed media dropped", "type", m.Type, "error", err)
			return nil
		}
	}
	d := time.Duration(dts) * time.Millisecond
	pkt.PTS += d
	pkt.DTS += d
	if err := pub.Write(pkt); err != nil {
		return fmt.Errorf("write to hub: %w", err)
	}
	if !c.gotMedia {
		c.gotMedia = true
	}
	// SRS publish { normal_timeout }: a publisher that stops sending is
	// cut after this long.
	_ = c.nc.SetReadDeadline(time.Now().Add(opts.NormalTimeout))
	return nil
}

func (c *conn) warnOnce(key, msg string, args ...any) {
	if c.warnedOnce == nil {
		c.warnedOnce = map[string]bool{}
	}
	if c.warnedOnce[key] {
		if c.log.IsTrace() {
			c.log.Trace(msg, args...)
		}
		return
	}
	c.warnedOnce[key] = true
	c.log.Warn(msg+" (logged once per connection)", args...)
}

func (c *conn) onPlay(tid float64, name string) error {
	ref, err := c.streamRef(name)
	if err != nil {
		return err
	}
	vhost, opts := c.cfg.vhost(ref.Vhost)
	ref.Vhost = vhost
	if err := c.reportConnect(ref, "NetStream.Play.Rejected"); err != nil {
		return err
	}
	if err := c.traverse(ref, opts, "NetStream.Play.Rejected"); err != nil {
		return err
	}
	if err := c.maybeRedirect(ref, opts); err != nil {
		return err
	}
	c.mu.Lock()
	c.info.Type = "rtmp-play"
	c.ref = ref
	c.vopts = opts
	c.role = rolePlay
	c.mu.Unlock()
	if tcp, ok := c.nc.(*net.TCPConn); ok && c.cfg.SendBuffer > 0 {
		_ = tcp.SetWriteBuffer(c.cfg.SendBuffer)
	}
	// Every player is authorized by the core (security rules, on_play);
	// media comes from the stream's one shared subscription.
	if c.s.rt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
		err := c.s.rt.Host.Play(ctx, c.info, ref)
		cancel()
		if err != nil {
			c.log.Warn("play refused", "stream", ref.Key(), "error", err)
			_ = c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("error", "NetStream.Play.Rejected", err.Error()))
			return fmt.Errorf("play %s refused: %w", ref.Key(), err)
		}
		c.mu.Lock()
		c.playing = true
		c.mu.Unlock()
	}
	_ = c.nc.SetDeadline(time.Time{})
	var begin [6]byte
	binary.BigEndian.PutUint16(begin[:], ucStreamBegin)
	binary.BigEndian.PutUint32(begin[2:], msgStreamID)
	if err := c.writeMessage(csidControl, msgUserControl, 0, 0, begin[:]); err != nil {
		return err
	}
	if err := c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("status", "NetStream.Play.Reset", "Playing and resetting stream.")); err != nil {
		return err
	}
	if err := c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("status", "NetStream.Play.Start", "Started playing stream.")); err != nil {
		return err
	}
	sa := appendAMF0(appendAMF0(appendAMF0(nil, "|RtmpSampleAccess"), false), false)
	if err := c.writeMessage(csidData, msgDataAMF0, msgStreamID, 0, sa); err != nil {
		return err
	}
	// No "onStatus NetStream.Data.Start" data message: FFmpeg turns unknown
	// script data into an extra data stream.
	c.log.Info("play started", "stream", ref.Key(), "param", ref.Param)
	p := c.s.join(c, ref, opts)
	c.mu.Lock()
	c.player = p
	c.mu.Unlock()
	// tcp_nodelay applies from here: the replies above and the start
	// (sequence headers, cached GOP) went out without Nagle's wait for an
	// acknowledgement, which held the first frame up to the peer's delayed
	// ACK (40 ms).
	if tcp, ok := c.nc.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(opts.TCPNoDelay)
	}
	return nil
}

func (c *conn) onPause(pause bool) error {
	c.mu.Lock()
	p := c.player
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	p.setPaused(pause)
	code, desc := "NetStream.Unpause.Notify", "Unpaused stream."
	if pause {
		code, desc = "NetStream.Pause.Notify", "Paused stream."
	}
	return c.writeCommand(msgStreamID, "onStatus", 0.0, nil, status("status", code, desc))
}

// tsUnwrapper turns a publisher's 32-bit millisecond timestamps into a
// 64-bit timeline across the 2^32 wrap (49.7 days, docs/THREATS.md row 4).
type tsUnwrapper struct {
	started bool
	last    uint32
	epoch   int64
}

func (u *tsUnwrapper) unwrap(ts uint32) int64 {
	if !u.started {
		u.started, u.last = true, ts
		return int64(ts)
	}
	switch d := ts - u.last; {
	case d < 1<<31: // forward (possibly across the wrap)
		if ts < u.last {
			u.epoch += 1 << 32
		}
		u.last = ts
		return u.epoch + int64(ts)
	default: // backward: a late packet, possibly from before the wrap
		if ts > u.last {
			return u.epoch - 1<<32 + int64(ts)
		}
		return u.epoch + int64(ts)
	}
}
