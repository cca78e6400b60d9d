#!/usr/bin/env bash
# Long soak of the store: `wardhub serve` in one process, ward-sim in another (1,002 devices
# = 167 beds, MQTT JSON, QoS 1), sampling every 10 s the hub's RSS, its stored count and its
# bytes on disk (data directory: sled and the append log). Prints the samples as a table and a
# summary: RSS after the first 5 minutes and at the end (flat within 10 %?), its peak, and
# bytes on disk per stored observation at the end. Fails when an acknowledged observation is
# missing.
#
# DURATION is wall time (ward-sim runs a long simulated night at RATE and is stopped after it).
#
#   BEDS=167 RATE=5000 DURATION=30m [CACHE=bytes of sled cache] tests/bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BEDS=${BEDS:-167}
RATE=${RATE:-5000}
DURATION=${DURATION:-30m}
SCENARIO=${SCENARIO:-quiet-night}
EVERY=${EVERY:-10}

cargo build --release -q -p wardhub -p ward-sim
dir=$(mktemp -d)
trap 'kill "$hub" 2>/dev/null || true; wait "$hub" 2>/dev/null || true; rm -rf "$dir"' EXIT
token=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat > "$dir/hub.toml" <<TOML
[store]
cache_capacity_bytes = ${CACHE:-67108864}
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
hub=$!
for _ in $(seq 100); do grep -q "Stop with" "$dir/out" 2>/dev/null && break; sleep 0.1; done
mqtt=$(sed -n 's/^ *MQTT  *mqtt:\/\///p' "$dir/out" | head -1)
http=$(sed -n 's/^ *HTTP API  *\(http:\/\/[^/]*\).*/\1/p' "$dir/out" | head -1)
metrics=$(sed -n 's/^ *metrics  *\(http:\/\/[^ ]*\).*/\1/p' "$dir/out" | head -1)
echo "hub pid $hub; ward-sim: $BEDS beds, $RATE points/s, $DURATION"

metric() { curl -s "$metrics" | awk -v m="$1" '$1 == m {print $2}'; }
( t0=$(date +%s)
  while kill -0 "$hub" 2>/dev/null; do
    rss=$(awk '/VmRSS/{print $2}' /proc/$hub/status 2>/dev/null || echo 0)
    stored=$(metric wardhub_observations_stored_total); stored=${stored%.*}
    disk=$(du -sb "$dir/data" | cut -f1)
    open=$(metric wardhub_store_open_chunk_bytes)
    echo "$(( $(date +%s) - t0 )) $((rss / 1024)) ${stored:-0} $disk ${open:-0}"
    sleep "$EVERY"
  done ) > "$dir/samples" &
sampler=$!

secs=$(python3 -c "import re; m=re.fullmatch(r'(\d+)(s|m|h)','$DURATION'); print(int(m[1])*{'s':1,'m':60,'h':3600}[m[2]])")
WARD_SIM_LOG=warn timeout -s INT "$secs" target/release/ward-sim --scenario "$SCENARIO" --beds "$BEDS" \
  --rate "$RATE" --duration 1000h --mqtt "$mqtt" --http "$http" --token "$token" 2>&1 | tail -6 | tee "$dir/sim" || true
sleep 2
kill "$sampler" 2>/dev/null || true
echo "---"
printf '%8s %9s %12s %13s %9s %11s\n' seconds RSS_MiB stored disk_bytes B/obs open_chunks
awk '{ printf "%8d %9d %12d %13d %9.2f %11d\n", $1, $2, $3, $4, ($3 > 0 ? $4 / $3 : 0), $5 }' "$dir/samples"
echo "---"
awk -v every="$EVERY" '
  { t[NR] = $1; r[NR] = $2; s[NR] = $3; d[NR] = $4; if ($2 > peak) peak = $2 }
  END {
    for (i = 1; i <= NR; i++) if (t[i] >= 300) { at5 = r[i]; break }
    printf "RSS: %d MiB after 5 min, %d MiB at the end (%+.1f %%), peak %d MiB\n", at5, r[NR], (at5 > 0 ? (r[NR] - at5) * 100 / at5 : 0), peak
    printf "disk: %d bytes for %d stored observations = %.2f B/observation\n", d[NR], s[NR], (s[NR] > 0 ? d[NR] / s[NR] : 0)
  }' "$dir/samples"
acked=$(sed -n 's/.*(of [0-9]* queued; \([0-9]*\) points acknowledged, \([0-9]*\) not).*/\1/p' "$dir/sim")
stored=$(metric wardhub_observations_stored_total); stored=${stored%.*}
echo "check: acknowledged ${acked:-?}, stored $stored"
if [ -n "$acked" ] && [ "$stored" -lt "$acked" ]; then
  echo "FAIL: $((acked - stored)) acknowledged observations are not stored"; exit 1
fi
kill "$hub"; wait "$hub" 2>/dev/null || true
target/release/wardhub admin stats --data-dir "$dir/data"
