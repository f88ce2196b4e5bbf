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

# HTTP-FLV, HTTP-TS/AAC/MP3, HLS and static files (named "hls" before;
# plugin "hls" { } is still read as this block). HLS files per vhost: hls { }.
plugin "httpstream" {
  listen = ["0.0.0.0:8080"]
  dir    = "./objs/nginx/html"
}

# GB28181 cameras (SRS stream_caster gb28181): SIP on 5060 UDP+TCP, media
# on 9000 TCP+UDP. Uncomment with the gb28181 {} block in the vhost below.
# plugin "gb28181" {
#   listen           = ["0.0.0.0:5060"]   # SIP over TCP
#   listen_sip_udp   = ["0.0.0.0:5060"]
#   listen_media     = ["0.0.0.0:9000"]   # PS/RTP over TCP (RFC 4571)
#   listen_media_udp = ["0.0.0.0:9000"]   # PS/RTP over UDP, one port, streams told apart by SSRC
#   server_id         = "34020000002000000001"
#   realm             = "3402000000"
#   password          = ""                 # global; passwords = { "<device id>" = "..." } per device
#   candidate         = "127.0.0.1"        # the IP put in INVITE SDP: where cameras send media
#   transport         = "udp"              # or "tcp" (TCP passive)
#   keepalive_timeout = "30s"
#   auto_invite       = true
# }

# WebRTC (WHIP/WHEP, SRS /rtc/v1): media on udp/8000, signalling on the API port.
# Uncomment, and the rtc block in the vhost below; see README "WebRTC".
# plugin "webrtc" {
#   listen    = ["udp://0.0.0.0:8000"]
#   candidate = "$CANDIDATE"
# }

vhost "__defaultVhost__" {
  # gb28181 { enabled = true  app = "live"  stream = "[deviceid]_[channelid]" }
  gop_cache = true
  srt {
    enabled = true
  }
  hls {
    enabled  = true
    fragment = "2s"
    window   = "60s"
    path     = "./objs/nginx/html"
    # hls_use_fmp4 = true                       # fMP4 segments for H.264/AAC too (TS by default)
    # ll_hls       = true                       # Low-Latency HLS from memory (implies fMP4)
    # part_target  = "500ms"                    # 200ms..1s
    # variants     = ["[stream]", "[stream]_sd"] # [stream]_master.m3u8 groups these renditions
  }
  # dash {
  #   enabled        = true
  #   dash_fragment  = 10
  #   dash_timeshift = 300
  #   dash_path      = "./objs/nginx/html"
  # }
  # rtc {
  #   enabled = true
  # }
}
