// Package avcodec wraps Debian's FFmpeg libraries (libavcodec, libavutil,
// libswresample) through cgo for the audio transcoding first-party plugins
// need: AAC, Opus, G.711 A-law/µ-law and MP3 decoders, the native AAC-LC
// encoder and the libopus Opus encoder, a swresample resampler, and a
// Transcoder that chains them and carries timestamps by counting samples.
//
// Every type owns C memory: call Close when done (a finalizer is not a
// substitute; Close is idempotent). None of the types is safe for
// concurrent use; a caller shares one behind its own lock.
//
// PCM crosses the Go boundary as interleaved float32 samples in [-1, 1].
package avcodec

/*
#cgo pkg-config: libavcodec libavutil libswresample
#include "avcodec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

func init() {
	// FFmpeg's own log lines would go to stderr, which a plugin shares with
	// go-hclog; every error reaches the caller as a Go error instead.
	C.rl_quiet()
}

// ErrUnsupported is returned for a codec this package has no decoder or
// encoder for.
var ErrUnsupported = errors.New("avcodec: codec not supported")

// Error is an FFmpeg error code with the operation that returned it.
type Error struct {
	Op   string
	Code int
}

func (e *Error) Error() string {
	var buf [128]C.char
	C.rl_errstr(C.int(e.Code), &buf[0], C.int(len(buf)))
	return fmt.Sprintf("avcodec: %s: %s", e.Op, C.GoString(&buf[0]))
}

func averr(op string, code C.int) error {
	if code >= 0 {
		return nil
	}
	return &Error{Op: op, Code: int(code)}
}

func cbytes(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}
