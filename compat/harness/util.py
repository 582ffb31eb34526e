"""Records, partitioners and comparison helpers shared by all scenarios."""
from __future__ import annotations

import dataclasses
import time
import zlib
from typing import Iterable, List, Optional, Sequence, Tuple

Header = Tuple[str, Optional[bytes]]


class CheckFailed(AssertionError):
    """A scenario check failed; the message says what was expected and what was seen."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- partitioners

def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (data[i4] & 0xFF) | ((data[i4 + 1] & 0xFF) << 8) | ((data[i4 + 2] & 0xFF) << 16) | ((data[i4 + 3] & 0xFF) << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rem = length % 4
    base = length & ~3
    if rem == 3:
        h ^= (data[base + 2] & 0xFF) << 16
    if rem >= 2:
        h ^= (data[base + 1] & 0xFF) << 8
    if rem >= 1:
        h ^= data[base] & 0xFF
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2_partition(key: bytes, num_partitions: int) -> int:
    """Kafka's default partitioner for keyed records: toPositive(murmur2(key)) % n."""
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions


def crc32_partition(key: bytes, num_partitions: int) -> int:
    """librdkafka's default partitioner (consistent_random) for keyed records."""
    return (zlib.crc32(key) & 0xFFFFFFFF) % num_partitions


# Kafka's own test vectors (UtilsTest.testMurmur2).
_MURMUR2_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    bytes([ord("a"), ord("b"), ord("c")]): 479470107,
}


def self_test_murmur2() -> None:
    for k, v in _MURMUR2_VECTORS.items():
        got = murmur2(k)
        if got != v:
            raise CheckFailed(f"murmur2({k!r}) = {got}, Kafka says {v}")


# --------------------------------------------------------------------------- records

@dataclasses.dataclass
class Rec:
    topic: str
    key: Optional[bytes]
    value: Optional[bytes]
    headers: List[Header]
    timestamp: Optional[int] = None  # None: not known in advance (kcat sets "now")
    partition: Optional[int] = None
    offset: Optional[int] = None
    tstype: Optional[str] = None  # "create" / "append" when read back

    def ident(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    def short(self) -> str:
        v = self.value
        if v is not None and len(v) > 40:
            v = v[:40] + b"..."
        return (f"{self.ident()} ts={self.timestamp} key={self.key!r} value={v!r} "
                f"headers={self.headers!r}")


def gen_records(topic: str, n: int, base_ts: int, tag: str, *, with_specials: bool = True,
                headers: bool = True) -> List[Rec]:
    """n keyed records with headers and increasing explicit timestamps.

    Keys repeat (17 distinct) so every partition gets several records; every 7th value
    is a few KB so compression has something to do. With with_specials, record 3 has an
    empty value, record 5 a null value (tombstone) and record 8 an empty header value.
    """
    out = []
    for i in range(n):
        key = f"key-{i % 17}".encode()
        value = f"{tag}-value-{i}".encode()
        if i % 7 == 6:
            value += b"-" + (f"payload {i} of {tag} " * 200).encode()
        hs: List[Header] = []
        if headers:
            hs = [("h-index", str(i).encode()), ("h-src", tag.encode()), ("h-index", b"dup")]
        if with_specials:
            if i == 3:
                value = b""
            if i == 5:
                value = None
            if i == 8 and headers:
                hs.append(("h-empty", b""))
        out.append(Rec(topic=topic, key=key, value=value, headers=hs, timestamp=base_ts + i * 7))
    return out


def assign_expected_positions(recs: Sequence[Rec], num_partitions: int, partitioner=murmur2_partition) -> None:
    """Fill partition (from the partitioner) and offset (arrival order per partition),
    for a single producer writing to a fresh topic in order."""
    next_off = {}
    for r in recs:
        if r.partition is None:
            r.partition = partitioner(r.key, num_partitions)
        nxt = next_off.get((r.topic, r.partition), 0)
        if r.offset is None:
            r.offset = nxt
        next_off[(r.topic, r.partition)] = r.offset + 1


def sort_recs(recs: Iterable[Rec]) -> List[Rec]:
    return sorted(recs, key=lambda r: (r.topic, r.partition, r.offset))


def compare(expected: Sequence[Rec], got: Sequence[Rec], label: str, *, ts_range: Tuple[int, int] = None,
            check_headers: bool = True, max_report: int = 6) -> List[str]:
    """Compare two record lists field by field; returns a list of problems (empty = equal).

    Expected records with timestamp None must have a timestamp inside ts_range.
    """
    problems: List[str] = []
    exp = sort_recs(expected)
    g = sort_recs(got)
    exp_idx = {(r.topic, r.partition, r.offset): r for r in exp}
    got_idx = {}
    for r in g:
        k = (r.topic, r.partition, r.offset)
        if k in got_idx:
            problems.append(f"{label}: record {r.ident()} delivered twice")
        got_idx[k] = r
    missing = [k for k in exp_idx if k not in got_idx]
    extra = [k for k in got_idx if k not in exp_idx]
    if missing:
        problems.append(f"{label}: {len(missing)} of {len(exp)} records missing, e.g. "
                        + ", ".join(f"{t}[{p}]@{o}" for t, p, o in missing[:5]))
    if extra:
        problems.append(f"{label}: {len(extra)} unexpected records, e.g. "
                        + "; ".join(got_idx[k].short() for k in extra[:3]))
    n = 0
    for k, e in exp_idx.items():
        r = got_idx.get(k)
        if r is None:
            continue
        diffs = []
        if r.key != e.key:
            diffs.append(f"key {r.key!r} != {e.key!r}")
        if r.value != e.value:
            gv = r.value if r.value is None or len(r.value) < 60 else r.value[:60] + b"..."
            ev = e.value if e.value is None or len(e.value) < 60 else e.value[:60] + b"..."
            diffs.append(f"value {gv!r} (len {None if r.value is None else len(r.value)}) != {ev!r} "
                         f"(len {None if e.value is None else len(e.value)})")
        if check_headers and list(r.headers) != list(e.headers):
            diffs.append(f"headers {r.headers!r} != {e.headers!r}")
        if e.timestamp is not None:
            if r.timestamp != e.timestamp:
                diffs.append(f"timestamp {r.timestamp} != {e.timestamp}")
        elif ts_range is not None and not (ts_range[0] <= (r.timestamp or 0) <= ts_range[1]):
            diffs.append(f"timestamp {r.timestamp} outside produce window {ts_range}")
        if r.tstype is not None and e.tstype is not None and r.tstype != e.tstype:
            diffs.append(f"timestamp type {r.tstype} != {e.tstype}")
        if diffs:
            n += 1
            if n <= max_report:
                problems.append(f"{label}: {e.ident()}: " + "; ".join(diffs))
    if n > max_report:
        problems.append(f"{label}: ... {n - max_report} more records differ")
    return problems


def same_records(a: Sequence[Rec], b: Sequence[Rec], label: str) -> List[str]:
    """Exact equality of two reads (all fields, including timestamps and types)."""
    exp = [dataclasses.replace(r) for r in a]
    return compare(exp, b, label)
