# Rill's default config: `make run` serves with it.
# Ports as in SRS: RTMP 1935, HTTP streaming 8080, HTTP API and console 1985.
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

plugin "hls" {
  listen = ["0.0.0.0:8080"]
  dir    = "./objs/nginx/html"
}

# WebRTC (WHIP/WHEP, SRS /rtc/v1): media on udp/8000, signalling on the API port.
# Uncomment, and the rtc block in the vhost below; see README "WebRTC".
# plugin "webrtc" {
#   listen    = ["udp://0.0.0.0:8000"]
#   candidate = "$CANDIDATE"
# }

vhost "__defaultVhost__" {
  gop_cache = true
  hls {
    enabled  = true
    fragment = "2s"
    window   = "60s"
    path     = "./objs/nginx/html"
  }
  # rtc {
  #   enabled = true
  # }
}
