#!/usr/bin/env bash
# Overload, side by side: the same exact generator (`ward-sim flood`: steady devices as fast as
# their acknowledgements allow, flooding devices with 1,000-observation documents, a 1 Hz canary;
# every PUBACK recorded) against `wardhub serve` and against Debian's mosquitto, one after the
# other on the same machine. wardhub's kept observations are read back from its API; mosquitto's
# are what a QoS 1 subscriber received. Prints both reports and each broker's peak RSS; fails
# when an acknowledged observation was not kept.
#
#   DURATION=60s DEVICES=6 FLOODS=1 tests/bench/overload.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-60s}
DEVICES=${DEVICES:-6}
FLOODS=${FLOODS:-1}
INFLIGHT=${INFLIGHT:-64}
OBS=${OBS:-50}
args=(--devices "$DEVICES" --floods "$FLOODS" --canary --inflight "$INFLIGHT" --obs-per-msg "$OBS"
      --duration "$DURATION")

cargo build --release -q -p wardhub -p ward-sim
command -v mosquitto >/dev/null || { echo "mosquitto is not installed (apt-get install mosquitto)"; exit 1; }
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

sample_rss() { # pid file
  while kill -0 "$1" 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/"$1"/status 2>/dev/null || true; sleep 0.5; done > "$2"
}

echo "== wardhub"
# Reads need a login: a viewer token for ward-sim's read-back.
export WARDHUB_TOKEN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
{
  printf '[[users]]\nname = "bench"\nrole = "viewer"\ntoken_sha256 = "%s"\n' \
    "$(printf %s "$WARDHUB_TOKEN" | sha256sum | cut -d' ' -f1)"
  echo "[mqtt]"; echo "max_packet_bytes = 262144"
  echo "[ingest]"; echo "max_payload_bytes = 262144"
  for id in $(target/release/ward-sim flood --mqtt 127.0.0.1:1 "${args[@]}" --list-devices); do
    printf '[[devices]]\nid = "%s"\nbed = "bed-%s"\n' "$id" "$id"
  done
} > "$dir/hub.toml"
WARDHUB_LOG=warn target/release/wardhub serve --config "$dir/hub.toml" --data-dir "$dir/data" \
  --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --hl7-listen 127.0.0.1:0 > "$dir/out" &
hub=$!; pids+=("$hub")
for _ in $(seq 100); do grep -q "Stop with" "$dir/out" 2>/dev/null && break; sleep 0.1; done
mqtt=$(sed -n 's/^ *MQTT  *mqtt:\/\///p' "$dir/out" | head -1)
http=$(sed -n 's/^ *HTTP API  *\(http:\/\/[^/]*\).*/\1/p' "$dir/out" | head -1)
sample_rss "$hub" "$dir/hub.rss" & pids+=($!)
status=0
target/release/ward-sim flood --mqtt "$mqtt" --http "$http" "${args[@]}" || status=1
echo "  broker peak RSS $(( $(sort -n "$dir/hub.rss" | tail -1) / 1024 )) MiB (wardhub)"
kill "$hub"; wait "$hub" 2>/dev/null || true

echo "== mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
message_size_limit 262144
max_queued_messages 100000
CONF
mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
mq=$!; pids+=("$mq")
sleep 0.5
sample_rss "$mq" "$dir/mq.rss" & pids+=($!)
target/release/ward-sim flood --mqtt "127.0.0.1:$port" --subscribe "${args[@]}" || status=1
echo "  broker peak RSS $(( $(sort -n "$dir/mq.rss" | tail -1) / 1024 )) MiB (mosquitto)"
kill "$mq"; wait "$mq" 2>/dev/null || true
exit $status
