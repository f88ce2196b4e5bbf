#!/usr/bin/env bash
# Installs the tools the tests need when they are missing. As root it uses
# apt-get; otherwise it names what is missing and fails.
set -euo pipefail
need=()
command -v ffmpeg  >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
# headless Chromium for the console test (Debian's package)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# the origin-cluster registry tests start their own redis-server
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -ne 0 ]; then
  echo "missing test tools: $pkgs; install them (apt-get install -y $pkgs) or run make test as root" >&2
  exit 1
fi
echo "installing test tools: $pkgs"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $pkgs >/dev/null
