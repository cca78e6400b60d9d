#!/usr/bin/env bash
# Whole-system load: `wardhub serve` in one process, ward-sim in another (so the hub's own RSS
# and CPU are measured apart from the load generator's), devices registered through the API with
# their own passwords, MQTT JSON at QoS 1. Prints the hub's stored rate (its own counter, read
# from /metrics), its peak RSS, ward-sim's report, and rejects; fails when an acknowledged
# observation is not stored (or more are stored than were sent).
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
  --duration "$DURATION" --mqtt "$mqtt" --http "$http" --token "$token" 2>&1 | tail -20 | tee "$dir/sim"
sim_end=$(date +%s.%N)
# A PUBACK comes once the data is durable, so nothing acknowledged can still be queued; wait
# anyway until the stored count is still for 10 s (messages sent but never acknowledged may
# still be on their way), and count that time too.
end_stored=$(stored); end=$(date +%s.%N); still=0
while [ "$still" -lt 20 ]; do
  sleep 0.5; n=$(stored)
  if [ "${n%.*}" != "${end_stored%.*}" ]; then end_stored=$n; end=$(date +%s.%N); still=0; else still=$((still + 1)); fi
done
echo "hub: stored count still for 10 s; last change $(echo "$end - $sim_end" | bc) s after ward-sim finished"
kill "$sampler" 2>/dev/null || true
peak=$(sort -n "$dir/rss" | tail -1)
echo "---"
echo "hub: stored $((${end_stored%.*} - ${start_stored%.*})) observations in $(echo "$end - $start" | bc) s wall"
echo "hub: stored/s = $(echo "(${end_stored%.*} - ${start_stored%.*}) / ($end - $start)" | bc)"
echo "hub: peak RSS = $((peak / 1024)) MiB"
curl -s "$metrics" | grep -E '^wardhub_ingest_rejects_total' | awk '$2 > 0' || true
curl -s "$metrics" | grep -E '^wardhub_mqtt_connections ' || true
# Acknowledged observations must all be stored: stored - acknowledged is between 0 and the
# observations of messages sent but never acknowledged (the hub may have stored those).
acked=$(sed -n 's/.*(of [0-9]* queued; \([0-9]*\) points acknowledged, \([0-9]*\) not).*/\1/p' "$dir/sim")
unacked=$(sed -n 's/.*(of [0-9]* queued; \([0-9]*\) points acknowledged, \([0-9]*\) not).*/\2/p' "$dir/sim")
stored_n=$((${end_stored%.*} - ${start_stored%.*}))
echo "check: acknowledged $acked, never acknowledged $unacked, stored $stored_n"
if [ "$stored_n" -lt "$acked" ]; then
  echo "FAIL: $((acked - stored_n)) acknowledged observations are not stored"; exit 1
elif [ "$stored_n" -gt $((acked + unacked)) ]; then
  echo "FAIL: $((stored_n - acked - unacked)) more observations stored than were sent"; exit 1
fi
echo "check: OK (every acknowledged observation stored)"
