#!/usr/bin/env bash
# The broker's CPU cost of a parked fetch (issue #8 item 6). Fills one partition with
# 20 MB, then for a fixed time produces a trickle of small records (moldau perf at a fixed
# rate) twice: once with no consumer, once with kcat parked on a fetch from offset 0 whose
# fetch.min.bytes (100 MB) the partition never reaches. Prints the broker's CPU seconds in
# each phase (utime+stime from /proc), so the difference is what the parked fetch costs.
#
#   bench/parked_fetch.sh [seconds] [records_per_sec]   (defaults 20 and 1000; needs kcat)
#   MOLDAU_BIN=path/to/moldau bench/parked_fetch.sh     (another build, no cargo)
#   KAFKA=1 bench/parked_fetch.sh       (the same against Apache Kafka 4.1.1, see kafka.sh;
#                                        moldau's CLI is still the client; CPU is the JVM's)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
rate=${2:-1000}
if [ -z "${MOLDAU_BIN:-}" ]; then
  cargo build --release -p moldau >/dev/null 2>&1
fi
bin=$(realpath "${MOLDAU_BIN:-target/release/moldau}")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
bootstrap="127.0.0.1:$port"
consumer=
if [ "${KAFKA:-}" = 1 ]; then
  . bench/kafka.sh
  trap '[ -z "$consumer" ] || kill $consumer 2>/dev/null || true; kafka_stop; wait 2>/dev/null; rm -rf "$dir"' EXIT
  kafka_start "$dir/kafka" "$port"
  server=$kafka_pid
else
  "$bin" server --override "listeners=PLAINTEXT://$bootstrap" --override "log.dirs=$dir/data" \
    >"$dir/server.log" 2>&1 &
  server=$!
  trap '[ -z "$consumer" ] || kill $consumer 2>/dev/null || true; kill $server 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
fi
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
trickle() {
  "$bin" perf produce --bootstrap-server "$bootstrap" --topic parked --record-size 100 \
    --num-records $((seconds * rate)) --throughput "$rate" >/dev/null 2>&1
}
# Broker CPU seconds spent while the trickle runs.
measure() {
  local t0
  t0=$(cpu_ticks)
  trickle
  python3 -c "print(f'{($(cpu_ticks) - $t0) / $hz:.2f}')"
}

"$bin" topics create --bootstrap-server "$bootstrap" --topic parked >/dev/null
"$bin" perf produce --bootstrap-server "$bootstrap" --topic parked --record-size 1000 \
  --num-records 20000 >/dev/null 2>&1
idle_cpu_s=$(measure)

kcat -C -b "$bootstrap" -t parked -p 0 -o beginning -q \
  -X fetch.min.bytes=100000000 -X fetch.wait.max.ms=299000 -X socket.timeout.ms=300000 \
  -X fetch.max.bytes=200000000 -X max.partition.fetch.bytes=200000000 \
  -X receive.message.max.bytes=210000000 >/dev/null &
consumer=$!
sleep 2
kill -0 $consumer 2>/dev/null || { echo "kcat exited; no parked fetch to measure" >&2; consumer=; exit 1; }
parked_cpu_s=$(measure)

[ "${KAFKA:-}" = 1 ] && echo "broker: Apache Kafka $kafka_version (JVM ${KAFKA_HEAP:--Xmx1G -Xms1G})"
echo "| trickle | seconds | broker CPU s, no consumer | broker CPU s, one parked fetch |"
echo "|---|---|---|---|"
echo "| $rate rec/s of 100 B | $seconds | $idle_cpu_s | $parked_cpu_s |"
