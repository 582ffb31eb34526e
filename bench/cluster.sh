#!/usr/bin/env bash
# Three nodes on 127.0.0.1 (combined broker + controller, all three voters):
#   1. formation: from starting the three processes to all three serving clients;
#   2. controller failover, ROUNDS times (default 5): kill -9 of the active controller (as
#      DescribeQuorum names it) to DescribeQuorum through a survivor naming a new one, and
#      to the first CreateTopics acknowledged through a survivor (clients poll every 20 ms
#      with 300 ms request timeouts); the killed node is restarted before the next round;
#   3. replication: produce throughput and latency to an RF=1 topic with acks=1 and to an
#      RF=3 (min.insync.replicas=2) topic with acks=all, PERF_RECORDS records (500000);
#   4. leader failover, ROUNDS times: kill -9 of a partition's leader to the first acks=all
#      record acknowledged on that partition;
#   5. metadata at scale: a topic of PARTITIONS partitions (default 10000, in two requests:
#      create half, then CreatePartitions) over the three brokers, then a restart of one
#      node after SIGTERM, timed until Metadata through it lists every partition again.
#
#   bench/cluster.sh [ROUNDS] [PARTITIONS]
#   MOLDAU_BIN=target/debug/moldau bench/cluster.sh    (another build, no cargo)
#   KAFKA=1 bench/cluster.sh   (the same against three Apache Kafka 4.1.1 nodes, kafka.sh;
#                               moldau's CLI is the client in both)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
partitions=${2:-10000}
PERF_RECORDS=${PERF_RECORDS:-500000}
nofile=20000
if [ -z "${MOLDAU_BIN:-}" ]; then
  cargo build --release -p moldau >/dev/null 2>&1
fi
bin=$(realpath "${MOLDAU_BIN:-target/release/moldau}")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d)
declare -A pid client controller
for id in 1 2 3; do client[$id]=$(free_port); controller[$id]=$(free_port); done
voters="1@127.0.0.1:${controller[1]},2@127.0.0.1:${controller[2]},3@127.0.0.1:${controller[3]}"
cleanup() {
  for id in 1 2 3; do [ -n "${pid[$id]:-}" ] && kill -9 "${pid[$id]}" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
if [ "${KAFKA:-}" = 1 ]; then
  . bench/kafka.sh
  KAFKA_CLUSTER_ID=$(kafka_cluster_id)
  export KAFKA_CLUSTER_ID KAFKA_VOTERS=$voters
  KAFKA_HEAP=${KAFKA_HEAP:--Xmx512M -Xms512M}
fi
label=$([ "${KAFKA:-}" = 1 ] && echo "kafka 4.1.1" || echo moldau)

now() { date +%s.%N; }
# Returns once process $1 has exited: reaped if it is this shell's child, else polled
# (kafka_start runs the JVM from a subshell).
gone() {
  wait "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.01; done
}
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }
# Starts node $1 without waiting (a voter serves once the quorum has a leader).
start_node() {
  local id=$1
  if [ "${KAFKA:-}" = 1 ]; then
    # kafka_start waits for its port; the others must start meanwhile, so in a subshell.
    # A restarted node's pid file still names the killed JVM until the new one writes it.
    rm -f "$dir/node$id/kafka.pid"
    (KAFKA_NODE_ID=$id KAFKA_CONTROLLER_PORT=${controller[$id]} \
      kafka_start "$dir/node$id" "${client[$id]}" prlimit --nofile=$nofile:$nofile >/dev/null) &
    for _ in $(seq 100); do [ -s "$dir/node$id/kafka.pid" ] && break; sleep 0.1; done
    pid[$id]=$(cat "$dir/node$id/kafka.pid")
    return
  fi
  mkdir -p "$dir/node$id"
  prlimit --nofile=$nofile:$nofile "$bin" server --override node.id=$id \
    --override "listeners=PLAINTEXT://127.0.0.1:${client[$id]},CONTROLLER://127.0.0.1:${controller[$id]}" \
    --override controller.listener.names=CONTROLLER --override "controller.quorum.voters=$voters" \
    --override "log.dirs=$dir/node$id/data" >>"$dir/node$id/server.log" 2>&1 &
  pid[$id]=$!
}
# Serving once it answers a request (a listening port accepts connections before the node
# serves: it waits for the quorum and its registration first).
wait_serving() {
  local id=$1
  for _ in $(seq 1200); do
    "$bin" cluster describe --bootstrap-server "127.0.0.1:${client[$id]}" \
      --request-timeout-ms 500 >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "node $id not serving" >&2; exit 1
}
bootstrap_without() {
  local skip=$1 out=() id
  for id in 1 2 3; do [ "$id" != "$skip" ] && out+=("127.0.0.1:${client[$id]}"); done
  (IFS=,; echo "${out[*]}")
}
active_controller() {
  "$bin" metadata-quorum describe --status -o json --request-timeout-ms "${2:-2000}" \
    --bootstrap-server "${1:-$(bootstrap_without 0)}" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])' 2>/dev/null
}

echo "== $label: three nodes on 127.0.0.1 =="
t0=$(now)
for id in 1 2 3; do start_node $id; done
for id in 1 2 3; do wait_serving $id; done
echo "formation: all three serving after $(since "$t0") s"
until active_controller >/dev/null 2>&1; do sleep 0.1; done

failovers=()
elections=()
for round in $(seq "$rounds"); do
  leader=$(active_controller)
  survivors=$(bootstrap_without "$leader")
  t0=$(now)
  kill -9 "${pid[$leader]}"
  gone "${pid[$leader]}"
  pid[$leader]=
  while :; do
    next=$(active_controller "$survivors" 300 || true)
    [ -n "$next" ] && [ "$next" != "$leader" ] && break
    sleep 0.02
  done
  elected=$(since "$t0")
  until "$bin" topics create --topic "failover-$round" --request-timeout-ms 300 \
      --bootstrap-server "$survivors" >/dev/null 2>&1; do sleep 0.02; done
  took=$(since "$t0")
  failovers+=("$took")
  elections+=("$elected")
  echo "round $round: kill -9 of active controller $leader -> $next elected after $elected s, CreateTopics acknowledged after $took s"
  start_node "$leader"; wait_serving "$leader"
  # The next round starts from a whole quorum.
  sleep 2
done
echo "controller failover, new controller (s): ${elections[*]}"
echo "controller failover, first CreateTopics (s): ${failovers[*]}"

all=$(bootstrap_without 0)

# Replication: the same load to an RF=1 topic with acks=1 and to an RF=3,
# min.insync.replicas=2 topic with acks=all (every record on all three nodes before its
# acknowledgement), one after the other, with the perf client of the same binary.
for spec in "rf1 1 1" "rf3 3 all"; do
  read -r topic rf acks <<<"$spec"
  "$bin" topics create --topic "$topic" --partitions 6 --replication-factor "$rf" \
    --config min.insync.replicas=$(( rf > 1 ? 2 : 1 )) --bootstrap-server "$all" >/dev/null
  sleep 1
  echo "produce, RF=$rf acks=$acks, $PERF_RECORDS records of 100 bytes:"
  "$bin" perf produce --topic "$topic" --num-records "$PERF_RECORDS" --record-size 100 \
    --producer-props "acks=$acks" linger.ms=5 --bootstrap-server "$all" | tail -1
done

# Leader failover, ROUNDS times: kill -9 of the leader of partition 0 of an RF=3 topic to
# the first acks=all record acknowledged on that partition (one record per attempt, a new
# producer each with a 1000 ms request timeout, retried at once). Not idempotent: an
# idempotent librdkafka producer waits up to 500 ms for a producer id before its first
# send (its PID timer), which would be counted in every attempt.
"$bin" topics create --topic failover --partitions 1 --replication-factor 3 \
  --config min.insync.replicas=2 --bootstrap-server "$all" >/dev/null
partition_leader() {
  "$bin" topics describe --topic failover -o json --bootstrap-server "$1" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["partitions"][0]["leader"])' 2>/dev/null
}
leader_failovers=()
for round in $(seq "$rounds"); do
  until echo warm | "$bin" produce -t failover -p 0 --acks all --request-timeout-ms 2000 \
      --bootstrap-server "$all" >/dev/null 2>&1; do sleep 0.1; done
  # A leader the metadata names among the running nodes (not -1 during an election).
  leader=$(partition_leader "$all")
  until [ -n "$leader" ] && [ -n "${pid[$leader]:-}" ]; do
    sleep 0.2
    leader=$(partition_leader "$all")
  done
  survivors=$(bootstrap_without "$leader")
  t0=$(now)
  kill -9 "${pid[$leader]}"
  gone "${pid[$leader]}"
  pid[$leader]=
  until echo "after-$round" | "$bin" produce -t failover -p 0 --acks all \
      -X enable.idempotence=false --request-timeout-ms 1000 \
      --bootstrap-server "$survivors" >/dev/null 2>&1; do :; done
  took=$(since "$t0")
  leader_failovers+=("$took")
  echo "round $round: kill -9 of partition leader $leader -> first acks=all record acknowledged after $took s"
  start_node "$leader"; wait_serving "$leader"
  # The next round starts from a whole ISR.
  until [ "$("$bin" topics describe --topic failover --under-replicated-partitions -o json \
      --bootstrap-server "$all" 2>/dev/null)" = "[]" ]; do sleep 0.2; done
done
echo "leader failover, first acks=all produce (s): ${leader_failovers[*]}"

half=$((partitions / 2))
t0=$(now)
"$bin" topics create --topic many --partitions "$half" --request-timeout-ms 600000 \
  --bootstrap-server "$all" >/dev/null
"$bin" topics alter --topic many --partitions "$partitions" --request-timeout-ms 600000 \
  --bootstrap-server "$all" >/dev/null
count_partitions() {
  "$bin" topics list -o json --bootstrap-server "$1" 2>/dev/null |
    python3 -c 'import json,sys; print(next((t["partition_count"] for t in json.load(sys.stdin) if t["topic"]=="many"),0))' 2>/dev/null || echo 0
}
until [ "$(count_partitions "$all")" = "$partitions" ]; do sleep 0.2; done
echo "create $partitions partitions over three brokers: $(since "$t0") s"

# Restart a node that is not the active controller after SIGTERM.
leader=$(active_controller)
victim=$(( leader % 3 + 1 ))
t0=$(now)
kill -TERM "${pid[$victim]}"
gone "${pid[$victim]}"
stopped=$(since "$t0")
t0=$(now)
start_node "$victim"; wait_serving "$victim"
until [ "$(count_partitions "127.0.0.1:${client[$victim]}")" = "$partitions" ]; do sleep 0.2; done
echo "node $victim: SIGTERM stop $stopped s, restart until its Metadata lists all $partitions partitions $(since "$t0") s"
