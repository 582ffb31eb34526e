#!/usr/bin/env python3
"""The phases of bench/connect.sh (which starts MariaDB, PostgreSQL, the broker and the
worker and passes their ports and pids here). Standard library only; SQL goes through the
`mariadb` and `psql` command-line clients, the topic's end offset through a ListOffsets
request, connectors through the worker's REST API. Prints markdown tables.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

SNAPSHOT_ROWS = int(os.environ.get("SNAPSHOT_ROWS", "100000"))
STREAM_ROWS = int(os.environ.get("STREAM_ROWS", "200000"))
TXN_ROWS = int(os.environ.get("TXN_ROWS", "1000"))
LAT_SAMPLES = int(os.environ.get("LAT_SAMPLES", "500"))
LAT_INTERVAL_MS = float(os.environ.get("LAT_INTERVAL_MS", "20"))
LAT_POLL_MS = float(os.environ.get("LAT_POLL_MS", "5"))
DEADLINE_S = float(os.environ.get("PHASE_DEADLINE_S", "300"))

PREFIX = "cdc"
ROWS_TOPIC = f"{PREFIX}.bench.rows"
LAT_TOPIC = f"{PREFIX}.bench.lat"
HZ = os.sysconf("SC_CLK_TCK")


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------- Kafka


class EndOffsets:
    """The latest offset of a topic's partition 0 (ListOffsets v1) on one connection."""

    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.corr = 0

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def latest(self, topic, partition=0):
        """The end offset, or 0 while the topic does not exist."""
        self.corr += 1
        name = topic.encode()
        client = b"connect-bench"
        body = struct.pack(">hhih", 2, 1, self.corr, len(client)) + client
        body += struct.pack(">ii", -1, 1) + struct.pack(">h", len(name)) + name
        body += struct.pack(">iiq", 1, partition, -1)
        self.sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", self._recv(4))
        resp = self._recv(size)
        # corr, [topics: name, [partitions: partition, error, timestamp, offset]]
        pos = 4 + 4
        (nlen,) = struct.unpack_from(">h", resp, pos)
        pos += 2 + nlen + 4
        _p, err, _ts, offset = struct.unpack_from(">ihqq", resp, pos)
        return offset if err == 0 else 0


# ---------------------------------------------------------------------------- REST


def rest(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


# ---------------------------------------------------------------------------- SQL


class Args:
    pass


A = Args()


def mysql(sql):
    out = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", "-uroot", "-N", "-B", f"-P{A.mysql_port}", "-e", sql],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"mariadb -e {sql[:200]!r}: {out.stderr}")
    return out.stdout


def psql(sql, check=True):
    out = subprocess.run(
        [os.path.join(A.pg_bin, "psql"), "-h", "127.0.0.1", "-p", str(A.pg_port), "-U", "postgres",
         "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True)
    if out.returncode != 0:
        if check:
            raise RuntimeError(f"psql -c {sql!r}: {out.stderr}")
        return None
    return out.stdout.strip()


class Session:
    """A long-lived command-line client fed statements on stdin; `ask` sends one line of
    SQL whose last statement prints one line, and returns that line."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, sql):
        self.p.stdin.write(sql + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"client ended: {self.p.stderr.read()}")
        return line.strip()

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def mysql_session():
    return Session(["mariadb", "--no-defaults", "-h127.0.0.1", "-uroot", "-N", "-B", "--unbuffered",
                    f"-P{A.mysql_port}"])


def psql_session():
    return Session([os.path.join(A.pg_bin, "psql"), "-h", "127.0.0.1", "-p", str(A.pg_port),
                    "-U", "postgres", "-d", "postgres", "-At", "-q", "-v", "ON_ERROR_STOP=1"])


# ---------------------------------------------------------------------------- CPU


def proc_ticks(pid, children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    t = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        t += int(fields[13]) + int(fields[14])  # cutime, cstime of waited-for children
    return t


def child_pids(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def cpu_snapshot():
    """CPU ticks per watched process; PostgreSQL's with its backends (live ones, and the
    ended ones the postmaster has reaped)."""
    snap = {}
    for name, pid in A.pids.items():
        if name == "postgres":
            snap[name] = proc_ticks(pid, children=True) + sum(proc_ticks(c) for c in child_pids(pid))
        else:
            snap[name] = proc_ticks(pid)
    return snap


def cpu_since(before, seconds):
    after = cpu_snapshot()
    return ", ".join(f"{k} {100.0 * (after[k] - before[k]) / HZ / seconds:.0f} %" for k in A.pids)


class Profile:
    """With PERF_DIR set: `perf record -g` of the worker during a phase, into
    PERF_DIR/<phase>.data (for `perf report`); otherwise nothing."""

    def __init__(self, phase):
        self.phase = phase
        self.p = None

    def __enter__(self):
        d = os.environ.get("PERF_DIR")
        if d:
            self.p = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-p", str(A.pids["worker"]), "-o",
                 os.path.join(d, f"{self.phase}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.p:
            self.p.send_signal(2)
            self.p.wait()


# ---------------------------------------------------------------------------- phases


def wait_until(what, cond, interval=0.01, deadline=DEADLINE_S):
    end = now() + deadline
    while True:
        v = cond()
        if v:
            return v
        if now() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def source_config():
    return {"name": "cdc-source", "config": {
        "connector.class": "io.debezium.connector.mysql.MySqlConnector",
        "tasks.max": "1",
        "database.hostname": "127.0.0.1",
        "database.port": str(A.mysql_port),
        "database.user": "root",
        "database.password": "",
        "database.server.id": "5400",
        "topic.prefix": PREFIX,
        "database.include.list": "bench",
        "table.include.list": "bench.rows,bench.lat",
        "snapshot.mode": "initial",
        "schema.history.internal.kafka.topic": "schema-changes.bench",
        "schema.history.internal.kafka.bootstrap.servers": A.broker,
    }}


def sink_config(name, topic, table, extra=None):
    c = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": f"jdbc:postgresql://127.0.0.1:{A.pg_port}/postgres",
        "connection.user": "postgres",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "pk.fields": "id",
        "delete.enabled": "true",
        "auto.create": "true",
        "auto.evolve": "true",
        "table.name.format": table,
        "transforms": "unwrap,key",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.drop.tombstones": "false",
        "transforms.unwrap.delete.handling.mode": "drop",
        "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.key.field": "id",
    }
    c.update(extra or {})
    return {"name": name, "config": c}


def create(config):
    status, body = rest("POST", f"{A.connect}/connectors", config)
    if status != 201:
        raise RuntimeError(f"creating {config['name']}: {status} {body}")


def running(name):
    status, body = rest("GET", f"{A.connect}/connectors/{name}/status")
    if status != 200:
        return False
    tasks = body.get("tasks") or []
    for t in tasks:
        if t.get("state") == "FAILED":
            raise RuntimeError(f"{name} failed: {t.get('trace', '')[:2000]}")
    return bool(tasks) and all(t.get("state") == "RUNNING" for t in tasks)


ROW_SELECT = ("SELECT seq, CONCAT('customer-', seq), CONCAT('customer-', seq, '@example.com'), "
              "seq % 1000, 'the quick brown fox jumps over the lazy dog'")


def setup_mysql():
    mysql("CREATE DATABASE bench; "
          "CREATE TABLE bench.rows (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
          "email VARCHAR(128), score INT NOT NULL, note VARCHAR(100)); "
          "CREATE TABLE bench.lat (id BIGINT PRIMARY KEY, sent_ns BIGINT NOT NULL)")
    # Pre-filled in transactions of TXN_ROWS (server-side rows from the SEQUENCE engine).
    insert_range(1, SNAPSHOT_ROWS)


def insert_range(first, last):
    """Inserts ids first..last in transactions of TXN_ROWS (one mariadb client); returns
    the wall time the client took."""
    stmts = []
    for lo in range(first, last + 1, TXN_ROWS):
        hi = min(lo + TXN_ROWS - 1, last)
        stmts.append(f"INSERT INTO bench.rows {ROW_SELECT} FROM seq_{lo}_to_{hi};")
    t0 = now()
    out = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", "-uroot", f"-P{A.mysql_port}", "bench"],
        input="\n".join(stmts), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return now() - t0


def phase_snapshot(k):
    before = cpu_snapshot()
    t0 = now()
    create(source_config())
    first = wait_until("the first snapshot record", lambda: k.latest(ROWS_TOPIC) > 0 and now(), 0.005)
    done = wait_until("the whole snapshot in the topic",
                      lambda: k.latest(ROWS_TOPIC) >= SNAPSHOT_ROWS and now(), 0.01)
    cpu = cpu_since(before, done - t0)
    return {"rows": SNAPSHOT_ROWS, "total_s": done - t0, "first_s": first - t0,
            "rate": SNAPSHOT_ROWS / (done - t0), "rate_from_first": SNAPSHOT_ROWS / (done - first),
            "cpu": cpu}


def phase_stream(k):
    # Streaming has begun once the snapshot is done and the task runs; let it settle.
    wait_until("the source task running", lambda: running("cdc-source"), 0.1)
    time.sleep(1)
    base = k.latest(ROWS_TOPIC)
    target = base + STREAM_ROWS
    done_at = {}

    def watch():
        while True:
            off = k.latest(ROWS_TOPIC)
            if off > base and "first" not in done_at:
                done_at["first"] = now()
            if off >= target:
                done_at["last"] = now()
                return
            if now() > t0 + DEADLINE_S:
                return
            time.sleep(0.005)

    before = cpu_snapshot()
    t0 = now()
    w = threading.Thread(target=watch)
    w.start()
    insert_s = insert_range(SNAPSHOT_ROWS + 1, SNAPSHOT_ROWS + STREAM_ROWS)
    w.join()
    if "last" not in done_at:
        raise TimeoutError("the streamed rows did not all reach the topic")
    total = done_at["last"] - t0
    return {"rows": STREAM_ROWS, "txn": TXN_ROWS, "insert_s": insert_s, "total_s": total,
            "first_s": done_at["first"] - t0, "rate": STREAM_ROWS / total,
            "cpu": cpu_since(before, total)}


def pg_count(table):
    out = psql(f"SELECT count(*) FROM {table}", check=False)
    return int(out) if out else 0


def phase_sink(k):
    total_rows = k.latest(ROWS_TOPIC)
    before = cpu_snapshot()
    t0 = now()
    create(sink_config("rows-sink", ROWS_TOPIC, "bench_rows"))
    # The sink creates the table before its first batch; then max(id) (the primary key
    # index, cheap) is polled on one session: the topic holds ids 1..N in order, and each
    # batch commits at once, so every change of max(id) is one committed batch.
    wait_until("the table in PostgreSQL",
               lambda: psql("SELECT to_regclass('bench_rows') IS NOT NULL") == "t", 0.02)
    session = psql_session()
    steps = []  # (time, max id) at each change
    high = 0
    end = now() + DEADLINE_S
    while high < total_rows:
        v = int(session.ask("SELECT coalesce(max(id), 0) FROM bench_rows;"))
        if v != high:
            steps.append((now(), v))
            high = v
        if now() > end:
            raise TimeoutError("the sink did not write every row")
        time.sleep(0.005)
    session.close()
    done = steps[-1][0]
    total = done - t0
    cpu = cpu_since(before, total)
    count = pg_count("bench_rows")
    if count != total_rows:
        raise RuntimeError(f"PostgreSQL has {count} rows, the topic {total_rows}")
    first = steps[0][0]
    gaps = sorted((b[0] - a[0]) * 1000 for a, b in zip(steps, steps[1:]))
    sizes = sorted(b[1] - a[1] for a, b in zip(steps, steps[1:]))
    return {"rows": total_rows, "total_s": total, "first_s": first - t0, "rate": total_rows / total,
            "rate_from_first": (total_rows - steps[0][1]) / max(1e-9, done - first), "cpu": cpu,
            "commits": len(steps), "batch_rows_p50": percentile(sizes, 50),
            "batch_ms_p50": percentile(gaps, 50), "batch_ms_p99": percentile(gaps, 99)}


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def phase_latency():
    tables = ["lat_batched", "lat_single"]
    create(sink_config("lat-batched", LAT_TOPIC, "lat_batched"))
    create(sink_config("lat-single", LAT_TOPIC, "lat_single", {"batch.size": "1"}))
    for name in ("lat-batched", "lat-single"):
        wait_until(f"{name} running", lambda: running(name), 0.1)
    # A warm-up row: the sinks create their tables and have their partitions assigned.
    mysql("INSERT INTO bench.lat VALUES (0, 0)")
    for t in tables:
        wait_until(f"the warm-up row in {t}", lambda: pg_count(t) > 0, 0.1, 120)

    writer = mysql_session()
    poller = psql_session()
    committed = {}  # id -> monotonic time the commit was acknowledged
    sent = {}
    seen = {t: {} for t in tables}  # id -> monotonic time first seen
    polls = []
    stop = threading.Event()
    query = "SELECT " + ", ".join(f"(SELECT coalesce(max(id), 0) FROM {t})" for t in tables) + ";"

    def poll():
        high = {t: 0 for t in tables}
        while not stop.is_set():
            t_ask = now()
            row = poller.ask(query).split("|")
            t_got = now()
            polls.append(t_got - t_ask)
            for t, v in zip(tables, row):
                v = int(v)
                # Rows arrive in id order (one partition, one task per sink).
                for i in range(high[t] + 1, v + 1):
                    seen[t][i] = t_got
                high[t] = max(high[t], v)
            if all(high[t] >= LAT_SAMPLES for t in tables):
                return
            time.sleep(LAT_POLL_MS / 1000.0)

    p = threading.Thread(target=poll)
    before = cpu_snapshot()
    t_start = now()
    p.start()
    nxt = now()
    for i in range(1, LAT_SAMPLES + 1):
        nxt += LAT_INTERVAL_MS / 1000.0
        t = now()
        sent[i] = t
        # Autocommit: the INSERT's answer is the commit; SELECT only echoes the id back.
        writer.ask(f"INSERT INTO bench.lat VALUES ({i}, {time.time_ns()}); SELECT {i};")
        committed[i] = now()
        delay = nxt - now()
        if delay > 0:
            time.sleep(delay)
    write_s = now() - t_start
    p.join(timeout=DEADLINE_S)
    stop.set()
    p.join()
    elapsed = now() - t_start
    writer.close()
    poller.close()
    cpu = cpu_since(before, elapsed)
    commit_ms = sorted((committed[i] - sent[i]) * 1000 for i in committed)
    result = {"samples": LAT_SAMPLES, "interval_ms": LAT_INTERVAL_MS, "write_s": write_s,
              "commit_p50": percentile(commit_ms, 50), "commit_p99": percentile(commit_ms, 99),
              "cpu": cpu, "sinks": {}}
    # The poll's granularity: time between the starts of consecutive polls ~ sleep + query.
    pq = sorted(x * 1000 for x in polls)
    result["poll_query_ms_p50"] = percentile(pq, 50)
    result["poll_query_ms_p99"] = percentile(pq, 99)
    result["poll_cycle_ms"] = elapsed * 1000 / max(1, len(polls))
    for t in tables:
        lat = sorted((seen[t][i] - committed[i]) * 1000 for i in committed if i in seen[t])
        result["sinks"][t] = {"n": len(lat), "p50": percentile(lat, 50), "p90": percentile(lat, 90),
                              "p99": percentile(lat, 99), "max": lat[-1] if lat else float("nan"),
                              "min": lat[0] if lat else float("nan")}
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mysql-port", type=int, required=True)
    ap.add_argument("--pg-port", type=int, required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--connect", required=True)
    ap.add_argument("--moldau", required=True)
    ap.add_argument("--pids", required=True)
    ap.parse_args(namespace=A)
    A.pids = {k: int(v) for k, v in (x.split("=") for x in A.pids.split(","))}
    for t in (ROWS_TOPIC, LAT_TOPIC):
        subprocess.run([A.moldau, "topics", "create", "--bootstrap-server", A.broker, "--topic", t,
                        "--partitions", "1"], check=True, capture_output=True)
    k = EndOffsets(A.broker)

    t = now()
    setup_mysql()
    print(f"pre-filled {SNAPSHOT_ROWS} rows in {now() - t:.1f} s", file=sys.stderr)
    with Profile("snapshot"):
        snap = phase_snapshot(k)
    print(f"snapshot: {snap}", file=sys.stderr)
    with Profile("stream"):
        stream = phase_stream(k)
    print(f"streaming: {stream}", file=sys.stderr)
    last = k.latest(ROWS_TOPIC) - 1
    out = subprocess.run([A.moldau, "consume", "--bootstrap-server", A.broker, "--topic", ROWS_TOPIC,
                          "--partition", "0", "--offset", str(last), "--max-messages", "1",
                          "--format", "json"], capture_output=True, text=True, timeout=60)
    rec = json.loads(out.stdout.splitlines()[0])
    record_bytes = (len((rec.get("key") or "").encode()), len((rec.get("value") or "").encode()))
    with Profile("sink"):
        sink = phase_sink(k)
    print(f"sink: {sink}", file=sys.stderr)
    lat = phase_latency()
    print(f"latency: {lat}", file=sys.stderr)

    print("| phase | rows | wall s | rows/s | rows/s after the first | CPU (of one core) |")
    print("|---|---|---|---|---|---|")
    print(f"| MySQL snapshot -> topic | {snap['rows']} | {snap['total_s']:.2f} | {snap['rate']:.0f} | "
          f"{snap['rate_from_first']:.0f} (first record after {snap['first_s']:.2f} s) | {snap['cpu']} |")
    print(f"| MySQL binlog -> topic ({stream['txn']} rows/txn; MariaDB took {stream['insert_s']:.2f} s) | "
          f"{stream['rows']} | {stream['total_s']:.2f} | {stream['rate']:.0f} | "
          f"(first record after {stream['first_s'] * 1000:.0f} ms) | {stream['cpu']} |")
    print(f"| topic -> PostgreSQL (JDBC upsert; {sink['commits']} commits seen, median "
          f"{sink['batch_rows_p50']:.0f} rows, {sink['batch_ms_p50']:.0f} ms apart, p99 "
          f"{sink['batch_ms_p99']:.0f} ms) | {sink['rows']} | "
          f"{sink['total_s']:.2f} | {sink['rate']:.0f} | {sink['rate_from_first']:.0f} "
          f"(first row after {sink['first_s']:.2f} s) | {sink['cpu']} |")
    print()
    print(f"One change event in the topic (JsonConverter, schemas.enable=true): key "
          f"{record_bytes[0]} B, value {record_bytes[1]} B")
    print()
    print(f"End-to-end latency, MariaDB commit acknowledged -> row visible in PostgreSQL: "
          f"{lat['samples']} rows, one every {lat['interval_ms']:g} ms (commit p50 "
          f"{lat['commit_p50']:.2f} ms, p99 {lat['commit_p99']:.2f} ms); PostgreSQL polled every "
          f"{lat['poll_cycle_ms']:.1f} ms (query p50 {lat['poll_query_ms_p50']:.2f} ms, p99 "
          f"{lat['poll_query_ms_p99']:.2f} ms); CPU during the phase: {lat['cpu']}")
    print()
    print("| sink | samples | min ms | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    label = {"lat_batched": "JDBC upsert, batch.size 3000 (default)",
             "lat_single": "JDBC upsert, batch.size 1"}
    for t, s in lat["sinks"].items():
        print(f"| {label[t]} | {s['n']} | {s['min']:.1f} | {s['p50']:.1f} | {s['p90']:.1f} | "
              f"{s['p99']:.1f} | {s['max']:.1f} |")


if __name__ == "__main__":
    main()
