#!/usr/bin/env bash
# The CDC benchmark of Moldau's Connect worker: a real MariaDB, a real PostgreSQL, the
# release `moldau` broker and `moldau connect standalone` worker, all on 127.0.0.1 (free
# ports, one temp dir, everything killed and removed on exit). The worker runs the
# Debezium-configured MySQL source (io.debezium.connector.mysql.MySqlConnector) and the
# JDBC sink (io.confluent.connect.jdbc.JdbcSinkConnector) in upsert mode with the usual
# transforms (ExtractNewRecordState, ExtractField$Key), as crates/cli/tests/connect_pipeline.rs.
# bench/connect_bench.py drives the phases and prints markdown tables:
#   1. snapshot: a pre-filled table, rows/s until every row is in the topic;
#   2. streaming: rows inserted in transactions while the source streams the binlog,
#      rows/s from the first insert until the last change is in the topic;
#   3. sink: the JDBC sink started on the filled topic, rows/s until PostgreSQL has them;
#   4. latency: one row committed in MariaDB every 20 ms, each row's arrival in PostgreSQL
#      polled every ~5 ms, for two sinks on the same topic (default batch.size, and
#      batch.size=1).
# The topic's end offset is read with a ListOffsets request (no consumer in the way).
#
#   bench/connect.sh
#   SNAPSHOT_ROWS=100000 STREAM_ROWS=200000 TXN_ROWS=1000 LAT_SAMPLES=500 LAT_INTERVAL_MS=20 \
#   FLUSH_MS=1000 bench/connect.sh         (the defaults; FLUSH_MS is the worker's
#                                           offset.flush.interval.ms)
#   WORKER_PROPS="producer.linger.ms=0" bench/connect.sh   (extra worker properties)
#   MOLDAU_BIN=path/to/moldau bench/connect.sh      (another build, no cargo)
#   PERF_DIR=/some/dir bench/connect.sh  (perf record -g of the worker per phase, there)
# Needs mariadb-server (mariadbd, mariadb-install-db, mariadb client), postgresql
# (initdb, postgres, psql), python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MOLDAU_BIN:-}" ]; then
  cargo build --release -p moldau >/dev/null 2>&1
fi
bin=$(realpath "${MOLDAU_BIN:-target/release/moldau}")
export SNAPSHOT_ROWS=${SNAPSHOT_ROWS:-100000} STREAM_ROWS=${STREAM_ROWS:-200000}
export TXN_ROWS=${TXN_ROWS:-1000} LAT_SAMPLES=${LAT_SAMPLES:-500}
export LAT_INTERVAL_MS=${LAT_INTERVAL_MS:-20} FLUSH_MS=${FLUSH_MS:-1000}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port what
  for _ in $(seq 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "$2 did not listen on $1 within 60 s" >&2; exit 1
}

dir=$(mktemp -d)
chmod 711 "$dir"
mysqld_pid= pg_pid= broker_pid= worker_pid=
cleanup() {
  exec 2>/dev/null # no "Killed" notices
  for p in $worker_pid $broker_pid $mysqld_pid; do kill -9 "$p" || true; done
  # SIGQUIT: PostgreSQL's immediate shutdown, which takes its backends with it.
  [ -z "$pg_pid" ] || kill -QUIT "$pg_pid" || true
  wait || true
  rm -rf "$dir"
}
trap cleanup EXIT

# MariaDB: binlog in row format (what CDC needs), its own tmpdir, root without password.
mysql_port=$(free_port)
mkdir -p "$dir/mysql/tmp"
as_root=(); [ "$(id -u)" = 0 ] && as_root=(--user=root)
mariadb-install-db --no-defaults --datadir="$dir/mysql/data" --tmpdir="$dir/mysql/tmp" \
  --auth-root-authentication-method=normal --skip-test-db "${as_root[@]}" >"$dir/mysql/install.log" 2>&1
mysqld=$(command -v mariadbd || echo /usr/sbin/mariadbd)
"$mysqld" --no-defaults --datadir="$dir/mysql/data" --port="$mysql_port" --bind-address=127.0.0.1 \
  --socket="$dir/mysql/mysqld.sock" --pid-file="$dir/mysql/mysqld.pid" --log-bin="$dir/mysql/binlog" \
  --binlog-format=ROW --server-id=1 --tmpdir="$dir/mysql/tmp" --log-error="$dir/mysql/error.log" \
  --innodb-buffer-pool-size=256M "${as_root[@]}" >/dev/null 2>&1 &
mysqld_pid=$!

# PostgreSQL 15: logical WAL as Connect's tests, fsync off, trust on 127.0.0.1; as the
# `postgres` user when run as root (it refuses root).
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pg_port=$(free_port)
mkdir -p "$dir/pg"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir/pg"
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$dir/pg/data" -U postgres --auth=trust -E UTF8 --no-sync \
  >"$dir/pg/initdb.log" 2>&1
"${as_pg[@]}" "$pg_bin/postgres" -D "$dir/pg/data" -p "$pg_port" -k "$dir/pg" \
  -c listen_addresses=127.0.0.1 -c wal_level=logical -c fsync=off >/dev/null 2>"$dir/pg/postgres.log" &
pg_pid=$!

# The broker (defaults) and the worker (no connectors yet; the driver adds them by REST).
broker_port=$(free_port)
"$bin" server --override "listeners=PLAINTEXT://127.0.0.1:$broker_port" \
  --override "log.dirs=$dir/broker" >"$dir/broker.log" 2>&1 &
broker_pid=$!
wait_port "$mysql_port" mariadbd
wait_port "$pg_port" postgres
for _ in $(seq 600); do "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break; sleep 0.1; done
wait_port "$broker_port" "moldau server"

rest_port=$(free_port)
mkdir -p "$dir/worker"
cat >"$dir/worker/worker.properties" <<PROPS
bootstrap.servers=127.0.0.1:$broker_port
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$dir/worker/connect.offsets
offset.flush.interval.ms=$FLUSH_MS
listeners=http://127.0.0.1:$rest_port
PROPS
# Extra worker properties, space separated (e.g. WORKER_PROPS="producer.linger.ms=0").
for kv in ${WORKER_PROPS:-}; do echo "$kv" >>"$dir/worker/worker.properties"; done
RUST_LOG=info "$bin" connect standalone "$dir/worker/worker.properties" >"$dir/worker/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$rest_port/" >/dev/null && break; sleep 0.1; done

echo "moldau $bin (built $(date -u -r "$bin" '+%F %H:%M UTC'); repository at $(git rev-parse --short HEAD 2>/dev/null || echo '?')),"\
  "$("$mysqld" --version | sed 's/.*Ver //; s/ for.*//'), $("$pg_bin/postgres" --version),"\
  "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "sizes: SNAPSHOT_ROWS=$SNAPSHOT_ROWS STREAM_ROWS=$STREAM_ROWS TXN_ROWS=$TXN_ROWS" \
  "LAT_SAMPLES=$LAT_SAMPLES LAT_INTERVAL_MS=$LAT_INTERVAL_MS offset.flush.interval.ms=$FLUSH_MS" \
  "${WORKER_PROPS:+WORKER_PROPS=\"$WORKER_PROPS\"}"
echo
status=0
python3 bench/connect_bench.py --mysql-port "$mysql_port" --pg-port "$pg_port" --pg-bin "$pg_bin" \
  --broker "127.0.0.1:$broker_port" --connect "http://127.0.0.1:$rest_port" --moldau "$bin" \
  --pids "worker=$worker_pid,broker=$broker_pid,mariadbd=$mysqld_pid,postgres=$pg_pid" || status=$?
if [ "$status" != 0 ]; then
  echo "--- worker log (tail) ---" >&2; tail -n 40 "$dir/worker/worker.log" >&2
fi
exit "$status"
