package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RTMP message type ids (RTMP specification 1.0 §5.4, §6.2, §7.1).
const (
	msgSetChunkSize     = 1
	msgAbort            = 2
	msgAck              = 3
	msgUserControl      = 4
	msgWindowAckSize    = 5
	msgSetPeerBandwidth = 6
	msgAudio            = 8
	msgVideo            = 9
	msgDataAMF3         = 15
	msgSharedObjAMF3    = 16
	msgCommandAMF3      = 17
	msgDataAMF0         = 18
	msgSharedObjAMF0    = 19
	msgCommandAMF0      = 20
	msgAggregate        = 22
)

// Limits on what a peer may make a connection allocate (docs/THREATS.md rows 1-3).
const (
	defaultChunkSize = 128
	maxChunkSize     = 16 << 20 // 16 MiB; the spec allows 0x7fffffff, nobody needs it
	maxChunkStreams  = 64       // distinct chunk stream ids with state per connection
	maxInflightBytes = 32 << 20 // partially reassembled bytes over all chunk streams
	maxTimestamp24   = 0xffffff
)

// errProtocol wraps every violation of the chunk layer; the connection is
// closed with the message as the logged reason.
var errProtocol = errors.New("rtmp protocol error")

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// maxMessageSize bounds the length of a message by type: control messages are
// a few bytes, commands and metadata far less than media.
func maxMessageSize(typ uint8) (uint32, bool) {
	switch typ {
	case msgSetChunkSize, msgAbort, msgAck, msgWindowAckSize:
		return 4, true
	case msgSetPeerBandwidth:
		return 5, true
	case msgUserControl:
		return 64, true
	case msgCommandAMF0, msgCommandAMF3, msgSharedObjAMF0, msgSharedObjAMF3:
		return 128 << 10, true
	case msgDataAMF0, msgDataAMF3:
		return 1 << 20, true
	case msgAudio:
		return 4 << 20, true
	case msgVideo, msgAggregate:
		return 1<<24 - 1, true
	}
	return 0, false
}

// message is one reassembled RTMP message. Payload is only valid until the
// next ReadMessage.
type message struct {
	Type      uint8
	StreamID  uint32
	Timestamp uint32 // 32-bit milliseconds, as on the wire
	CSID      uint32
	Payload   []byte
}

type chunkStream struct {
	started  bool   // a header with message fields was seen
	ts       uint32 // absolute timestamp of the current message
	delta    uint32 // timestamp field of the last header (delta for fmt 1-3)
	extended bool   // the last fmt 0-2 header used the extended timestamp
	length   uint32
	typ      uint8
	streamID uint32
	buf      []byte // reassembly; len = bytes received of the current message
}

// chunkReader reassembles RTMP chunks into messages with bounded memory
// (RTMP specification 1.0 §5.3). It validates Set Chunk Size and Abort
// itself, since they change how the following chunks are read.
type chunkReader struct {
	r         *bufio.Reader
	chunkSize uint32
	streams   map[uint32]*chunkStream
	inflight  int
	hdr       [16]byte
}

func newChunkReader(r io.Reader) *chunkReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16<<10)
	}
	return &chunkReader{r: br, chunkSize: defaultChunkSize, streams: map[uint32]*chunkStream{}}
}

// ReadMessage returns the next complete message.
func (c *chunkReader) ReadMessage() (message, error) {
	for {
		m, done, err := c.readChunk()
		if err != nil {
			return message{}, err
		}
		if !done {
			continue
		}
		switch m.Type {
		case msgSetChunkSize:
			if len(m.Payload) < 4 {
				return message{}, protoErr("set chunk size with a %d-byte payload", len(m.Payload))
			}
			v := binary.BigEndian.Uint32(m.Payload)
			if v&0x80000000 != 0 || v == 0 || v > maxChunkSize {
				return message{}, protoErr("set chunk size %d out of range 1..%d", v, maxChunkSize)
			}
			c.chunkSize = v
		case msgAbort:
			if len(m.Payload) < 4 {
				return message{}, protoErr("abort with a %d-byte payload", len(m.Payload))
			}
			if cs := c.streams[binary.BigEndian.Uint32(m.Payload)]; cs != nil {
				c.inflight -= len(cs.buf)
				cs.buf = cs.buf[:0]
			}
		}
		return m, nil
	}
}

func (c *chunkReader) read(n int) ([]byte, error) {
	b := c.hdr[:n]
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// readChunk reads one chunk; done reports whether it completed a message.
func (c *chunkReader) readChunk() (m message, done bool, err error) {
	b, err := c.read(1)
	if err != nil {
		return m, false, err
	}
	fmtType := b[0] >> 6
	csid := uint32(b[0] & 0x3f)
	switch csid { // §5.3.1.1: 2- and 3-byte basic headers
	case 0:
		if b, err = c.read(1); err != nil {
			return m, false, err
		}
		csid = 64 + uint32(b[0])
	case 1:
		if b, err = c.read(2); err != nil {
			return m, false, err
		}
		csid = 64 + uint32(b[0]) + uint32(b[1])*256
	}
	cs := c.streams[csid]
	if cs == nil {
		if fmtType != 0 {
			return m, false, protoErr("chunk fmt %d on new chunk stream %d", fmtType, csid)
		}
		if len(c.streams) >= maxChunkStreams {
			return m, false, protoErr("more than %d chunk streams", maxChunkStreams)
		}
		cs = &chunkStream{}
		c.streams[csid] = cs
	}
	first := len(cs.buf) == 0 // first chunk of a message
	if !first && fmtType != 3 {
		// §5.3.1.2: a new header while a message is incomplete; SRS and
		// FFmpeg treat it as the start of a new message (the old one is lost).
		c.inflight -= len(cs.buf)
		cs.buf = cs.buf[:0]
		first = true
	}
	switch fmtType {
	case 0, 1, 2:
		n := [3]int{11, 7, 3}[fmtType]
		if b, err = c.read(n); err != nil {
			return m, false, err
		}
		field := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		if fmtType <= 1 {
			cs.length = uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
			cs.typ = b[6]
			if fmtType == 0 {
				cs.streamID = binary.LittleEndian.Uint32(b[7:11])
			}
		} else if !cs.started {
			return m, false, protoErr("chunk fmt 2 on chunk stream %d without a previous message header", csid)
		}
		cs.extended = field == maxTimestamp24
		if cs.extended {
			if b, err = c.read(4); err != nil {
				return m, false, err
			}
			field = binary.BigEndian.Uint32(b)
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
			return m, false, protoErr("chunk fmt 3 on chunk stream %d without a previous message header", csid)
		}
		if cs.extended { // §5.3.1.3: repeated in type 3 chunks
			if b, err = c.read(4); err != nil {
				return m, false, err
			}
			if first {
				cs.delta = binary.BigEndian.Uint32(b)
			}
		}
		if first {
			cs.ts += cs.delta
		}
	}
	if first {
		limit, known := maxMessageSize(cs.typ)
		if !known {
			return m, false, protoErr("unknown message type %d on chunk stream %d", cs.typ, csid)
		}
		if cs.length > limit {
			return m, false, protoErr("message type %d of %d bytes exceeds %d", cs.typ, cs.length, limit)
		}
	}
	need := cs.length - uint32(len(cs.buf))
	if need > c.chunkSize {
		need = c.chunkSize
	}
	if c.inflight+int(need) > maxInflightBytes {
		return m, false, protoErr("more than %d bytes of partial messages", maxInflightBytes)
	}
	// Grow by what arrives, never by the announced length: memory follows
	// the bytes the peer actually sent.
	start := len(cs.buf)
	if cap(cs.buf)-start < int(need) {
		nb := make([]byte, start, start+int(need)+start/2)
		copy(nb, cs.buf)
		cs.buf = nb
	}
	cs.buf = cs.buf[:start+int(need)]
	if _, err := io.ReadFull(c.r, cs.buf[start:]); err != nil {
		return m, false, err
	}
	c.inflight += int(need)
	if uint32(len(cs.buf)) < cs.length {
		return m, false, nil
	}
	c.inflight -= len(cs.buf)
	m = message{Type: cs.typ, StreamID: cs.streamID, Timestamp: cs.ts, CSID: csid, Payload: cs.buf}
	cs.buf = cs.buf[:0]
	if cap(cs.buf) > 1<<20 && cs.typ != msgVideo { // don't pin big buffers on odd streams
		cs.buf = nil
	}
	return m, true, nil
}

// aggregate splits an aggregate message (type 22, RTMP 1.0 §7.1.6) into its
// sub-messages; each gets the aggregate's timestamp plus its offset from the
// first sub-message.
func splitAggregate(m message, fn func(message) error) error {
	b := m.Payload
	var base uint32
	for i := 0; len(b) > 0; i++ {
		if len(b) < 11 {
			return protoErr("aggregate sub-message %d header cut short", i)
		}
		typ := b[0]
		size := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ts := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6]) | uint32(b[7])<<24
		if i == 0 {
			base = ts
		}
		b = b[11:]
		if uint32(len(b)) < size {
			return protoErr("aggregate sub-message %d of %d bytes, %d left", i, size, len(b))
		}
		if typ != msgAudio && typ != msgVideo && typ != msgDataAMF0 {
			return protoErr("aggregate sub-message %d of type %d", i, typ)
		}
		sub := message{Type: typ, StreamID: m.StreamID, Timestamp: m.Timestamp + (ts - base), CSID: m.CSID, Payload: b[:size]}
		if err := fn(sub); err != nil {
			return err
		}
		b = b[size:]
		if len(b) < 4 {
			if len(b) == 0 {
				return nil // some muxers omit the last back pointer
			}
			return protoErr("aggregate back pointer %d cut short", i)
		}
		b = b[4:]
	}
	return nil
}

// appendChunks appends msg as chunks of chunkSize on chunk stream csid: a
// type 0 header on the first chunk and type 3 headers on the rest, with the
// extended timestamp repeated in each when it is used (§5.3.1.3).
func appendChunks(dst []byte, csid uint32, typ uint8, streamID uint32, ts uint32, body []byte, chunkSize int) []byte {
	ext := ts >= maxTimestamp24
	field := ts
	if ext {
		field = maxTimestamp24
	}
	dst = appendBasicHeader(dst, 0, csid)
	dst = append(dst, byte(field>>16), byte(field>>8), byte(field))
	n := len(body)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n), typ)
	dst = binary.LittleEndian.AppendUint32(dst, streamID)
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	for first := true; first || len(body) > 0; first = false {
		if !first {
			dst = appendBasicHeader(dst, 3, csid)
			if ext {
				dst = binary.BigEndian.AppendUint32(dst, ts)
			}
		}
		k := min(len(body), chunkSize)
		dst = append(dst, body[:k]...)
		body = body[k:]
	}
	return dst
}

func appendBasicHeader(dst []byte, fmtType byte, csid uint32) []byte {
	switch {
	case csid < 64:
		return append(dst, fmtType<<6|byte(csid))
	case csid < 320:
		return append(dst, fmtType<<6, byte(csid-64))
	default:
		return append(dst, fmtType<<6|1, byte(csid-64), byte((csid-64)>>8))
	}
}

// chunkedSize returns len(appendChunks(nil, ...)) for planning buffers.
func chunkedSize(csid uint32, ts uint32, n, chunkSize int) int {
	bh := 1
	if csid >= 64 {
		bh = 2
		if csid >= 320 {
			bh = 3
		}
	}
	ext := 0
	if ts >= maxTimestamp24 {
		ext = 4
	}
	chunks := 1
	if n > chunkSize {
		chunks = (n + chunkSize - 1) / chunkSize
	}
	return bh + 11 + ext + (chunks-1)*(bh+ext) + n
}
