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
  # edge_idle = "5s"   # an edge pulls on this long after a stream's last player left
  # Origin cluster registry (docs/cluster.md): origins find each other's streams in Redis.
  # cluster_registry     = "redis://127.0.0.1:6379/0"
  # cluster_registry_ttl = "10s"
  # cluster_announce     = "10.0.0.2:1935"   # needed when listen is 0.0.0.0
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
#   transport         = "udp"              # or "tcp" (TCP passive) or "tcp_active" (we connect)
#   rtp_port_min      = 0                  # with rtp_port_max: one UDP port per stream from the range
#   rtp_port_max      = 0
#   keepalive_timeout = "30s"
#   media_timeout     = "10s"              # no decodable media for this long ends the stream
#   idle_timeout      = "30s"              # BYE to an on-demand channel without players
#   auto_invite       = true
#   digest_qop        = true               # offer qop="auth"; replayed nonces are refused
# }

# SRS stream_caster inputs: MPEG-TS over UDP on 8935 and FLV over HTTP POST
# on 8936 (POST /app/stream.flv). Uncomment to enable; see README "Stream casters".
# plugin "caster" {
#   listen            = ["0.0.0.0:8936"]
#   listen_mpegts_udp = ["0.0.0.0:8935"]
#   output            = "rtmp://127.0.0.1/live/livestream"
#   flv_output        = "rtmp://127.0.0.1/[app]/[stream]"
#   publish_timeout   = "10s"
#   max_udp_peers     = 16
# }

# RTSP publish and play (SRS 7 rtsp_server). :554 needs privileges the core
# has (it binds the port); SRS 7 uses 8554. See README "RTSP".
# plugin "rtsp" {
#   listen       = ["0.0.0.0:554"]
#   play_wait    = "5s"
#   idle_timeout = "10s"
#   mw_latency   = "100ms"   # TCP players' merged writes; "0s" = every frame at once
# }

# WebRTC (WHIP/WHEP, SRS /rtc/v1): media on udp/8000, signalling on the API port.
# Uncomment, and the rtc block in the vhost below; see README "WebRTC".
# plugin "webrtc" {
#   listen    = ["udp://0.0.0.0:8000"]
#   listen_rtc_tcp = ["0.0.0.0:8000"]   # ICE-TCP on the same port number (off when absent)
#   candidate = "$CANDIDATE"
# }

vhost "__defaultVhost__" {
  # gb28181 { enabled = true  app = "live"  stream = "[deviceid]_[channelid]" }
  gop_cache = true
  srt {
    enabled = true
    # passphrase = "at-least-10-chars"  # this vhost's callers only (overrides the plugin's)
    # pbkeylen   = 32                   # callers with another key length are refused
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
  # rtsp {                    # RTSP Digest (and optionally Basic) authentication
  #   auth {
  #     realm = "rill"
  #     users = { admin = "change-me" }
  #   }
  # }
}
