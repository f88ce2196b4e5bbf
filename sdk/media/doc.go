// Package media defines the one packet type shared by every Rill plugin.
//
// A [Packet] is a single access unit of one elementary stream: a video frame,
// an audio frame, a decoder configuration record or a script-data message.
// Every protocol plugin converts its wire format to and from this model at its
// edge (see the flv subpackage for RTMP/FLV), so the hub only ever moves
// packets of this shape:
//
//   - video payloads are length-prefixed NAL units with 4-byte big-endian
//     lengths (AVCC/HVCC) for H.264 and H.265, or AV1 OBUs in the low-overhead
//     format; their configuration packets carry the
//     AVCDecoderConfigurationRecord, HEVCDecoderConfigurationRecord or
//     AV1CodecConfigurationRecord;
//   - audio payloads are one raw frame (AAC without ADTS, one MP3 frame, one
//     Opus packet, G.711 samples); AAC configuration packets carry the
//     AudioSpecificConfig and Opus configuration packets the Opus ID header;
//   - data payloads are AMF0 bytes (for example onMetaData).
//
// Packets also have a versioned binary form ([Packet.AppendBinary],
// [Packet.UnmarshalBinary], [Packet.ConsumeBinary] for files of concatenated
// packets) used to store and replay them in files and tests. [SplitAVCC]
// walks the NAL units of an H.264 or H.265 payload.
//
// The package depends on the standard library only, so that importing the SDK
// stays cheap.
package media
