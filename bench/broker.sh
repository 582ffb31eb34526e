#!/usr/bin/env bash
# Broker throughput and latency with real clients: `moldau perf` (librdkafka) and kcat.
# Starts its own release broker on a free port in a temp dir and prints a markdown table.
#
#   bench/broker.sh [num_records]        (default 1000000; needs kcat: apt-get install kcat)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
cargo build --release -p moldau >/dev/null 2>&1
bin=target/release/moldau
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"$bin" server --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir/data" \
  >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
bootstrap="127.0.0.1:$port"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

echo "| client | records | size | partitions | produce rec/s | produce MB/s | p50 ms | p95 ms | p99 ms | p99.9 ms | consume rec/s | consume MB/s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for partitions in 1 8; do
  for size in 100 1024; do
    topic="perf-$partitions-$size"
    "$bin" topics create --bootstrap-server "$bootstrap" --topic "$topic" --partitions "$partitions" >/dev/null
    p=$("$bin" perf produce --bootstrap-server "$bootstrap" --topic "$topic" --num-records "$records" \
          --record-size "$size" --producer-props enable.idempotence=false --output json 2>/dev/null)
    c=$("$bin" perf consume --bootstrap-server "$bootstrap" --topic "$topic" --num-records "$records" \
          --output json 2>/dev/null)
    printf '| moldau perf | %s | %s | %s | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %.1f |\n' \
      "$records" "$size" "$partitions" \
      "$(echo "$p" | json_field "['records_per_sec']")" "$(echo "$p" | json_field "['mb_per_sec']")" \
      "$(echo "$p" | json_field "['latency_ms']['p50']")" "$(echo "$p" | json_field "['latency_ms']['p95']")" \
      "$(echo "$p" | json_field "['latency_ms']['p99']")" "$(echo "$p" | json_field "['latency_ms']['p999']")" \
      "$(echo "$c" | json_field "['records_per_sec']")" "$(echo "$c" | json_field "['mb_per_sec']")"

    # kcat: the same load from a file of newline-separated values, then read it all back.
    ktopic="kcat-$partitions-$size"
    "$bin" topics create --bootstrap-server "$bootstrap" --topic "$ktopic" --partitions "$partitions" >/dev/null
    python3 -c "import sys; sys.stdout.write(('x'*$size+'\n')*$records)" >"$dir/values"
    start=$(date +%s.%N)
    kcat -P -b "$bootstrap" -t "$ktopic" -l "$dir/values"
    mid=$(date +%s.%N)
    kcat -C -b "$bootstrap" -t "$ktopic" -o beginning -e -q -c "$records" >/dev/null
    end=$(date +%s.%N)
    python3 - "$records" "$size" "$partitions" "$start" "$mid" "$end" <<'PY'
import sys
n, size, parts = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
start, mid, end = map(float, sys.argv[4:7])
mb = n * size / (1024 * 1024)
print(f"| kcat | {n} | {size} | {parts} | {n/(mid-start):.0f} | {mb/(mid-start):.1f} | - | - | - | - | {n/(end-mid):.0f} | {mb/(end-mid):.1f} |")
PY
    rm -f "$dir/values"
  done
done
