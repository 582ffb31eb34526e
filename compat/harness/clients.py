"""Drive the four real clients: confluent-kafka (librdkafka), kafka-python, the Java
client (kafka-clients 3.9, through compat/java/Compat.java) and kcat.

Every produce_* returns the records with what the client's delivery report said
(partition, offset, timestamp; None where the client does not report); every
consume_* returns what the client read, as util.Rec lists.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .util import CheckFailed, Rec, check, now_ms

COMPAT_DIR = Path(__file__).resolve().parents[1]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]

# Directory where clients write their logs for the current scenario (set by the runner).
LOG_DIR = Path(os.environ.get("COMPAT_SCENARIO_DIR", "/tmp"))

_TS_TYPES = {0: None, 1: "create", 2: "append"}


def _logfile(name: str) -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR / name


# =========================================================================== confluent-kafka

def _ck():
    import confluent_kafka  # noqa
    return confluent_kafka


def ck_log_config(name: str) -> dict:
    """librdkafka logs go to a per-client logger writing into the scenario dir."""
    logger = logging.getLogger("ck." + name)
    if not logger.handlers:
        h = logging.FileHandler(_logfile(f"librdkafka-{name}.log"))
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(h)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    return {"logger": logger}


def ck_admin_create(bootstrap: str, topic: str, partitions: int = 3, config: Optional[dict] = None,
                    timeout: float = 30.0) -> None:
    ck = _ck()
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap, **ck_log_config("admin")})
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
                         operation_timeout=timeout, request_timeout=timeout)
    fs[topic].result(timeout)
    wait_topic_ck(bootstrap, topic, partitions)


def wait_topic_ck(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> None:
    """Wait until metadata shows the topic with all partitions led by a broker."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap, **ck_log_config("admin")})
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        md = a.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return
        last = t
        time.sleep(0.2)
    raise CheckFailed(f"topic {topic} not ready with {partitions} partitions within {timeout}s: {last}")


def ck_produce(bootstrap: str, recs: Sequence[Rec], *, codec: str = "none", conf: Optional[dict] = None,
               murmur2: bool = True, timeout: float = 60.0) -> List[Rec]:
    """Produce with confluent-kafka; fills partition/offset/timestamp from delivery reports.
    Raises if any delivery failed."""
    ck = _ck()
    c = {"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20, "acks": "all",
         **ck_log_config("producer")}
    if murmur2:
        c["partitioner"] = "murmur2_random"
    c.update(conf or {})
    p = ck.Producer(c)
    errors = []
    out = [None] * len(recs)

    def cb(idx):
        def f(err, msg):
            if err is not None:
                errors.append(f"record {idx}: {err}")
                return
            r = recs[idx]
            out[idx] = Rec(topic=r.topic, key=r.key, value=r.value, headers=list(r.headers),
                           timestamp=msg.timestamp()[1], partition=msg.partition(), offset=msg.offset(),
                           tstype=_TS_TYPES.get(msg.timestamp()[0]))
        return f

    for i, r in enumerate(recs):
        kw = dict(key=r.key, value=r.value, on_delivery=cb(i))
        if r.headers:
            kw["headers"] = list(r.headers)
        if r.timestamp is not None:
            kw["timestamp"] = r.timestamp
        if r.partition is not None:
            kw["partition"] = r.partition
        while True:
            try:
                p.produce(r.topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(timeout)
    check(left == 0, f"confluent-kafka producer: {left} records still undelivered after {timeout}s")
    check(not errors, f"confluent-kafka producer ({codec}): {len(errors)} delivery failures: {errors[:3]}")
    return out


def ck_consume(bootstrap: str, topic: str, timeout: float = 60.0, conf: Optional[dict] = None) -> List[Rec]:
    """Read every partition of topic from the beginning to its high watermark (assign, no group)."""
    ck = _ck()
    TopicPartition = ck.TopicPartition
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-" + uuid.uuid4().hex[:8],
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": False, **ck_log_config("consumer"), **(conf or {})})
    try:
        md = c.list_topics(topic, timeout=30)
        t = md.topics.get(topic)
        check(t is not None and t.error is None, f"confluent-kafka consumer: topic {topic} metadata: {t and t.error}")
        parts = sorted(t.partitions)
        end = {}
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            end[p] = hi
        c.assign([TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in parts])
        out: List[Rec] = []
        pos = {p: 0 for p in parts}
        deadline = time.time() + timeout
        while any(pos[p] < end[p] for p in parts):
            if time.time() > deadline:
                raise CheckFailed(f"confluent-kafka consumer: timeout reading {topic}: at {pos}, end {end}")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise CheckFailed(f"confluent-kafka consumer error on {topic}: {m.error()}")
            tt, ts = m.timestamp()
            hs = m.headers() or []
            out.append(Rec(topic=m.topic(), key=m.key(), value=m.value(), headers=list(hs), timestamp=ts,
                           partition=m.partition(), offset=m.offset(), tstype=_TS_TYPES.get(tt)))
            pos[m.partition()] = m.offset() + 1
        return out
    finally:
        c.close()


def ck_offsets_for_times(bootstrap: str, topic: str, queries: Sequence[Tuple[int, int]]) -> Dict[Tuple[int, int], int]:
    """{(partition, ts): offset} as confluent-kafka's offsets_for_times answers (-1 = none)."""
    ck = _ck()
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-oft-" + uuid.uuid4().hex[:8],
                     "enable.auto.commit": False, **ck_log_config("consumer")})
    try:
        out = {}
        for p, ts in queries:
            try:
                r = c.offsets_for_times([ck.TopicPartition(topic, p, ts)], timeout=15)[0]
                out[(p, ts)] = r.offset if not r.error else f"error {r.error}"
            except Exception as e:
                out[(p, ts)] = f"{type(e).__name__}: {e}"
        return out
    finally:
        c.close()


def ck_watermarks(bootstrap: str, topic: str, partitions: int) -> Dict[int, Tuple[int, int]]:
    ck = _ck()
    c = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": "compat-wm-" + uuid.uuid4().hex[:8],
                     **ck_log_config("consumer")})
    try:
        return {p: c.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=30) for p in range(partitions)}
    finally:
        c.close()


# =========================================================================== kafka-python

def _kp_logging():
    logger = logging.getLogger("kafka")
    if not any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        h = logging.FileHandler(_logfile("kafka-python.log"))
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(h)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def kp_admin_create(bootstrap: str, topic: str, partitions: int = 3) -> None:
    _kp_logging()
    from kafka.admin import KafkaAdminClient, NewTopic
    a = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-admin", request_timeout_ms=30000)
    try:
        a.create_topics([NewTopic(name=topic, num_partitions=partitions, replication_factor=1)], timeout_ms=30000)
    finally:
        a.close()
    wait_topic_kp(bootstrap, topic, partitions)


def wait_topic_kp(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> None:
    _kp_logging()
    from kafka import KafkaConsumer
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            ps = c.partitions_for_topic(topic)
            if ps is not None and len(ps) == partitions:
                return
            time.sleep(0.3)
            c._client.cluster.request_update()
            c._client.poll(timeout_ms=500)
        raise CheckFailed(f"kafka-python: topic {topic} not visible with {partitions} partitions: {ps}")
    finally:
        c.close()


def kp_produce(bootstrap: str, recs: Sequence[Rec], *, codec: str = "none", conf: Optional[dict] = None,
               timeout: float = 60.0) -> List[Rec]:
    _kp_logging()
    from kafka import KafkaProducer
    c = dict(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec, linger_ms=20,
             acks="all")
    c.update(conf or {})
    p = KafkaProducer(**c)
    try:
        futs = []
        for r in recs:
            kw = dict(key=r.key, value=r.value, headers=list(r.headers) or None)
            if r.timestamp is not None:
                kw["timestamp_ms"] = r.timestamp
            if r.partition is not None:
                kw["partition"] = r.partition
            futs.append(p.send(r.topic, **kw))
        p.flush(timeout=timeout)
        out = []
        errors = []
        for i, (r, f) in enumerate(zip(recs, futs)):
            try:
                md = f.get(timeout=timeout)
            except Exception as e:  # noqa
                errors.append(f"record {i}: {e!r}")
                out.append(None)
                continue
            out.append(Rec(topic=r.topic, key=r.key, value=r.value, headers=list(r.headers), timestamp=md.timestamp,
                           partition=md.partition, offset=md.offset))
        check(not errors, f"kafka-python producer ({codec}): {len(errors)} delivery failures: {errors[:3]}")
        return out
    finally:
        p.close(timeout=10)


def kp_consume(bootstrap: str, topic: str, timeout: float = 60.0, conf: Optional[dict] = None) -> List[Rec]:
    _kp_logging()
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=1000, **(conf or {}))
    try:
        deadline = time.time() + timeout
        parts = None
        while time.time() < deadline:
            parts = c.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.3)
        check(bool(parts), f"kafka-python consumer: no partitions for {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        end = c.end_offsets(tps)
        out: List[Rec] = []
        while any(c.position(tp) < end[tp] for tp in tps):
            if time.time() > deadline:
                raise CheckFailed(f"kafka-python consumer: timeout reading {topic}: "
                                  f"at { {tp.partition: c.position(tp) for tp in tps} }, end { {tp.partition: o for tp, o in end.items()} }")
            batch = c.poll(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    out.append(Rec(topic=m.topic, key=m.key, value=m.value, headers=list(m.headers or []),
                                   timestamp=m.timestamp, partition=m.partition, offset=m.offset,
                                   tstype=_TS_TYPES.get(m.timestamp_type + 1)))
        return out
    finally:
        c.close()


def kp_offsets_for_times(bootstrap: str, topic: str, queries: Sequence[Tuple[int, int]]) -> Dict[Tuple[int, int], int]:
    _kp_logging()
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        out = {}
        for p, ts in queries:
            try:
                r = c.offsets_for_times({TopicPartition(topic, p): ts}, timeout_ms=15000)
                o = r.get(TopicPartition(topic, p))
                out[(p, ts)] = -1 if o is None else o.offset
            except Exception as e:
                out[(p, ts)] = f"{type(e).__name__}: {e}"
        return out
    finally:
        c.close()


# =========================================================================== Java (kafka-clients 3.9)

_JAVA_LOCK = threading.Lock()


def java_classpath() -> str:
    jars = Path(os.environ.get("COMPAT_JARS", COMPAT_DIR / ".deps" / "jars"))
    check(jars.joinpath("kafka-clients.jar").exists(), f"Java client jars missing in {jars} (run compat/run)")
    src = COMPAT_DIR / "java" / "Compat.java"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    classes = COMPAT_DIR / ".deps" / "classes" / digest
    with _JAVA_LOCK:
        if not (classes / "Compat.class").exists():
            tmp = classes.with_name(digest + ".tmp" + uuid.uuid4().hex[:6])
            tmp.mkdir(parents=True)
            subprocess.run(["javac", "-nowarn", "-d", str(tmp), "-cp", f"{jars}/*", str(src)], check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                tmp.rename(classes)
            except OSError:
                pass  # a concurrent compile won
    return f"{classes}:{jars}/*"


def java_cmd(args: Sequence[str]) -> List[str]:
    return ["java", "-Xmx384m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", java_classpath(),
            "Compat", *args]


def run_java(args: Sequence[str], timeout: float = 120.0, label: str = "java") -> List[str]:
    log = _logfile(f"java-{label}.log")
    try:
        cp = subprocess.run(java_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        rc, out, err = cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", (e.stderr or b"") + f"\n(timed out after {timeout}s)".encode()
    with open(log, "ab") as f:
        f.write(f"\n=== {' '.join(args)}\n=== rc={rc}\n".encode() + err)
    if rc != 0:
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip() and not ln.startswith("SLF4J:")]
        tail = "\n".join("    | " + ln[:300] for ln in lines[-12:])
        raise CheckFailed(f"Java client `{args[0]}` exited {rc}; stderr tail:\n{tail}")
    return out.decode().splitlines()


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    # skip slf4j's "no binding" chatter
    lines = [ln for ln in lines if not ln.startswith("SLF4J:")]
    return "\n".join("    | " + ln for ln in lines[-n:])


def _hex(b: Optional[bytes]) -> str:
    return "-" if b is None else b.hex()


def _unhex(s: str) -> Optional[bytes]:
    return None if s == "-" else bytes.fromhex(s)


def _hdrs_out(hs) -> str:
    if not hs:
        return "-"
    return ",".join(f"{k.encode().hex()}={_hex(v)}" for k, v in hs)


def _hdrs_in(s: str):
    if s in ("-", ""):
        return []
    out = []
    for kv in s.split(","):
        k, v = kv.split("=", 1)
        out.append((bytes.fromhex(k).decode(), _unhex(v)))
    return out


def java_cluster_describe(bootstrap: str, *props: str) -> Dict[str, str]:
    """Java Admin describeCluster + describeMetadataQuorum: {"controller": "2", ...}. `props`:
    further Admin configs as KEY=VALUE (`bootstrap.controllers=...` replaces `bootstrap`)."""
    facts = {}
    for line in run_java(["cluster-describe", bootstrap, *props], label="cluster"):
        key, _, value = line.partition(" ")
        facts.setdefault(key, value)
    return facts


def java_raft_voters(bootstrap: str, *ops: str) -> List[str]:
    """Compat.java raft-voters: KIP-853 addRaftVoter / removeRaftVoter / describeMetadataQuorum
    through the Admin, one answer line an op (see Compat.java)."""
    return run_java(["raft-voters", bootstrap, *ops], label="raft-voters")


def java_admin_create(bootstrap: str, topic: str, partitions: int = 3) -> List[str]:
    return run_java(["admin-create", bootstrap, topic, str(partitions)], label="admin")


def java_produce_lines(bootstrap: str, recs: Sequence[Rec], conf: dict, timeout: float = 120.0) -> List[str]:
    """Compat.java produce with exactly these producer configs: its "ack IDX partition offset ts" /
    "err IDX exception" lines, one a record, in order."""
    infile = _logfile(f"java-in-{uuid.uuid4().hex[:8]}.tsv")
    with open(infile, "w") as f:
        for r in recs:
            f.write("\t".join([r.topic, "-" if r.timestamp is None else str(r.timestamp), _hex(r.key),
                               _hex(r.value), _hdrs_out(r.headers),
                               "-" if r.partition is None else str(r.partition)]) + "\n")
    return run_java(["produce", bootstrap, str(infile), *[f"{k}={v}" for k, v in conf.items()]], timeout=timeout,
                    label="producer")


def java_produce(bootstrap: str, recs: Sequence[Rec], *, codec: Optional[str] = "none",
                 conf: Optional[dict] = None, timeout: float = 120.0) -> List[Rec]:
    """codec None: leave compression.type at its default. conf None + codec None = all defaults."""
    c = {}
    if codec is not None:
        c.update({"compression.type": codec, "linger.ms": "20", "acks": "all"})
    c.update(conf or {})
    lines = java_produce_lines(bootstrap, recs, c, timeout=timeout)
    out: List[Rec] = []
    errors = []
    for ln in lines:
        f = ln.split(" ", 5)
        if f[0] == "ack":
            i = int(f[1])
            r = recs[i]
            out.append(Rec(topic=r.topic, key=r.key, value=r.value, headers=list(r.headers), timestamp=int(f[4]),
                           partition=int(f[2]), offset=int(f[3])))
        elif f[0] == "err":
            errors.append(ln)
    check(not errors, f"Java producer ({codec}): {len(errors)} delivery failures: {errors[:3]}")
    check(len(out) == len(recs), f"Java producer: {len(out)} acks for {len(recs)} records")
    return out


def _parse_java_recs(lines) -> List[Rec]:
    out = []
    for ln in lines:
        f = ln.split(" ")
        if f[0] != "rec":
            continue
        tstype = {"CreateTime": "create", "LogAppendTime": "append"}.get(f[5])
        out.append(Rec(topic=f[1], partition=int(f[2]), offset=int(f[3]), timestamp=int(f[4]), tstype=tstype,
                       key=_unhex(f[6]), value=_unhex(f[7]), headers=_hdrs_in(f[8])))
    return out


def java_consume(bootstrap: str, topics: Sequence[str], timeout: float = 120.0,
                 conf: Optional[dict] = None) -> Dict[str, List[Rec]]:
    lines = run_java(["consume", bootstrap, ",".join(topics), *[f"{k}={v}" for k, v in (conf or {}).items()]],
                     timeout=timeout, label="consumer")
    recs = _parse_java_recs(lines)
    out = {t: [] for t in topics}
    for r in recs:
        out[r.topic].append(r)
    return out


def java_offsets_for_times(bootstrap: str, topic: str, queries: Sequence[Tuple[int, int]]) -> Dict[Tuple[int, int], int]:
    lines = run_java(["offsets-for-times", bootstrap, topic, *[f"{p}:{ts}" for p, ts in queries]], label="oft")
    out = {}
    for ln in lines:
        f = ln.split()
        if f[0] == "oft":
            out[(int(f[1]), int(f[2]))] = -1 if f[3] == "null" else (int(f[3]) if f[3].lstrip("-").isdigit() else f[3])
    return out


def java_list_offsets(bootstrap: str, topic: str) -> Dict[int, Tuple[int, int, int, int]]:
    """{partition: (earliest, latest, max_ts_offset, max_ts)} from Admin.listOffsets."""
    out = {}
    for ln in run_java(["list-offsets", bootstrap, topic], label="admin"):
        f = ln.split()
        if f[0] == "lo":
            out[int(f[1])] = tuple(int(x) if x.lstrip("-").isdigit() else x for x in f[2:6])
    return out


class JavaAdminSession:
    """One Java Admin client (Compat.java admin-session) kept for a whole scenario, so it lives
    through broker failures as an application's Admin would; commands go in on stdin, each
    answer ends with "end" (a failed call prints "exc CLASS CAUSE" before it)."""

    def __init__(self, bootstrap: str, conf: Optional[dict] = None):
        self.err = open(_logfile("java-admin-session.log"), "ab")
        args = ["admin-session", bootstrap, *[f"{k}={v}" for k, v in (conf or {}).items()]]
        self.proc = subprocess.Popen(java_cmd(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.lines = queue.Queue()
        self.transcript = open(_logfile("java-admin-session.out"), "a")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def call(self, command: str, timeout: float = 60.0) -> List[str]:
        """The lines the command printed (without "end"); a failed Admin call's "exc ..." line included."""
        check(self.proc.poll() is None, f"Java admin session exited with {self.proc.returncode}; stderr:\n"
              + _tail(Path(self.err.name)))
        self.transcript.write(f"> {command}\n")
        self.proc.stdin.write((command + "\n").encode())
        self.proc.stdin.flush()
        out = []
        deadline = time.time() + timeout
        while True:
            try:
                ln = self.lines.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                raise CheckFailed(f"Java admin session: no answer to `{command}` within {timeout}s (so far: {out})")
            if ln is None:
                raise CheckFailed(f"Java admin session exited during `{command}`; stderr:\n" + _tail(Path(self.err.name)))
            self.transcript.write(ln + "\n")
            self.transcript.flush()
            if ln == "end":
                return out
            out.append(ln)

    def ok(self, command: str, timeout: float = 60.0) -> List[str]:
        """call(), which must not have failed."""
        out = self.call(command, timeout)
        check(not any(ln.startswith("exc ") for ln in out), f"Java Admin `{command}` failed: {out}")
        return out

    def describe(self, *topics: str) -> Dict[str, List[Tuple[int, List[int], List[int]]]]:
        """{topic: [(leader, replicas, isr) by partition]} from describeTopics (raises on failure)."""
        parts = {t: {} for t in topics}
        for ln in self.ok("describe " + " ".join(topics)):
            f = ln.split()
            if f[0] == "part":
                ints = lambda s: [] if s == "-" else [int(x) for x in s.split(",")]
                parts[f[1]][int(f[2])] = (int(f[3]), ints(f[4]), ints(f[5]))
        return {t: [ps[p] for p in sorted(ps)] for t, ps in parts.items()}

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        self.transcript.close()


class JavaSustainedProducer:
    """Java producer sending continuously until stop(); acks streamed back as they arrive."""

    def __init__(self, bootstrap: str, topic: str, conf: Optional[dict] = None):
        self.stopfile = _logfile(f"java-stop-{uuid.uuid4().hex[:8]}")
        args = ["sustain", bootstrap, topic, str(self.stopfile), *[f"{k}={v}" for k, v in (conf or {}).items()]]
        self.err = open(_logfile("java-sustain.log"), "ab")
        self.proc = subprocess.Popen(java_cmd(args), stdout=subprocess.PIPE, stderr=self.err)
        self.acks: List[Tuple[int, int, int, int]] = []  # (idx, partition, offset, ts)
        self.errors: List[str] = []
        self.done_line = None
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.proc.stdout:
            ln = raw.decode().strip()
            f = ln.split()
            if not f:
                continue
            if f[0] == "ack":
                self.acks.append((int(f[1]), int(f[2]), int(f[3]), int(f[4])))
            elif f[0] == "err":
                self.errors.append(ln)
            elif f[0] == "done":
                self.done_line = ln

    def stop(self, timeout: float = 90.0) -> None:
        self.stopfile.write_text("stop")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise CheckFailed(f"Java sustained producer did not finish within {timeout}s of stop")
        self.t.join(10)
        self.err.close()
        check(self.proc.returncode == 0, f"Java sustained producer exited {self.proc.returncode}")


# =========================================================================== kcat

def kcat_produce(bootstrap: str, topic: str, recs: Sequence[Rec], *, codec: str = "none",
                 headers: Sequence[Tuple[str, str]] = (), extra: Sequence[str] = (), murmur2: bool = True,
                 timeout: float = 60.0) -> Tuple[int, int]:
    """kcat -P -K: with -H headers (the same headers on every record of one invocation).
    Returns the (before, after) wall-clock window in ms; kcat reports no offsets."""
    lines = []
    for r in recs:
        check(r.key is not None and b":" not in r.key and r.value is not None and b"\n" not in r.value,
              "kcat records need a key without ':' and a value without newlines")
        lines.append(r.key + b":" + r.value)
    cmd = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K:", "-z", codec, "-X", "linger.ms=20"]
    if murmur2:
        cmd += ["-X", "topic.partitioner=murmur2_random"]
    for k, v in headers:
        cmd += ["-H", f"{k}={v}"]
    cmd += list(extra)
    t0 = now_ms()
    rc, _, err = _run_kcat(cmd, b"\n".join(lines) + b"\n", timeout)
    t1 = now_ms()
    check(rc == 0, f"`{' '.join(cmd)}` exited {rc}:\n{err}")
    check("Delivery failed" not in err and "% ERROR" not in err, f"`{' '.join(cmd)}` reported errors:\n{err}")
    return t0, t1


def _run_kcat(cmd, stdin: Optional[bytes], timeout: float):
    """Run kcat; returns (rc, stdout, stderr tail). Everything is also appended to kcat.log."""
    log = _logfile("kcat.log")
    try:
        cp = subprocess.run(cmd, input=stdin if stdin is not None else b"", stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=timeout)
        rc, out, err = cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", (e.stderr or b"") + f"\n(timed out after {timeout}s)".encode()
    with open(log, "ab") as f:
        f.write(f"\n=== {' '.join(cmd)}\n=== rc={rc}\n".encode() + err)
    lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    return rc, out, "\n".join("    | " + ln[:300] for ln in lines[-8:])


def _kcat_str(v):
    return None if v is None else v.encode()


def kcat_consume(bootstrap: str, topic: str, *, partition: Optional[int] = None, offset: str = "beginning",
                 count: Optional[int] = None, extra: Sequence[str] = (), timeout: float = 60.0) -> List[Rec]:
    """kcat -C -J -e from an offset spec (beginning, N, s@ts, ...)."""
    cmd = ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", offset, "-e", "-J", "-q"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    if count is not None:
        cmd += ["-c", str(count)]
    cmd += list(extra)
    rc, stdout, err = _run_kcat(cmd, None, timeout)
    check(rc == 0, f"`{' '.join(cmd)}` exited {rc}:\n{err}")
    out = []
    for ln in stdout.decode(errors="surrogateescape").splitlines():
        if not ln.strip():
            continue
        j = json.loads(ln)
        hs = j.get("headers") or []
        hdrs = [(hs[i], _kcat_str(hs[i + 1])) for i in range(0, len(hs), 2)]
        out.append(Rec(topic=j["topic"], partition=j["partition"], offset=j["offset"], timestamp=j.get("ts"),
                       tstype={"create": "create", "logappend": "append"}.get(j.get("tstype")),
                       key=_kcat_str(j.get("key")), value=_kcat_str(j.get("payload")), headers=hdrs))
    return out


# =========================================================================== dispatch tables

PRODUCERS = ("confluent", "kafka-python", "java", "kcat")
CONSUMERS = ("confluent", "kafka-python", "java", "kcat")


def consume_all(client: str, bootstrap: str, topics: Sequence[str]) -> Dict[str, List[Rec]]:
    if client == "java":
        return java_consume(bootstrap, topics)
    f = {"confluent": ck_consume, "kafka-python": kp_consume, "kcat": kcat_consume}[client]
    return {t: f(bootstrap, t) for t in topics}


def admin_create(client: str, bootstrap: str, topic: str, partitions: int = 3) -> None:
    if client == "java":
        lines = java_admin_create(bootstrap, topic, partitions)
        check(f"partitions {partitions}" in lines, f"Java Admin: describe after create said {lines}")
    elif client == "kafka-python":
        kp_admin_create(bootstrap, topic, partitions)
    else:
        ck_admin_create(bootstrap, topic, partitions)
