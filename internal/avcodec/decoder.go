package avcodec

/*
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/rill-media/rill/sdk/media"
)

// Format is a PCM layout: sample rate in Hz and channel count.
type Format struct {
	Rate     int
	Channels int
}

func (f Format) valid() bool {
	return f.Rate >= 8000 && f.Rate <= 192000 && f.Channels >= 1 && f.Channels <= 8
}

// maxPacket bounds one compressed audio frame handed to a decoder.
const maxPacket = 1 << 20

// Decoder decodes one audio stream to interleaved float32 PCM in the Format
// it was opened with (resampling and remixing with swresample when the
// stream's own rate or channel count differs).
type Decoder struct {
	codec media.Codec
	out   Format
	ctx   *C.AVCodecContext
	pkt   *C.AVPacket
	frame *C.AVFrame

	swr                   *C.SwrContext
	swrFmt, swrRate, swrN C.int
}

// NewDecoder opens a decoder for codec (AAC, Opus, MP3, G.711 A-law or
// µ-law): FFmpeg's native decoders, libopus for Opus (FFmpeg's own Opus
// decoder if libavcodec was built without it). config is the codec configuration the hub carries
// (AudioSpecificConfig for AAC; optional OpusHead for Opus; nil otherwise);
// in is the stream's own format where the bitstream does not say it
// (G.711: 8000 Hz mono when zero; Opus: 48000 Hz stereo when zero). Decoded
// PCM comes out as out.
func NewDecoder(codec media.Codec, config []byte, in, out Format) (*Decoder, error) {
	if !out.valid() {
		return nil, fmt.Errorf("avcodec: decoder output format %d Hz %d ch out of range", out.Rate, out.Channels)
	}
	var id C.int
	switch codec {
	case media.CodecAAC:
		id = C.AV_CODEC_ID_AAC
		if len(config) < 2 {
			return nil, fmt.Errorf("avcodec: aac decoder needs an AudioSpecificConfig (got %d bytes)", len(config))
		}
	case media.CodecOpus:
		id = C.AV_CODEC_ID_OPUS
		if in.Rate == 0 {
			in = Format{48000, 2}
		}
	case media.CodecMP3:
		id = C.AV_CODEC_ID_MP3
	case media.CodecG711A, media.CodecG711U:
		id = C.AV_CODEC_ID_PCM_ALAW
		if codec == media.CodecG711U {
			id = C.AV_CODEC_ID_PCM_MULAW
		}
		if in.Rate == 0 {
			in = Format{8000, 1}
		}
	default:
		return nil, fmt.Errorf("%w: decoder for %s", ErrUnsupported, codec)
	}
	if len(config) > 1<<16 {
		return nil, fmt.Errorf("avcodec: %s config of %d bytes is too large", codec, len(config))
	}
	if in.Rate != 0 && !in.valid() {
		return nil, fmt.Errorf("avcodec: %s input format %d Hz %d ch out of range", codec, in.Rate, in.Channels)
	}
	d := &Decoder{codec: codec, out: out}
	if err := averr("open "+codec.String()+" decoder", C.rl_open_decoder(&d.ctx, id, cbytes(config), C.int(len(config)), C.int(in.Rate), C.int(in.Channels))); err != nil {
		return nil, err
	}
	d.pkt = C.av_packet_alloc()
	d.frame = C.av_frame_alloc()
	if d.pkt == nil || d.frame == nil {
		d.Close()
		return nil, errors.New("avcodec: out of memory")
	}
	return d, nil
}

// Out is the format Decode returns.
func (d *Decoder) Out() Format { return d.out }

// Decode decodes one compressed frame and appends its PCM (interleaved, in
// d.Out()) to dst. A malformed frame returns an error and leaves the
// decoder usable for the next one.
func (d *Decoder) Decode(dst []float32, frame []byte) ([]float32, error) {
	if d.ctx == nil {
		return dst, errors.New("avcodec: decoder closed")
	}
	if len(frame) == 0 {
		return dst, nil
	}
	if len(frame) > maxPacket {
		return dst, fmt.Errorf("avcodec: %s frame of %d bytes is too large", d.codec, len(frame))
	}
	if err := averr("decode "+d.codec.String(), C.rl_send_packet(d.ctx, d.pkt, cbytes(frame), C.int(len(frame)))); err != nil {
		return dst, err
	}
	for {
		r := C.avcodec_receive_frame(d.ctx, d.frame)
		if r == C.rl_eagain() || r == C.rl_eof() {
			return dst, nil
		}
		if err := averr("decode "+d.codec.String(), r); err != nil {
			return dst, err
		}
		var err error
		dst, err = d.convert(dst)
		C.av_frame_unref(d.frame)
		if err != nil {
			return dst, err
		}
	}
}

func (d *Decoder) convert(dst []float32) ([]float32, error) {
	f := d.frame
	fmtc, rate, n := C.rl_frame_fmt(f), C.rl_frame_rate(f), C.rl_frame_channels(f)
	if rate <= 0 || n <= 0 || n > 8 || f.nb_samples <= 0 {
		return dst, fmt.Errorf("avcodec: %s decoder gave a frame of %d Hz %d ch %d samples", d.codec, rate, n, f.nb_samples)
	}
	if d.swr == nil || fmtc != d.swrFmt || rate != d.swrRate || n != d.swrN {
		if d.swr != nil {
			C.swr_free(&d.swr)
		}
		if err := averr("open resampler", C.rl_swr_open(&d.swr, fmtc, rate, C.rl_frame_layout(f), C.int(d.out.Rate), C.int(d.out.Channels))); err != nil {
			return dst, err
		}
		d.swrFmt, d.swrRate, d.swrN = fmtc, rate, n
	}
	capacity := int(C.swr_get_out_samples(d.swr, f.nb_samples)) + 32
	start := len(dst)
	dst = growFloats(dst, capacity*d.out.Channels)
	got := C.rl_swr_frame(d.swr, f, (*C.float)(unsafe.Pointer(&dst[start])), C.int(capacity))
	if got < 0 {
		return dst[:start], averr("resample", got)
	}
	return dst[:start+int(got)*d.out.Channels], nil
}

// Close frees the decoder's C memory. It is idempotent.
func (d *Decoder) Close() {
	if d.ctx != nil {
		C.avcodec_free_context(&d.ctx)
	}
	if d.pkt != nil {
		C.av_packet_free(&d.pkt)
	}
	if d.frame != nil {
		C.av_frame_free(&d.frame)
	}
	if d.swr != nil {
		C.swr_free(&d.swr)
	}
}

// growFloats extends s by n elements (contents undefined) and returns it.
func growFloats(s []float32, n int) []float32 {
	if cap(s)-len(s) < n {
		ns := make([]float32, len(s), 2*cap(s)+n)
		copy(ns, s)
		s = ns
	}
	return s[:len(s)+n]
}
