#!/usr/bin/env bash
# Many partitions on one node under a descriptor limit: one CreateTopics of N
# partitions (default 10000) under `prlimit --nofile=20000:20000`, then a restart
# after SIGTERM and one after kill -9. Prints the create time, the descriptors held,
# and each restart's time until Metadata lists all N partitions.
#
#   bench/partitions.sh [partitions]        (needs prlimit from util-linux)
#   MOLDAU_BIN=target/debug/moldau bench/partitions.sh 1000   (another build, no cargo)
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

now() { date +%s.%N; }
start_server() {
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
    kill -0 $server 2>/dev/null || { echo "server died:"; tail -20 "$dir/server.log"; exit 1; }
    sleep 0.2
  done
  python3 -c "print(f'{$(now) - $t0:.1f}')"
}

start_server
for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
t0=$(now)
MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" topics create --topic many --partitions "$partitions" >/dev/null
create_s=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
fds=$(ls /proc/$server/fd | wc -l)
echo "x" | MOLDAU_BOOTSTRAP_SERVER=$bootstrap "$bin" produce --topic many >/dev/null 2>&1

t0=$(now); kill -TERM $server; wait $server || true
stop_s=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
t0=$(now); start_server
term_restart_s=$(wait_all_partitions "$t0")
fds_after=$(ls /proc/$server/fd | wc -l)

kill -9 $server; wait $server 2>/dev/null || true
t0=$(now); start_server
kill_restart_s=$(wait_all_partitions "$t0")

echo "| partitions | limit | create s | fds after create | SIGTERM stop s | restart after SIGTERM s | fds after restart | restart after kill -9 s |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $partitions | $nofile | $create_s | $fds | $stop_s | $term_restart_s | $fds_after | $kill_restart_s |"
grep -i "open files limit" "$dir/server.log" | head -1
