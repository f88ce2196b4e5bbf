// Package config loads the core's config file, conf.hcl.
//
// The file is HCL2 (hashicorp/hcl/v2 native syntax), read with koanf
// through Parser, which keeps repeated labeled blocks as maps and records
// the position of every key. Parse and Load then check the tree and return
// a Config:
//
//	plugin_dir = "bin/plugins"        # relative to the working directory
//	listen_api = "0.0.0.0:1985"
//	server_id  = "rill-1"             # default: empty, filled by the core
//	log_level  = "info"               # trace, debug, info, warn, error
//
//	shm {
//	  dir       = "/dev/shm"
//	  ring_size = "8MiB"              # see ParseSize; at least 64KiB
//	  slots     = 4096
//	}
//
//	plugin "rtmp" {
//	  enabled = true                  # default true
//	  path    = "bin/plugins/rtmp"    # default <plugin_dir>/<name>
//	  listen  = ["0.0.0.0:1935", "[::]:1935"]  # tcp:// (default) or udp://
//	  env     = { GODEBUG = "madvdontneed=1" }
//	  chunk_size = 60000              # any other key: Plugin.Settings
//	}
//
//	vhost "live.example.com" {
//	  enabled   = true
//	  gop_cache = true
//	  ring_size = "16MiB"             # overrides shm.ring_size
//	  hls {                           # Vhost.Blocks["hls"]
//	    enabled  = true
//	    fragment = "2s"
//	  }
//	}
//
// Values must be literals: variables and function calls are errors. Note
// that HCL2, unlike HCL1, allows at most one attribute in a block written
// on a single line: write hls { enabled = true } or one attribute a line.
//
// The core checks its own keys strictly: an unknown key, a value of the
// wrong type or out of range, a key or block defined twice, a bad plugin or
// vhost name is an *Error naming the file, line, column and key, and Parse
// reports all of them at once. What belongs to a plugin is not checked
// here but passed as-is for the plugin to validate: every key of a plugin
// block besides enabled, path, listen and env (Plugin.Settings), and the
// content of the plugin's block in each vhost (Vhost.Blocks).
//
// Inside a vhost block, a block may be named after a known plugin (found
// in the plugin directory, or declared with a plugin block) or after one
// of these reserved names, kept in Vhost.Blocks for core features to come:
// hooks, http_hooks, security, play, publish, cluster, forward, rtc, dash
// (SRS's DASH block, read by the httpstream plugin). Any other key is an
// unknown key. Plugin and reserved blocks must be written as blocks without
// labels, not as attributes.
//
// The vhost DefaultVhost ("__defaultVhost__") always exists; other vhost
// names are lower-case host names. Plugin names match
// ^[a-z][a-z0-9_-]{0,31}$ and may not be enabled, gop_cache or ring_size.
package config
