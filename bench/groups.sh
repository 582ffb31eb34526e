#!/usr/bin/env bash
# Consumer-group benchmark (issue 4 item 8): member leave → others consuming again, and
# 50 members over 500 partitions forming a group, classic and KIP-848, with librdkafka
# members (bench/groups_bench.rs) against a release broker with default settings.
#
#   bench/groups.sh [runs] [form_members] [form_partitions]     (default 3 50 500)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p moldau --bin moldau --example groups_bench >/dev/null 2>&1
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/moldau
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"$bin" server --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$dir/data" \
  >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$target/release/examples/groups_bench" "127.0.0.1:$port" "${1:-3}" "${2:-50}" "${3:-500}"
