#!/usr/bin/env bash
# Installs what the build and the tests need when it is missing. As root it
# uses apt-get; otherwise it names what is missing and fails.
#   scripts/deps.sh        test tools and build libraries (make test)
#   scripts/deps.sh build  build libraries only (make build, make run)
set -euo pipefail
mode=${1:-test}
need=()
# C libraries internal/avcodec links through cgo (AAC<->Opus, G.711->AAC).
if ! command -v pkg-config >/dev/null 2>&1; then
  need+=(pkg-config libavcodec-dev libavutil-dev libswresample-dev libopus-dev)
else
  pkg-config --exists libavcodec  || need+=(libavcodec-dev)
  pkg-config --exists libavutil   || need+=(libavutil-dev)
  pkg-config --exists libswresample || need+=(libswresample-dev)
  pkg-config --exists opus        || need+=(libopus-dev)
fi
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "$mode" != build ]; then
  command -v ffmpeg  >/dev/null 2>&1 || need+=(ffmpeg)
  command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
  # headless Chromium for the console test (Debian's package)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # the Python example plugin (examples/pystats): Debian's python3 with its
  # grpcio and protobuf packages, and protoc to generate its message classes
  [ -x /usr/bin/python3 ] || need+=(python3)
  /usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need+=(python3-grpcio)
  /usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || need+=(python3-protobuf)
  command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  # the origin-cluster registry tests start their own redis-server
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "missing build/test dependencies: $pkgs; install them (apt-get install -y $pkgs) or run make as root" >&2
  exit 1
fi
echo "installing: $pkgs"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
