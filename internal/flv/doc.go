// Package flv converts between [media.Packet] and the bodies of FLV tags and
// RTMP audio, video and data messages, which share one layout.
//
// It reads legacy FLV (video codec id 7 for H.264 and the common non-standard
// id 12 for H.265; sound formats AAC, MP3, G.711) and Enhanced RTMP v1/v2
// (veovera) video with the FourCCs avc1, hvc1 and av01 and audio with Opus,
// mp4a and .mp3. It writes legacy tags for H.264 and audio other than Opus,
// and enhanced tags for H.265, AV1 and Opus ([AppendTagLegacyHEVC] writes
// codec id 12 for players that predate Enhanced RTMP).
//
// Every tag is validated before a packet is returned, and a packet before a
// tag is written: decoder configuration records must parse, NAL unit length
// prefixes and OBU sizes must fit the payload. Errors tell the caller what to
// do: [ErrSkip] means a valid tag that carries no media (end of sequence,
// command frames); [ErrUnsupported] (and [ErrUnsupportedCodec], which wraps
// it) means a track this package cannot carry, to be dropped with a warning;
// [ErrMalformed] means a broken tag.
//
// Timestamps are RTMP's 32-bit milliseconds. FromTag does not unwrap them and
// AppendTag writes DTS modulo 2^32 ms; keeping a monotonic timeline across
// the wrap is the caller's job.
//
// Parsing of untrusted input never panics, and the package uses the standard
// library only. It does not reuse lal's parsers, after testing them against
// what this package must guarantee (lal v0.37.4): avc.ParseSps and the rtmp
// AMF0 reader log through lal's global logger, which writes to standard
// output (the go-plugin handshake channel of a plugin process); avc.ParseSps
// panics on the crafted five-byte SPS 67 42 00 1e ff; hevc.ParseSps ignores
// the conformance window (its own test SPS, 640x360, reads as 640x368); the
// AMF0 reader recurses without a depth limit; and the AVC and HEVC
// configuration record parsers reject valid records with more than one SPS
// or PPS.
package flv
