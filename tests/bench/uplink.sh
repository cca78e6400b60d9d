#!/usr/bin/env bash
# The uplink against a real 3-node NATS JetStream cluster (Debian nats-server, MQTT interface):
# `wardhub bench uplink` with the uplink off and on, the drain after an outage, and ward alarm
# → hospital view latency. Results go to BENCHMARKS.md.
#
#   tests/bench/uplink.sh [bench uplink flags…]      e.g. --outage 10m --devices 180 --rate 1
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nats-server >/dev/null || { echo "nats-server is missing (apt-get install nats-server)"; exit 1; }
cargo build --release -p wardhub >/dev/null
dir=$(mktemp -d)
trap 'kill $(cat "$dir"/*.pid 2>/dev/null) 2>/dev/null; rm -rf "$dir"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
r1=$(port); r2=$(port); r3=$(port)
for i in 1 2 3; do
  mqtt=$(port); eval "m$i=$mqtt"
  cat > "$dir/n$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$(port)
jetstream { store_dir: "$dir/n$i" }
cluster { name: bench, listen: 127.0.0.1:$(eval echo \$r$i), routes: [nats-route://127.0.0.1:$r1, nats-route://127.0.0.1:$r2, nats-route://127.0.0.1:$r3] }
mqtt { listen: 127.0.0.1:$mqtt }
CONF
  nats-server -c "$dir/n$i.conf" >"$dir/n$i.log" 2>&1 & echo $! >"$dir/n$i.pid"
done
# Up once node 1 takes an MQTT 3.1.1 CONNECT (JetStream ready).
for _ in $(seq 1 60); do
  mosquitto_pub -h 127.0.0.1 -p "$m1" -t probe -m x -q 1 -V mqttv311 2>/dev/null && break
  sleep 1
done
echo "NATS cluster: $(nats-server --version), MQTT on $m1 $m2 $m3; $(nproc) cores, $(uname -r)"
target/release/wardhub bench uplink --broker "mqtt://127.0.0.1:$m1" "$@"
