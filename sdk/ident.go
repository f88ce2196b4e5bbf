package sdk

import "github.com/rill-media/rill/sdk/wire"

// DefaultVhost is SRS's fallback vhost ("__defaultVhost__"): a stream whose
// host names no configured vhost belongs to it.
const DefaultVhost = wire.DefaultVhost

// ValidName reports whether s may name a vhost, a stream or one segment of
// an app: letters, digits, "_", ".", "-", "~", at most 128 bytes, never "."
// or ".." alone. The core refuses any other name before a plugin sees it;
// a plugin that takes names from elsewhere (its API, a file) checks them
// with this before building a path or a command line from them.
func ValidName(s string) bool { return wire.ValidName(s) }

// ValidApp reports whether s is an app: valid names separated by "/".
func ValidApp(s string) bool { return wire.ValidApp(s) }
