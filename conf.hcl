# Rill's default config: `make run` serves with it.
# Ports as in SRS: RTMP 1935, HTTP streaming 8080, HTTP API and console 1985,
# SRT 10080/udp.
plugin_dir = "bin/plugins"
listen_api = "0.0.0.0:1985"
log_level  = "info"

shm {
  dir       = "/dev/shm"
  ring_size = "8MiB"
}

plugin "rtmp" {
  listen = ["0.0.0.0:1935"]
}

# SRS srt_server: the plugin binds its UDP socket itself (bind, not listen).
plugin "srt" {
  bind              = ["0.0.0.0:10080"]
  latency           = "120ms"
  peer_idle_timeout = "10s"
  # passphrase = "at-least-10-chars"  # makes encryption mandatory
  # pbkeylen   = 16
}

plugin "hls" {
  listen = ["0.0.0.0:8080"]
  dir    = "./objs/nginx/html"
}

vhost "__defaultVhost__" {
  gop_cache = true
  srt {
    enabled = true
  }
  hls {
    enabled  = true
    fragment = "2s"
    window   = "60s"
    path     = "./objs/nginx/html"
  }
}
