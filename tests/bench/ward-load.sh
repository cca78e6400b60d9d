#!/usr/bin/env bash
# Whole-system load: `wardhub serve` in one process, ward-sim in another (so the hub's own RSS
# and CPU are measured apart from the load generator's), devices registered through the API with
# their own passwords, MQTT JSON at QoS 1. Prints the hub's stored rate (its own counter, read
# from /metrics), its peak RSS, ward-sim's report, and rejects.
#
#   BEDS=167 RATE=20000 DURATION=10m tests/bench/ward-load.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BEDS=${BEDS:-167}
RATE=${RATE:-20000}
DURATION=${DURATION:-10m}
SCENARIO=${SCENARIO:-quiet-night}

cargo build --release -q -p wardhub -p ward-sim
dir=$(mktemp -d)
trap 'kill "$hub" 2>/dev/null || true; wait "$hub" 2>/dev/null || true; rm -rf "$dir"' EXIT
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat > "$dir/hub.toml" <<TOML
[store]
cache_capacity_bytes = ${CACHE:-268435456}
[mqtt]
max_connections = ${MAXCONN:-30000}
[[users]]
name = "bench"
role = "biomed"
token_sha256 = "$hash"
TOML

WARDHUB_LOG=warn target/release/wardhub serve --config "$dir/hub.toml" --data-dir "$dir/data" \
  --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --hl7-listen 127.0.0.1:0 > "$dir/out" &
hub=$!
for _ in $(seq 100); do grep -q "Stop with" "$dir/out" 2>/dev/null && break; sleep 0.1; done
mqtt=$(sed -n 's/^ *MQTT  *mqtt:\/\///p' "$dir/out" | head -1)
http=$(sed -n 's/^ *HTTP API  *\(http:\/\/[^/]*\).*/\1/p' "$dir/out" | head -1)
metrics=$(sed -n 's/^ *metrics  *\(http:\/\/[^ ]*\).*/\1/p' "$dir/out" | head -1)
echo "hub pid $hub: mqtt $mqtt, http $http, metrics $metrics"

stored() { curl -s "$metrics" | awk '/^wardhub_observations_stored_total /{print $2}'; }
peak=0
( while kill -0 "$hub" 2>/dev/null; do
    r=$(awk '/VmRSS/{print $2}' /proc/$hub/status 2>/dev/null || echo 0)
    echo "$r"; sleep 0.5
  done ) > "$dir/rss" &
sampler=$!

start_stored=$(stored); start=$(date +%s.%N)
WARD_SIM_LOG=warn target/release/ward-sim --scenario "$SCENARIO" --beds "$BEDS" --rate "$RATE" \
  --duration "$DURATION" --mqtt "$mqtt" --http "$http" --token "$token" 2>&1 | tail -20
sim_end=$(date +%s.%N)
# The pipeline may still hold a backlog (PUBACK comes from the broker, before storage): wait
# until the stored count stops moving, and count that time too.
end_stored=$(stored); end=$(date +%s.%N)
while sleep 0.5; n=$(stored); [ "${n%.*}" != "${end_stored%.*}" ]; do end_stored=$n; end=$(date +%s.%N); done
echo "hub: backlog drained $(echo "$end - $sim_end" | bc) s after ward-sim finished"
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$dir/rss" | tail -1)
echo "---"
echo "hub: stored $((${end_stored%.*} - ${start_stored%.*})) observations in $(echo "$end - $start" | bc) s wall"
echo "hub: stored/s = $(echo "(${end_stored%.*} - ${start_stored%.*}) / ($end - $start)" | bc)"
echo "hub: peak RSS = $((peak / 1024)) MiB"
curl -s "$metrics" | grep -E '^wardhub_ingest_rejects_total' | awk '$2 > 0' || true
curl -s "$metrics" | grep -E '^wardhub_mqtt_connections ' || true
