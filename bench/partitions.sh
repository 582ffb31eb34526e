#!/usr/bin/env bash
# Many partitions on one node under a descriptor limit: a topic of N partitions
# (default 10000; created in two requests) under `prlimit --nofile=20000:20000`, then a restart
# after SIGTERM and one after kill -9. Prints the create time, the descriptors held,
# and each restart's time until Metadata lists all N partitions.
#
#   bench/partitions.sh [partitions]        (needs prlimit from util-linux)
#   MOLDAU_BIN=target/debug/moldau bench/partitions.sh 1000   (another build, no cargo)
#   KAFKA=1 bench/partitions.sh           (the same against Apache Kafka 4.1.1, see kafka.sh;
#                                          moldau's CLI is still the client)
set -euo pipefail
cd "$(dirname "$0")/.."
partitions=${1:-10000}
nofile=20000
if [ -z "${MOLDAU_BIN:-}" ]; then
  cargo build --release -p moldau >/dev/null 2>&1
fi
bin=$(realpath "${MOLDAU_BIN:-target/release/moldau}")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
bootstrap="127.0.0.1:$port"
server=
trap '[ -n "$server" ] && kill -9 $server 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
log="$dir/server.log"
create_opts=()
if [ "${KAFKA:-}" = 1 ]; then
  . bench/kafka.sh
  log="$dir/kafka/kafka.log"
  # Kafka's create of many partitions may outlast the client's default 30 s.
  create_opts=(--request-timeout-ms 600000)
fi

now() { date +%s.%N; }
start_server() {
  if [ "${KAFKA:-}" = 1 ]; then
    # Formats $dir/kafka on the first start only; the JVM runs under the same limit.
    kafka_start "$dir/kafka" "$port" prlimit --nofile=$nofile:$nofile || exit 1
    server=$kafka_pid
    return
  fi
  prlimit --nofile=$nofile:$nofile "$bin" server --override "listeners=PLAINTEXT://$bootstrap" \
    --override "log.dirs=$dir/data" >>"$dir/server.log" 2>&1 &
  server=$!
}
# Seconds from $1 until Metadata (topics list) shows the topic with all partitions.
wait_all_partitions() {
  local t0=$1
  while :; do
    n=$(MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" topics list -o json 2>/dev/null |
        python3 -c 'import json,sys; print(next((t["partition_count"] for t in json.load(sys.stdin) if t["topic"]=="many"),0))' \
        2>/dev/null || echo 0)
    [ "$n" = "$partitions" ] && break
    kill -0 $server 2>/dev/null || { echo "server died:"; tail -20 "$log"; exit 1; }
    sleep 0.2
  done
  python3 -c "print(f'{$(now) - $t0:.1f}')"
}

start_server
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
t0=$(now)
# Two requests (CreateTopics of half, then CreatePartitions to all): Kafka, and Moldau as
# Kafka, refuse more than 10,000 partition records in one operation.
half=$(( (partitions + 1) / 2 ))
MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" topics create --topic many --partitions "$half" "${create_opts[@]}" >/dev/null
if [ "$partitions" -gt "$half" ]; then
  MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" topics alter --topic many --partitions "$partitions" "${create_opts[@]}" >/dev/null
fi
create_s=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
fds=$(ls /proc/$server/fd | wc -l)
if [ "${KAFKA:-}" = 1 ]; then
  # Kafka answers CreateTopics once the controller has committed the records; the broker
  # creates the partition logs afterwards. Also time that, and count descriptors then.
  while [ "$(find "$dir/kafka/data" -maxdepth 1 -name 'many-*' | wc -l)" -lt "$partitions" ]; do
    kill -0 $server 2>/dev/null || { echo "server died:"; tail -20 "$log"; exit 1; }
    sleep 0.2
  done
  logs_s=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
  fds_logs=$(ls /proc/$server/fd | wc -l)
fi
echo "x" | MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" produce --topic many >/dev/null 2>&1

t0=$(now); kill -TERM $server; wait $server || true
stop_s=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
t0=$(now); start_server
term_restart_s=$(wait_all_partitions "$t0")
fds_after=$(ls /proc/$server/fd | wc -l)

kill -9 $server; wait $server 2>/dev/null || true
t0=$(now); start_server
kill_restart_s=$(wait_all_partitions "$t0")

[ "${KAFKA:-}" = 1 ] && echo "broker: Apache Kafka $kafka_version (JVM ${KAFKA_HEAP:--Xmx1G -Xms1G})"
echo "| partitions | limit | create s | fds after create | SIGTERM stop s | restart after SIGTERM s | fds after restart | restart after kill -9 s |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $partitions | $nofile | $create_s | $fds | $stop_s | $term_restart_s | $fds_after | $kill_restart_s |"
if [ "${KAFKA:-}" = 1 ]; then
  echo "Kafka: all $partitions partition directories on disk $logs_s s after the create began; fds then: $fds_logs"
  echo "Kafka log lines with 'Too many open files': $(grep -c 'Too many open files' "$dir/kafka/kafka.log" "$dir/kafka/kafka.out" | awk -F: '{s+=$2} END {print s+0}')"
else
  grep -i "open files limit" "$dir/server.log" | head -1
fi
