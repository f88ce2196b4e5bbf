package avcodec

/*
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Resampler converts interleaved float32 PCM between sample rates (8000,
// 16000, 44100, 48000 Hz or any other in range) and channel counts (mono
// and stereo up- and down-mix) with libswresample. It keeps the filter
// state across calls, so a stream fed in pieces comes out continuous.
type Resampler struct {
	in, out Format
	swr     *C.SwrContext
}

// NewResampler makes a resampler from in to out.
func NewResampler(in, out Format) (*Resampler, error) {
	if !in.valid() || !out.valid() {
		return nil, fmt.Errorf("avcodec: resampler %d Hz %d ch -> %d Hz %d ch out of range", in.Rate, in.Channels, out.Rate, out.Channels)
	}
	r := &Resampler{in: in, out: out}
	if err := averr("open resampler", C.rl_swr_open_flt(&r.swr, C.int(in.Rate), C.int(in.Channels), C.int(out.Rate), C.int(out.Channels))); err != nil {
		return nil, err
	}
	return r, nil
}

// Convert resamples pcm (interleaved, whole samples in r's input format)
// and appends the output to dst. A nil pcm flushes the filter's delay.
func (r *Resampler) Convert(dst, pcm []float32) ([]float32, error) {
	if r.swr == nil {
		return dst, errors.New("avcodec: resampler closed")
	}
	if len(pcm)%r.in.Channels != 0 {
		return dst, fmt.Errorf("avcodec: resampler input of %d floats is not whole %d-channel samples", len(pcm), r.in.Channels)
	}
	n := len(pcm) / r.in.Channels
	capacity := int(C.swr_get_out_samples(r.swr, C.int(n))) + 32
	start := len(dst)
	dst = growFloats(dst, capacity*r.out.Channels)
	var in *C.float
	if n > 0 {
		in = (*C.float)(unsafe.Pointer(&pcm[0]))
	}
	got := C.rl_swr_flt(r.swr, in, C.int(n), (*C.float)(unsafe.Pointer(&dst[start])), C.int(capacity))
	if got < 0 {
		return dst[:start], averr("resample", got)
	}
	return dst[:start+int(got)*r.out.Channels], nil
}

// Close frees the resampler. It is idempotent.
func (r *Resampler) Close() {
	if r.swr != nil {
		C.swr_free(&r.swr)
	}
}
