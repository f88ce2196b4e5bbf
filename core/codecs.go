package main

import (
	"github.com/rill-media/rill/core/internal/api"
	"github.com/rill-media/rill/core/internal/hub"
)

// codecInfo describes a stream's codecs from the configs in its ring header.
func codecInfo(si hub.StreamInfo) api.CodecInfo {
	return api.CodecInfo{}
}
