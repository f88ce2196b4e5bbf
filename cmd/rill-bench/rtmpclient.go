package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"
)

// rtmpPull is a minimal RTMP player in the spirit of flvPull: a simple
// handshake, connect / createStream / play with the same command objects as
// lal's client, then a chunk-stream reader that reassembles messages into
// one reused buffer per chunk stream. lal's rtmp.PullSession allocates per
// message; with thousands of players on the machine under test, that made
// the load tool a bottleneck, as it was for HTTP-FLV.
//
// It hands audio (8), video (9) and AMF0 data (18) messages to the
// callback, as lal's client does; the payload is only valid during the
// call. It acknowledges every window of received bytes that the server
// announces (RTMP specification 1.0 §5.4.3, §5.4.4) and answers pings.
type rtmpPull struct {
	conn net.Conn
	done chan error

	cr    *rtmpReader
	rx    *countingReader
	onMsg func(typ uint8, ts uint32, payload []byte)

	window  uint32 // the server's window acknowledgement size; 0: none
	lastAck uint64 // received bytes at the last acknowledgement
	wbuf    []byte // outgoing chunks, reused
}

// RTMP message type ids (RTMP specification 1.0 §5.4, §6.2, §7.1).
const (
	rtmpSetChunkSize  = 1
	rtmpAbort         = 2
	rtmpAck           = 3
	rtmpUserControl   = 4
	rtmpWindowAckSize = 5
	rtmpPeerBandwidth = 6
	rtmpAudio         = 8
	rtmpVideo         = 9
	rtmpDataAMF0      = 18
	rtmpCommandAMF3   = 17
	rtmpCommandAMF0   = 20
	rtmpAggregate     = 22
)

const (
	rtmpMaxMessage   = 16 << 20 // longest message accepted
	rtmpMaxChunk     = 16 << 20 // largest Set Chunk Size accepted
	rtmpMaxStreams   = 64       // chunk streams with state
	rtmpMaxInflight  = 32 << 20 // bytes of partially received messages
	rtmpTimestamp24  = 0xffffff
	rtmpOutChunkSize = 128 // what we send with: the default, no Set Chunk Size
	rtmpOurWindow    = 2500000
	rtmpReadBuf      = 64 << 10
)

// dialRTMP connects to rtmp://host[:port]/app/stream[?query], plays the
// stream and returns once the server answered NetStream.Play.Start; the
// messages then go to onMsg from a goroutine until the connection ends
// (done).
func dialRTMP(ctx context.Context, rawURL string, onMsg func(typ uint8, ts uint32, payload []byte)) (*rtmpPull, error) {
	host, app, name, err := parseRTMPURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "1935")
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	p := &rtmpPull{conn: c, done: make(chan error, 1), onMsg: onMsg, rx: &countingReader{r: c}}
	p.cr = newRTMPReader(p.rx)
	if err := p.setup(host, app, name); err != nil {
		c.Close()
		return nil, fmt.Errorf("rtmp %s: %w", rawURL, err)
	}
	_ = c.SetDeadline(time.Time{})
	go func() { p.done <- p.run() }()
	return p, nil
}

func (p *rtmpPull) close() { p.conn.Close() }

// parseRTMPURL splits an RTMP URL as lal's client does: the app is the path
// up to the last '/', the stream name the rest plus the query.
func parseRTMPURL(rawURL string) (host, app, name string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "rtmp" || u.Host == "" {
		return "", "", "", fmt.Errorf("rtmp url %q: want rtmp://host[:port]/app/stream", rawURL)
	}
	path := strings.TrimPrefix(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return "", "", "", fmt.Errorf("rtmp url %q: want rtmp://host[:port]/app/stream", rawURL)
	}
	app, name = path[:i], path[i+1:]
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	return u.Host, app, name, nil
}

// setup does the handshake and the commands up to NetStream.Play.Start.
func (p *rtmpPull) setup(host, app, name string) error {
	// Simple handshake (§5.2): C0+C1 with a time and random bytes, C2 = S1.
	hs := make([]byte, 1+1536)
	hs[0] = 3
	binary.BigEndian.PutUint32(hs[1:5], uint32(time.Now().UnixMilli()))
	for i := 9; i+8 <= len(hs); i += 8 {
		binary.LittleEndian.PutUint64(hs[i:], rand.Uint64())
	}
	if _, err := p.conn.Write(hs); err != nil {
		return err
	}
	if _, err := io.ReadFull(p.cr.r, hs); err != nil {
		return fmt.Errorf("handshake: read S0+S1: %w", err)
	}
	if hs[0] != 3 {
		return fmt.Errorf("handshake: server version %d", hs[0])
	}
	if _, err := p.conn.Write(hs[1:]); err != nil {
		return err
	}
	if _, err := p.cr.r.Discard(1536); err != nil {
		return fmt.Errorf("handshake: read S2: %w", err)
	}

	const (
		tidConnect      = 1
		tidCreateStream = 2
		tidPlay         = 3
	)
	tcURL := "rtmp://" + host + "/" + app
	b := amfString(nil, "connect")
	b = amfNumber(b, tidConnect)
	b = amfObject(b, []amfPair{
		{"app", app}, {"type", "nonprivate"}, {"flashVer", "LNX 9,0,124,2"}, {"fpad", false}, {"tcUrl", tcURL},
	})
	if err := p.write(3, rtmpCommandAMF0, 0, b); err != nil {
		return err
	}
	for {
		m, err := p.cr.next()
		if err != nil {
			return err
		}
		if err := p.control(m); err != nil {
			return err
		}
		switch m.typ {
		case rtmpAudio, rtmpVideo, rtmpDataAMF0, rtmpAggregate:
			p.media(m) // a server that starts before Play.Start
			continue
		case rtmpCommandAMF0, rtmpCommandAMF3:
		default:
			continue
		}
		body := m.payload
		if m.typ == rtmpCommandAMF3 && len(body) > 0 {
			body = body[1:]
		}
		vals, _ := amfDecodeAll(body, 6)
		if len(vals) < 2 {
			continue
		}
		cmd, _ := vals[0].(string)
		tid, _ := vals[1].(float64)
		switch cmd {
		case "_result":
			switch tid {
			case tidConnect:
				if code := amfField(vals, "code"); code != "" && code != "NetConnection.Connect.Success" {
					return fmt.Errorf("connect: %s", code)
				}
				if err := p.write(2, rtmpWindowAckSize, 0, binary.BigEndian.AppendUint32(nil, rtmpOurWindow)); err != nil {
					return err
				}
				b := amfString(nil, "createStream")
				b = amfNumber(b, tidCreateStream)
				b = append(b, amfNull)
				if err := p.write(3, rtmpCommandAMF0, 0, b); err != nil {
					return err
				}
			case tidCreateStream:
				sid := 1.0
				if len(vals) >= 4 {
					if v, ok := vals[3].(float64); ok {
						sid = v
					}
				}
				b := amfString(nil, "play")
				b = amfNumber(b, tidPlay)
				b = append(b, amfNull)
				b = amfString(b, name)
				if err := p.write(8, rtmpCommandAMF0, uint32(sid), b); err != nil {
					return err
				}
			}
		case "_error":
			return errors.New(amfErrorText(vals, "command refused"))
		case "onStatus":
			code := amfField(vals, "code")
			if code == "NetStream.Play.Start" {
				return nil
			}
			if amfField(vals, "level") == "error" {
				return errors.New(amfErrorText(vals, "play refused"))
			}
		}
	}
}

// run reads until the connection ends.
func (p *rtmpPull) run() error {
	for {
		m, err := p.cr.next()
		if err != nil {
			return err
		}
		if err := p.control(m); err != nil {
			return err
		}
		p.media(m)
	}
}

// control handles the protocol control messages the reader leaves to us
// and acknowledges received bytes.
func (p *rtmpPull) control(m rtmpMessage) error {
	if m.typ == rtmpWindowAckSize && len(m.payload) >= 4 {
		p.window = binary.BigEndian.Uint32(m.payload)
	}
	if n := p.rx.n; p.window > 0 && n-p.lastAck >= uint64(p.window) {
		p.lastAck = n
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(n)) // the sequence number wraps at 2^32
		if err := p.write(2, rtmpAck, 0, b[:]); err != nil {
			return err
		}
	}
	switch m.typ {
	case rtmpUserControl:
		// Ping request (event 6): answer with a ping response (7).
		if len(m.payload) >= 6 && binary.BigEndian.Uint16(m.payload) == 6 {
			var b [6]byte
			binary.BigEndian.PutUint16(b[:], 7)
			copy(b[2:], m.payload[2:6])
			if err := p.write(2, rtmpUserControl, 0, b[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// media hands audio, video and data messages to the callback, splitting
// aggregates.
func (p *rtmpPull) media(m rtmpMessage) {
	switch m.typ {
	case rtmpAudio, rtmpVideo, rtmpDataAMF0:
		p.onMsg(m.typ, m.ts, m.payload)
	case rtmpAggregate:
		splitRTMPAggregate(m, p.onMsg)
	}
}

// splitRTMPAggregate hands the sub-messages of an aggregate message (§7.1.6:
// FLV tags with back pointers) to fn; each gets the aggregate's timestamp
// plus its offset from the first sub-message.
func splitRTMPAggregate(m rtmpMessage, fn func(typ uint8, ts uint32, payload []byte)) {
	b := m.payload
	var base uint32
	for i := 0; len(b) >= 11; i++ {
		n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		ts := uint32(b[7])<<24 | uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
		if 11+n > len(b) {
			return
		}
		if i == 0 {
			base = ts
		}
		if typ := b[0] & 0x1f; typ == rtmpAudio || typ == rtmpVideo || typ == rtmpDataAMF0 {
			fn(typ, m.ts+(ts-base), b[11:11+n])
		}
		b = b[min(len(b), 11+n+4):]
	}
}

// write sends one message in chunks of rtmpOutChunkSize (fmt 0, then fmt
// 3), timestamp 0; csid is below 64.
func (p *rtmpPull) write(csid byte, typ uint8, msid uint32, body []byte) error {
	b := p.wbuf[:0]
	n := len(body)
	b = append(b, csid, 0, 0, 0, byte(n>>16), byte(n>>8), byte(n), typ)
	b = binary.LittleEndian.AppendUint32(b, msid)
	for first := true; first || len(body) > 0; first = false {
		if !first {
			b = append(b, 3<<6|csid)
		}
		k := min(len(body), rtmpOutChunkSize)
		b = append(b, body[:k]...)
		body = body[k:]
	}
	p.wbuf = b
	_, err := p.conn.Write(b)
	return err
}

// countingReader counts the bytes read from the connection (for
// acknowledgements).
type countingReader struct {
	r io.Reader
	n uint64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += uint64(n)
	return n, err
}

// rtmpMessage is one reassembled message; payload is valid until the next
// message of the same chunk stream.
type rtmpMessage struct {
	typ     uint8
	csid    uint32
	msid    uint32
	ts      uint32
	payload []byte
}

type rtmpChunkStream struct {
	started  bool   // a header with message fields was seen
	ts       uint32 // absolute timestamp of the current message
	delta    uint32 // timestamp field of the last fmt 0-2 header
	extended bool   // that header used the extended timestamp
	length   uint32
	typ      uint8
	msid     uint32
	buf      []byte // reassembly buffer, reused; len = bytes received
}

// rtmpReader reassembles RTMP chunks into messages (§5.3) with bounded
// memory and no allocation per message once every chunk stream's buffer
// has grown to its largest message.
type rtmpReader struct {
	r         *bufio.Reader
	chunkSize uint32
	low       [64]*rtmpChunkStream // csid 2..63
	high      map[uint32]*rtmpChunkStream
	nstreams  int
	inflight  int
	hdr       [11]byte
}

func newRTMPReader(r io.Reader) *rtmpReader {
	return &rtmpReader{r: bufio.NewReaderSize(r, rtmpReadBuf), chunkSize: 128}
}

// next returns the next complete message. It applies Set Chunk Size and
// Abort itself and returns them too.
func (c *rtmpReader) next() (rtmpMessage, error) {
	for {
		m, done, err := c.chunk()
		if err != nil {
			return m, err
		}
		if !done {
			continue
		}
		switch m.typ {
		case rtmpSetChunkSize:
			if len(m.payload) < 4 {
				return m, errors.New("rtmp: short set chunk size")
			}
			v := binary.BigEndian.Uint32(m.payload) & 0x7fffffff
			if v == 0 || v > rtmpMaxChunk {
				return m, fmt.Errorf("rtmp: set chunk size %d", v)
			}
			c.chunkSize = v
		case rtmpAbort:
			if len(m.payload) >= 4 {
				if cs := c.stream(binary.BigEndian.Uint32(m.payload)); cs != nil {
					c.inflight -= len(cs.buf)
					cs.buf = cs.buf[:0]
				}
			}
		}
		return m, nil
	}
}

func (c *rtmpReader) stream(csid uint32) *rtmpChunkStream {
	if csid < 64 {
		return c.low[csid]
	}
	return c.high[csid]
}

// chunk reads one chunk; done reports whether it completed a message.
func (c *rtmpReader) chunk() (m rtmpMessage, done bool, err error) {
	b0, err := c.r.ReadByte()
	if err != nil {
		return m, false, err
	}
	fmtType := b0 >> 6
	csid := uint32(b0 & 0x3f)
	switch csid { // §5.3.1.1: 2- and 3-byte basic headers
	case 0:
		if _, err := io.ReadFull(c.r, c.hdr[:1]); err != nil {
			return m, false, err
		}
		csid = 64 + uint32(c.hdr[0])
	case 1:
		if _, err := io.ReadFull(c.r, c.hdr[:2]); err != nil {
			return m, false, err
		}
		csid = 64 + uint32(c.hdr[0]) + uint32(c.hdr[1])*256
	}
	cs := c.stream(csid)
	if cs == nil {
		if fmtType != 0 {
			return m, false, fmt.Errorf("rtmp: chunk fmt %d on new chunk stream %d", fmtType, csid)
		}
		if c.nstreams >= rtmpMaxStreams {
			return m, false, fmt.Errorf("rtmp: more than %d chunk streams", rtmpMaxStreams)
		}
		cs = &rtmpChunkStream{}
		c.nstreams++
		if csid < 64 {
			c.low[csid] = cs
		} else {
			if c.high == nil {
				c.high = map[uint32]*rtmpChunkStream{}
			}
			c.high[csid] = cs
		}
	}
	first := len(cs.buf) == 0
	if !first && fmtType != 3 {
		// A new header while a message is incomplete: the old message is
		// lost, as SRS and FFmpeg read it.
		c.inflight -= len(cs.buf)
		cs.buf = cs.buf[:0]
		first = true
	}
	switch fmtType {
	case 0, 1, 2:
		n := [3]int{11, 7, 3}[fmtType]
		if _, err := io.ReadFull(c.r, c.hdr[:n]); err != nil {
			return m, false, err
		}
		h := c.hdr[:n]
		field := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		if fmtType <= 1 {
			cs.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
			cs.typ = h[6]
			if fmtType == 0 {
				cs.msid = binary.LittleEndian.Uint32(h[7:11])
			}
		} else if !cs.started {
			return m, false, fmt.Errorf("rtmp: chunk fmt 2 on chunk stream %d without a message header", csid)
		}
		cs.extended = field == rtmpTimestamp24
		if cs.extended {
			if _, err := io.ReadFull(c.r, c.hdr[:4]); err != nil {
				return m, false, err
			}
			field = binary.BigEndian.Uint32(c.hdr[:4])
		}
		cs.delta = field
		if fmtType == 0 {
			cs.ts = field
		} else {
			cs.ts += field
		}
		cs.started = true
	case 3:
		if !cs.started {
			return m, false, fmt.Errorf("rtmp: chunk fmt 3 on chunk stream %d without a message header", csid)
		}
		if cs.extended {
			// §5.3.1.3: the extended timestamp is repeated in type 3
			// chunks. Some writers leave it out of the continuation chunks
			// of a message: there, take it only if it is the same value.
			if first {
				if _, err := io.ReadFull(c.r, c.hdr[:4]); err != nil {
					return m, false, err
				}
				cs.delta = binary.BigEndian.Uint32(c.hdr[:4])
			} else if b, err := c.r.Peek(4); err == nil && binary.BigEndian.Uint32(b) == cs.delta {
				_, _ = c.r.Discard(4)
			}
		}
		if first {
			cs.ts += cs.delta
		}
	}
	if first {
		if cs.length > rtmpMaxMessage {
			return m, false, fmt.Errorf("rtmp: message of %d bytes (type %d)", cs.length, cs.typ)
		}
		if cap(cs.buf) < int(cs.length) {
			// Once per new largest message, with room for a slightly
			// larger one next time.
			cs.buf = make([]byte, 0, int(cs.length)+int(cs.length)/4)
		}
	}
	need := min(cs.length-uint32(len(cs.buf)), c.chunkSize)
	if c.inflight+int(need) > rtmpMaxInflight {
		return m, false, fmt.Errorf("rtmp: more than %d bytes of partial messages", rtmpMaxInflight)
	}
	start := len(cs.buf)
	cs.buf = cs.buf[:start+int(need)]
	if _, err := io.ReadFull(c.r, cs.buf[start:]); err != nil {
		return m, false, err
	}
	c.inflight += int(need)
	if uint32(len(cs.buf)) < cs.length {
		return m, false, nil
	}
	c.inflight -= len(cs.buf)
	m = rtmpMessage{typ: cs.typ, csid: csid, msid: cs.msid, ts: cs.ts, payload: cs.buf}
	cs.buf = cs.buf[:0]
	return m, true, nil
}

// AMF0 (Action Message Format AMF0 specification), only what the commands
// of a player need. Allocation here is fine: it runs during setup.

const (
	amfNumberMarker      = 0x00
	amfBoolMarker        = 0x01
	amfStringMarker      = 0x02
	amfObjectMarker      = 0x03
	amfNull              = 0x05
	amfUndefined         = 0x06
	amfECMAArrayMarker   = 0x08
	amfObjectEnd         = 0x09
	amfStrictArrayMarker = 0x0a
	amfDateMarker        = 0x0b
	amfLongStringMarker  = 0x0c
)

type amfPair struct {
	key   string
	value any // string, float64, bool
}

func amfString(b []byte, s string) []byte {
	b = append(b, amfStringMarker, byte(len(s)>>8), byte(len(s)))
	return append(b, s...)
}

func amfNumber(b []byte, v float64) []byte {
	b = append(b, amfNumberMarker)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
}

func amfObject(b []byte, pairs []amfPair) []byte {
	b = append(b, amfObjectMarker)
	for _, p := range pairs {
		b = append(b, byte(len(p.key)>>8), byte(len(p.key)))
		b = append(b, p.key...)
		switch v := p.value.(type) {
		case string:
			b = amfString(b, v)
		case float64:
			b = amfNumber(b, v)
		case bool:
			x := byte(0)
			if v {
				x = 1
			}
			b = append(b, amfBoolMarker, x)
		default:
			b = append(b, amfNull)
		}
	}
	return append(b, 0, 0, amfObjectEnd)
}

// amfDecodeAll decodes up to limit values; objects and ECMA arrays come back
// as map[string]any, null and undefined as nil.
func amfDecodeAll(b []byte, limit int) ([]any, error) {
	var out []any
	for len(b) > 0 && len(out) < limit {
		v, rest, err := amfDecode(b, 0)
		if err != nil {
			return out, err
		}
		out = append(out, v)
		b = rest
	}
	return out, nil
}

var errAMF = errors.New("amf0: malformed")

func amfDecode(b []byte, depth int) (any, []byte, error) {
	if len(b) < 1 || depth > 8 {
		return nil, nil, errAMF
	}
	marker, b := b[0], b[1:]
	switch marker {
	case amfNumberMarker:
		if len(b) < 8 {
			return nil, nil, errAMF
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:], nil
	case amfBoolMarker:
		if len(b) < 1 {
			return nil, nil, errAMF
		}
		return b[0] != 0, b[1:], nil
	case amfStringMarker:
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return nil, nil, errAMF
		}
		n := int(binary.BigEndian.Uint16(b))
		return string(b[2 : 2+n]), b[2+n:], nil
	case amfLongStringMarker:
		if len(b) < 4 || uint64(len(b)) < 4+uint64(binary.BigEndian.Uint32(b)) {
			return nil, nil, errAMF
		}
		n := int(binary.BigEndian.Uint32(b))
		return string(b[4 : 4+n]), b[4+n:], nil
	case amfNull, amfUndefined:
		return nil, b, nil
	case amfObjectMarker, amfECMAArrayMarker:
		if marker == amfECMAArrayMarker {
			if len(b) < 4 {
				return nil, nil, errAMF
			}
			b = b[4:]
		}
		obj := map[string]any{}
		for {
			if len(b) < 3 {
				return nil, nil, errAMF
			}
			n := int(binary.BigEndian.Uint16(b))
			if n == 0 && b[2] == amfObjectEnd {
				return obj, b[3:], nil
			}
			if len(b) < 2+n {
				return nil, nil, errAMF
			}
			key := string(b[2 : 2+n])
			v, rest, err := amfDecode(b[2+n:], depth+1)
			if err != nil {
				return nil, nil, err
			}
			obj[key] = v
			b = rest
		}
	case amfStrictArrayMarker:
		if len(b) < 4 {
			return nil, nil, errAMF
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		var arr []any
		for i := uint32(0); i < n; i++ {
			v, rest, err := amfDecode(b, depth+1)
			if err != nil {
				return nil, nil, err
			}
			arr = append(arr, v)
			b = rest
		}
		return arr, b, nil
	case amfDateMarker:
		if len(b) < 10 {
			return nil, nil, errAMF
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), b[10:], nil
	}
	return nil, nil, fmt.Errorf("amf0: marker %#x not supported", marker)
}

// amfField returns the string field key of the first object among vals
// that has it (the information object of _result, _error and onStatus).
func amfField(vals []any, key string) string {
	for _, v := range vals {
		if o, ok := v.(map[string]any); ok {
			if s, ok := o[key].(string); ok {
				return s
			}
		}
	}
	return ""
}

func amfErrorText(vals []any, fallback string) string {
	code, desc := amfField(vals, "code"), amfField(vals, "description")
	switch {
	case code != "" && desc != "":
		return code + ": " + desc
	case code != "":
		return code
	case desc != "":
		return desc
	}
	return fallback
}
