#!/usr/bin/env bash
# Transactional produce throughput (issue 5 item 5): `moldau perf produce` with
# --transaction-size 100 and 10000 against plain idempotent and non-idempotent produce.
# Starts its own release broker on a free port in a temp dir and prints a markdown table.
#
#   bench/transactions.sh [num_records] [record_size]     (defaults 1000000, 100)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
size=${2:-100}
cargo build --release -p moldau >/dev/null 2>&1
bin=${MOLDAU_BIN:-target/release/moldau}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"$bin" server --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir/data" \
  >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
bootstrap="127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

echo "| mode | records | size | partitions | rec/s | MB/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|"
n=0
run() {
  local label=$1; shift
  n=$((n + 1))
  local topic="txn-bench-$n"
  "$bin" topics create --bootstrap-server "$bootstrap" --topic "$topic" --partitions 1 >/dev/null
  local p
  p=$("$bin" perf produce --bootstrap-server "$bootstrap" --topic "$topic" --num-records "$records" \
        --record-size "$size" --output json "$@" 2>/dev/null)
  printf '| %s | %s | %s | 1 | %.0f | %.1f | %.1f | %.1f |\n' "$label" "$records" "$size" \
    "$(echo "$p" | json_field "['records_per_sec']")" "$(echo "$p" | json_field "['mb_per_sec']")" \
    "$(echo "$p" | json_field "['latency_ms']['p50']")" "$(echo "$p" | json_field "['latency_ms']['p99']")"
}
run "plain (enable.idempotence=false)" --producer-props enable.idempotence=false
run "idempotent" --producer-props enable.idempotence=true
run "transactional, 100 records/txn" --transaction-size 100 --transactional-id bench-100
# librdkafka lingers 5 ms before sending a batch: at 100 records per transaction that
# linger, not the broker, sets the pace; linger.ms=0 shows the round trips alone.
run "transactional, 100 records/txn, linger.ms=0" --transaction-size 100 --transactional-id bench-100-l0 \
  --producer-props linger.ms=0
run "transactional, 10000 records/txn" --transaction-size 10000 --transactional-id bench-10000
