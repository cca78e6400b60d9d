#!/usr/bin/env bash
# Ingest beside mosquitto, one script, one run: the same ward-sim load (1,002 devices = 167
# beds, MQTT JSON, QoS 1, in another process on the same cores) first against `wardhub serve`
# (observations stored and evaluated per second, each acknowledged only once durable; its own
# counter), then against Debian's mosquitto with one QoS 1 subscriber on every device topic
# (points delivered per second: messages delivered × ward-sim's points per message). With
# PERF=1 the hub is profiled with `perf record -g` for 30 s in the middle of its run and the
# top of the report is printed.
#
# DURATION is wall time: ward-sim runs a long simulated night at RATE and is stopped (Ctrl-C,
# it then reports) after DURATION; the rates are taken over the middle three fifths.
#
#   BEDS=167 RATE=60000 DURATION=90s PERF=1 tests/bench/ingest-vs-mosquitto.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BEDS=${BEDS:-167}
RATE=${RATE:-60000}
DURATION=${DURATION:-90s}
SCENARIO=${SCENARIO:-quiet-night}
command -v mosquitto >/dev/null || { echo "mosquitto is not installed (apt-get install mosquitto)"; exit 1; }
command -v mosquitto_sub >/dev/null || { echo "mosquitto_sub is not installed (apt-get install mosquitto-clients)"; exit 1; }

cargo build --release -q -p wardhub -p ward-sim
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
secs=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)(s|m)','$DURATION'); print(int(m[1])*(60 if m[2]=='m' else 1))")

echo "== wardhub"
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat > "$dir/hub.toml" <<TOML
[mqtt]
max_connections = 30000
max_connections_per_source = 30000
[[users]]
name = "bench"
role = "biomed"
token_sha256 = "$hash"
TOML
WARDHUB_LOG=warn target/release/wardhub serve --config "$dir/hub.toml" --data-dir "$dir/data" \
  --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --hl7-listen 127.0.0.1:0 > "$dir/out" &
hub=$!; pids+=("$hub")
for _ in $(seq 100); do grep -q "Stop with" "$dir/out" 2>/dev/null && break; sleep 0.1; done
mqtt=$(sed -n 's/^ *MQTT  *mqtt:\/\///p' "$dir/out" | head -1)
http=$(sed -n 's/^ *HTTP API  *\(http:\/\/[^/]*\).*/\1/p' "$dir/out" | head -1)
metrics=$(sed -n 's/^ *metrics  *\(http:\/\/[^ ]*\).*/\1/p' "$dir/out" | head -1)
stored() { curl -s "$metrics" | awk '/^wardhub_observations_stored_total /{print $2}' | cut -d. -f1; }
if [ "${PERF:-0}" = 1 ]; then
  ( sleep $((secs / 3)); perf record -F 499 -g -p "$hub" -o "$dir/perf.data" -- sleep 30 >/dev/null 2>&1 ) &
  pids+=($!)
fi
WARD_SIM_LOG=warn timeout -s INT "$secs" target/release/ward-sim --scenario "$SCENARIO" --beds "$BEDS" \
  --rate "$RATE" --duration 1000h --mqtt "$mqtt" --http "$http" --token "$token" > "$dir/sim.hub" 2>&1 &
sim=$!; pids+=("$sim")
# The steady middle of the run: from a fifth to four fifths.
sleep $((secs / 5)); a=$(stored); ta=$(date +%s.%N)
sleep $((secs * 3 / 5)); b=$(stored); tb=$(date +%s.%N)
wait "$sim" || true
hub_rate=$(echo "($b - $a) / ($tb - $ta)" | bc)
tail -6 "$dir/sim.hub"
echo "wardhub: $((b - a)) observations stored in $(echo "$tb - $ta" | bc) s = $hub_rate/s"
kill "$hub"; wait "$hub" 2>/dev/null || true
if [ "${PERF:-0}" = 1 ] && [ -f "$dir/perf.data" ]; then
  echo "== perf: where the hub's CPU time goes, by component (30 s in the middle of the run)"
  perf script -i "$dir/perf.data" 2>/dev/null | python3 tests/bench/perf-categories.py || true
  echo "-- top functions (self time)"
  perf report -i "$dir/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15 | cut -c1-110 || true
fi

echo "== mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
CONF
mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
mq=$!; pids+=("$mq")
sleep 0.5
mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'wardhub/v1/devices/#' > "$dir/delivered" &
sub=$!; pids+=("$sub")
sleep 0.5
WARD_SIM_LOG=warn timeout -s INT "$secs" target/release/ward-sim --scenario "$SCENARIO" --beds "$BEDS" \
  --rate "$RATE" --duration 1000h --mqtt "127.0.0.1:$port" --no-register > "$dir/sim.mq" 2>&1 &
sim=$!; pids+=("$sim")
sleep $((secs / 5)); a=$(wc -l < "$dir/delivered"); ta=$(date +%s.%N)
sleep $((secs * 3 / 5)); b=$(wc -l < "$dir/delivered"); tb=$(date +%s.%N)
wait "$sim" || true
tail -6 "$dir/sim.mq"
# Points per message, from ward-sim's own report of what it sent to mosquitto.
msgs_acked=$(awk '$1 == "acknowledged" {print $2}' "$dir/sim.mq" | tail -1)
points_acked=$(sed -n 's/.*queued; \([0-9]*\) points acknowledged.*/\1/p' "$dir/sim.mq" | tail -1)
per=$(echo "scale=3; ${points_acked:-0} / ${msgs_acked:-1}" | bc)
mq_msgs=$(echo "($b - $a) / ($tb - $ta)" | bc)
mq_rate=$(echo "$mq_msgs * $per / 1" | bc)
echo "mosquitto: $((b - a)) messages delivered in $(echo "$tb - $ta" | bc) s = $mq_msgs/s × $per points/message = $mq_rate points/s"
echo "---"
echo "ratio wardhub / mosquitto = $(echo "scale=2; $hub_rate / $mq_rate" | bc)"
