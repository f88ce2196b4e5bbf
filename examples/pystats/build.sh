#!/bin/sh
# build.sh OUT builds the pystats plugin into OUT: one executable file (a
# Python zip application, `#!/usr/bin/python3`) holding pystats as its
# __main__.py, its support modules, and the protobuf message classes that
# Debian's protoc generates from sdk/proto (Rill's contract) and proto/
# (go-plugin's broker, controller, stdio and gRPC health services).
# Needs protobuf-compiler; runs with python3-grpcio and python3-protobuf.
set -eu
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v protoc >/dev/null 2>&1 || { echo "build pystats: protoc missing (apt-get install -y protobuf-compiler)" >&2; exit 1; }
[ -x /usr/bin/python3 ] || { echo "build pystats: /usr/bin/python3 missing (apt-get install -y python3)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
app=$tmp/app
mkdir -p "$app"
protoc -I "$root/sdk/proto" -I "$here/proto" --python_out="$app" \
	rill/plugin/v1/plugin.proto gopluginpb/broker.proto gopluginpb/health.proto
for d in rill rill/plugin rill/plugin/v1 gopluginpb; do
	: >"$app/$d/__init__.py"
done
cp "$here/pystats" "$app/__main__.py"
cp "$here/rillplugin.py" "$here/rillring.py" "$app/"
mkdir -p "$(dirname "$out")"
/usr/bin/python3 -m zipapp "$app" -p /usr/bin/python3 -o "$tmp/pystats"
chmod 0755 "$tmp/pystats"
mv -f "$tmp/pystats" "$out"
