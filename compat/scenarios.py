"""The compatibility scenarios (issue 3 item 8). Each function gets a Ctx, starts its
own broker(s) through it and raises CheckFailed (or anything) on failure."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Dict, List

from harness import clients as C
from harness.broker import Broker
from harness.util import (CheckFailed, Rec, assign_expected_positions, check, compare, crc32_partition,
                          gen_records, murmur2_partition, now_ms, self_test_murmur2)

SCENARIOS: Dict[str, Callable] = {}
DESCRIPTIONS: Dict[str, str] = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    DESCRIPTIONS[fn.__name__] = (fn.__doc__ or "").strip().splitlines()[0]
    return fn


class Ctx:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.brokers: List[Broker] = []

    def broker(self, **extra) -> Broker:
        b = Broker(self.workdir / f"node{len(self.brokers)}", extra=extra)
        self.brokers.append(b)
        return b.start()

    def log(self, msg: str):
        print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def close(self):
        for b in self.brokers:
            b.close()


def fail_if(problems: List[str], what: str):
    if problems:
        raise CheckFailed(f"{what}: {len(problems)} problem(s):\n" + "\n".join("  - " + p for p in problems[:40]))


def check_reports(reports: List[Rec], sent: List[Rec], label: str, partitioner=murmur2_partition, n_parts=3,
                  expect_ts=True) -> List[str]:
    """Delivery reports of one producer into fresh topics: keyed records on the
    partitioner's partition, explicit partitions honoured, offsets 0.. per partition
    in send order, timestamps as sent."""
    problems = []
    next_off = {}
    for s, r in zip(sent, reports):
        if s.partition is not None:
            want = s.partition
        else:
            want = partitioner(s.key, n_parts)
        if r.partition != want:
            problems.append(f"{label}: key {s.key!r} acked on partition {r.partition}, "
                            f"{'explicit' if s.partition is not None else partitioner.__name__} says {want}")
        k = (r.topic, r.partition)
        if r.offset != next_off.get(k, 0):
            problems.append(f"{label}: {r.topic}[{r.partition}] acked offset {r.offset}, expected {next_off.get(k, 0)}")
        next_off[k] = (r.offset if r.offset is not None else 0) + 1
        if expect_ts and s.timestamp is not None and r.timestamp != s.timestamp:
            problems.append(f"{label}: acked timestamp {r.timestamp} != sent {s.timestamp}")
    return problems[:20]


def null_key_records(topic: str, base_ts: int, tag: str, headers=True) -> List[Rec]:
    return [Rec(topic=topic, key=None, value=f"{tag}-nullkey-{p}".encode(),
                headers=[("h-src", tag.encode())] if headers else [], timestamp=base_ts + 1000 + p, partition=p)
            for p in range(3)]


# =========================================================================== 0. the harness itself

@scenario
def harness_selftest(ctx: Ctx):
    """No broker: murmur2 against Kafka's test vectors, and the record comparison catches every kind of difference."""
    import dataclasses
    self_test_murmur2()
    base = gen_records("t", 30, 1_000_000, "self")
    assign_expected_positions(base, 3)
    check(compare(base, [dataclasses.replace(r) for r in base], "same") == [], "identical lists compare unequal")
    mutations = {
        "key": lambda r: setattr(r, "key", b"other"),
        "value": lambda r: setattr(r, "value", (r.value or b"") + b"!"),
        "null value": lambda r: setattr(r, "value", None if r.value is not None else b""),
        "headers": lambda r: setattr(r, "headers", r.headers[:-1]),
        "header order": lambda r: setattr(r, "headers", list(reversed(r.headers))),
        "timestamp": lambda r: setattr(r, "timestamp", r.timestamp + 1),
        "offset": lambda r: setattr(r, "offset", r.offset + 100),
        "partition": lambda r: setattr(r, "partition", (r.partition + 1) % 3),
    }
    for name, mutate in mutations.items():
        got = [dataclasses.replace(r) for r in base]
        mutate(got[7])
        check(compare(base, got, "m") != [], f"compare() missed a changed {name}")
    check(compare(base, base[:-1], "m") != [], "compare() missed a missing record")
    check(compare(base, base + base[:1], "m") != [], "compare() missed a duplicate record")
    # a record read twice at the same position is caught even if everything else matches
    dup = [dataclasses.replace(r) for r in base] + [dataclasses.replace(base[0])]
    check(any("twice" in p for p in compare(base, dup, "m")), "compare() missed a record delivered twice")


# =========================================================================== 1. topic creation

@scenario
def admin_confluent(ctx: Ctx):
    """confluent-kafka AdminClient: create a 3-partition topic; duplicate, invalid name, bad RF, validate_only."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka import KafkaError
    b = ctx.broker()
    C.ck_admin_create(b.bootstrap, "ck-admin", 3)
    a = AdminClient({"bootstrap.servers": b.bootstrap, **C.ck_log_config("admin")})
    md = a.list_topics("ck-admin", timeout=10)
    t = md.topics["ck-admin"]
    check(sorted(t.partitions) == [0, 1, 2], f"partitions {sorted(t.partitions)}")
    check(list(md.brokers) == [1], f"brokers {md.brokers}, want node.id 1 only")
    check(all(p.leader == 1 for p in t.partitions.values()), f"leaders {[p.leader for p in t.partitions.values()]}")

    def err_of(nt: NewTopic, **kw):
        try:
            a.create_topics([nt], operation_timeout=20, request_timeout=20, **kw)[nt.topic].result(30)
            return None
        except Exception as e:  # KafkaException wraps KafkaError
            return e.args[0].code() if e.args and hasattr(e.args[0], "code") else e

    problems = []
    e = err_of(NewTopic("ck-admin", 3, 1))
    if e != KafkaError.TOPIC_ALREADY_EXISTS:
        problems.append(f"create existing topic: got {e}, want TOPIC_ALREADY_EXISTS")
    e = err_of(NewTopic("bad/name", 1, 1))
    if e != KafkaError.TOPIC_EXCEPTION:  # Kafka error 17, INVALID_TOPIC_EXCEPTION
        problems.append(f"create 'bad/name': got {e}, want INVALID_TOPIC_EXCEPTION")
    e = err_of(NewTopic("ck-rf3", 1, 3))
    if e != KafkaError.INVALID_REPLICATION_FACTOR:
        problems.append(f"create with replication factor 3 on one node: got {e}, want INVALID_REPLICATION_FACTOR")
    e = err_of(NewTopic("ck-validate", 2, 1), validate_only=True)
    if e is not None:
        problems.append(f"validate_only create: got {e}, want success")
    if "ck-validate" in a.list_topics(timeout=10).topics:
        problems.append("validate_only create actually created the topic")
    fail_if(problems, "confluent-kafka admin")


@scenario
def admin_kafka_python(ctx: Ctx):
    """kafka-python KafkaAdminClient: create a 3-partition topic, describe it, duplicate create."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError
    b = ctx.broker()
    C.kp_admin_create(b.bootstrap, "kp-admin", 3)
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="compat-kp-admin")
    try:
        d = a.describe_topics(["kp-admin"])
        check(len(d) == 1 and len(d[0]["partitions"]) == 3, f"describe_topics: {d}")
        check(d[0].get("error_code", 0) == 0, f"describe_topics error: {d}")
        check("kp-admin" in a.list_topics(), f"list_topics: {a.list_topics()}")
        try:
            a.create_topics([NewTopic(name="kp-admin", num_partitions=3, replication_factor=1)])
            r = None
        except TopicAlreadyExistsError as e:
            r = e
        check(isinstance(r, TopicAlreadyExistsError), f"duplicate create: got {r!r}, want TopicAlreadyExistsError")
    finally:
        a.close()


@scenario
def admin_java(ctx: Ctx):
    """Java Admin (3.9): createTopics with 3 partitions, describeTopics, duplicate create -> TopicExistsException."""
    b = ctx.broker()
    lines = C.java_admin_create(b.bootstrap, "java-admin", 3)
    check("partitions 3" in lines, f"describe after create: {lines}")
    check("recreate TopicExistsException" in lines, f"duplicate create: {lines}")
    C.wait_topic_ck(b.bootstrap, "java-admin", 3)


# =========================================================================== 2. produce/consume matrix

N_MATRIX = 40


def _matrix(ctx: Ctx, producer: str):
    self_test_murmur2()
    b = ctx.broker()
    bs = b.bootstrap
    admin = {"kcat": "confluent"}.get(producer, producer)
    base = now_ms() - 600_000
    expected: Dict[str, List[Rec]] = {}
    windows = {}
    problems: List[str] = []
    for ci, codec in enumerate(C.CODECS):
        topic = f"m-{producer}-{codec}"
        C.admin_create(admin, bs, topic, 3)
        tag = f"{producer}-{codec}"
        if producer == "kcat":
            recs = gen_records(topic, N_MATRIX, base, tag, with_specials=False, headers=False)
            hdrs = [("h-src", tag), ("h-codec", codec)]
            t0, t1 = C.kcat_produce(bs, topic, recs, codec=codec, headers=hdrs)
            for r in recs:
                r.timestamp = None
                r.headers = [(k, v.encode()) for k, v in hdrs]
            assign_expected_positions(recs, 3)
            windows[topic] = (t0 - 1000, t1 + 1000)
            reports = recs
        else:
            sent = gen_records(topic, N_MATRIX, base + ci * 10_000, tag) + null_key_records(
                topic, base + ci * 10_000, tag)
            if producer == "confluent":
                reports = C.ck_produce(bs, sent, codec=codec)
            elif producer == "kafka-python":
                reports = C.kp_produce(bs, sent, codec=codec)
            else:
                reports = C.java_produce(bs, sent, codec=codec)
            problems += check_reports(reports, sent, f"{producer} producer {codec}")
        for r in reports:
            r.tstype = "create"
        expected[topic] = reports
    ctx.log(f"{producer}: produced {sum(len(v) for v in expected.values())} records in 5 codecs")
    fail_if(problems, f"{producer} delivery reports")

    reads: Dict[str, Dict[str, List[Rec]]] = {}
    for consumer in C.CONSUMERS:
        try:
            got = C.consume_all(consumer, bs, list(expected))
        except Exception as e:  # one client failing must not hide the others
            problems.append(f"{consumer} consumer: {type(e).__name__}: {e}")
            continue
        reads[consumer] = got
        for topic, exp in expected.items():
            problems += compare(exp, got[topic], f"{producer}->{consumer} {topic}", ts_range=windows.get(topic))
        ctx.log(f"{producer} -> {consumer}: read {sum(len(v) for v in got.values())} records")
    # all consumers must agree exactly (this pins kcat-produced timestamps too)
    if "confluent" in reads:
        for consumer, got in reads.items():
            if consumer == "confluent":
                continue
            for topic in expected:
                problems += compare(reads["confluent"][topic], got[topic], f"confluent vs {consumer} {topic}")
    fail_if(problems, f"matrix for {producer} producer")


@scenario
def matrix_confluent(ctx: Ctx):
    """confluent-kafka produces keyed records with headers in none/gzip/snappy/lz4/zstd (murmur2_random); all four clients read them back."""
    _matrix(ctx, "confluent")


@scenario
def matrix_kafka_python(ctx: Ctx):
    """kafka-python creates the topics and produces in each codec; all four clients read them back."""
    _matrix(ctx, "kafka-python")


@scenario
def matrix_java(ctx: Ctx):
    """Java Admin creates the topics, the Java producer (3.9) produces in each codec; all four clients read them back."""
    _matrix(ctx, "java")


@scenario
def matrix_kcat(ctx: Ctx):
    """kcat -P -K: -H -z CODEC (librdkafka 2.0.2, murmur2_random) produces in each codec; all four clients read them back."""
    _matrix(ctx, "kcat")


# =========================================================================== 3. ListOffsets by time

@scenario
def list_offsets_by_time(ctx: Ctx):
    """ListOffsets by timestamp: confluent offsets_for_times, kafka-python, Java offsetsForTimes and Admin listOffsets, kcat -o s@ts."""
    b = ctx.broker()
    bs = b.bootstrap
    topic = "times"
    C.ck_admin_create(bs, topic, 3)
    base = now_ms() - 3_600_000

    def ts(p, j):
        return base + p * 100_000 + j * 1000

    def recs(js):
        return [Rec(topic=topic, key=f"k{j}".encode(), value=f"v-{p}-{j}".encode(), headers=[], timestamp=ts(p, j),
                    partition=p) for p in range(3) for j in js]
    # three produce rounds -> at least three batches per partition
    C.ck_produce(bs, recs(range(0, 6)), codec="gzip")
    C.ck_produce(bs, recs(range(6, 11)), codec="none")
    # j=11 carries the largest timestamp, j=12 goes back in time (max-timestamp offset is then 11, not the last)
    last = [Rec(topic=topic, key=b"k11", value=f"v-{p}-11".encode(), headers=[], timestamp=ts(p, 50), partition=p)
            for p in range(3)] + [Rec(topic=topic, key=b"k12", value=f"v-{p}-12".encode(), headers=[],
                                      timestamp=ts(p, 10) + 500, partition=p) for p in range(3)]
    C.ck_produce(bs, last, codec="lz4")

    expect = {}
    for p in range(3):
        expect[(p, base - 5000)] = 0
        expect[(p, ts(p, 0))] = 0
        expect[(p, ts(p, 3))] = 3
        expect[(p, ts(p, 3) + 1)] = 4
        expect[(p, ts(p, 6))] = 6
        expect[(p, ts(p, 7) - 1)] = 7
        expect[(p, ts(p, 10) + 200)] = 11
        expect[(p, ts(p, 50))] = 11
        expect[(p, ts(p, 50) + 1)] = -1
    queries = sorted(expect)
    problems = []
    for name, fn in (("confluent offsets_for_times", C.ck_offsets_for_times),
                     ("kafka-python offsets_for_times", C.kp_offsets_for_times),
                     ("Java offsetsForTimes", C.java_offsets_for_times)):
        ctx.log(name)
        try:
            got = fn(bs, topic, queries)
        except Exception as e:
            problems.append(f"{name}: {type(e).__name__}: {e}")
            continue
        bad = [q for q in queries if got.get(q) != expect[q]]
        for q in bad[:6]:
            problems.append(f"{name}: partition {q[0]} ts {q[1]} (base+{q[1] - base}): got {got.get(q)}, want {expect[q]}")
        if len(bad) > 6:
            problems.append(f"{name}: {len(bad)} of {len(queries)} answers wrong")
    # kcat -o s@ts: the first record read is the answer (none when past the end)
    ctx.log("kcat -o s@ts")
    kcat_errors = 0
    for (p, t), want in expect.items():
        try:
            got = C.kcat_consume(bs, topic, partition=p, offset=f"s@{t}", count=1, timeout=20)
        except Exception as e:
            problems.append(f"kcat -o s@{t} -p {p}: {e}")
            kcat_errors += 1
            if kcat_errors >= 3:
                problems.append("kcat: giving up after 3 failed invocations")
                break
            continue
        first = got[0].offset if got else -1
        if first != want:
            problems.append(f"kcat -o s@{t} -p {p} (base+{t - base}): first offset {first}, want {want}")
    # earliest / latest / max timestamp
    ctx.log("Java Admin listOffsets")
    try:
        lo = C.java_list_offsets(bs, topic)
        for p in range(3):
            want = (0, 13, 11, ts(p, 50))
            if lo.get(p) != want:
                problems.append(f"Java Admin listOffsets p{p} (earliest, latest, maxTimestamp offset, ts): "
                                f"got {lo.get(p)}, want {want}")
    except Exception as e:
        problems.append(f"Java Admin listOffsets: {e}")
    wm = C.ck_watermarks(bs, topic, 3)
    for p in range(3):
        if wm[p] != (0, 13):
            problems.append(f"confluent watermarks p{p}: {wm[p]}, want (0, 13)")
    fail_if(problems, "ListOffsets by time")


# =========================================================================== 4. restart

def _read_everything(bs: str, topics: List[str], problems: List[str], label: str) -> Dict[str, Dict[str, List[Rec]]]:
    out = {}
    for c in C.CONSUMERS:
        try:
            out[c] = C.consume_all(c, bs, topics)
        except Exception as e:
            problems.append(f"{label}, {c} consumer: {type(e).__name__}: {e}")
    return out


@scenario
def restart(ctx: Ctx):
    """SIGTERM the broker, start it on the same data dir, read everything again identically with all four clients; offsets continue."""
    b = ctx.broker()
    bs = b.bootstrap
    topics = ["restart-a", "restart-b"]
    for t in topics:
        C.ck_admin_create(bs, t, 3)
    base = now_ms() - 300_000
    expected: Dict[str, List[Rec]] = {t: [] for t in topics}
    for i, codec in enumerate(["gzip", "zstd"]):
        sent = gen_records("restart-a", 30, base + i * 1000, f"ck-{codec}")
        expected["restart-a"] += C.ck_produce(bs, sent, codec=codec)
    expected["restart-b"] += C.java_produce(bs, gen_records("restart-b", 30, base + 5000, "java-lz4"), codec="lz4")
    sent = gen_records("restart-b", 20, base + 9000, "kp-snappy")
    expected["restart-b"] += C.kp_produce(bs, sent, codec="snappy")
    for rs in expected.values():
        for r in rs:
            r.tstype = "create"
    problems = []
    before = _read_everything(bs, topics, problems, "before restart")
    for c, got in before.items():
        for t in topics:
            problems += compare(expected[t], got[t], f"before restart, {c} {t}")
    wm_before = {t: C.ck_watermarks(bs, t, 3) for t in topics}

    t0 = time.time()
    rc = b.stop()
    ctx.log(f"SIGTERM: broker exited with {rc} after {time.time() - t0:.1f}s")
    check(rc == 0, f"broker exit code after SIGTERM is {rc}, want 0; log tail:\n{b.log_tail()}")
    b.start()
    for t in topics:
        C.wait_topic_ck(bs, t, 3)
    after = _read_everything(bs, topics, problems, "after restart")
    for c, got in after.items():
        for t in topics:
            problems += compare(before[c][t] if c in before else expected[t], got[t],
                                f"after restart, {c} {t} vs {'before' if c in before else 'expected'}")
    wm_after = {t: C.ck_watermarks(bs, t, 3) for t in topics}
    if wm_after != wm_before:
        problems.append(f"watermarks changed across restart: {wm_before} -> {wm_after}")
    fail_if(problems, "reads after restart")

    # appends continue where the log ended
    more = gen_records("restart-a", 10, base + 20_000, "after")
    reps = C.ck_produce(bs, more, codec="none")
    nxt = {p: wm_before["restart-a"][p][1] for p in range(3)}
    for r in reps:
        if r.offset != nxt[r.partition]:
            problems.append(f"after restart: restart-a[{r.partition}] acked offset {r.offset}, want {nxt[r.partition]}")
        nxt[r.partition] = r.offset + 1
    # a second restart reads the new records too
    b.restart()
    C.wait_topic_ck(bs, "restart-a", 3)
    for r in reps:
        r.tstype = "create"
    expected["restart-a"] += reps
    got = C.ck_consume(bs, "restart-a")
    problems += compare(expected["restart-a"], got, "after second restart, confluent restart-a")
    # and an unclean stop (kill -9, no clean-shutdown marker: recovery rebuilds the indexes) changes nothing
    b.kill9()
    b.start()
    ctx.log("kill -9 and start again")
    for t in topics:
        C.wait_topic_ck(bs, t, 3)
    final = _read_everything(bs, topics, problems, "after kill -9")
    for c, got in final.items():
        for t in topics:
            problems += compare(expected[t], got[t], f"after kill -9, {c} {t}")
    fail_if(problems, "restart")


# =========================================================================== 5. kill -9 during produce

def _verify_acked(bs: str, topic: str, acked: Dict[bytes, tuple], label: str, check_dups=True) -> List[str]:
    """acked: value -> (partition, offset). Every acked value must be at its offset."""
    return _acked_problems(C.ck_consume(bs, topic, timeout=90), topic, acked, label, check_dups)


def _acked_problems(got: List[Rec], topic: str, acked: Dict[bytes, tuple], label: str, check_dups=True) -> List[str]:
    """got: one client's read of topic; every acked value (value -> (partition, offset)) must be there."""
    at = {(r.partition, r.offset): r for r in got}
    problems = []
    missing = wrong = 0
    for v, (p, o) in acked.items():
        r = at.get((p, o))
        if r is None:
            missing += 1
            if missing <= 5:
                problems.append(f"{label}: acked {v!r} at {topic}[{p}]@{o}: no record there")
        elif r.value != v:
            wrong += 1
            if wrong <= 5:
                problems.append(f"{label}: acked {v!r} at {topic}[{p}]@{o}: found {r.value!r}")
    if missing > 5 or wrong > 5:
        problems.append(f"{label}: {missing} acked records missing, {wrong} at a wrong offset, of {len(acked)}")
    if check_dups:
        seen = {}
        dups = 0
        for r in got:
            if r.value in seen:
                dups += 1
                if dups <= 3:
                    problems.append(f"{label}: {r.value!r} stored twice ({seen[r.value]} and {r.partition}@{r.offset}) "
                                    f"despite the idempotent producer")
            seen[r.value] = (r.partition, r.offset)
    return problems


def _kill_cycle(ctx: Ctx, b: Broker, count_acks: Callable[[], int], errors: Callable[[], list], min_acks=300,
                min_secs=2.0):
    """Produce for >= min_secs and >= min_acks, kill -9, restart, then again >= min_secs and min_acks."""
    t0 = time.time()
    deadline = t0 + 20
    while (count_acks() < min_acks or time.time() - t0 < min_secs) and time.time() < deadline:
        time.sleep(0.05)
    n = count_acks()
    check(n >= min_acks, f"only {n} records acknowledged after 20s of producing; errors: {errors()[:3]}")
    b.kill9()
    ctx.log(f"kill -9 after {n} acks")
    time.sleep(0.5)
    b.start()
    ctx.log("broker restarted on the same data dir")
    n_restart = count_acks()
    t1 = time.time()
    deadline = t1 + 45
    while (count_acks() < n_restart + min_acks or time.time() - t1 < min_secs) and time.time() < deadline:
        time.sleep(0.05)
    check(count_acks() >= n_restart + min_acks,
          f"producer did not recover after restart: {count_acks() - n_restart} acks in 45s; "
          f"{len(errors())} errors, e.g. {errors()[:3]}; broker log tail:\n{b.log_tail(15)}")
    ctx.log(f"{count_acks()} acks, producer recovered")


@scenario
def kill9_confluent_idempotent(ctx: Ctx):
    """kill -9 during a sustained confluent-kafka produce (acks=all, enable.idempotence): every acked record is at its offset, no duplicates."""
    import confluent_kafka as ck
    b = ctx.broker()
    bs = b.bootstrap
    topic = "kill9-ck"
    C.ck_admin_create(bs, topic, 3)
    p = ck.Producer({"bootstrap.servers": bs, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                     "message.timeout.ms": 60000, "partitioner": "murmur2_random", "compression.type": "lz4",
                     **C.ck_log_config("producer")})
    acked: Dict[bytes, tuple] = {}
    failed = []
    fatal = []
    stop = threading.Event()
    lock = threading.Lock()

    def cb(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            acked[msg.value()] = (msg.partition(), msg.offset())

    def run():
        i = 0
        while not stop.is_set():
            try:
                with lock:
                    p.produce(topic, key=f"k{i % 37}".encode(), value=f"ck-{i}".encode(), on_delivery=cb)
                i += 1
                if i % 50 == 0:
                    time.sleep(0.005)
            except BufferError:
                time.sleep(0.01)
            except Exception as e:  # a fatal producer error (e.g. idempotence state lost)
                fatal.append(f"produce(): {e}")
                return
            try:
                with lock:
                    p.poll(0)
            except Exception as e:
                fatal.append(f"poll(): {e}")
                return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        for _ in range(2):  # two crashes: the second recovers state written after the first
            _kill_cycle(ctx, b, lambda: len(acked), lambda: fatal + failed)
    finally:
        stop.set()
        t.join(10)
    try:
        left = p.flush(60)
    except Exception as e:
        fatal.append(f"flush(): {e}")
        left = len(p)
    check(not fatal, f"fatal producer error: {fatal[:2]}")
    ctx.log(f"producer flushed: {len(acked)} acked, {len(failed)} failed, {left} left")
    check(left == 0, f"{left} records neither acked nor failed after 60s")
    problems = _verify_acked(bs, topic, acked, "confluent idempotent")
    if failed:
        # with idempotence and a broker back within seconds nothing should fail; report it anyway
        problems.append(f"{len(failed)} delivery failures, e.g. {failed[:3]}")
    fail_if(problems, "kill -9 with confluent-kafka idempotent producer")


@scenario
def kill9_java_default(ctx: Ctx):
    """kill -9 during a sustained Java producer (3.9 defaults: acks=all, idempotence on): every acked record is at its offset, no duplicates."""
    b = ctx.broker()
    bs = b.bootstrap
    topic = "kill9-java"
    C.ck_admin_create(bs, topic, 3)
    jp = C.JavaSustainedProducer(bs, topic)
    try:
        for _ in range(2):
            _kill_cycle(ctx, b, lambda: len(jp.acks), lambda: jp.errors)
    finally:
        jp.stop()
    ctx.log(f"Java producer: {jp.done_line}")
    acked = {f"java-{i}".encode(): (p, o) for i, p, o, _ in jp.acks}
    problems = _verify_acked(bs, topic, acked, "Java default producer")
    for i, p, o, _ in jp.acks[:2000]:
        want = murmur2_partition(f"k{i % 37}".encode(), 3)
        if p != want:
            problems.append(f"java-{i} acked on partition {p}, murmur2 says {want}")
            break
    if jp.errors:
        problems.append(f"{len(jp.errors)} delivery failures, e.g. {jp.errors[:3]}")
    fail_if(problems, "kill -9 with the Java default producer")


# =========================================================================== 6. default producers

@scenario
def default_producers(ctx: Ctx):
    """Producers with all defaults just work: Java 3.9 (idempotence on), librdkafka/confluent-kafka, kafka-python, kcat."""
    b = ctx.broker()
    bs = b.bootstrap
    problems = []
    expected = {}
    # Java: nothing but bootstrap.servers and the serializers
    t = "defaults-java"
    C.ck_admin_create(bs, t, 3)
    sent = gen_records(t, 50, 0, "java-default")
    for r in sent:
        r.timestamp = None
    t0 = now_ms()
    try:
        reps = C.java_produce(bs, sent, codec=None, conf=None)
        problems += check_reports(reps, sent, "Java default producer", expect_ts=False)
        expected[t] = reps
    except Exception as e:
        problems.append(f"Java default producer: {e}")
    # librdkafka: nothing but bootstrap.servers (default partitioner consistent_random = crc32)
    t = "defaults-ck"
    C.ck_admin_create(bs, t, 3)
    sent = gen_records(t, 50, 0, "ck-default")
    for r in sent:
        r.timestamp = None
    try:
        import confluent_kafka as ck
        p = ck.Producer({"bootstrap.servers": bs, **C.ck_log_config("producer-default")})
        reps = [None] * len(sent)
        errs = []

        def cb(i):
            def f(err, msg):
                if err:
                    errs.append(str(err))
                else:
                    reps[i] = Rec(topic=t, key=sent[i].key, value=sent[i].value, headers=list(sent[i].headers),
                                  timestamp=msg.timestamp()[1], partition=msg.partition(), offset=msg.offset())
            return f
        for i, r in enumerate(sent):
            p.produce(t, key=r.key, value=r.value, headers=r.headers, on_delivery=cb(i))
        left = p.flush(60)
        check(left == 0 and not errs, f"{left} undelivered, errors {errs[:3]}")
        problems += check_reports(reps, sent, "librdkafka default producer", partitioner=crc32_partition,
                                  expect_ts=False)
        expected[t] = reps
    except Exception as e:
        problems.append(f"librdkafka default producer: {e}")
    # kafka-python with defaults
    t = "defaults-kp"
    C.ck_admin_create(bs, t, 3)
    sent = gen_records(t, 50, 0, "kp-default")
    for r in sent:
        r.timestamp = None
    try:
        from kafka import KafkaProducer
        kp = KafkaProducer(bootstrap_servers=bs)
        futs = [kp.send(t, key=r.key, value=r.value, headers=r.headers) for r in sent]
        kp.flush(60)
        reps = []
        for r, f in zip(sent, futs):
            md = f.get(30)
            reps.append(Rec(topic=t, key=r.key, value=r.value, headers=list(r.headers), timestamp=md.timestamp,
                            partition=md.partition, offset=md.offset))
        kp.close(10)
        problems += check_reports(reps, sent, "kafka-python default producer", expect_ts=False)
        expected[t] = reps
    except Exception as e:
        problems.append(f"kafka-python default producer: {e}")
    t1 = now_ms()
    # kcat with defaults
    t = "defaults-kcat"
    C.ck_admin_create(bs, t, 3)
    recs = gen_records(t, 50, 0, "kcat-default", with_specials=False, headers=False)
    try:
        k0, k1 = C.kcat_produce(bs, t, recs, codec="none", murmur2=False)
        for r in recs:
            r.timestamp = None
        assign_expected_positions(recs, 3, partitioner=crc32_partition)
        expected[t] = recs
    except Exception as e:
        problems.append(f"kcat default producer: {e}")
        k0 = k1 = now_ms()
    for t, exp in expected.items():
        for r in exp:
            r.tstype = "create"
        try:
            got = C.ck_consume(bs, t)
            problems += compare(exp, got, f"read back {t}", ts_range=(min(t0, k0) - 1000, max(t1, k1) + 1000))
        except Exception as e:
            problems.append(f"reading {t}: {e}")
    fail_if(problems, "default producers")


# =========================================================================== 7. fetch limits and long polling

@scenario
def fetch_limits_and_long_poll(ctx: Ctx):
    """Tiny fetch limits still make progress (a batch larger than the limit is returned whole); a long-polling Fetch is woken by an append."""
    import confluent_kafka as ck
    b = ctx.broker()
    bs = b.bootstrap
    problems = []
    t = "fetch-limits"
    C.ck_admin_create(bs, t, 3)
    reps = C.ck_produce(bs, gen_records(t, 60, now_ms() - 60_000, "limits"), codec="none", conf={"linger.ms": 100})
    reps += C.ck_produce(bs, gen_records(t, 30, now_ms() - 30_000, "limits-zstd"), codec="zstd")
    for r in reps:
        r.tstype = "create"
    small = {
        "confluent": lambda: C.ck_consume(bs, t, conf={"fetch.max.bytes": 1000, "message.max.bytes": 1000,
                                                      "max.partition.fetch.bytes": 500}),
        "kafka-python": lambda: C.kp_consume(bs, t, conf={"fetch_max_bytes": 1000,
                                                         "max_partition_fetch_bytes": 500}),
        "java": lambda: C.java_consume(bs, [t], conf={"fetch.max.bytes": 1000,
                                                     "max.partition.fetch.bytes": 500})[t],
    }
    for name, read in small.items():
        ctx.log(f"{name} consumer with fetch.max.bytes=1000, max.partition.fetch.bytes=500")
        try:
            problems += compare(reps, read(), f"{name} small fetches")
        except Exception as e:
            problems.append(f"{name} small fetches: {type(e).__name__}: {e}")

    # long poll: a consumer waiting up to 10 s per Fetch gets each new record within ~1 s
    t = "long-poll"
    C.ck_admin_create(bs, t, 1)
    c = ck.Consumer({"bootstrap.servers": bs, "group.id": "compat-lp", "enable.auto.commit": False,
                     "fetch.wait.max.ms": 10000, "fetch.min.bytes": 1, **C.ck_log_config("consumer-lp")})
    p = ck.Producer({"bootstrap.servers": bs, "linger.ms": 0, **C.ck_log_config("producer-lp")})
    try:
        c.assign([ck.TopicPartition(t, 0, ck.OFFSET_BEGINNING)])
        c.poll(1.5)  # the consumer is now parked in a long-poll Fetch
        lat = []
        for i in range(5):
            time.sleep(0.3)
            t0 = time.time()
            p.produce(t, value=f"lp-{i}".encode())
            p.flush(10)
            m = c.poll(15)
            lat.append(round(time.time() - t0, 3))
            if m is None or m.error() or m.value() != f"lp-{i}".encode():
                problems.append(f"long poll: record lp-{i} not received: {m and (m.error() or m.value())}")
                break
        ctx.log(f"long-poll latencies (s): {lat}")
        if lat and max(lat) > 3.0:
            problems.append(f"long poll: a record took {max(lat)} s to reach a consumer waiting in Fetch "
                            f"(fetch.wait.max.ms=10000): the Fetch was not woken by the append; latencies {lat}")
    finally:
        c.close()
    fail_if(problems, "fetch limits and long poll")


# =========================================================================== 9. consumer groups (issue 4 item 7)

GROUP_PARTITIONS = 6
GROUP_RECORDS = 60


def _group_topic(ctx: Ctx, bs: str, topic: str):
    C.ck_admin_create(bs, topic, GROUP_PARTITIONS)
    C.ck_produce(bs, gen_records(topic, GROUP_RECORDS, now_ms() - 60_000, topic, with_specials=False))


def _moldau_groups(b: Broker, *args) -> dict:
    """`moldau groups ... -o json` with the broker's own binary."""
    import json
    import subprocess
    cp = subprocess.run([b.binary, "groups", *args, "--bootstrap-server", b.bootstrap, "-o", "json"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(cp.returncode == 0, f"moldau groups {' '.join(args)} exited {cp.returncode}: {cp.stderr.decode().strip()}")
    return json.loads(cp.stdout)


class _JavaMember:
    """A Java KafkaConsumer in a group (Compat.java group-consume), read line by line."""

    def __init__(self, ctx: Ctx, bs: str, topic: str, group: str, n: int, conf: dict):
        import subprocess
        self.stop_file = ctx.workdir / f"stop-{group}-{n}"
        self.assignment: List[int] = []
        self.records = 0
        self.lock = threading.Lock()
        log = open(ctx.workdir / f"java-group-{group}-{n}.log", "wb")
        args = ["group-consume", bs, topic, str(self.stop_file), f"group.id={group}",
                f"client.id=java-{n}", *[f"{k}={v}" for k, v in conf.items()]]
        self.proc = subprocess.Popen(C.java_cmd(args), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            f = raw.decode().split()
            with self.lock:
                if f and f[0] == "assignment":
                    self.assignment = [] if f[1] == "-" else [int(x) for x in f[1].split(",")]
                elif f and f[0] == "rec":
                    self.records += 1

    def snapshot(self):
        with self.lock:
            return list(self.assignment), self.records

    def stop(self, timeout=30):
        self.stop_file.touch()
        try:
            return self.proc.wait(timeout)
        except Exception:
            self.proc.kill()
            return "killed"


def _wait_group(ctx: Ctx, what: str, poll: Callable[[], bool], timeout=90.0):
    deadline = time.time() + timeout
    while not poll():
        if time.time() > deadline:
            raise CheckFailed(f"{what}: not reached within {timeout} s")
        time.sleep(0.5)


def _assignment_problems(assignments: List[List[int]], label: str) -> List[str]:
    owned = [p for a in assignments for p in a]
    if sorted(owned) != list(range(GROUP_PARTITIONS)):
        return [f"{label}: assignments {assignments} are not a disjoint cover of 0..{GROUP_PARTITIONS - 1}"]
    if any(not a for a in assignments):
        return [f"{label}: a member got nothing: {assignments}"]
    return []


def _describe_problems(b: Broker, group: str, gtype: str, members: int, assignments: List[List[int]]) -> List[str]:
    """`moldau groups describe` must show the members, their partitions and every commit."""
    d = _moldau_groups(b, "describe", "-g", group)
    problems = []
    if d["type"] != gtype or d["state"] != "Stable" or len(d["members"]) != members:
        problems.append(f"describe {group}: type {d['type']}, state {d['state']}, {len(d['members'])} members; "
                        f"want {gtype}, Stable, {members}")
    seen = sorted(sorted(p["partition"] for p in m["assignment"]) for m in d["members"])
    if seen != sorted(sorted(a) for a in assignments):
        problems.append(f"describe {group}: assignments {seen}, the clients say {sorted(assignments)}")
    committed = sum(p["current_offset"] or 0 for p in d["partitions"])
    lag = [p["lag"] for p in d["partitions"]]
    if committed != GROUP_RECORDS or any(x != 0 for x in lag):
        problems.append(f"describe {group}: committed {committed} of {GROUP_RECORDS}, lags {lag}")
    return problems


def _java_group(ctx: Ctx, group: str, members: int, conf: dict, gtype: str):
    b = ctx.broker(**{"group.initial.rebalance.delay.ms": "0"})
    bs = b.bootstrap
    topic = f"{group}-topic"
    _group_topic(ctx, bs, topic)
    C.java_classpath()  # compile once before starting members in parallel
    ms = [_JavaMember(ctx, bs, topic, group, n, conf) for n in range(members)]
    problems = []
    try:
        def settled():
            snaps = [m.snapshot() for m in ms]
            for m in ms:
                if m.proc.poll() is not None:
                    raise CheckFailed(f"a Java member exited early with {m.proc.returncode}")
            return (not _assignment_problems([s[0] for s in snaps], "")
                    and sum(s[1] for s in snaps) >= GROUP_RECORDS)
        _wait_group(ctx, f"{members} Java members own all {GROUP_PARTITIONS} partitions and read everything", settled)
        assignments = [m.snapshot()[0] for m in ms]
        ctx.log(f"Java {gtype} members' assignments: {assignments}")
        total = sum(m.snapshot()[1] for m in ms)
        if total != GROUP_RECORDS:
            problems.append(f"Java members read {total} records, want {GROUP_RECORDS} (each once)")
        # commitSync has returned for every polled batch; describe must show it all.
        deadline = time.time() + 20
        while True:
            p = _describe_problems(b, group, gtype, members, assignments)
            if not p or time.time() > deadline:
                problems += p
                break
            time.sleep(0.5)
    finally:
        codes = [m.stop() for m in ms]
    if any(c != 0 for c in codes):
        problems.append(f"Java members exited with {codes}")
    d = _moldau_groups(b, "describe", "-g", group)
    if d["state"] != "Empty" or d["members"]:
        problems.append(f"after every member closed: state {d['state']}, {len(d['members'])} members; want Empty, 0")
    fail_if(problems, f"Java {gtype} group")


@scenario
def groups_java_classic(ctx: Ctx):
    """Java KafkaConsumer 3.9 with group.id: 3 members over 6 partitions, disjoint complete assignment, commits in `moldau groups describe`."""
    _java_group(ctx, "java-classic", 3, {"session.timeout.ms": "10000", "heartbeat.interval.ms": "500"}, "classic")


@scenario
def groups_java_consumer_protocol(ctx: Ctx):
    """Java KafkaConsumer 3.9 with group.protocol=consumer (KIP-848): 2 members over 6 partitions, commits described."""
    _java_group(ctx, "java-kip848", 2, {"group.protocol": "consumer"}, "consumer")


@scenario
def groups_kafka_python(ctx: Ctx):
    """kafka-python KafkaConsumer with group_id: 2 members over 6 partitions, disjoint complete assignment, commits described."""
    from kafka import KafkaConsumer
    C._kp_logging()
    b = ctx.broker(**{"group.initial.rebalance.delay.ms": "0"})
    bs = b.bootstrap
    group, topic = "kp-group", "kp-group-topic"
    _group_topic(ctx, bs, topic)
    consumers = [KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, client_id=f"kp-{n}",
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               session_timeout_ms=10000, heartbeat_interval_ms=500)
                 for n in range(2)]
    problems = []
    try:
        counts = [0, 0]
        deadline = time.time() + 90
        while True:
            for i, c in enumerate(consumers):
                batch = c.poll(timeout_ms=200)
                n = sum(len(v) for v in batch.values())
                if n:
                    counts[i] += n
                    c.commit()
            assignments = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
            if sum(counts) >= GROUP_RECORDS and not _assignment_problems(assignments, ""):
                break
            if time.time() > deadline:
                raise CheckFailed(f"kafka-python members: read {counts}, assignments {assignments}")
        ctx.log(f"kafka-python members' assignments: {assignments}, records {counts}")
        if sum(counts) != GROUP_RECORDS:
            problems.append(f"kafka-python members read {counts}, want {GROUP_RECORDS} in all")
        problems += _describe_problems(b, group, "classic", 2, assignments)
    finally:
        for c in consumers:
            c.close()
    fail_if(problems, "kafka-python group")


# =========================================================================== 7. transactions (issue 5 item 4)

def _ck_read_to_eof(bs: str, topic: str, isolation: str, timeout: float = 60.0) -> List[Rec]:
    """confluent-kafka: assign every partition from the beginning, read until EOF on each
    (with read_committed the last offsets are markers or aborted records, so the position
    is not comparable with the high watermark; EOF is)."""
    import confluent_kafka as ck
    c = ck.Consumer({"bootstrap.servers": bs, "group.id": "compat-" + uuid.uuid4().hex[:8],
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "enable.partition.eof": True, "isolation.level": isolation,
                     **C.ck_log_config(f"consumer-{isolation}")})
    try:
        parts = sorted(c.list_topics(topic, timeout=30).topics[topic].partitions)
        c.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in parts])
        out: List[Rec] = []
        eof = set()
        deadline = time.time() + timeout
        while len(eof) < len(parts):
            check(time.time() < deadline, f"confluent-kafka {isolation} consumer: timeout, EOF on {sorted(eof)} only")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == ck.KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise CheckFailed(f"confluent-kafka {isolation} consumer error: {m.error()}")
            eof.discard(m.partition())
            out.append(Rec(topic=m.topic(), key=m.key(), value=m.value(), headers=[], partition=m.partition(),
                           offset=m.offset()))
        return out
    finally:
        c.close()


def _values_problems(label: str, got: List[Rec], want: List[bytes]) -> List[str]:
    from collections import Counter
    g, w = Counter(r.value for r in got), Counter(want)
    if g == w:
        return []
    missing = sorted((w - g).elements())[:5]
    extra = sorted((g - w).elements())[:5]
    return [f"{label}: {sum(g.values())} records, want {sum(w.values())}; missing {missing}, unexpected {extra}"]


@scenario
def txn_confluent(ctx: Ctx):
    """confluent-kafka transactional producers commit and abort (interleaved); read_committed consumers (confluent, Java, kafka-python) see only commits, read_uncommitted see all."""
    import confluent_kafka as ck
    b = ctx.broker()
    bs, topic = b.bootstrap, "txn-topic"
    C.ck_admin_create(bs, topic, 3)

    def producer(tid):
        p = ck.Producer({"bootstrap.servers": bs, "transactional.id": tid, "linger.ms": 5,
                         **C.ck_log_config(f"producer-{tid}")})
        p.init_transactions(30)
        return p

    def send(p, tag, n):
        vals = [f"{tag}-{i}".encode() for i in range(n)]
        for i, v in enumerate(vals):
            p.produce(topic, key=f"k{i}".encode(), value=v)
        p.flush(30)
        return vals

    committed, aborted = [], []
    p1, p2 = producer("ck-txn-1"), producer("ck-txn-2")
    p1.begin_transaction()
    committed += send(p1, "commit1", 40)
    p1.commit_transaction(30)
    p1.begin_transaction()
    aborted += send(p1, "abort1", 40)
    p1.abort_transaction(30)
    # interleaved on the same partitions: p2 opens first, p1 commits while p2 is open, then p2 aborts
    p2.begin_transaction()
    aborted += send(p2, "abort2", 30)
    p1.begin_transaction()
    committed += send(p1, "commit2", 30)
    p1.commit_transaction(30)
    p2.abort_transaction(30)
    p2.begin_transaction()
    committed += send(p2, "commit3", 20)
    p2.commit_transaction(30)
    plain = [r.value for r in C.ck_produce(bs, [Rec(topic=topic, key=f"p{i}".encode(), value=f"plain-{i}".encode(),
                                                    headers=[]) for i in range(20)])]
    committed += plain
    ctx.log(f"{len(committed)} committed (incl. 20 non-transactional), {len(aborted)} aborted records")

    problems = []
    problems += _values_problems("confluent read_committed", _ck_read_to_eof(bs, topic, "read_committed"), committed)
    problems += _values_problems("confluent read_uncommitted", _ck_read_to_eof(bs, topic, "read_uncommitted"),
                                 committed + aborted)
    for iso, want in (("read_committed", committed), ("read_uncommitted", committed + aborted)):
        got = C.java_consume(bs, [topic], conf={"isolation.level": iso})[topic]
        problems += _values_problems(f"Java {iso}", got, want)
    for iso, want in (("read_committed", committed), ("read_uncommitted", committed + aborted)):
        try:
            got = C.kp_consume(bs, topic, timeout=30, conf={"isolation_level": iso})
        except TypeError as e:  # an older kafka-python without isolation_level
            ctx.log(f"kafka-python: no isolation_level ({e}); skipped")
            break
        problems += _values_problems(f"kafka-python {iso}", got, want)
    fail_if(problems, "transactions")


EOS_RECORDS = 1000


@scenario
def eos_kill9(ctx: Ctx):
    """confluent-kafka consume-transform-produce with send_offsets_to_transaction, SIGKILLed at random points and restarted (and the broker kill -9ed once): the output holds each input exactly once."""
    import random
    import subprocess
    import sys
    b = ctx.broker(**{"group.initial.rebalance.delay.ms": "0"})
    bs = b.bootstrap
    tin, tout = "eos-in", "eos-out"
    C.ck_admin_create(bs, tin, 3)
    C.ck_admin_create(bs, tout, 3)
    inputs = [Rec(topic=tin, key=f"k{i % 37}".encode(), value=f"v{i}".encode(), headers=[]) for i in range(EOS_RECORDS)]
    C.ck_produce(bs, inputs)
    app = [sys.executable, "-u", str(Path(__file__).resolve().parent / "harness" / "eos_app.py"),
           None, tin, tout, "eos-group", "eos-app", str(ctx.workdir / "librdkafka-eos-app.log")]
    rng = random.Random()
    kills, runs = 0, 0
    deadline = time.time() + 100
    while True:
        runs += 1
        app[3] = b.bootstrap
        proc = subprocess.Popen(app, stdout=subprocess.PIPE, stderr=open(ctx.workdir / f"eos-app-{runs}.err", "wb"),
                                text=True)
        lines: List[str] = []
        t = threading.Thread(target=lambda: [lines.append(ln.strip()) for ln in proc.stdout], daemon=True)
        t.start()
        if kills < 4:
            # let it commit at least once, then kill it at a random moment (often mid-transaction)
            while time.time() < deadline and proc.poll() is None and not any(ln.startswith("committed") for ln in lines):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.2))
            if proc.poll() is None:
                proc.kill()
                kills += 1
            proc.wait()
            t.join(5)
            if proc.returncode == 0 and "done" in lines:
                ctx.log(f"run {runs}: finished on its own after "
                        f"{sum(1 for ln in lines if ln.startswith('committed'))} commits (before the planned kill)")
                break
            check(time.time() < deadline, f"the application made no progress (run {runs}); last output {lines[-5:]}")
            ctx.log(f"run {runs}: SIGKILL after {sum(1 for ln in lines if ln.startswith('committed'))} commits")
            if kills == 2:
                b.kill9()
                b.start()
                ctx.log("broker kill -9 and restarted on the same data dir")
            continue
        try:
            rc = proc.wait(max(5.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            raise CheckFailed(f"the application did not finish (run {runs}); last output {lines[-5:]}")
        t.join(5)
        check(rc == 0 and "done" in lines, f"application run {runs} exited {rc}; last output {lines[-5:]}")
        ctx.log(f"run {runs}: finished after {sum(1 for ln in lines if ln.startswith('committed'))} commits")
        break
    got = _ck_read_to_eof(b.bootstrap, tout, "read_committed")
    want = [b"out:" + r.value for r in inputs]
    problems = _values_problems("output read_committed", got, want)
    fail_if(problems, f"exactly-once after {kills} application kills and one broker kill -9")


# --------------------------------------------------------------------------- the Java transactional producer

def _multiset_problems(label: str, got, want, show=5) -> List[str]:
    """Exact multiset comparison (the tuple form of _values_problems)."""
    from collections import Counter
    g, w = Counter(got), Counter(want)
    if g == w:
        return []
    missing = sorted((w - g).elements(), key=repr)[:show]
    extra = sorted((g - w).elements(), key=repr)[:show]
    return [f"{label}: {sum(g.values())} records, want {sum(w.values())}; "
            f"{sum((w - g).values())} missing, e.g. {missing}; {sum((g - w).values())} unexpected, e.g. {extra}"]


class _JavaTxnScript:
    """Builds a script for Compat.java txn-script (transactional producers in one JVM) and
    runs it: ops[line] = (name, op, "ok" | "CLASS CAUSE"), acks[idx] = (topic, partition, offset),
    senderr[idx] = "CLASS CAUSE"."""

    def __init__(self):
        self.lines: List[str] = []
        self.sent: Dict[int, tuple] = {}  # idx -> (topic, value)
        self.ops: Dict[int, tuple] = {}
        self.acks: Dict[int, tuple] = {}
        self.senderr: Dict[int, str] = {}
        self.pids: Dict[str, tuple] = {}  # "pid NAME" ops: name -> (producer id, epoch)
        self.output: List[str] = []

    def op(self, op: str, name: str, *rest: str) -> int:
        self.lines.append("\t".join([op, name, *rest]))
        return len(self.lines)

    def new(self, name: str, tid: str) -> int:
        conf = {"transactional.id": tid, "linger.ms": "5", "max.block.ms": "20000",
                "transaction.timeout.ms": "30000", "delivery.timeout.ms": "20000", "request.timeout.ms": "10000"}
        return self.op("new", name, *[f"{k}={v}" for k, v in conf.items()])

    def send(self, name: str, topic: str, partition, value: str, key: str = None, ts: int = None) -> int:
        idx = len(self.sent)
        self.sent[idx] = (topic, value.encode())
        self.op("send", name, str(idx), topic, "-" if partition is None else str(partition),
                (key or value).encode().hex(), value.encode().hex(), *([] if ts is None else [str(ts)]))
        return idx

    def run(self, ctx: Ctx, bs: str) -> None:
        path = ctx.workdir / "java-txn-script.tsv"
        path.write_text("\n".join(self.lines) + "\n")
        self.output = C.run_java(["txn-script", bs, str(path)], timeout=100, label="txn-script")
        for ln in self.output:
            f = ln.split()
            if f[0] == "pid":
                self.pids[f[1]] = (int(f[2]), int(f[3]))
            elif f[0] == "op":
                self.ops[int(f[1])] = (f[2], f[3], "ok" if f[4] == "ok" else f"{f[5]} {f[6]}")
            elif f[0] == "ack":
                self.acks[int(f[1])] = (f[2], int(f[3]), int(f[4]))
            elif f[0] == "senderr":
                self.senderr[int(f[1])] = f"{f[2]} {f[3]}"

    def records(self, idxs) -> List[tuple]:
        """(topic, partition, offset, value) of acknowledged sends."""
        return [(*self.acks[i], self.sent[i][1]) for i in idxs if i in self.acks]


# What Kafka 3.9's Java producer raises once fenced (its TransactionManager against a broker
# that answers as Kafka does): a Produce with the old epoch gets INVALID_PRODUCER_EPOCH
# (Kafka's broker turns the PRODUCER_FENCED of its KIP-890 partition verification into it:
# abortable, InvalidProducerEpochException in the callback and again from commitTransaction),
# AddPartitionsToTxn and EndTxn with the old epoch get PRODUCER_FENCED (fatal:
# ProducerFencedException, then from every later transactional call).
_FENCED = {
    "send to a partition already in the transaction": {
        "send": "InvalidProducerEpochException -", "commit": "InvalidProducerEpochException -",
        "abort": "ProducerFencedException -"},
    "send to a new partition": {
        "send": "ProducerFencedException -", "commit": "ProducerFencedException -",
        "abort": "ProducerFencedException -"},
    "commit without sending": {
        "commit": "ProducerFencedException -", "abort": "ProducerFencedException -"},
}
_FENCED_ANY = ("ProducerFencedException", "InvalidProducerEpochException")


@scenario
def txn_java(ctx: Ctx):
    """Java 3.9 transactional producer: commit/abort over two topics (read_committed vs read_uncommitted), consume-transform-produce with sendOffsetsToTransaction and a mid-run abort, zombie fencing."""
    b = ctx.broker(**{"group.initial.rebalance.delay.ms": "0"})
    bs = b.bootstrap
    ta, tb, tin, tout = "txn-java-a", "txn-java-b", "txn-java-in", "txn-java-out"
    for t, n in ((ta, 3), (tb, 2), (tin, 3), (tout, 3)):
        C.ck_admin_create(bs, t, n)
    C.java_classpath()
    problems: List[str] = []

    # ---- 1. commit / abort / commit with one producer, spanning 5 partitions of two topics;
    # ---- 3. zombie fencing: a second producer with the same transactional.id fences the first
    s = _JavaTxnScript()
    groups: Dict[str, List[int]] = {"committed": [], "aborted": []}
    expect_ok: List[int] = [s.new("P", "java-txn"), s.op("init", "P")]

    def batch(name, tag, n_a, n_b, keyed=0):
        idxs = [s.send(name, ta, i % 3, f"{tag}-a-{i}") for i in range(n_a)]
        idxs += [s.send(name, tb, i % 2, f"{tag}-b-{i}") for i in range(n_b)]
        idxs += [s.send(name, ta if i % 2 else tb, None, f"{tag}-keyed-{i}", key=f"k{i}") for i in range(keyed)]
        return idxs

    expect_ok.append(s.op("begin", "P"))
    groups["committed"] += batch("P", "commit1", 30, 12, keyed=8)
    expect_ok.append(s.op("commit", "P"))
    expect_ok.append(s.op("begin", "P"))
    groups["aborted"] += batch("P", "abort1", 15, 10, keyed=5)
    expect_ok += [s.op("flush", "P"), s.op("abort", "P")]  # flushed: the records are in the log, then aborted
    expect_ok.append(s.op("begin", "P"))
    groups["committed"] += batch("P", "commit2", 9, 6)
    expect_ok += [s.op("commit", "P"), s.op("close", "P")]

    fence_lines: Dict[str, Dict[str, int]] = {}
    post_send: Dict[str, int] = {}
    for n, case in enumerate(_FENCED):
        z, z2, tid = f"Z{n}", f"Z{n}new", f"java-fence-{n}"
        expect_ok += [s.new(z, tid), s.op("init", z), s.op("begin", z)]
        groups["aborted"] += batch(z, f"zombie{n}-pre", 6, 0)  # TA partitions 0..2 only
        expect_ok += [s.op("flush", z), s.new(z2, tid), s.op("init", z2)]
        lines = {}
        if "send" in _FENCED[case]:
            post_send[case] = s.send(z, ta if "already" in case else tb, 0, f"zombie{n}-post")
            expect_ok.append(s.op("flush", z))
        lines["commit"] = s.op("commit", z)
        lines["abort"] = s.op("abort", z)
        fence_lines[case] = lines
        expect_ok += [s.op("close", z), s.op("begin", z2)]
        groups["committed"] += batch(z2, f"successor{n}", 6, 4)
        expect_ok += [s.op("commit", z2), s.op("close", z2)]

    t0 = time.time()
    s.run(ctx, bs)
    ctx.log(f"Java txn-script: {len(s.lines)} ops in {time.time() - t0:.1f}s")
    for ln in expect_ok:
        got = s.ops.get(ln)
        if got is None or got[2] != "ok":
            problems.append(f"script line {ln} ({s.lines[ln - 1].split(chr(9))[:2]}): {got}, want ok")
    for case, want in _FENCED.items():
        seen = {k: (s.ops.get(ln) or ("", "", "no result"))[2] for k, ln in fence_lines[case].items()}
        if case in post_send:
            i = post_send[case]
            seen["send"] = s.senderr.get(i, f"acked at {s.acks[i]}" if i in s.acks else "no callback")
        ctx.log(f"fenced zombie, {case}: Java raised {seen}")
        for k, w in want.items():
            if seen[k].split()[0] not in _FENCED_ANY:
                problems.append(f"fenced zombie, {case}: {k} gave {seen[k]!r}, want ProducerFencedException "
                                f"or InvalidProducerEpochException")
        if seen != want:
            problems.append(f"fenced zombie, {case}: Java raised {seen}; against Kafka it raises {want}")
    unacked = [i for i in groups["committed"] + groups["aborted"] if i not in s.acks]
    check(not unacked, f"{len(unacked)} flushed/committed sends never acknowledged, e.g. "
                       f"{[(s.sent[i], s.senderr.get(i)) for i in unacked[:3]]}")
    committed, aborted = s.records(groups["committed"]), s.records(groups["aborted"])
    parts = sorted({(t, p) for t, p, _, _ in committed})
    check(len(parts) == 5, f"the committed transactions cover only {parts}")

    # ---- 2. consume-transform-produce with sendOffsetsToTransaction, the 3rd transaction aborted
    n_in, abort_at, group = 150, 3, "txn-java-group"
    inputs = C.ck_produce(bs, [Rec(topic=tin, key=f"k{i % 23}".encode(), value=f"in-{i}".encode(), headers=[])
                               for i in range(n_in)])
    end = {p: 0 for p in range(3)}
    for r in inputs:
        end[r.partition] = max(end[r.partition], r.offset + 1)
    t0 = time.time()
    lines = C.run_java(["txn-ctp", bs, tin, tout, group, "java-ctp", str(abort_at), "c.max.poll.records=20",
                        "c.session.timeout.ms=10000", "c.heartbeat.interval.ms=500", "p.linger.ms=5",
                        "p.max.block.ms=20000"], timeout=100, label="txn-ctp")

    def offs(text):
        return {} if text == "-" else {int(k): (None if v == "null" else int(v))
                                       for k, v in (x.split(":") for x in text.split(","))}

    consumed, txns, committed_after, final = [], {}, {}, None
    for ln in lines:
        f = ln.split()
        if f[0] == "rec":
            consumed.append((int(f[1]), int(f[2]), int(f[3]), bytes.fromhex(f[4])))
        elif f[0] == "txn":
            txns[int(f[1])] = (f[2], int(f[3]), offs(f[4]))
        elif f[0] == "committed":
            committed_after[int(f[1])] = offs(f[2])
        elif f[0] == "final":
            final = offs(f[1])
    ctx.log(f"Java consume-transform-produce: {len(txns)} transactions in {time.time() - t0:.1f}s: "
            + " ".join(f"{k}:{v[0]}/{v[1]}" for k, v in sorted(txns.items())))
    check("done" in lines and final is not None, f"txn-ctp did not finish: last lines {lines[-5:]}")
    kinds = [txns[k][0] for k in sorted(txns)]
    if sorted(txns) != list(range(1, len(txns) + 1)) or kinds.count("abort") != 1 or txns.get(abort_at, ("",))[0] != "abort" \
            or "commit" not in kinds[abort_at:]:
        problems.append(f"transactions {kinds}: want exactly one abort, the #{abort_at}, with commits after it")
    for k, (kind, n, positions) in sorted(txns.items()):
        want = committed_after.get(k - 1, {p: None for p in range(3)}) if kind == "abort" else positions
        if committed_after.get(k) != want:
            problems.append(f"transaction {k} ({kind}, offsets {positions}): the group's committed offsets are then "
                            f"{committed_after.get(k)}, want {want}")
        if kind == "abort" and positions == want:
            problems.append(f"the aborted transaction {k} carried offsets {positions}: equal to the committed ones, "
                            f"so the abort proves nothing")
    aborted_in = [(p, o, v) for t, p, o, v in consumed if t == abort_at]
    problems += _multiset_problems("input records processed (each once, the aborted transaction's twice)",
                                   [(p, o, v) for _, p, o, v in consumed],
                                   [(r.partition, r.offset, r.value) for r in inputs] + aborted_in)
    if final != end:
        problems.append(f"Java consumer committed() at the end: {final}, want the input end offsets {end}")
    d = _moldau_groups(b, "describe", "-g", group)
    got = {r["partition"]: r["current_offset"] for r in d["partitions"] if r["topic"] == tin}
    if got != end:
        problems.append(f"`moldau groups describe -g {group}`: committed {got}, want the input end offsets {end}")
    ctx.log(f"group {group}: {d['state']}, committed {got}; aborted transaction {abort_at} held {len(aborted_in)} records")

    # ---- reads: Java read_committed sees the commits only, read_uncommitted everything
    by_value = {r.value: r.key for r in inputs}
    want_out = [(r.key, b"out:" + r.value) for r in inputs]
    aborted_out = [(by_value[v], b"out:" + v) for _, _, v in aborted_in]
    for iso in ("read_committed", "read_uncommitted"):
        got = C.java_consume(bs, [ta, tb, tout], conf={"isolation.level": iso})
        want = committed + (aborted if iso == "read_uncommitted" else [])
        problems += _multiset_problems(f"Java {iso} {ta}+{tb} (topic, partition, offset, value)",
                                       [(r.topic, r.partition, r.offset, r.value) for r in got[ta] + got[tb]], want)
        problems += _multiset_problems(f"Java {iso} {tout} (key, value)", [(r.key, r.value) for r in got[tout]],
                                       want_out + (aborted_out if iso == "read_uncommitted" else []))
        ctx.log(f"Java {iso}: {len(got[ta]) + len(got[tb])} records in {ta}+{tb}, {len(got[tout])} in {tout}")
    fail_if(problems, "Java transactions")


# --------------------------------------------------------------------------- transaction admin with the Java Admin

class _Within:
    """Equal to any int in [lo, hi]: a time the broker chose (a marker's timestamp, a start time)."""
    __hash__ = None

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def __eq__(self, other):
        return isinstance(other, int) and not isinstance(other, bool) and self.lo <= other <= self.hi

    def __repr__(self):
        return f"<a time in [{self.lo}, {self.hi}]>"


class _TxnAdminOut:
    """The output of Compat.java txn-admin commands (or txn-script "admin" ops), by tag (the command)."""

    def __init__(self, lines: List[str]):
        self.lines = lines
        self.lists: Dict[str, set] = {}    # tag -> {(transactional id, producer id, state, coordinator)}
        self.descs: Dict[tuple, tuple] = {}  # (tag, id) -> ("ok", coord, state, pid, epoch, timeout, start|None, (T-P, ..))
        self.prods: Dict[str, object] = {}   # tag -> {pid: (epoch, last seq, last ts, coordinator epoch|None, txn start|None)}
        self.offsets: Dict[str, tuple] = {}  # tag -> (latest read_committed, latest read_uncommitted)
        self.specs: Dict[str, object] = {}   # tag -> (pid, epoch, coordinator epoch) | "none"
        self.aborts: Dict[str, str] = {}     # tag -> "ok" | "CLASS CAUSE"
        self.fences: Dict[tuple, tuple] = {}  # (tag, id) -> ("ok", pid, epoch) | ("exc", "CLASS CAUSE")
        opt = lambda x: None if x == "-" else int(x)
        for ln in lines:
            f = ln.split()
            if not f:
                continue
            if f[0] == "list":
                self.lists.setdefault(f[1], set()).add((f[2], int(f[3]), f[4], int(f[5])))
            elif f[0] == "listed":
                self.lists.setdefault(f[1], set())
            elif f[0] == "desc":
                self.descs[(f[1], f[2])] = (("ok", int(f[4]), f[5], int(f[6]), int(f[7]), int(f[8]), opt(f[9]),
                                             () if f[10] == "-" else tuple(f[10].split(",")))
                                            if f[3] == "ok" else ("exc", " ".join(f[4:])))
            elif f[0] == "prod":
                self.prods.setdefault(f[1], {})[int(f[2])] = (int(f[3]), int(f[4]), int(f[5]), opt(f[6]), opt(f[7]))
            elif f[0] == "producers":
                self.prods[f[1]] = " ".join(f[2:]) if f[2] == "exc" else self.prods.get(f[1], {})
            elif f[0] == "lo":
                self.offsets[f[1]] = (int(f[2]), int(f[3]))
            elif f[0] == "spec":
                self.specs[f[1]] = "none" if f[2] == "none" else (int(f[2]), int(f[3]), int(f[4]))
            elif f[0] == "abort":
                self.aborts[f[1]] = "ok" if f[2] == "ok" else " ".join(f[3:])
            elif f[0] == "fence":
                self.fences[(f[1], f[2])] = ("ok", int(f[4]), int(f[5])) if f[3] == "ok" else ("exc", " ".join(f[4:]))


def _txn_admin_record(ctx: Ctx, what: str, lines: List[str]):
    """Keep what the Java side printed (compat/.out/<scenario>/java-txn-admin.out) for whoever reads a failure."""
    with open(ctx.workdir / "java-txn-admin.out", "a") as f:
        f.write("\n".join([f"=== {what}", *lines, ""]))


def _txn_admin(ctx: Ctx, bs: str, *cmds: str) -> _TxnAdminOut:
    lines = C.run_java(["txn-admin", bs, *cmds], timeout=90, label="txn-admin")
    _txn_admin_record(ctx, "txn-admin " + " ".join(cmds), lines)
    check(lines[-1:] == ["done"], f"Java txn-admin did not finish: last lines {lines[-5:]}")
    return _TxnAdminOut(lines)


def _moldau_txn(b: Broker, *args) -> object:
    """`moldau transactions ... -o json` with the broker's own binary."""
    import json
    import subprocess
    cp = subprocess.run([b.binary, "transactions", *args, "--bootstrap-server", b.bootstrap, "-o", "json"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    check(cp.returncode == 0, f"moldau transactions {' '.join(args)} exited {cp.returncode}: {cp.stderr.decode().strip()}")
    return json.loads(cp.stdout)


def _cli_txn_list(b: Broker, *args) -> set:
    return {(r["transactional_id"], r["producer_id"], r["transaction_state"], r["coordinator"])
            for r in _moldau_txn(b, "list", *args)}


def _cli_txn_describe(b: Broker, tid: str) -> tuple:
    d = _moldau_txn(b, "describe", "--transactional-id", tid)
    check(d["transactional_id"] == tid, f"moldau transactions describe {tid}: answered for {d['transactional_id']}")
    return ("ok", d["coordinator_id"], d["transaction_state"], d["producer_id"], d["producer_epoch"],
            d["transaction_timeout_ms"], d["current_transaction_start_time_ms"],
            tuple(f"{tp['topic']}-{tp['partition']}" for tp in d["topic_partitions"]))


def _cli_txn_producers(b: Broker, topic: str, partition: int) -> dict:
    return {r["producer_id"]: (r["producer_epoch"], r["last_sequence"], r["last_timestamp"],
                               r["latest_coordinator_epoch"], r["current_transaction_start_offset"])
            for r in _moldau_txn(b, "describe-producers", "--topic", topic, "--partition", str(partition))}


def _expect(problems: List[str], what: str, got, want):
    if not (want == got):
        problems.append(f"{what}: got {got!r}, want {want!r}")


@scenario
def txn_admin_java(ctx: Ctx):
    """Java Admin 3.9 transaction APIs on a hanging transaction: listTransactions, describeTransactions, describeProducers, abortTransaction (as kafka-transactions abort), fenceProducers; cross-checked with `moldau transactions`."""
    b = ctx.broker()
    bs = b.bootstrap
    T, FT = "txn-admin", "txn-admin-fence"
    HANG, COMMIT, FENCE, UNKNOWN = "java-hanging", "java-committer", "java-fenced", "java-never-used"
    C.ck_admin_create(bs, T, 2)
    C.ck_admin_create(bs, FT, 1)
    C.java_classpath()
    problems: List[str] = []
    # Explicit record timestamps an hour back: a producer's last timestamp is then told apart from
    # a transaction marker's (Kafka stamps markers with the broker's clock and counts them too).
    base = now_ms() - 3_600_000
    sends: Dict[str, List[int]] = {}
    ok_lines: Dict[int, List[int]] = {}

    def op(s: _JavaTxnScript, o: str, name: str, *rest: str, ok=True) -> int:
        ln = s.op(o, name, *rest)
        if ok:
            ok_lines.setdefault(id(s), []).append(ln)
        return ln

    def new(s, name, tid=None, timeout=None):
        conf = {"linger.ms": "5", "max.block.ms": "20000", "delivery.timeout.ms": "20000", "request.timeout.ms": "10000"}
        if tid:
            conf.update({"transactional.id": tid, "transaction.timeout.ms": str(timeout)})
        else:
            conf.update({"enable.idempotence": "false", "acks": "all"})  # no producer state at all
        op(s, "new", name, *[f"{k}={v}" for k, v in conf.items()])

    stamps: Dict[tuple, int] = {}  # (script, idx) -> the record's timestamp

    def send(s, name, label, topic, partition, n):
        for i in range(n):
            ts = base + len(stamps)
            idx = s.send(name, topic, partition, f"{label}-{partition}-{i}", ts=ts)
            stamps[(id(s), idx)] = ts
            sends.setdefault(label, []).append(idx)

    def run(s, what):
        t0 = now_ms()
        s.run(ctx, bs)
        t1 = now_ms()
        _txn_admin_record(ctx, f"txn-script ({what})", s.output)
        for ln in ok_lines[id(s)]:
            got = s.ops.get(ln)
            if got is None or got[2] != "ok":
                problems.append(f"{what}: script line {ln} ({s.lines[ln - 1].split(chr(9))[:2]}): {got}, want ok")
        ctx.log(f"{what}: {len(s.lines)} Java ops in {(t1 - t0) / 1000:.1f}s")
        return t0, t1

    def offsets(s, label):
        return [s.acks.get(i) for i in sends[label]]

    def recs(s, *labels):
        return [(*s.acks[i], s.sent[i][1]) for lb in labels for i in sends[lb] if i in s.acks]

    # ---- 1. set-up: T-0 gets 3 plain records, a committed transaction (also on T-1), then a
    # ---- transaction of HANG that is flushed and never ended (its JVM halts), then another commit
    s1 = _JavaTxnScript()
    new(s1, "PLAIN")
    send(s1, "PLAIN", "plain", T, 0, 3)
    op(s1, "flush", "PLAIN")
    op(s1, "close", "PLAIN")
    new(s1, "C", COMMIT, 45000)
    op(s1, "init", "C")
    op(s1, "begin", "C")
    send(s1, "C", "c1", T, 0, 4)
    send(s1, "C", "c1", T, 1, 2)
    op(s1, "commit", "C")
    new(s1, "H", HANG, 600000)  # long: the coordinator must not abort it during the test
    op(s1, "init", "H")
    op(s1, "begin", "H")
    send(s1, "H", "hang", T, 0, 5)
    op(s1, "flush", "H")
    op(s1, "begin", "C")
    send(s1, "C", "c2", T, 0, 3)
    send(s1, "C", "c2", T, 1, 1)
    op(s1, "commit", "C")
    op(s1, "pid", "C")
    op(s1, "pid", "H")
    op(s1, "close", "C")
    op(s1, "halt", "-", ok=False)  # the JVM ends without closing H: its transaction stays open
    t0, t1 = run(s1, "set-up")
    want_offsets = {"plain": [(T, 0, o) for o in range(3)],
                    "c1": [(T, 0, o) for o in range(3, 7)] + [(T, 1, 0), (T, 1, 1)],  # marker at T-0 7, T-1 2
                    "hang": [(T, 0, o) for o in range(8, 13)],
                    "c2": [(T, 0, o) for o in range(13, 16)] + [(T, 1, 3)]}  # markers at T-0 16, T-1 4
    for label, want in want_offsets.items():
        _expect(problems, f"set-up: acknowledged (topic, partition, offset) of '{label}'", offsets(s1, label), want)
    check("C" in s1.pids and "H" in s1.pids, f"set-up: no producer ids printed: {s1.pids}")
    fail_if(problems, "txn admin set-up")
    (pid_c, ep_c), (pid_h, ep_h) = s1.pids["C"], s1.pids["H"]
    hang_start = 8
    hang_last_ts = stamps[(id(s1), sends["hang"][-1])]
    _expect(problems, "set-up: producer epochs of C and H (first InitProducerId)", (ep_c, ep_h), (0, 0))
    ctx.log(f"committer {COMMIT} = producer {pid_c}, hanging {HANG} = producer {pid_h} (open from offset {hang_start})")

    # ---- 2-4. the hanging transaction as the Admin sees it
    win = _Within(t0, t1)
    l_h, l_c = (HANG, pid_h, "Ongoing", 1), (COMMIT, pid_c, "CompleteCommit", 1)
    q1 = _txn_admin(ctx, bs, "list", "list:state=Ongoing", f"list:pid={pid_h}", f"list:state=Ongoing:pid={pid_c}",
                    f"list:state=CompleteCommit,Ongoing:pid={pid_c},{pid_h}", f"describe:{HANG},{COMMIT},{UNKNOWN}",
                    f"producers:{T}:0", f"producers:{T}:1", f"offsets:{T}:0", f"offsets:{T}:1")
    _expect(problems, "listTransactions()", q1.lists.get("list"), {l_h, l_c})
    _expect(problems, "listTransactions(filterStates [Ongoing])", q1.lists.get("list:state=Ongoing"), {l_h})
    _expect(problems, f"listTransactions(filterProducerIds [{pid_h}])", q1.lists.get(f"list:pid={pid_h}"), {l_h})
    _expect(problems, f"listTransactions(filterStates [Ongoing], filterProducerIds [{pid_c}]) (both filters apply)",
            q1.lists.get(f"list:state=Ongoing:pid={pid_c}"), set())
    _expect(problems, f"listTransactions(filterStates [CompleteCommit, Ongoing], filterProducerIds [{pid_c}, {pid_h}])",
            q1.lists.get(f"list:state=CompleteCommit,Ongoing:pid={pid_c},{pid_h}"), {l_h, l_c})
    tag = f"describe:{HANG},{COMMIT},{UNKNOWN}"
    d_h = q1.descs.get((tag, HANG))
    _expect(problems, f"describeTransactions {HANG} (coordinator, state, producer id, epoch, timeout, start, partitions)",
            d_h, ("ok", 1, "Ongoing", pid_h, 0, 600000, win, (f"{T}-0",)))
    # Kafka keeps the start time of the last transaction once it completes (TransactionMetadata.prepareComplete)
    d_c = q1.descs.get((tag, COMMIT))
    _expect(problems, f"describeTransactions {COMMIT}", d_c, ("ok", 1, "CompleteCommit", pid_c, 0, 45000, win, ()))
    if d_h and d_c and d_h[0] == d_c[0] == "ok" and None not in (d_h[6], d_c[6]) and d_c[6] < d_h[6]:
        problems.append(f"describeTransactions: {COMMIT}'s last transaction started at {d_c[6]}, before {HANG}'s "
                        f"({d_h[6]}), yet it began after {HANG} had flushed")
    _expect(problems, f"describeTransactions {UNKNOWN}", q1.descs.get((tag, UNKNOWN)),
            ("exc", "TransactionalIdNotFoundException -"))
    p_c0 = (0, 6, win, 0, None)  # last timestamp: its commit marker's; coordinator epoch 0 from the markers
    _expect(problems, f"describeProducers {T}-0 {{pid: (epoch, last seq, last ts, coordinator epoch, txn start)}}",
            q1.prods.get(f"producers:{T}:0"), {pid_h: (0, 4, hang_last_ts, None, hang_start), pid_c: p_c0})
    _expect(problems, f"describeProducers {T}-1", q1.prods.get(f"producers:{T}:1"), {pid_c: (0, 2, win, 0, None)})
    _expect(problems, f"listOffsets {T}-0 latest (read_committed = the hanging transaction's start, read_uncommitted)",
            q1.offsets.get(f"offsets:{T}:0"), (hang_start, 17))
    _expect(problems, f"listOffsets {T}-1 latest", q1.offsets.get(f"offsets:{T}:1"), (5, 5))
    ctx.log(f"Java Admin, hanging: {sorted(q1.lists.get('list', ()))}; {T}-0 producers {q1.prods.get(f'producers:{T}:0')}")

    # a read_committed consumer stops at the hanging transaction: c2 on T-0 is held back
    got = C.java_consume(bs, [T], conf={"isolation.level": "read_committed"})
    problems += _multiset_problems(f"Java read_committed {T} while the transaction hangs (topic, partition, offset, value)",
                                   [(r.topic, r.partition, r.offset, r.value) for r in got[T]],
                                   [r for r in recs(s1, "plain", "c1", "c2") if not (r[1] == 0 and r[2] > hang_start)])

    # ---- 7. `moldau transactions` agrees with the Java Admin
    _expect(problems, "`moldau transactions list` vs Java listTransactions()", _cli_txn_list(b), q1.lists.get("list"))
    _expect(problems, "`moldau transactions list --state Ongoing` vs Java", _cli_txn_list(b, "--state", "Ongoing"),
            q1.lists.get("list:state=Ongoing"))
    for tid in (HANG, COMMIT):
        _expect(problems, f"`moldau transactions describe --transactional-id {tid}` vs Java describeTransactions",
                _cli_txn_describe(b, tid), q1.descs.get((tag, tid)))
    _expect(problems, f"`moldau transactions describe-producers {T}-0` vs Java describeProducers",
            _cli_txn_producers(b, T, 0), q1.prods.get(f"producers:{T}:0"))

    # ---- 5. abort it as kafka-transactions abort --start-offset does, then look again
    ta0 = now_ms()
    q2 = _txn_admin(ctx, bs, f"abort-start:{T}:0:{hang_start}", "list", f"describe:{HANG}", f"producers:{T}:0",
                    f"offsets:{T}:0", f"again@abort-start:{T}:0:{hang_start}")
    ta1 = now_ms()
    _expect(problems, "abort spec from describeProducers (producer id, epoch, coordinator epoch or 0)",
            q2.specs.get(f"abort-start:{T}:0:{hang_start}"), (pid_h, 0, 0))
    _expect(problems, "abortTransaction", q2.aborts.get(f"abort-start:{T}:0:{hang_start}"), "ok")
    # Admin.abortTransaction writes the marker only: the coordinator still has the transaction Ongoing
    _expect(problems, "listTransactions() after the abort", q2.lists.get("list"), {l_h, l_c})
    _expect(problems, f"describeTransactions {HANG} after the abort (unchanged)", q2.descs.get((f"describe:{HANG}", HANG)), d_h)
    before = q1.prods.get(f"producers:{T}:0")
    if isinstance(before, dict) and pid_c in before:
        p_c0 = before[pid_c]  # the committer is untouched by the abort: exactly as before
    _expect(problems, f"describeProducers {T}-0 after the abort (the abort marker's timestamp and coordinator epoch)",
            q2.prods.get(f"producers:{T}:0"), {pid_h: (0, 4, _Within(ta0, ta1), 0, None), pid_c: p_c0})
    _expect(problems, f"listOffsets {T}-0 latest after the abort (marker at 17)", q2.offsets.get(f"offsets:{T}:0"), (18, 18))
    _expect(problems, "a second abort --start-offset finds no transaction there", q2.specs.get(
        f"again@abort-start:{T}:0:{hang_start}"), "none")
    _expect(problems, f"`moldau transactions describe-producers {T}-0` vs Java after the abort",
            _cli_txn_producers(b, T, 0), q2.prods.get(f"producers:{T}:0"))
    _expect(problems, f"`moldau transactions describe --transactional-id {HANG}` vs Java after the abort",
            _cli_txn_describe(b, HANG), q2.descs.get((f"describe:{HANG}", HANG)))

    # ---- 6. fenceProducers on a transactional id with an open transaction, from the same JVM as its producer
    s2 = _JavaTxnScript()
    new(s2, "F", FENCE, 300000)
    op(s2, "init", "F")
    op(s2, "begin", "F")
    send(s2, "F", "f1", FT, 0, 2)
    op(s2, "commit", "F")
    op(s2, "begin", "F")
    send(s2, "F", "f2", FT, 0, 3)
    op(s2, "flush", "F")
    op(s2, "pid", "F")
    for cmd in (f"pre@describe:{FENCE}", f"fence:{FENCE}", f"post@describe:{FENCE}", f"producers:{FT}:0",
                f"offsets:{FT}:0"):
        op(s2, "admin", "-", cmd)
    commit_line = op(s2, "commit", "F", ok=False)
    abort_line = op(s2, "abort", "F", ok=False)
    op(s2, "close", "F")
    new(s2, "F2", FENCE, 300000)  # a successor with the same transactional.id
    op(s2, "init", "F2")
    op(s2, "begin", "F2")
    send(s2, "F2", "f3", FT, 0, 1)
    op(s2, "commit", "F2")
    op(s2, "pid", "F2")
    op(s2, "admin", "-", f"after@describe:{FENCE}")
    op(s2, "close", "F2")
    tf0, tf1 = run(s2, "fence")
    winf = _Within(tf0, tf1)
    _expect(problems, "fence script: acknowledged offsets", [offsets(s2, lb) for lb in ("f1", "f2", "f3")],
            [[(FT, 0, 0), (FT, 0, 1)], [(FT, 0, o) for o in (3, 4, 5)], [(FT, 0, 7)]])
    check("F" in s2.pids, f"fence script: no producer id printed: {s2.pids}")
    pid_f, ep_f = s2.pids["F"]
    _expect(problems, "the fenced producer's own epoch before the fence", ep_f, 0)
    q4 = _TxnAdminOut(s2.output)
    _expect(problems, f"describeTransactions {FENCE} before the fence", q4.descs.get((f"pre@describe:{FENCE}", FENCE)),
            ("ok", 1, "Ongoing", pid_f, 0, 300000, winf, (f"{FT}-0",)))
    # Kafka: InitProducerId on an Ongoing transaction bumps the epoch to fence and aborts (markers with
    # epoch 1), answers CONCURRENT_TRANSACTIONS; the Admin retries and gets epoch 2, state Empty, the
    # Admin's request.timeout.ms (20000) as the transaction timeout.
    _expect(problems, f"fenceProducers {FENCE} (producer id, epoch)", q4.fences.get((f"fence:{FENCE}", FENCE)),
            ("ok", pid_f, 2))
    _expect(problems, f"describeTransactions {FENCE} after the fence", q4.descs.get((f"post@describe:{FENCE}", FENCE)),
            ("ok", 1, "Empty", pid_f, 2, 20000, None, ()))
    # the fence's abort marker carries epoch 1: a new epoch drops the entry's batch metadata, so the last
    # sequence is -1 (Kafka's ProducerStateEntry.maybeUpdateProducerEpoch), the last timestamp the marker's
    _expect(problems, f"describeProducers {FT}-0 after the fence (the fence's abort marker, epoch 1)",
            q4.prods.get(f"producers:{FT}:0"), {pid_f: (1, -1, winf, 0, None)})
    _expect(problems, f"listOffsets {FT}-0 after the fence (abort marker at 6)", q4.offsets.get(f"offsets:{FT}:0"), (7, 7))
    fenced = {"commit": s2.ops.get(commit_line, ("", "", "no result"))[2],
              "abort": s2.ops.get(abort_line, ("", "", "no result"))[2]}
    ctx.log(f"fenced producer {pid_f}: Java raised {fenced}")
    # Kafka: EndTxn with the old epoch gets PRODUCER_FENCED (TransactionCoordinator.endTransaction), which the
    # 3.9 producer raises as ProducerFencedException, a fatal error, raised again by abortTransaction
    _expect(problems, "the fenced producer's commitTransaction / abortTransaction", fenced,
            {"commit": "ProducerFencedException -", "abort": "ProducerFencedException -"})
    _expect(problems, "the successor's producer id and epoch", s2.pids.get("F2"), (pid_f, 3))
    _expect(problems, f"describeTransactions {FENCE} after the successor's commit",
            q4.descs.get((f"after@describe:{FENCE}", FENCE)), ("ok", 1, "CompleteCommit", pid_f, 3, 300000, winf, ()))

    # refusals of stale aborts: an older producer epoch, an older coordinator epoch
    q3 = _txn_admin(ctx, bs, f"stale-epoch@abort:{FT}:0:{pid_f}:0:0", f"stale-coordinator@abort:{FT}:0:{pid_f}:3:-1", "list",
                    f"producers:{FT}:0", f"offsets:{FT}:0", f"offsets:{T}:0")
    _expect(problems, f"abortTransaction on {FT}-0 with epoch 0 (the producer is at 3)",
            q3.aborts.get(f"stale-epoch@abort:{FT}:0:{pid_f}:0:0"), "InvalidProducerEpochException -")
    _expect(problems, f"abortTransaction on {FT}-0 with coordinator epoch -1 (the partition saw 0)",
            q3.aborts.get(f"stale-coordinator@abort:{FT}:0:{pid_f}:3:-1"), "TransactionCoordinatorFencedException -")
    _expect(problems, "listTransactions() at the end", q3.lists.get("list"),
            {l_h, l_c, (FENCE, pid_f, "CompleteCommit", 1)})
    _expect(problems, f"describeProducers {FT}-0 at the end", q3.prods.get(f"producers:{FT}:0"),
            {pid_f: (3, 0, winf, 0, None)})
    _expect(problems, f"listOffsets {FT}-0 at the end", q3.offsets.get(f"offsets:{FT}:0"), (9, 9))
    _expect(problems, f"listOffsets {T}-0 at the end (the consumers below must reach 18)", q3.offsets.get(f"offsets:{T}:0"),
            (18, 18))
    _expect(problems, "`moldau transactions list` vs Java at the end", _cli_txn_list(b), q3.lists.get("list"))
    _expect(problems, f"`moldau transactions describe-producers {FT}-0` vs Java", _cli_txn_producers(b, FT, 0),
            q3.prods.get(f"producers:{FT}:0"))

    # ---- 5. (reads) read_committed reads both topics to their end: no aborted record, every committed one
    for iso in ("read_committed", "read_uncommitted"):
        got = C.java_consume(bs, [T, FT], conf={"isolation.level": iso})
        extra = iso == "read_uncommitted"
        problems += _multiset_problems(f"Java {iso} {T} (topic, partition, offset, value)",
                                       [(r.topic, r.partition, r.offset, r.value) for r in got[T]],
                                       recs(s1, "plain", "c1", "c2", *(["hang"] if extra else [])))
        problems += _multiset_problems(f"Java {iso} {FT}", [(r.topic, r.partition, r.offset, r.value) for r in got[FT]],
                                       recs(s2, "f1", "f3", *(["f2"] if extra else [])))
        ctx.log(f"Java {iso}: {len(got[T])} records in {T}, {len(got[FT])} in {FT}")
    fail_if(problems, "Java transaction admin")


# --------------------------------------------------------------------------- the kafka-python transactional producer

def _kp_blocking(what: str, fn: Callable, timeout: float = 40.0):
    """Run a kafka-python call that has no timeout of its own (commit_transaction,
    abort_transaction and send_offsets_to_transaction wait without a limit in 3.0.12) in a
    thread, so that a broker that never answers fails the check instead of the scenario's
    time limit. Returns ("ok", result) or ("exc", exception)."""
    box: list = []

    def run():
        try:
            box.append(("ok", fn()))
        except BaseException as e:  # noqa: the exception is the observation
            box.append(("exc", e))
    t = threading.Thread(target=run, daemon=True, name=f"kp-{what}")
    t.start()
    t.join(timeout)
    check(bool(box), f"kafka-python {what}: no answer within {timeout}s")
    return box[0]


def _kp_ok(what: str, fn: Callable, timeout: float = 40.0):
    kind, r = _kp_blocking(what, fn, timeout)
    if kind == "exc":
        raise CheckFailed(f"kafka-python {what} raised {type(r).__name__}: {r!r}")
    return r


def _kp_exc_name(outcome) -> str:
    """"ok", the exception's class, or for kafka-python's fatal-state KafkaError the error it is stuck on."""
    import re
    kind, r = outcome
    if kind == "ok":
        return "ok"
    m = re.search(r"in an error state: \[Error \d+\] (\w+)", str(r))
    return f"{type(r).__name__} (error state {m.group(1)})" if m else type(r).__name__


class _KpTxnWire:
    """The error codes the broker put into the transactional answers a kafka-python producer got,
    recorded by wrapping its request handlers' handle_response (which then runs as before).
    kafka-python 3.0.12 turns INVALID_PRODUCER_EPOCH (47) and PRODUCER_FENCED (90) alike into
    ProducerFencedError on InitProducerId, AddPartitionsToTxn, TxnOffsetCommit and EndTxn, so the
    exception alone does not say which one the broker sent; Kafka 3.9 sends 90 to these versions."""

    def __init__(self):
        import kafka.producer.transaction_manager as tm
        self.seen: List[tuple] = []  # (transactional id, request, error codes)
        self._undo = []
        for cls, codes in ((tm.InitProducerIdHandler, lambda r: [r.error_code]),
                           (tm.EndTxnHandler, lambda r: [r.error_code]),
                           (tm.AddPartitionsToTxnHandler,
                            lambda r: sorted({c for _, ps in r.results_by_topic_v3_and_below for _, c in ps}))):
            orig = cls.handle_response

            def wrapped(handler, response, _orig=orig, _codes=codes, _name=cls.__name__.replace("Handler", "")):
                try:
                    self.seen.append((handler.transactional_id, _name, _codes(response)))
                except Exception as e:  # noqa: recording must never change what the client does
                    self.seen.append((handler.transactional_id, _name, f"unreadable: {e!r}"))
                return _orig(handler, response)
            cls.handle_response = wrapped
            self._undo.append((cls, orig))

    def of(self, tid: str) -> List[tuple]:
        return [(name, codes) for t, name, codes in self.seen if t == tid]

    def close(self):
        for cls, orig in self._undo:
            cls.handle_response = orig


def _kp_txn_producer(bs: str, tid: str, **conf):
    from kafka import KafkaProducer
    c = dict(bootstrap_servers=bs, transactional_id=tid, client_id=tid, linger_ms=5, acks="all",
             max_block_ms=40000, request_timeout_ms=20000, delivery_timeout_ms=40000,
             transaction_timeout_ms=30000)
    c.update(conf)
    p = KafkaProducer(**c)
    p.init_transactions()
    return p


def _kp_send_all(p, sends) -> list:
    """send (topic, partition|None, key, value) tuples; futures in order."""
    return [p.send(t, key=k, value=v, partition=part) for t, part, k, v in sends]


def _kp_acked(futs, sends, what: str) -> List[tuple]:
    """(topic, partition, offset, value) from the send futures, all of which must have succeeded."""
    out, errors = [], []
    for f, (t, _, _, v) in zip(futs, sends):
        try:
            md = f.get(timeout=30)
            out.append((md.topic, md.partition, md.offset, v))
        except Exception as e:  # noqa
            errors.append(f"{v!r}: {e!r}")
    check(not errors, f"kafka-python {what}: {len(errors)} sends failed, e.g. {errors[:3]}")
    return out


# What Kafka 3.9 answers a fenced producer and what kafka-python 3.0.12 makes of it (its
# transaction_manager.py and sender.py). Set-up of each case: the producer has an open transaction
# with records flushed to partitions 0 and 1 of its topic, then a second producer with the same transactional
# id calls init_transactions (Kafka bumps the epoch to fence, aborts, and hands out epoch+2).
#  - commit straight away: EndTxn with the old epoch -> PRODUCER_FENCED (90) -> ProducerFencedError
#    from commit_transaction, a fatal state: abort_transaction raises KafkaError("... error state:
#    ProducerFencedError").
#  - send to a partition already in the transaction: Produce with the old epoch -> INVALID_PRODUCER_EPOCH
#    (the send's future fails with InvalidProducerEpochError); kafka-python treats that as a KIP-360
#    epoch bump and sends InitProducerId v3+ with its old (id, epoch) -> PRODUCER_FENCED (the
#    coordinator is two epochs on) -> fatal; commit and abort raise KafkaError(... ProducerFencedError).
#  - send to a new partition: AddPartitionsToTxn with the old epoch -> PRODUCER_FENCED for the partition
#    -> the future fails with ProducerFencedError, fatal; commit and abort as above.
_KP_FENCE_ERROR_STATE = "KafkaError (error state ProducerFencedError)"
_KP_FENCED = {
    "commit straight away": {
        "wire": [("EndTxn", [90])], "commit": "ProducerFencedError", "abort": _KP_FENCE_ERROR_STATE},
    "send to a partition already in the transaction": {
        "send": "InvalidProducerEpochError", "wire": [("InitProducerId", [90])],
        "commit": _KP_FENCE_ERROR_STATE, "abort": _KP_FENCE_ERROR_STATE},
    "send to a new partition": {
        "send": "ProducerFencedError", "wire": [("AddPartitionsToTxn", [90])],
        "commit": _KP_FENCE_ERROR_STATE, "abort": _KP_FENCE_ERROR_STATE},
}

KP_CTP_RECORDS = 100


@scenario
def txn_kafka_python(ctx: Ctx):
    """kafka-python 3.0.12 transactional producer: commit/abort over 5 partitions read by kafka-python and confluent (read_committed vs read_uncommitted), consume-transform-produce with send_offsets_to_transaction and a mid-run abort, fencing by a second init_transactions."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    C._kp_logging()
    b = ctx.broker(**{"group.initial.rebalance.delay.ms": "0"})
    bs = b.bootstrap
    ta, tb, tin, tout, tf = "txn-kp-a", "txn-kp-b", "txn-kp-in", "txn-kp-out", "txn-kp-fence"
    for t, n in ((ta, 3), (tb, 2), (tin, 3), (tout, 3), (tf, 3)):
        C.ck_admin_create(bs, t, n)
    problems: List[str] = []
    t_start = time.time()

    # ---- 1. commit / abort (flushed first) / commit over 5 partitions of two topics
    def sends(tag, n_a, n_b, keyed=0):
        out = [(ta, i % 3, f"{tag}-a{i}".encode(), f"{tag}-a-{i}".encode()) for i in range(n_a)]
        out += [(tb, i % 2, f"{tag}-b{i}".encode(), f"{tag}-b-{i}".encode()) for i in range(n_b)]
        out += [(ta if i % 2 else tb, None, f"k{i}".encode(), f"{tag}-keyed-{i}".encode()) for i in range(keyed)]
        return out

    p = _kp_txn_producer(bs, "kp-txn")
    committed: List[tuple] = []
    aborted: List[tuple] = []
    try:
        for tag, n_a, n_b, keyed, commit in (("commit1", 24, 10, 8, True), ("abort1", 12, 8, 6, False),
                                              ("commit2", 9, 6, 0, True)):
            p.begin_transaction()
            ss = sends(tag, n_a, n_b, keyed)
            futs = _kp_send_all(p, ss)
            if commit:
                _kp_ok(f"commit_transaction ({tag})", p.commit_transaction)
                committed += _kp_acked(futs, ss, tag)
            else:
                p.flush(timeout=30)  # the records are in the log before the abort
                acked = _kp_acked(futs, ss, tag)
                _kp_ok(f"abort_transaction ({tag})", p.abort_transaction)
                aborted += acked
    finally:
        p.close(timeout=10)
    parts = sorted({(t, part) for t, part, _, _ in committed})
    check(parts == [(ta, 0), (ta, 1), (ta, 2), (tb, 0), (tb, 1)], f"the committed transactions cover only {parts}")
    parts = sorted({(t, part) for t, part, _, _ in aborted})
    check(len(parts) == 5, f"the aborted transaction covers only {parts}")
    ctx.log(f"kafka-python producer: {len(committed)} committed, {len(aborted)} aborted records "
            f"({time.time() - t_start:.1f}s)")
    for iso in ("read_committed", "read_uncommitted"):
        want = committed + (aborted if iso == "read_uncommitted" else [])
        n = 0
        for t in (ta, tb):
            w = [r for r in want if r[0] == t]
            got = C.kp_consume(bs, t, timeout=40, conf={"isolation_level": iso})
            problems += _multiset_problems(f"kafka-python {iso} {t} (topic, partition, offset, value)",
                                           [(r.topic, r.partition, r.offset, r.value) for r in got], w)
            got = _ck_read_to_eof(bs, t, iso, timeout=40)
            problems += _multiset_problems(f"confluent {iso} {t} (topic, partition, offset, value)",
                                           [(r.topic, r.partition, r.offset, r.value) for r in got], w)
            n += len(got)
        ctx.log(f"{iso}: {n} records in {ta}+{tb} (kafka-python and confluent)")

    # ---- 2. consume-transform-produce: group consumer (read_committed) + transactional producer,
    # ---- one transaction per poll, the 3rd flushed and aborted, then a seek back to the committed offsets
    t0 = time.time()
    group, abort_at = "txn-kp-group", 3
    inputs = C.ck_produce(bs, [Rec(topic=tin, key=f"k{i % 23}".encode(), value=f"in-{i}".encode(), headers=[])
                               for i in range(KP_CTP_RECORDS)])
    end = {part: 0 for part in range(3)}
    for r in inputs:
        end[r.partition] = max(end[r.partition], r.offset + 1)
    tps = [TopicPartition(tin, part) for part in range(3)]
    consumer = KafkaConsumer(tin, bootstrap_servers=bs, group_id=group, client_id="kp-ctp-consumer",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             isolation_level="read_committed", max_poll_records=15,
                             session_timeout_ms=10000, heartbeat_interval_ms=500, request_timeout_ms=20000)
    producer = _kp_txn_producer(bs, "kp-ctp")
    processed: List[tuple] = []   # (partition, offset, value), every time it is transformed
    aborted_in: List[tuple] = []
    kinds: List[str] = []
    committed_now: Dict[int, int] = {}  # what the group must have committed
    try:
        deadline = time.time() + 60
        while True:
            pos = {tp.partition: consumer.position(tp) for tp in consumer.assignment()}
            if len(pos) == 3 and pos == end and kinds:
                break
            check(time.time() < deadline, f"consume-transform-produce stuck: positions {pos}, input end {end}, "
                                          f"transactions {kinds}")
            batch = consumer.poll(timeout_ms=1000)
            recs = [m for msgs in batch.values() for m in msgs]
            if not recs:
                continue
            k = len(kinds) + 1
            producer.begin_transaction()
            futs = [producer.send(tout, key=m.key, value=b"out:" + m.value) for m in recs]
            offsets = {tp: OffsetAndMetadata(msgs[-1].offset + 1, "", -1) for tp, msgs in batch.items() if msgs}
            _kp_ok(f"send_offsets_to_transaction (transaction {k})",
                   lambda: producer.send_offsets_to_transaction(offsets, consumer.group_metadata()))
            processed += [(m.partition, m.offset, m.value) for m in recs]
            if k == abort_at:
                producer.flush(timeout=30)
                check(all(f.succeeded() for f in futs), f"transaction {k}: flushed sends not all acknowledged")
                _kp_ok(f"abort_transaction (transaction {k})", producer.abort_transaction)
                aborted_in += [(m.partition, m.offset, m.value) for m in recs]
                kinds.append("abort")
                # the app rewinds to what the group committed (kafka-python: committed() asks the
                # coordinator, with require_stable as the consumer reads read_committed)
                for tp in consumer.assignment():
                    c = consumer.committed(tp, timeout_ms=20000)
                    if c is None:
                        consumer.seek_to_beginning(tp)
                    else:
                        consumer.seek(tp, c)
                want = dict(committed_now)
            else:
                _kp_ok(f"commit_transaction (transaction {k})", producer.commit_transaction)
                kinds.append("commit")
                committed_now.update({tp.partition: o.offset for tp, o in offsets.items()})
                want = dict(committed_now)
            got = {tp.partition: consumer.committed(tp, timeout_ms=20000) for tp in tps}
            got = {part: o for part, o in got.items() if o is not None}
            if got != want:
                problems.append(f"transaction {k} ({kinds[-1]}, offsets "
                                f"{ {tp.partition: o.offset for tp, o in offsets.items()} }): the group's committed "
                                f"offsets are then {got}, want {want}")
            if k == abort_at and all(committed_now.get(tp.partition) == o.offset for tp, o in offsets.items()):
                problems.append(f"the aborted transaction {k} carried offsets equal to the committed ones: "
                                f"the abort proves nothing")
        final = {tp.partition: consumer.committed(tp, timeout_ms=20000) for tp in tps}
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=10)
    ctx.log(f"kafka-python consume-transform-produce: {len(kinds)} transactions ({' '.join(kinds)}) in "
            f"{time.time() - t0:.1f}s; the aborted one held {len(aborted_in)} records")
    if kinds.count("abort") != 1 or kinds[abort_at - 1:abort_at] != ["abort"] or "commit" not in kinds[abort_at:]:
        problems.append(f"transactions {kinds}: want exactly one abort, the #{abort_at}, with commits after it")
    problems += _multiset_problems("input records processed (each once, the aborted transaction's twice)",
                                   processed, [(r.partition, r.offset, r.value) for r in inputs] + aborted_in)
    if final != end:
        problems.append(f"kafka-python committed() at the end: {final}, want the input end offsets {end}")
    d = _moldau_groups(b, "describe", "-g", group)
    got = {r["partition"]: r["current_offset"] for r in d["partitions"] if r["topic"] == tin}
    if got != end:
        problems.append(f"`moldau groups describe -g {group}`: committed {got}, want the input end offsets {end}")
    by_value = {r.value: r.key for r in inputs}
    want_out = [(r.key, b"out:" + r.value) for r in inputs]
    aborted_out = [(by_value[v], b"out:" + v) for _, _, v in aborted_in]
    for iso in ("read_committed", "read_uncommitted"):
        want = want_out + (aborted_out if iso == "read_uncommitted" else [])
        got = C.kp_consume(bs, tout, timeout=40, conf={"isolation_level": iso})
        problems += _multiset_problems(f"kafka-python {iso} {tout} (key, value)", [(r.key, r.value) for r in got], want)
        got = _ck_read_to_eof(bs, tout, iso, timeout=40)
        problems += _multiset_problems(f"confluent {iso} {tout} (key, value)", [(r.key, r.value) for r in got], want)
    ctx.log(f"output checked ({time.time() - t0:.1f}s for part 2)")

    # ---- 3. fencing: a second producer with the same transactional id calls init_transactions
    t0 = time.time()
    fence_committed: List[tuple] = []
    fence_aborted: List[tuple] = []
    wire = _KpTxnWire()
    try:
        _kp_fencing(ctx, bs, tf, wire, problems, fence_committed, fence_aborted)
    finally:
        wire.close()
    for iso in ("read_committed", "read_uncommitted"):
        want = fence_committed + (fence_aborted if iso == "read_uncommitted" else [])
        got = C.kp_consume(bs, tf, timeout=40, conf={"isolation_level": iso})
        problems += _multiset_problems(f"kafka-python {iso} {tf} (topic, partition, offset, value)",
                                       [(r.topic, r.partition, r.offset, r.value) for r in got], want)
        got = _ck_read_to_eof(bs, tf, iso, timeout=40)
        problems += _multiset_problems(f"confluent {iso} {tf} (topic, partition, offset, value)",
                                       [(r.topic, r.partition, r.offset, r.value) for r in got], want)
    ctx.log(f"fencing checked ({time.time() - t0:.1f}s); whole scenario {time.time() - t_start:.1f}s")
    fail_if(problems, "kafka-python transactions")


def _kp_fencing(ctx: Ctx, bs: str, tf: str, wire: _KpTxnWire, problems: List[str], fence_committed: List[tuple],
                fence_aborted: List[tuple]):
    """txn_kafka_python part 3: one zombie per _KP_FENCED case; what it raised, the successor commits."""
    for n, (case, want) in enumerate(_KP_FENCED.items()):
        tid = f"kp-fence-{n}"
        z = _kp_txn_producer(bs, tid)
        z2 = None
        try:
            z.begin_transaction()
            ss = [(tf, i % 2, None, f"zombie{n}-pre-{i}".encode()) for i in range(6)]  # partitions 0 and 1
            futs = _kp_send_all(z, ss)
            z.flush(timeout=30)
            fence_aborted += _kp_acked(futs, ss, f"zombie {n} before the fence")
            z2 = _kp_txn_producer(bs, tid)
            seen = {}
            del wire.seen[:]
            if "send" in want:
                f = z.send(tf, value=f"zombie{n}-post".encode(), partition=0 if "already" in case else 2)
                kind, r = _kp_blocking("send after the fence", lambda: f.get(timeout=30))
                seen["send"] = _kp_exc_name((kind, r))
                if kind == "ok":
                    fence_aborted.append((r.topic, r.partition, r.offset, f"zombie{n}-post".encode()))
                # kafka-python's sender moves to its fatal state on its own thread (after the epoch-bump
                # attempt when the Produce said INVALID_PRODUCER_EPOCH); commit after it has settled, as
                # commit_transaction during the bump would fail with an invalid state transition instead
                settle = time.time() + 20
                while not z._transaction_manager.has_fatal_error() and time.time() < settle:
                    time.sleep(0.05)
            seen["commit"] = _kp_exc_name(_kp_blocking("commit_transaction of the fenced producer", z.commit_transaction))
            seen["abort"] = _kp_exc_name(_kp_blocking("abort_transaction of the fenced producer", z.abort_transaction))
            seen["wire"] = wire.of(tid)
            ctx.log(f"fenced producer, {case}: kafka-python raised {seen}")
            if "ProducerFencedError" not in seen["commit"]:
                problems.append(f"fenced producer, {case}: commit_transaction gave {seen['commit']}, want a "
                                f"ProducerFencedError (or the fatal state it left)")
            if seen != want:
                problems.append(f"fenced producer, {case}: kafka-python raised {seen}; against Kafka it raises {want}")
            z2.begin_transaction()
            ss = [(tf, i % 3, None, f"successor{n}-{i}".encode()) for i in range(4)]
            futs = _kp_send_all(z2, ss)
            _kp_ok(f"commit_transaction of the successor {tid}", z2.commit_transaction)
            fence_committed += _kp_acked(futs, ss, f"successor {n}")
        finally:
            z.close(timeout=5)
            if z2 is not None:
                z2.close(timeout=10)


# =========================================================================== 9. cluster

def _cluster(ctx: Ctx, size: int, **extra: str) -> List[Broker]:
    """`size` nodes, every one a voter of one Raft quorum over its CONTROLLER listener
    (`extra`: further `--override`s for every node)."""
    from harness.broker import free_port
    controller_ports = [free_port() for _ in range(size)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
    nodes = []
    for i in range(size):
        b = Broker(ctx.workdir / f"node{i + 1}")
        b.extra.update({
            "node.id": str(i + 1),
            "listeners": f"PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{controller_ports[i]}",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": voters,
            "controller.quorum.election.timeout.ms": "500",
            **extra,
        })
        ctx.brokers.append(b)
        nodes.append(b)
    # A voter serves clients once the quorum has a leader: start them all, then wait.
    for b in nodes:
        b.spawn()
    for b in nodes:
        b.wait_ready(60)
    return nodes


def _controller_endpoint(b: Broker) -> str:
    """host:port of a `_cluster` node's CONTROLLER listener."""
    listeners = b.extra["listeners"].split(",")
    return next(l.split("://", 1)[1] for l in listeners if l.startswith("CONTROLLER://"))


def _java_cluster_facts(ctx: Ctx, bootstrap: str, what: str, done: Callable[[Dict[str, str]], bool],
                        *props: str) -> Dict[str, str]:
    deadline = time.time() + 60
    last = None
    while time.time() < deadline:
        try:
            facts = C.java_cluster_describe(bootstrap, *props)
            last = facts
            if done(facts):
                return facts
        except CheckFailed as e:  # an Admin call during an election
            last = str(e)
        time.sleep(0.5)
    raise CheckFailed(f"{what}: not within 60 s; last answer: {last}")


@scenario
def cluster_java(ctx: Ctx):
    """Three nodes, one quorum: Java Admin describeCluster / describeMetadataQuorum, Java producer and kafka-python reader across brokers, kill -9 of the active controller."""
    nodes = _cluster(ctx, 3)
    bs = ",".join(b.bootstrap for b in nodes)
    facts = _java_cluster_facts(ctx, bs, "three brokers and one controller",
                                lambda f: f.get("nodes") == "[1, 2, 3]" and f.get("controller") == f.get("quorum-leader"))
    ctx.log(f"Java Admin sees {facts}")
    check(facts["quorum-voters"] == "[1, 2, 3]", f"voters: {facts}")
    check(int(facts["quorum-hw"]) > 0, f"high watermark: {facts}")
    leader = int(facts["controller"])

    # The same Admin through the controllers' own listeners (KIP-919 bootstrap.controllers):
    # the nodes are the controllers at their controller endpoints, the controller the leader.
    controllers = ",".join(_controller_endpoint(b) for b in nodes)
    expected = ",".join(sorted(f"{i + 1}@{_controller_endpoint(b)}" for i, b in enumerate(nodes)))
    via = _java_cluster_facts(ctx, bs, "the controllers through bootstrap.controllers",
                              lambda f: f.get("controller") == str(leader),
                              f"bootstrap.controllers={controllers}")
    ctx.log(f"Java Admin with bootstrap.controllers sees {via}")
    check(via["endpoints"] == expected, f"controller endpoints: {via} (expected {expected})")
    check(via["quorum-leader"] == str(leader) and via["quorum-voters"] == "[1, 2, 3]",
          f"quorum through the controllers: {via}")

    lines = C.java_admin_create(bs, "cluster-java", 6)
    check("partitions 6" in lines, f"describe after create: {lines}")
    C.wait_topic_ck(bs, "cluster-java", 6)
    sent = [Rec(topic="cluster-java", key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[]) for i in range(60)]
    acked = C.java_produce(bs, sent)
    check(len(acked) == len(sent), f"Java producer acknowledged {len(acked)} of {len(sent)}")
    read = C.kp_consume(bs, "cluster-java")
    check(sorted(r.value for r in read) == sorted(r.value for r in sent),
          f"kafka-python read {len(read)} records of {len(sent)}")
    check(len({r.partition for r in read}) == 6, "records on all six partitions")

    nodes[leader - 1].kill9()
    survivors = ",".join(b.bootstrap for i, b in enumerate(nodes) if i != leader - 1)
    facts = _java_cluster_facts(ctx, survivors, "a new active controller",
                                lambda f: f.get("quorum-leader") not in (None, str(leader))
                                and f.get("controller") == f.get("quorum-leader"))
    ctx.log(f"after kill -9 of controller {leader}: {facts}")
    lines = C.java_admin_create(survivors, "after-failover", 2)
    check("partitions 2" in lines, f"create after the failover: {lines}")


# --------------------------------------------------------------------------- replication with the real clients

# As in the cli cluster tests: a killed broker is fenced about 2 s after its last heartbeat (its
# partitions then move to the next in-sync replica and it leaves every ISR), a killed active
# controller is replaced within about a second. No automatic leader rebalancing: leadership goes
# back to the preferred replicas only when a client asks (ElectLeaders).
_REPLICATION = {
    "broker.heartbeat.interval.ms": "300",
    "broker.session.timeout.ms": "2000",
    "controller.quorum.fetch.timeout.ms": "1000",
    "auto.leader.rebalance.enable": "false",
}

# (leader, replicas, isr) of each partition, in partition order
_States = List[tuple]


def _poll(what: str, get: Callable, done: Callable, timeout: float = 60.0, interval: float = 0.3):
    """get() until done(its value), which is returned. A CheckFailed from get() (a client call
    during an election) counts as not yet."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = get()
            if done(last):
                return last
        except CheckFailed as e:
            last = f"({e})"
        if time.time() > deadline:
            raise CheckFailed(f"{what}: not within {timeout:.0f} s; last seen: {last}")
        time.sleep(interval)


def _in_sync(states: _States, rf: int) -> bool:
    """Every partition has a leader, rf replicas and all of them in its ISR."""
    return bool(states) and all(ld >= 0 and len(r) == rf and sorted(isr) == sorted(r) for ld, r, isr in states)


def _fmt_states(states: _States) -> str:
    return "; ".join(f"p{p}: leader {ld} replicas {r} isr {isr}" for p, (ld, r, isr) in enumerate(states))


def _fresh_rf3_problems(states: _States, label: str) -> List[str]:
    """A fresh 3-partition RF=3 topic on three brokers, as Kafka's StripedReplicaPlacer lays it
    out: every broker a replica of every partition, each partition led by its first replica,
    the three leaders on three brokers; every replica in sync."""
    problems = []
    if len(states) != 3:
        return [f"{label}: {len(states)} partitions, want 3: {_fmt_states(states)}"]
    for p, (ld, r, isr) in enumerate(states):
        if sorted(r) != [1, 2, 3]:
            problems.append(f"{label}: partition {p} has replicas {r}, want brokers 1, 2 and 3")
        if sorted(isr) != sorted(r):
            problems.append(f"{label}: partition {p} has ISR {isr}, want all of {r}")
        if not r or ld != r[0]:
            problems.append(f"{label}: partition {p} led by {ld}, not by its first (preferred) replica ({r})")
    if sorted(ld for ld, _, _ in states) != [1, 2, 3]:
        problems.append(f"{label}: leaders {[ld for ld, _, _ in states]} are not one per broker")
    return problems


def _failover_problems(before: _States, after: _States, victim: int, label: str) -> List[str]:
    """After `victim` was killed and fenced: same replicas, `victim` out of every ISR, its
    partitions led by their next in-sync replica (Kafka's election: the first replica in
    replica order that is in the ISR and unfenced), every other leader unchanged."""
    problems = []
    for p, ((ld0, r0, _), (ld, r, isr)) in enumerate(zip(before, after)):
        if r != r0:
            problems.append(f"{label}: partition {p} replicas changed from {r0} to {r}")
        want_isr = sorted(x for x in r0 if x != victim)
        if sorted(isr) != want_isr:
            problems.append(f"{label}: partition {p} has ISR {isr}, want {want_isr} (all but the killed node {victim})")
        if ld0 == victim:
            want = next(x for x in r0 if x != victim)
            if ld != want:
                problems.append(f"{label}: partition {p} (led by the killed node {victim}) is led by {ld}, "
                                f"want {want}, its next in-sync replica")
        elif ld != ld0:
            problems.append(f"{label}: partition {p} moved from {ld0} to {ld} though {ld0} was not killed")
    return problems


def _moving(lines: List[str]) -> Dict[tuple, tuple]:
    """Compat.java list-reassign lines: {(topic, partition): (replicas, adding, removing)}."""
    ints = lambda s: [] if s == "-" else [int(x) for x in s.split(",")]
    out = {}
    for ln in lines:
        f = ln.split()
        if f[0] == "moving":
            out[(f[1], int(f[2]))] = (ints(f[3]), ints(f[4]), ints(f[5]))
    return out


def _wait_acks(what: str, count: Callable[[], int], n: int, errors: Callable[[], list], timeout: float = 45.0,
               min_secs: float = 0.0):
    t0 = time.time()
    deadline = t0 + timeout
    while (count() < n or time.time() - t0 < min_secs) and time.time() < deadline:
        time.sleep(0.05)
    check(count() >= n, f"{what}: {count()} of {n} acknowledgements after {timeout:.0f} s; errors: {errors()[:3]}")


@scenario
def replication_java(ctx: Ctx):
    """Three nodes, an RF=3 topic with min.insync.replicas=2 and an idempotent acks=all Java producer (3.9): kill -9 of a leader, the ISR shrinks and regrows, electLeaders(PREFERRED), alter/listPartitionReassignments and cancel, describeMetadataQuorum, nothing acknowledged lost or doubled."""
    nodes = _cluster(ctx, 3, **_REPLICATION)
    bs = ",".join(b.bootstrap for b in nodes)
    admin = C.JavaAdminSession(bs)
    try:
        _replication_java(ctx, nodes, bs, admin)
    finally:
        admin.close()


def _replication_java(ctx: Ctx, nodes: List[Broker], bs: str, admin: C.JavaAdminSession):
    topic, moved, strict = "repl", "repl-move", "repl-strict"
    problems: List[str] = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: got {got}, want {want}")

    def quorum_facts():
        f = next(ln for ln in admin.ok("quorum") if ln.startswith("quorum ")).split()
        return {"leader": int(f[1]), "epoch": int(f[2]), "hw": int(f[3]), "voters": f[4], "observers": f[5]}

    _poll("Java Admin describeCluster: brokers 1, 2, 3", lambda: admin.ok("cluster"),
          lambda out: out and out[0].split()[2] == "1,2,3")
    q = _poll("describeMetadataQuorum with a leader", quorum_facts, lambda f: f["leader"] in (1, 2, 3))
    ctx.log(f"describeMetadataQuorum: {q}")
    expect("describeMetadataQuorum voters", q["voters"], "1,2,3")
    expect("describeMetadataQuorum observers", q["observers"], "-")

    # ---- an RF=3 topic with min.insync.replicas=2
    expect("createTopics(repl, 3 partitions, RF 3, min.insync.replicas=2)",
           admin.call(f"create {topic} 3 3 min.insync.replicas=2"), [f"created {topic}"])
    start = _poll("describeTopics: every replica of repl in sync", lambda: admin.describe(topic)[topic],
                  lambda s: len(s) == 3 and _in_sync(s, 3), timeout=30)
    ctx.log(f"describeTopics {topic}: {_fmt_states(start)}")
    problems += _fresh_rf3_problems(start, "describeTopics after create")
    fail_if(problems, "the new RF=3 topic")
    victim = start[0][0]
    src = next(i for i in (1, 2, 3) if i != victim)
    third = next(i for i in (1, 2, 3) if i not in (victim, src))

    # ---- an RF=1 topic that will move (explicit assignment: both partitions only on src)
    expect("createTopics(repl-move, replicas [src] [src])", admin.call(f"create-at {moved} {src} {src}"),
           [f"created {moved}"])
    _poll("repl-move led by its only replica", lambda: admin.describe(moved)[moved],
          lambda s: s == [(src, [src], [src])] * 2, timeout=30)
    moved_sent = [Rec(topic=moved, key=f"m{i}".encode(), value=f"move-{i}".encode() + b"." * 500, headers=[],
                      partition=i % 2) for i in range(400)]
    moved_acked = C.java_produce(bs, moved_sent)

    # ---- min.insync.replicas=3 on RF=3, led by src (which stays up): no acks=all write while one is down
    expect("createTopics(repl-strict, replicas [src, victim, third], min.insync.replicas=3)",
           admin.call(f"create-at {strict} {src},{victim},{third} min.insync.replicas=3"), [f"created {strict}"])
    _poll("repl-strict in sync", lambda: admin.describe(strict)[strict], lambda s: _in_sync(s, 3), timeout=30)

    def strict_send(value: str, acks: str) -> str:
        """One record, no retries (a refused write fails at once): "ack ..." or "err IDX exception"."""
        rec = Rec(topic=strict, key=None, value=value.encode(), headers=[], partition=0)
        return C.java_produce_lines(bs, [rec], {"acks": acks, "retries": "0", "enable.idempotence": "false",
                                                "linger.ms": "0"})[0]

    # ---- an idempotent acks=all producer on repl, kill -9 the leader of partition 0
    jp = C.JavaSustainedProducer(bs, topic, {"acks": "all", "enable.idempotence": "true", "linger.ms": "5"})
    try:
        _wait_acks("the Java producer before the kill", lambda: len(jp.acks), 300, lambda: jp.errors, 30, min_secs=2)
        n_kill = len(jp.acks)
        nodes[victim - 1].kill9()
        t_kill = time.time()
        ctx.log(f"kill -9 of node {victim} (leader of {topic}-0) after {n_kill} acks")
        both = _poll(f"describeTopics: no node {victim} as leader or in any ISR",
                     lambda: admin.describe(topic, strict),
                     lambda d: len(d[topic]) == 3 and all(ld >= 0 and ld != victim and victim not in isr
                                                          for ld, _, isr in d[topic] + d[strict]),
                     timeout=30)
        after = both[topic]
        ctx.log(f"failover seen after {time.time() - t_kill:.1f} s: {_fmt_states(after)}")
        problems += _failover_problems(start, after, victim, "describeTopics after the kill")
        problems += _failover_problems([(src, [src, victim, third], [])], both[strict], victim,
                                       "describeTopics repl-strict after the kill")
        # Kafka refuses an acks=all write while the ISR is smaller than min.insync.replicas
        # (NOT_ENOUGH_REPLICAS, nothing appended); acks=1 does not care. The describe above may
        # come from a broker a moment ahead of the leader: give the shrink time to reach it.
        time.sleep(1)
        ln = strict_send("strict-1-of-3-down-acks-all", "all")
        if "NotEnoughReplicasException" not in ln:
            problems.append(f"acks=all to repl-strict (ISR 2 < min.insync.replicas 3): got `{ln}`, "
                            f"want NotEnoughReplicasException")
        ln = strict_send("strict-1-of-3-down-acks-1", "1")
        if not ln.startswith("ack 0 0 0 "):
            problems.append(f"acks=1 to repl-strict with one replica down: got `{ln}`, want ack at offset 0")
        # Kafka: the preferred replica is fenced, so PREFERRED_LEADER_NOT_AVAILABLE
        expect("electLeaders(PREFERRED, repl-0) with its preferred replica down", admin.call(f"elect preferred {topic}:0"),
               [f"elect {topic} 0 exc PreferredLeaderNotAvailableException -"])
        _wait_acks("the Java producer after the failover (acks on partition 0)",
                   lambda: sum(1 for a in jp.acks[n_kill:] if a[1] == 0), 100, lambda: jp.errors)
        _wait_acks("the Java producer after the failover", lambda: len(jp.acks), n_kill + 300, lambda: jp.errors)
        ctx.log(f"{len(jp.acks)} acks, the producer goes on with min.insync.replicas=2 of 3")

        # ---- reassignment while the victim is down: it cannot finish until the victim is back
        target = [victim, third]
        expect("alterPartitionReassignments(repl-move-0/1 -> [victim, third])",
               admin.call(f"reassign {moved}:0:{victim},{third} {moved}:1:{victim},{third}"),
               [f"reassign {moved} 0 ok", f"reassign {moved} 1 ok"])
        # Kafka's PartitionReassignmentReplicas: replicas = the target, then the removed ones;
        # adding and removing are sorted (TreeSet differences)
        moving = (target + [src], sorted(target), [src])
        listed = _poll("listPartitionReassignments: both partitions moving", lambda: _moving(admin.ok("list-reassign")),
                       lambda m: len(m) == 2, timeout=15)
        expect("listPartitionReassignments()", listed, {(moved, 0): moving, (moved, 1): moving})
        expect(f"listPartitionReassignments({moved}-1)", _moving(admin.ok(f"list-reassign {moved}:1")),
               {(moved, 1): moving})
        st = admin.describe(moved)[moved]
        expect("describeTopics repl-move replicas while moving", [r for _, r, _ in st], [target + [src]] * 2)
        expect("describeTopics repl-move leaders while moving", [ld for ld, _, _ in st], [src, src])
        # cancel the move of partition 1 (Optional.empty()): back to [src]
        expect("alterPartitionReassignments(repl-move-1 -> Optional.empty())",
               admin.call(f"reassign {moved}:1:cancel"), [f"reassign {moved} 1 ok"])
        expect("listPartitionReassignments() after the cancel", _moving(admin.ok("list-reassign")),
               {(moved, 0): moving})
        _poll("describeTopics: repl-move-1 back on [src] after the cancel", lambda: admin.describe(moved)[moved][1],
              lambda p: p == (src, [src], [src]), timeout=15)
        # Kafka answers a cancel of a partition that is not moving with NO_REASSIGNMENT_IN_PROGRESS
        expect("cancel of repl-0 (never moved)", admin.call(f"reassign {topic}:0:cancel"),
               [f"reassign {topic} 0 exc NoReassignmentInProgressException -"])
        expect("cancel of repl-move-1 again", admin.call(f"reassign {moved}:1:cancel"),
               [f"reassign {moved} 1 exc NoReassignmentInProgressException -"])
        fail_if(problems, "failover and reassignment with the Java Admin")

        # ---- the victim comes back: the ISR is whole again, the move completes
        nodes[victim - 1].start(timeout=40)
        t_back = time.time()
        back = _poll(f"describeTopics: node {victim} back in every ISR of {topic}", lambda: admin.describe(topic)[topic],
                     lambda s: len(s) == 3 and _in_sync(s, 3), timeout=45)
        ctx.log(f"ISR whole {time.time() - t_back:.1f} s after the restart: {_fmt_states(back)}")
        expect("leaders after the restart (no automatic rebalance)", [ld for ld, _, _ in back],
               [ld for ld, _, _ in after])
        _poll("repl-strict in sync again", lambda: admin.describe(strict)[strict], lambda s: _in_sync(s, 3), timeout=30)
        ln = strict_send("strict-all-up-acks-all", "all")
        if not ln.startswith("ack 0 0 1 "):
            problems.append(f"acks=all to repl-strict with every replica back: got `{ln}`, want ack at offset 1")
        done = _poll("describeTopics: repl-move-0 on its target replicas", lambda: admin.describe(moved)[moved][0],
                     lambda p: p[1] == target and sorted(p[2]) == sorted(target), timeout=45)
        ctx.log(f"{moved}-0 moved: leader {done[0]} replicas {done[1]} isr {done[2]}")
        # the removed leader hands over to the first target replica in the ISR
        expect("repl-move-0 leader after the move", done[0], victim)
        expect("listPartitionReassignments() after the move", _moving(admin.ok("list-reassign")), {})
        expect("repl-move-1 after the cancel", admin.describe(moved)[moved][1], (src, [src], [src]))

        # ---- preferred election: the victim leads partition 0 again
        n_elect = len(jp.acks)
        expect(f"electLeaders(PREFERRED, {topic}-0,1,2)", admin.call(f"elect preferred {topic}:0 {topic}:1 {topic}:2"),
               [f"elect {topic} 0 ok", f"elect {topic} 1 exc ElectionNotNeededException -",
                f"elect {topic} 2 exc ElectionNotNeededException -"])
        pref = _poll("describeTopics: every partition led by its first replica", lambda: admin.describe(topic)[topic],
                     lambda s: len(s) == 3 and all(ld == r[0] for ld, r, _ in s), timeout=15)
        problems += _fresh_rf3_problems(pref, "describeTopics after electLeaders")
        _wait_acks("the Java producer after the preferred election (acks on partition 0)",
                   lambda: sum(1 for a in jp.acks[n_elect:] if a[1] == 0), 50, lambda: jp.errors)
        q = quorum_facts()
        ctx.log(f"describeMetadataQuorum: {q}")
        expect("describeMetadataQuorum voters at the end", q["voters"], "1,2,3")
        check(q["leader"] in (1, 2, 3), f"describeMetadataQuorum without a leader: {q}")
    except BaseException:
        jp.proc.kill()
        raise
    jp.stop()
    ctx.log(f"Java producer: {jp.done_line}")
    if jp.errors:
        problems.append(f"{len(jp.errors)} delivery failures, e.g. {jp.errors[:3]}")

    # ---- everything acknowledged is there, once
    got = C.java_consume(bs, [topic, moved, strict])
    acked = {f"java-{i}".encode(): (p, o) for i, p, o, _ in jp.acks}
    ctx.log(f"Java consumer read {len(got[topic])} records of {topic} ({len(acked)} acknowledged), "
            f"{len(got[moved])} of {moved}")
    problems += _acked_problems(got[topic], topic, acked, "Java consumer")
    if len(got[topic]) != len(acked):
        problems.append(f"Java consumer read {len(got[topic])} records of {topic}, {len(acked)} were acknowledged")
    problems += compare(moved_acked, got[moved], f"Java consumer {moved}")
    expect(f"Java consumer {strict} (the refused acks=all record must not be there)",
           [(r.offset, r.value) for r in got[strict]],
           [(0, b"strict-1-of-3-down-acks-1"), (1, b"strict-all-up-acks-all")])
    fail_if(problems, "replication with the Java clients")


def _kp_states(a, topic: str) -> _States:
    """kafka-python KafkaAdminClient.describe_topics (its Metadata request)."""
    try:
        ts = a.describe_topics([topic])
    except Exception as e:  # a node went away under the admin client
        raise CheckFailed(f"kafka-python describe_topics: {type(e).__name__}: {e}")
    t = next((t for t in ts if t["name"] == topic), None)
    check(t is not None and t["error_code"] == 0, f"kafka-python describe_topics({topic}): {t}")
    return [(p["leader_id"], list(p["replica_nodes"]), list(p["isr_nodes"]))
            for p in sorted(t["partitions"], key=lambda p: p["partition_index"])]


def _ck_states(a, topic: str) -> _States:
    """confluent-kafka AdminClient.describe_topics (librdkafka's DescribeTopics)."""
    from confluent_kafka import TopicCollection
    try:
        d = a.describe_topics(TopicCollection([topic]), request_timeout=15)[topic].result(20)
    except Exception as e:
        raise CheckFailed(f"confluent-kafka describe_topics: {type(e).__name__}: {e}")
    return [(-1 if p.leader is None else p.leader.id, [n.id for n in p.replicas], [n.id for n in p.isr])
            for p in sorted(d.partitions, key=lambda p: p.id)]


def _ck_md_states(a, topic: str) -> _States:
    """confluent-kafka AdminClient.list_topics (librdkafka's Metadata): leader, replicas, isrs."""
    try:
        t = a.list_topics(topic, timeout=15).topics.get(topic)
    except Exception as e:
        raise CheckFailed(f"confluent-kafka list_topics: {type(e).__name__}: {e}")
    check(t is not None and t.error is None, f"confluent-kafka list_topics({topic}): {t and t.error}")
    return [(p.leader, list(p.replicas), list(p.isrs)) for _, p in sorted(t.partitions.items())]


def _ck_agrees(problems: List[str], ca, topic: str, want: _States, when: str):
    """Both confluent-kafka views must come to show what kafka-python showed (a broker may
    answer from an image a moment older)."""
    for name, get in (("describe_topics", _ck_states), ("list_topics", _ck_md_states)):
        try:
            _poll(f"confluent-kafka {name} {when}", lambda: get(ca, topic), lambda s: s == want, timeout=15)
        except CheckFailed as e:
            problems.append(f"{e} (kafka-python saw {_fmt_states(want)})")


@scenario
def replication_kafka_python(ctx: Ctx):
    """Three nodes, RF=3 with kafka-python 3.0.12 (create_topics, describe_topics, elect_leaders, describe_metadata_quorum) and confluent-kafka describe_topics/list_topics: an idempotent acks='all' KafkaProducer across kill -9 of a leader, nothing acknowledged lost or doubled."""
    C._kp_logging()
    from kafka.admin import KafkaAdminClient
    from confluent_kafka.admin import AdminClient
    nodes = _cluster(ctx, 3, **_REPLICATION)
    bs = ",".join(b.bootstrap for b in nodes)
    a = KafkaAdminClient(bootstrap_servers=bs, client_id="compat-kp-admin", request_timeout_ms=15000)
    ca = AdminClient({"bootstrap.servers": bs, **C.ck_log_config("admin")})
    try:
        _replication_kafka_python(ctx, nodes, bs, a, ca)
    finally:
        a.close()


def _replication_kafka_python(ctx: Ctx, nodes: List[Broker], bs: str, a, ca):
    import kafka.errors as KE
    from kafka import KafkaProducer, TopicPartition
    topic, strict = "repl-kp", "repl-kp-strict"
    problems: List[str] = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: got {got}, want {want}")

    def brokers():
        try:
            # DescribeCluster with include_fenced_brokers: the unfenced ones
            return sorted(b["broker_id"] for b in a.describe_cluster()["brokers"] if not b.get("is_fenced"))
        except Exception as e:
            raise CheckFailed(f"kafka-python describe_cluster: {type(e).__name__}: {e}")

    def quorum():
        part = a.describe_metadata_quorum()["topics"][0]["partitions"][0]
        return part["leader_id"], sorted(v["replica_id"] for v in part["current_voters"]), part

    _poll("kafka-python describe_cluster: brokers 1, 2, 3", brokers, lambda b: b == [1, 2, 3])
    leader, voters, part = quorum()
    ctx.log(f"kafka-python describe_metadata_quorum: leader {leader}, voters {voters}, hw {part['high_watermark']}")
    expect("describe_metadata_quorum voters", voters, [1, 2, 3])
    check(leader in (1, 2, 3), f"describe_metadata_quorum without a leader: {part}")

    # ---- create with replication_factor=3
    a.create_topics({topic: {"num_partitions": 3, "replication_factor": 3, "configs": {"min.insync.replicas": "2"}}})
    start = _poll("kafka-python describe_topics: every replica in sync", lambda: _kp_states(a, topic),
                  lambda s: len(s) == 3 and _in_sync(s, 3), timeout=30)
    ctx.log(f"describe_topics {topic}: {_fmt_states(start)}")
    problems += _fresh_rf3_problems(start, "kafka-python describe_topics after create")
    _ck_agrees(problems, ca, topic, start, "after create")
    fail_if(problems, "the new RF=3 topic")
    victim = start[0][0]
    src = next(i for i in (1, 2, 3) if i != victim)
    third = next(i for i in (1, 2, 3) if i not in (victim, src))

    # ---- min.insync.replicas=3 on RF=3 (explicit assignment), led by src, which stays up
    a.create_topics({strict: {"assignments": {0: [src, victim, third]}, "configs": {"min.insync.replicas": "3"}}})
    _poll("repl-kp-strict in sync", lambda: _kp_states(a, strict), lambda s: _in_sync(s, 3), timeout=30)
    expect("kafka-python describe_topics repl-kp-strict", _kp_states(a, strict)[0][:2], (src, [src, victim, third]))

    def strict_send(value: str, acks) -> str:
        """One record, no retries (a refused write fails at once): "ack OFFSET" or the exception's class."""
        sp = KafkaProducer(bootstrap_servers=bs, acks=acks, enable_idempotence=False, retries=0, linger_ms=0,
                           client_id="compat-kp-strict")
        try:
            return f"ack {sp.send(strict, value=value.encode(), partition=0).get(timeout=30).offset}"
        except Exception as e:
            return type(e).__name__
        finally:
            sp.close(timeout=5)

    # ---- an idempotent acks='all' producer across kill -9 of the leader of partition 0
    p = KafkaProducer(bootstrap_servers=bs, acks="all", enable_idempotence=True, linger_ms=5,
                      client_id="compat-kp-repl")
    ack_log: List[tuple] = []  # (value, partition, offset) in the order acknowledged
    failed: List[str] = []
    fatal: List[str] = []
    stop = threading.Event()

    def run():
        i = 0
        while not stop.is_set():
            v = f"kp-{i}".encode()
            try:
                fut = p.send(topic, key=f"k{i % 37}".encode(), value=v)
            except Exception as e:
                fatal.append(f"send(): {e!r}")
                return
            fut.add_callback(lambda md, v=v: ack_log.append((v, md.partition, md.offset)))
            fut.add_errback(lambda e, v=v: failed.append(f"{v!r}: {e!r}"))
            i += 1
            if i % 20 == 0:
                time.sleep(0.01)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    errors = lambda: fatal + failed
    try:
        _wait_acks("kafka-python producer before the kill", lambda: len(ack_log), 300, errors, 30, min_secs=2)
        n_kill = len(ack_log)
        nodes[victim - 1].kill9()
        t_kill = time.time()
        ctx.log(f"kill -9 of node {victim} (leader of {topic}-0) after {n_kill} acks")
        after = _poll(f"kafka-python describe_topics: no node {victim} as leader or in an ISR",
                      lambda: _kp_states(a, topic),
                      lambda s: len(s) == 3 and all(ld >= 0 and ld != victim and victim not in isr for ld, _, isr in s),
                      timeout=30)
        ctx.log(f"failover seen after {time.time() - t_kill:.1f} s: {_fmt_states(after)}")
        problems += _failover_problems(start, after, victim, "kafka-python describe_topics after the kill")
        st = _poll("repl-kp-strict without the killed node in its ISR", lambda: _kp_states(a, strict),
                   lambda s: s and victim not in s[0][2], timeout=15)
        problems += _failover_problems([(src, [src, victim, third], [])], st, victim,
                                       "kafka-python describe_topics repl-kp-strict after the kill")
        # Kafka: NOT_ENOUGH_REPLICAS for acks=all while ISR < min.insync.replicas (nothing appended);
        # the describe above may come from a broker a moment ahead of the leader
        time.sleep(1)
        expect("acks='all' to repl-kp-strict (ISR 2 < min.insync.replicas 3)",
               strict_send("strict-1-of-3-down-acks-all", "all"), "NotEnoughReplicasError")
        expect("acks=1 to repl-kp-strict with one replica down", strict_send("strict-1-of-3-down-acks-1", 1), "ack 0")
        ctx.log("repl-kp-strict: acks='all' refused, acks=1 taken")
        _ck_agrees(problems, ca, topic, after, "after the kill")
        ctx.log("confluent-kafka describe_topics and list_topics agree")
        _wait_acks("kafka-python producer after the failover (acks on partition 0)",
                   lambda: sum(1 for x in ack_log[n_kill:] if x[1] == 0), 100, errors)
        _wait_acks("kafka-python producer after the failover", lambda: len(ack_log), n_kill + 300, errors)
        ctx.log(f"{len(ack_log)} acks, the producer goes on with min.insync.replicas=2 of 3")

        # ---- the node comes back
        nodes[victim - 1].start(timeout=40)
        t_back = time.time()
        back = _poll(f"kafka-python describe_topics: node {victim} back in every ISR",
                     lambda: _kp_states(a, topic), lambda s: len(s) == 3 and _in_sync(s, 3), timeout=45)
        ctx.log(f"ISR whole {time.time() - t_back:.1f} s after the restart: {_fmt_states(back)}")
        expect("leaders after the restart (no automatic rebalance)", [ld for ld, _, _ in back],
               [ld for ld, _, _ in after])
        _ck_agrees(problems, ca, topic, back, "after the restart")
        _poll("repl-kp-strict in sync again", lambda: _kp_states(a, strict), lambda s: _in_sync(s, 3), timeout=30)
        expect("acks='all' to repl-kp-strict with every replica back", strict_send("strict-all-up-acks-all", "all"),
               "ack 1")

        # ---- elect_leaders(PREFERRED): partition 0 goes back, the others need nothing
        n_elect = len(ack_log)
        r = a.elect_leaders(0, {topic: [0, 1, 2]}, raise_errors=False)
        codes = {(res.topic, pr.partition_id): pr.error_code
                 for res in r.replica_election_results for pr in res.partition_result}
        expect("elect_leaders(PREFERRED) error codes (0 = moved, 84 = ELECTION_NOT_NEEDED)", codes,
               {(topic, 0): 0, (topic, 1): KE.ElectionNotNeededError.errno, (topic, 2): KE.ElectionNotNeededError.errno})
        pref = _poll("kafka-python describe_topics: every partition led by its first replica",
                     lambda: _kp_states(a, topic), lambda s: len(s) == 3 and all(ld == rs[0] for ld, rs, _ in s),
                     timeout=15)
        problems += _fresh_rf3_problems(pref, "kafka-python describe_topics after elect_leaders")
        _ck_agrees(problems, ca, topic, pref, "after elect_leaders")
        _wait_acks("kafka-python producer after the preferred election (acks on partition 0)",
                   lambda: sum(1 for x in ack_log[n_elect:] if x[1] == 0), 50, errors)

        # ---- cancelling a reassignment that does not exist: Kafka's NO_REASSIGNMENT_IN_PROGRESS
        tp = TopicPartition(topic, 0)
        expect("alter_partition_reassignments({repl-kp-0: None})", a.alter_partition_reassignments({tp: None}),
               {tp: KE.NoReassignmentInProgressError})
        expect("list_partition_reassignments()", a.list_partition_reassignments(), {})
        leader, voters, part = quorum()
        expect("describe_metadata_quorum voters at the end", voters, [1, 2, 3])
        check(leader in (1, 2, 3), f"describe_metadata_quorum without a leader: {part}")
    finally:
        stop.set()
        t.join(10)
    try:
        p.flush(timeout=60)
    except Exception as e:
        fatal.append(f"flush(): {e!r}")
    finally:
        p.close(timeout=10)
    ctx.log(f"kafka-python producer: {len(ack_log)} acked, {len(failed)} failed")
    check(not fatal, f"fatal producer error: {fatal[:2]}")
    if failed:
        problems.append(f"{len(failed)} delivery failures, e.g. {failed[:3]}")

    got = C.kp_consume(bs, topic, timeout=90)
    acked = {v: (pt, o) for v, pt, o in ack_log}
    ctx.log(f"kafka-python consumer read {len(got)} records ({len(acked)} acknowledged)")
    problems += _acked_problems(got, topic, acked, "kafka-python consumer")
    if len(got) != len(acked):
        problems.append(f"kafka-python consumer read {len(got)} records, {len(acked)} were acknowledged")
    expect(f"kafka-python consumer {strict} (the refused acks='all' record must not be there)",
           [(r.offset, r.value) for r in C.kp_consume(bs, strict)],
           [(0, b"strict-1-of-3-down-acks-1"), (1, b"strict-all-up-acks-all")])
    fail_if(problems, "replication with kafka-python and confluent-kafka")


# --------------------------------------------------------------------------- KIP-853 dynamic quorum


@scenario
def dynamic_quorum_java(ctx: Ctx):
    """A dynamic metadata quorum (KIP-853): one controller formatted --standalone, two --no-initial-controllers, made voters with the Java Admin's addRaftVoter (through a broker and through bootstrap.controllers), DuplicateVoter and VoterNotFound as Kafka's, removeRaftVoter after a kill -9 of the first controller."""
    import subprocess
    from harness.broker import free_port
    controller_ports = [free_port() for _ in range(3)]
    bootstrap = f"127.0.0.1:{controller_ports[0]}"
    nodes: List[Broker] = []
    for i in range(3):
        b = Broker(ctx.workdir / f"node{i + 1}")
        b.extra.update({
            "node.id": str(i + 1),
            "listeners": f"PLAINTEXT://127.0.0.1:{b.port},CONTROLLER://127.0.0.1:{controller_ports[i]}",
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.bootstrap.servers": bootstrap,
            "controller.quorum.election.timeout.ms": "500",
            **_REPLICATION,
        })
        ctx.brokers.append(b)
        nodes.append(b)
    cluster_id = subprocess.run([nodes[0].binary, "storage", "random-uuid"], check=True,
                                capture_output=True, text=True).stdout.strip()
    directory_ids = []
    for i, b in enumerate(nodes):
        args = [b.binary, "storage", "format", "-t", cluster_id,
                "--standalone" if i == 0 else "--no-initial-controllers"]
        cmd = b.command()
        for j in range(2, len(cmd), 2):
            args += ["--override", cmd[j + 1]]
        out = subprocess.run(args, capture_output=True, text=True)
        check(out.returncode == 0, f"storage format node {i + 1}: {out.stdout}{out.stderr}")
        meta = (b.datadir / "meta" / "meta.properties").read_text()
        directory_ids.append(next(l.split("=", 1)[1] for l in meta.splitlines() if l.startswith("directory.id=")))
    for b in nodes:
        b.spawn()
    for b in nodes:
        b.wait_ready(60)
    bs = ",".join(b.bootstrap for b in nodes)
    _poll("the first controller alone in the quorum", lambda: C.java_raft_voters(bs, "voters"),
          lambda lines: lines == ["voters [1]"])

    add = lambda i: f"add {i + 1} {directory_ids[i]} 127.0.0.1 {controller_ports[i]}"
    lines = C.java_raft_voters(bs, add(1), "voters")
    ctx.log(f"addRaftVoter(2) through a broker: {lines}")
    check(lines == ["ok", "voters [1, 2]"], f"addRaftVoter(2): {lines}")
    lines = C.java_raft_voters(f"controllers:{bootstrap}", add(2), "voters", add(1))
    ctx.log(f"addRaftVoter(3) through bootstrap.controllers, then 2 again: {lines}")
    check(lines == ["ok", "voters [1, 2, 3]", "err DuplicateVoterException"], f"addRaftVoter(3): {lines}")

    nodes[0].kill9()
    survivors = ",".join(b.bootstrap for b in nodes[1:])
    lines = _poll("a new active controller among the added voters",
                  lambda: C.java_raft_voters(survivors, f"remove 1 {directory_ids[1]}", "voters"),
                  # NotLeaderOrFollower / a timeout while the two elect: not yet
                  lambda lines: lines[0] not in ("err NotLeaderOrFollowerException", "err TimeoutException",
                                                 "err NotControllerException"))
    ctx.log(f"removeRaftVoter(1) with node 2's directory id: {lines}")
    check(lines[0] == "err VoterNotFoundException", f"a wrong directory id: {lines}")
    lines = C.java_raft_voters(survivors, f"remove 1 {directory_ids[0]}", "voters")
    ctx.log(f"removeRaftVoter(1): {lines}")
    check(lines == ["ok", "voters [2, 3]"], f"removeRaftVoter(1): {lines}")
    out = C.java_admin_create(survivors, "after-removal", 2)
    check("partitions 2" in out, f"create after the removal: {out}")


# =========================================================================== security (issue 11)

import security_scenarios  # noqa: E402

security_scenarios.register(scenario)
security_scenarios.register_acls(scenario)
security_scenarios.register_oauth(scenario)

# =========================================================================== Kafka Connect

import connect_scenarios  # noqa: E402

connect_scenarios.register(scenario)
