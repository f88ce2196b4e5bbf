package avcodec

/*
#include <stdlib.h>
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/rill-media/rill/sdk/media"
)

// Frame is one encoded audio frame. PTS and Duration count samples at the
// encoder's rate; PTS may be negative for the priming frames an encoder
// emits first (AAC's 1024-sample delay).
type Frame struct {
	Data     []byte
	PTS      int64
	Duration int64
}

// Encoder encodes interleaved float32 PCM, re-framed to the codec's frame
// size (1024 samples for AAC, 960 = 20 ms at 48 kHz for Opus).
type Encoder struct {
	codec   media.Codec
	format  Format
	ctx     *C.AVCodecContext
	pkt     *C.AVPacket
	frame   *C.AVFrame
	size    int       // samples per channel in one frame
	pending []float32 // samples not yet a whole frame
	next    int64     // PTS of the first pending sample
	config  []byte
}

// NewEncoder opens an encoder: media.CodecAAC is FFmpeg's native AAC-LC
// encoder (the config is its AudioSpecificConfig), media.CodecOpus is
// libopus (rates 8000, 12000, 16000, 24000 or 48000 Hz; the config is an
// OpusHead); media.CodecG711A and CodecG711U are FFmpeg's pcm_alaw and
// pcm_mulaw in 20 ms frames. bitrate is in bit/s; zero picks 64 kbit/s per channel for AAC
// and 32 kbit/s per channel for Opus.
func NewEncoder(codec media.Codec, f Format, bitrate int) (*Encoder, error) {
	if !f.valid() || f.Channels > 2 {
		return nil, fmt.Errorf("avcodec: encoder format %d Hz %d ch out of range", f.Rate, f.Channels)
	}
	var name string
	switch codec {
	case media.CodecAAC:
		name = "aac"
		if bitrate == 0 {
			bitrate = 64000 * f.Channels
		}
	case media.CodecOpus:
		name = "libopus"
		if bitrate == 0 {
			bitrate = 32000 * f.Channels
		}
	case media.CodecG711A:
		name = "pcm_alaw"
	case media.CodecG711U:
		name = "pcm_mulaw"
	default:
		return nil, fmt.Errorf("%w: encoder for %s", ErrUnsupported, codec)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	e := &Encoder{codec: codec, format: f}
	if err := averr("open "+name+" encoder", C.rl_open_encoder(&e.ctx, cname, C.int(f.Rate), C.int(f.Channels), C.int(bitrate))); err != nil {
		return nil, err
	}
	e.pkt = C.av_packet_alloc()
	e.frame = C.av_frame_alloc()
	if e.pkt == nil || e.frame == nil {
		e.Close()
		return nil, errors.New("avcodec: out of memory")
	}
	e.size = int(C.rl_ctx_frame_size(e.ctx))
	if e.size <= 0 {
		e.size = f.Rate / 50 // PCM has no frame size: 20 ms, as RTP sends G.711
	}
	if n := C.rl_ctx_extradata_size(e.ctx); n > 0 {
		e.config = C.GoBytes(unsafe.Pointer(C.rl_ctx_extradata(e.ctx)), n)
	}
	return e, nil
}

// Format is the PCM layout Encode takes.
func (e *Encoder) Format() Format { return e.format }

// FrameSize is the number of samples per channel in one encoded frame.
func (e *Encoder) FrameSize() int { return e.size }

// Config is the codec configuration to announce (AAC AudioSpecificConfig,
// Opus OpusHead); nil if the encoder has none.
func (e *Encoder) Config() []byte { return e.config }

// Encode buffers pcm (interleaved, e.Format()) and appends to dst a Frame
// for every encoded frame the encoder gave back.
func (e *Encoder) Encode(dst []Frame, pcm []float32) ([]Frame, error) {
	if e.ctx == nil {
		return dst, errors.New("avcodec: encoder closed")
	}
	if len(pcm)%e.format.Channels != 0 {
		return dst, fmt.Errorf("avcodec: encoder input of %d floats is not whole %d-channel samples", len(pcm), e.format.Channels)
	}
	e.pending = append(e.pending, pcm...)
	step := e.size * e.format.Channels
	var err error
	for len(e.pending) >= step {
		// Input samples are counted from 0; FFmpeg stamps each packet with
		// the input time of its first real sample (minus the encoder's
		// delay, so the first packets can be negative).
		if r := C.rl_fill_frame(e.ctx, e.frame, (*C.float)(unsafe.Pointer(&e.pending[0])), C.int(e.size), C.int64_t(e.next)); r < 0 {
			return dst, averr("encode "+e.codec.String(), r)
		}
		r := C.avcodec_send_frame(e.ctx, e.frame)
		C.av_frame_unref(e.frame)
		if err := averr("encode "+e.codec.String(), r); err != nil {
			return dst, err
		}
		e.next += int64(e.size)
		n := copy(e.pending, e.pending[step:])
		e.pending = e.pending[:n]
		if dst, err = e.receive(dst); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (e *Encoder) receive(dst []Frame) ([]Frame, error) {
	for {
		r := C.avcodec_receive_packet(e.ctx, e.pkt)
		if r == C.rl_eagain() || r == C.rl_eof() {
			return dst, nil
		}
		if err := averr("encode "+e.codec.String(), r); err != nil {
			return dst, err
		}
		f := Frame{
			Data:     C.GoBytes(unsafe.Pointer(e.pkt.data), e.pkt.size),
			PTS:      int64(e.pkt.pts),
			Duration: int64(e.pkt.duration),
		}
		if f.Duration <= 0 {
			f.Duration = int64(e.size)
		}
		C.av_packet_unref(e.pkt)
		dst = append(dst, f)
	}
}

// Close frees the encoder's C memory (pending samples are dropped). It is
// idempotent.
func (e *Encoder) Close() {
	if e.ctx != nil {
		C.avcodec_free_context(&e.ctx)
	}
	if e.pkt != nil {
		C.av_packet_free(&e.pkt)
	}
	if e.frame != nil {
		C.av_frame_free(&e.frame)
	}
	e.pending = nil
}
