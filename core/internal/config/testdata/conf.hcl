# A full config: every core key, two plugins, two vhosts.
plugin_dir = "/opt/rill/plugins"
listen_api = "127.0.0.1:1985"
server_id  = "rill-test-1"
log_level  = "debug"

shm {
  dir       = "/dev/shm/rill"
  ring_size = "16MiB"
  slots     = 8192
}

plugin "rtmp" {
  listen     = ["0.0.0.0:1935", "[::]:1935"]
  env        = { GODEBUG = "madvdontneed=1" }
  chunk_size = 60000
  mw_latency = "350ms"
  tls {
    cert = "certs/server.crt"
  }
}

plugin "webrtc" {
  enabled = false
  path    = "/usr/local/bin/rill-webrtc"
  listen  = ["udp://0.0.0.0:8000", "tcp://0.0.0.0:8000"]
  candidate = "192.168.1.10"
  ratio     = 1.5
}

vhost "__defaultVhost__" {
  gop_cache = true
  hls {
    enabled  = true
    fragment = "2s"
    window   = "60s"
  }
  dvr {
    enabled = false
    plan    = "session"
    path    = "objs/[app]/[stream].[timestamp].flv"
  }
  hooks {
    on_publish = ["http://127.0.0.1:8085/api/v1/streams"]
  }
}

vhost "live.example.com" {
  enabled   = true
  gop_cache = false
  ring_size = "512KiB"
  rtmp {
    mw_latency = 0
  }
  security {
    rules = [
      { action = "allow", method = "publish", cidr = "10.0.0.0/8" },
      { action = "deny", method = "publish", cidr = "all" },
    ]
  }
}

vhost "other.example.com" {
  ring_size = 1048576
}
