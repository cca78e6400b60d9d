#!/usr/bin/env bash
# Exhaustion attacks (issue 13), measured: 2,000 partial HTTP requests (slowloris) and 1,030
# half-open MLLP frames, each trickled a byte every 3 s, against `wardhub serve` with its
# shipped limits, while canaries on 127.0.0.1 publish over MQTT, send HL7 and poll /healthz
# once a second (tests/bench/attack.py). Then the same attack against a hub whose per-source
# caps and timeouts are turned up out of the way, to show what they contribute. The process
# runs with `ulimit -n 4096`, so descriptors are scarce, as on a box whose limit was not raised.
#
#   DURATION=30 SLOW=2000 HALF=1030 tests/bench/attack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export DURATION=${DURATION:-30} SLOW=${SLOW:-2000} HALF=${HALF:-1030}
cargo build --release -q -p wardhub
dir=$(mktemp -d)
hub=""
trap '[ -n "$hub" ] && kill "$hub" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)

run() { # name, extra config
  local name=$1 extra=$2
  echo "== $name"
  cat > "$dir/hub.toml" <<TOML
$extra
[[devices]]
id = "canary"
bed = "bed-01"
secret_sha256 = "$hash"

[[devices]]
id = "hl7-canary"
bed = "bed-02"

[[adapters]]
type = "mqtt_json"

[[adapters]]
type = "hl7_mllp"
listen = "127.0.0.1:0"
peers = [{ name = "loopback", allow_from = ["127.0.0.0/8"] }]
$HL7_EXTRA
TOML
  rm -rf "$dir/data"
  ( ulimit -n 4096; exec env WARDHUB_LOG=error target/release/wardhub serve --config "$dir/hub.toml" \
      --data-dir "$dir/data" --mqtt-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
      --metrics-listen 127.0.0.1:0 ) > "$dir/out" 2>&1 &
  hub=$!
  for _ in $(seq 100); do grep -q "Stop with" "$dir/out" 2>/dev/null && break; sleep 0.1; done
  export MQTT=$(sed -n 's/^ *MQTT  *mqtt:\/\///p' "$dir/out" | head -1)
  export HTTP=$(sed -n 's/^ *HTTP API  *http:\/\/\([^/]*\).*/\1/p' "$dir/out" | head -1)
  export METRICS=$(sed -n 's/^ *metrics  *http:\/\/\([^/]*\).*/\1/p' "$dir/out" | head -1)
  export HL7=$(sed -n 's/^ *HL7 MLLP  *//p' "$dir/out" | head -1)
  export CANARY=canary CANARY_SECRET=$secret HL7_CANARY=hl7-canary HUB_PID=$hub
  python3 tests/bench/attack.py || status=1
  kill "$hub"; wait "$hub" 2>/dev/null || true; hub=""
}

status=0
HL7_EXTRA="" run "wardhub, shipped limits" ""
# The second run is expected to fail its canaries: it shows what the limits prevent.
expected_status=$status
HL7_EXTRA='max_connections_per_source = 100000
frame_timeout = "1h"' run "wardhub, per-source caps and timeouts out of the way" '[http]
max_connections_per_source = 100000
header_timeout = "1h"'
exit $expected_status
