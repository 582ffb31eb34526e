"""Kafka Connect scenarios: Moldau's Connect worker (`moldau connect standalone`) against the
real Apache Kafka Connect 4.1.1 standalone worker (connect-runtime, connect-file,
connect-json, connect-transforms from Maven Central, fetched by compat/run into
compat/.deps/connect), both over one Moldau broker.

  connect_kafka_worker  the real Kafka Connect worker: FileStreamSource -> topic ->
                        FileStreamSink over a Moldau broker, end to end (Connect's
                        producer, consumer group, admin client and offset/flush paths)
  connect_rest          the same sequence of REST requests to both workers; the status
                        codes and (normalised) JSON bodies must agree, except for the
                        documented differences, where Moldau's own answer is asserted

A difference found to be a Moldau bug is asserted with Kafka's behaviour (verdict "BUG") and
marked `# KNOWN-DIFF:` so it can be found; it fails until Moldau is fixed (none today).

Registered into scenarios.SCENARIOS by scenarios.py. Also runnable by hand to print every
answer of both workers side by side (a broker and both workers already running):

    python3 compat/connect_scenarios.py KAFKA_URL MOLDAU_URL WORKDIR
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

try:
    from harness.broker import free_port
    from harness.util import CheckFailed, check
except ImportError:  # run by hand from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness.broker import free_port
    from harness.util import CheckFailed, check

COMPAT_DIR = Path(__file__).resolve().parent
CONNECT_VERSION = "4.1.1"
W = "@W@"  # stands for the worker's own token in names, topics and paths


def connect_jars() -> Path:
    return Path(os.environ.get("COMPAT_CONNECT_JARS", COMPAT_DIR / ".deps" / "connect"))


# --------------------------------------------------------------------------- HTTP

def http(base: str, method: str, path: str, body: Any = None, raw: Optional[bytes] = None,
         timeout: float = 30.0) -> Tuple[int, Any]:
    """One request; returns (status, parsed JSON body, or the text, or None when empty)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    if not payload:
        return status, None
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


# --------------------------------------------------------------------------- workers

class Worker:
    """One Connect worker process (Kafka's JVM or `moldau connect standalone`)."""

    def __init__(self, kind: str, token: str, workdir: Path, bootstrap: str, distributed: bool = False):
        self.kind, self.token, self.distributed = kind, token, distributed
        self.dir = workdir / token
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.bootstrap = bootstrap
        self.proc: Optional[subprocess.Popen] = None
        self.log = workdir / f"{kind}-connect.log"
        self.props = self.dir / "worker.properties"
        self.props.write_text("\n".join([
            f"bootstrap.servers={bootstrap}",
            "key.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable=true",
            "value.converter.schemas.enable=true",
            *([f"group.id={token}-cluster", f"config.storage.topic={token}-configs",
               f"offset.storage.topic={token}-offsets", f"status.storage.topic={token}-status",
               "config.storage.replication.factor=1", "offset.storage.replication.factor=1",
               "status.storage.replication.factor=1"] if distributed
              else [f"offset.storage.file.filename={self.dir / 'connect.offsets'}"]),
            "offset.flush.interval.ms=1000",
            f"listeners=http://127.0.0.1:{self.port}",
            "",
        ]))
        self.started_in = None
        self.version: Optional[str] = None  # the worker's own version, from GET /

    def command(self) -> List[str]:
        if self.kind == "moldau":
            binary = os.environ.get("MOLDAU_BIN") or str(COMPAT_DIR.parent / "target" / "release" / "moldau")
            return [binary, "connect", "standalone", str(self.props)]
        l4j = self.dir / "log4j2.properties"
        l4j.write_text("\n".join([
            "appender.file.type=File", "appender.file.name=file", f"appender.file.fileName={self.log}",
            "appender.file.layout.type=PatternLayout", "appender.file.layout.pattern=[%d] %p %m (%c)%n",
            "rootLogger.level=INFO", "rootLogger.appenderRef.file.ref=file", ""]))
        return ["java", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={l4j}", "-cp", str(connect_jars() / "*"),
                "org.apache.kafka.connect.cli." + ("ConnectDistributed" if self.distributed else "ConnectStandalone"),
                str(self.props)]

    def start(self, timeout: float = 60.0) -> "Worker":
        t0 = time.time()
        out = open(self.dir / "stdout.log", "wb") if self.kind == "kafka" else open(self.log, "wb")
        env = dict(os.environ, NO_COLOR="1")
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(self.dir), env=env)
        out.close()
        deadline = t0 + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"{self.kind} Connect worker exited with {self.proc.returncode}; "
                                  f"log tail:\n{self.tail()}")
            try:
                status, body = http(self.base, "GET", "/", timeout=2)
                # Kafka's REST server answers GET / before the herder is up; /connectors waits for it
                if status == 200 and http(self.base, "GET", "/connectors", timeout=5)[0] == 200:
                    self.started_in = time.time() - t0
                    self.version = body.get("version")
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise CheckFailed(f"{self.kind} Connect worker did not serve {self.base} within {timeout}s; "
                          f"log tail:\n{self.tail()}")

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        bad = [ln for ln in lines if re.search(r"WARN|ERROR|Exception", ln)]
        return "\n".join("    | " + ln[:300] for ln in (bad or lines)[-n:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def req(self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None) -> Tuple[int, Any]:
        return http(self.base, method, self.sub(path), self.sub(body), None if raw is None else raw)

    def sub(self, x: Any) -> Any:
        """Replaces the @W@ placeholder by this worker's token (names, topics, file paths)."""
        if isinstance(x, str):
            return x.replace(W, self.token)
        if isinstance(x, dict):
            return {self.sub(k): self.sub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [self.sub(v) for v in x]
        return x

    def unsub(self, x: Any) -> Any:
        """The inverse for comparisons: the worker's token and its REST address become placeholders."""
        if isinstance(x, str):
            if self.version and x == self.version:
                return "@VERSION@"
            x = x.replace(f"127.0.0.1:{self.port}", "@WORKER_ID@")
            return x.replace(str(self.dir.parent), "@DIR@").replace(self.token, W)
        if isinstance(x, dict):
            return {self.unsub(k): self.unsub(v) for k, v in x.items()}
        if isinstance(x, list):
            return [self.unsub(v) for v in x]
        return x

    def wait_status(self, name: str, connector: str, tasks: Optional[List[str]] = None,
                    timeout: float = 30.0) -> Any:
        """Polls /status until the connector (and its tasks, if given) reach the states."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.req("GET", f"/connectors/{name}/status")
            st, body = last
            if st == 200 and body.get("connector", {}).get("state") == connector:
                got = [t.get("state") for t in sorted(body.get("tasks", []), key=lambda t: t.get("id", 0))]
                if tasks is None or got == tasks:
                    return body
            time.sleep(0.2)
        raise CheckFailed(f"{self.kind}: {name} did not reach {connector} {tasks} within {timeout}s: {last}")


# --------------------------------------------------------------------------- the request sequence

def src_config(extra: Optional[dict] = None, name: Optional[str] = None) -> dict:
    c = {"connector.class": "FileStreamSource", "tasks.max": "1",
         "file": f"@DIRW@/{W}-in.txt", "topic": f"{W}-lines"}
    if name:
        c["name"] = name
    c.update(extra or {})
    return c


def sink_config(extra: Optional[dict] = None) -> dict:
    c = {"connector.class": "FileStreamSink", "tasks.max": "1",
         "file": f"@DIRW@/{W}-out.txt", "topics": f"{W}-lines"}
    c.update(extra or {})
    return c


# One step: (label, method, path, body, raw body). A label may be followed by an action run
# on the worker after the request (waits for Kafka's asynchronous state changes).
Step = Tuple[str, str, str, Any, Optional[bytes], Optional[Callable[["Worker"], None]]]


def S(label, method, path, body=None, raw=None, then=None) -> Step:
    return (label, method, path, body, raw, then)


def _wait(name, connector, tasks=None):
    return lambda w: w.wait_status(name, connector, tasks)


def _wait_lines(n):
    def f(w: Worker):
        out = w.dir / f"{w.token}-out.txt"
        deadline = time.time() + 30
        while time.time() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= n:
                return
            time.sleep(0.2)
        raise CheckFailed(f"{w.kind}: {out} did not get {n} lines within 30s "
                          f"({out.read_text() if out.exists() else 'missing'!r})")
    return f


def _sleep(s):
    return lambda w: time.sleep(s)


def steps() -> List[Step]:
    src, sink, stopped, new = f"{W}-src", f"{W}-sink", f"{W}-stopped", f"{W}-new"
    validate = "/connector-plugins/FileStreamSourceConnector/config/validate"
    vbase = {"connector.class": "FileStreamSource", "name": "v", "file": "/tmp/x", "topic": "t"}
    return [
        S("server info", "GET", "/"),
        S("connector plugins", "GET", "/connector-plugins"),
        S("all plugins", "GET", "/connector-plugins?connectorsOnly=false"),
        S("plugin config (alias)", "GET", "/connector-plugins/FileStreamSource/config"),
        S("plugin config (simple name)", "GET", "/connector-plugins/FileStreamSourceConnector/config"),
        S("plugin config (sink, class name)", "GET",
          "/connector-plugins/org.apache.kafka.connect.file.FileStreamSinkConnector/config"),
        S("plugin config of an unknown plugin", "GET", "/connector-plugins/NoSuchConnector/config"),
        S("validate: valid", "PUT", validate, vbase),
        S("validate: no topic", "PUT", validate, {k: v for k, v in vbase.items() if k != "topic"}),
        S("validate: tasks.max=abc", "PUT", validate, dict(vbase, **{"tasks.max": "abc"})),
        S("validate: unknown transform class", "PUT", validate,
          dict(vbase, **{"transforms": "x", "transforms.x.type": "com.example.NoSuchTransform"})),
        S("validate: transform alias without type", "PUT", validate, dict(vbase, transforms="x")),
        S("validate: known transform, missing its config", "PUT", validate,
          dict(vbase, **{"transforms": "x",
                         "transforms.x.type": "org.apache.kafka.connect.transforms.InsertField$Value"})),
        S("validate: connector.class of another plugin", "PUT", validate,
          dict(vbase, **{"connector.class": "FileStreamSink"})),
        S("validate: no connector.class", "PUT", validate, {"name": "v", "topic": "t"}),
        S("validate: malformed JSON", "PUT", validate, raw=b"{not json"),
        S("validate: unknown plugin", "PUT", "/connector-plugins/NoSuchConnector/config/validate",
          dict(vbase, **{"connector.class": "NoSuchConnector"})),
        S("create source", "POST", "/connectors", {"name": src, "config": src_config()},
          then=_wait(src, "RUNNING", ["RUNNING"])),
        S("create duplicate", "POST", "/connectors", {"name": src, "config": src_config()}),
        S("create without config", "POST", "/connectors", {"name": f"{W}-noconfig"}),
        S("create without connector.class", "POST", "/connectors",
          {"name": f"{W}-noclass", "config": {"tasks.max": "1"}}),
        S("create with an unknown class", "POST", "/connectors",
          {"name": f"{W}-unknown", "config": {"connector.class": "com.example.NoSuchConnector"}}),
        S("create with malformed JSON", "POST", "/connectors", raw=b"{\"name\": "),
        S("create without name", "POST", "/connectors", {"config": src_config()}),
        S("create with a name mismatch in config", "POST", "/connectors",
          {"name": f"{W}-a", "config": src_config(name=f"{W}-b")}),
        S("create sink", "POST", "/connectors", {"name": sink, "config": sink_config()},
          then=_wait(sink, "RUNNING", ["RUNNING"])),
        S("create STOPPED", "POST", "/connectors",
          {"name": stopped, "config": src_config({"topic": f"{W}-other"}), "initial_state": "STOPPED"},
          then=_wait(stopped, "STOPPED", [])),
        S("create with a bad initial_state", "POST", "/connectors",
          {"name": f"{W}-badstate", "config": src_config(), "initial_state": "SLEEPING"}),
        S("list", "GET", "/connectors", then=_wait_lines(3)),
        S("list ?expand=status", "GET", "/connectors?expand=status"),
        S("list ?expand=info", "GET", "/connectors?expand=info"),
        S("list ?expand=status&expand=info", "GET", "/connectors?expand=status&expand=info"),
        S("list ?expand=bogus", "GET", "/connectors?expand=bogus"),
        S("info", "GET", f"/connectors/{src}"),
        S("config", "GET", f"/connectors/{src}/config"),
        S("status", "GET", f"/connectors/{src}/status"),
        S("status of a STOPPED connector", "GET", f"/connectors/{stopped}/status"),
        S("tasks", "GET", f"/connectors/{src}/tasks"),
        S("tasks (sink)", "GET", f"/connectors/{sink}/tasks"),
        S("tasks-config (removed in Kafka 4.0)", "GET", f"/connectors/{src}/tasks-config"),
        S("task status", "GET", f"/connectors/{src}/tasks/0/status"),
        S("unknown task status", "GET", f"/connectors/{src}/tasks/7/status"),
        S("topics (source)", "GET", f"/connectors/{src}/topics"),
        S("topics (sink)", "GET", f"/connectors/{sink}/topics"),
        S("topics reset", "PUT", f"/connectors/{src}/topics/reset"),
        S("topics after reset", "GET", f"/connectors/{src}/topics"),
        S("PUT config: update", "PUT", f"/connectors/{src}/config", src_config({"batch.size": "100"}),
          then=_wait(src, "RUNNING", ["RUNNING"])),
        S("PUT config: create", "PUT", f"/connectors/{new}/config", src_config({"topic": f"{W}-new"}),
          then=_wait(new, "RUNNING", ["RUNNING"])),
        S("PUT config: name mismatch", "PUT", f"/connectors/{new}/config", src_config(name="other")),
        S("PUT config: malformed JSON", "PUT", f"/connectors/{new}/config", raw=b"[1,"),
        S("PATCH config", "PATCH", f"/connectors/{new}/config", {"batch.size": "50", "nope": None},
          then=_wait(new, "RUNNING", ["RUNNING"])),
        S("config after PATCH", "GET", f"/connectors/{new}/config"),
        S("PATCH config of an unknown connector", "PATCH", "/connectors/nosuch/config", {"a": "b"}),
        S("GET offsets (running source)", "GET", f"/connectors/{src}/offsets"),
        S("PATCH offsets (running)", "PATCH", f"/connectors/{src}/offsets",
          {"offsets": [{"partition": {"filename": f"@DIRW@/{W}-in.txt"}, "offset": {"position": 0}}]}),
        S("DELETE offsets (running)", "DELETE", f"/connectors/{src}/offsets"),
        S("pause", "PUT", f"/connectors/{src}/pause", then=_wait(src, "PAUSED", ["PAUSED"])),
        S("status paused", "GET", f"/connectors/{src}/status"),
        S("pause again", "PUT", f"/connectors/{src}/pause"),
        S("resume", "PUT", f"/connectors/{src}/resume", then=_wait(src, "RUNNING", ["RUNNING"])),
        S("stop", "PUT", f"/connectors/{src}/stop", then=_wait(src, "STOPPED", [])),
        S("status stopped", "GET", f"/connectors/{src}/status"),
        S("tasks of a stopped connector", "GET", f"/connectors/{src}/tasks"),
        S("GET offsets (stopped source)", "GET", f"/connectors/{src}/offsets"),
        S("PATCH offsets (stopped source)", "PATCH", f"/connectors/{src}/offsets",
          {"offsets": [{"partition": {"filename": f"@DIRW@/{W}-in.txt"}, "offset": {"position": 0}}]}),
        S("GET offsets after PATCH", "GET", f"/connectors/{src}/offsets"),
        S("PATCH offsets: no offsets field", "PATCH", f"/connectors/{src}/offsets", {}),
        S("PATCH offsets: empty list", "PATCH", f"/connectors/{src}/offsets", {"offsets": []}),
        S("PATCH offsets: bad source partition", "PATCH", f"/connectors/{src}/offsets",
          {"offsets": [{"partition": {"file": "x"}, "offset": {"position": 0}}]}),
        S("PATCH offsets: bad source position", "PATCH", f"/connectors/{src}/offsets",
          {"offsets": [{"partition": {"filename": "x"}, "offset": {"position": "zero"}}]}),
        S("PATCH offsets: null offset (tombstone)", "PATCH", f"/connectors/{src}/offsets",
          {"offsets": [{"partition": {"filename": "/tmp/other"}, "offset": None}]}),
        S("DELETE offsets (stopped source)", "DELETE", f"/connectors/{src}/offsets"),
        S("GET offsets after DELETE", "GET", f"/connectors/{src}/offsets"),
        S("resume a stopped connector", "PUT", f"/connectors/{src}/resume",
          then=lambda w: (w.wait_status(f"{w.token}-src", "RUNNING", ["RUNNING"]), _wait_lines(6)(w))),
        S("stop sink", "PUT", f"/connectors/{sink}/stop", then=_wait(sink, "STOPPED", [])),
        S("GET offsets (stopped sink)", "GET", f"/connectors/{sink}/offsets"),
        S("PATCH offsets (stopped sink)", "PATCH", f"/connectors/{sink}/offsets",
          {"offsets": [{"partition": {"kafka_topic": f"{W}-lines", "kafka_partition": 0},
                        "offset": {"kafka_offset": 1}}]}),
        S("GET offsets after PATCH (sink)", "GET", f"/connectors/{sink}/offsets"),
        S("PATCH offsets: sink without kafka_partition", "PATCH", f"/connectors/{sink}/offsets",
          {"offsets": [{"partition": {"kafka_topic": f"{W}-lines"}, "offset": {"kafka_offset": 1}}]}),
        S("PATCH offsets: sink with a bad kafka_offset", "PATCH", f"/connectors/{sink}/offsets",
          {"offsets": [{"partition": {"kafka_topic": f"{W}-lines", "kafka_partition": 0},
                        "offset": {"kafka_offset": "one"}}]}),
        S("DELETE offsets (stopped sink)", "DELETE", f"/connectors/{sink}/offsets"),
        S("GET offsets after DELETE (sink)", "GET", f"/connectors/{sink}/offsets"),
        S("restart", "POST", f"/connectors/{src}/restart", then=_wait(src, "RUNNING", ["RUNNING"])),
        S("restart ?includeTasks=true", "POST", f"/connectors/{src}/restart?includeTasks=true",
          then=_wait(src, "RUNNING", ["RUNNING"])),
        S("restart ?onlyFailed=true", "POST", f"/connectors/{src}/restart?onlyFailed=true",
          then=_wait(src, "RUNNING", ["RUNNING"])),
        S("restart ?includeTasks=true&onlyFailed=true", "POST",
          f"/connectors/{src}/restart?includeTasks=true&onlyFailed=true", then=_wait(src, "RUNNING", ["RUNNING"])),
        S("restart a stopped connector ?includeTasks=true", "POST",
          f"/connectors/{stopped}/restart?includeTasks=true", then=_sleep(1)),
        S("status of a STOPPED connector after a restart", "GET", f"/connectors/{stopped}/status"),
        S("restart task 0", "POST", f"/connectors/{src}/tasks/0/restart", then=_wait(src, "RUNNING", ["RUNNING"])),
        S("restart an unknown task", "POST", f"/connectors/{src}/tasks/7/restart"),
        S("unknown connector: GET", "GET", "/connectors/nosuch"),
        S("unknown connector: config", "GET", "/connectors/nosuch/config"),
        S("unknown connector: status", "GET", "/connectors/nosuch/status"),
        S("unknown connector: tasks", "GET", "/connectors/nosuch/tasks"),
        S("unknown connector: task status", "GET", "/connectors/nosuch/tasks/0/status"),
        S("unknown connector: topics", "GET", "/connectors/nosuch/topics"),
        S("unknown connector: offsets", "GET", "/connectors/nosuch/offsets"),
        S("unknown connector: pause", "PUT", "/connectors/nosuch/pause"),
        S("unknown connector: resume", "PUT", "/connectors/nosuch/resume"),
        S("unknown connector: stop", "PUT", "/connectors/nosuch/stop"),
        S("unknown connector: restart", "POST", "/connectors/nosuch/restart"),
        S("unknown connector: restart ?includeTasks=true", "POST", "/connectors/nosuch/restart?includeTasks=true"),
        S("unknown connector: task restart", "POST", "/connectors/nosuch/tasks/0/restart"),
        S("unknown connector: DELETE", "DELETE", "/connectors/nosuch"),
        S("delete", "DELETE", f"/connectors/{new}"),
        S("GET after delete", "GET", f"/connectors/{new}"),
        S("wrong method: DELETE /connector-plugins", "DELETE", "/connector-plugins"),
        S("wrong method: POST status", "POST", f"/connectors/{src}/status"),
        S("wrong method: GET pause", "GET", f"/connectors/{src}/pause"),
        S("wrong method: PUT /connectors", "PUT", "/connectors", {}),
        S("unknown path", "GET", "/bogus"),
        S("unknown connector sub-path", "GET", f"/connectors/{src}/bogus"),
        S("health", "GET", "/health"),
        S("loggers", "GET", "/admin/loggers"),
        S("logger root", "GET", "/admin/loggers/root"),
        S("set root level", "PUT", "/admin/loggers/root", {"level": "INFO"}),
        S("set an invalid level", "PUT", "/admin/loggers/root", {"level": "LOUD"}),
        S("set without level", "PUT", "/admin/loggers/root", {}),
        S("set a logger with scope=cluster (standalone)", "PUT", "/admin/loggers/root?scope=cluster",
          {"level": "INFO"}),
        S("unknown logger", "GET", "/admin/loggers/com.example.nosuch"),
        S("delete sink", "DELETE", f"/connectors/{sink}"),
        S("delete stopped", "DELETE", f"/connectors/{stopped}"),
        S("delete source", "DELETE", f"/connectors/{src}"),
        S("list at the end", "GET", "/connectors"),
    ]


def run_steps(w: Worker) -> Dict[str, Tuple[int, Any]]:
    """Runs the sequence on one worker: label -> (status, body with placeholders)."""
    (w.dir / f"{w.token}-in.txt").write_text("one\ntwo\nthree\n")
    out: Dict[str, Tuple[int, Any]] = {}
    for label, method, path, body, raw, then in steps():
        body = _dirw(body, w)
        st, resp = w.req(method, path, body, raw)
        out[label] = (st, w.unsub(resp))
        if then is not None and 200 <= st < 300:
            then(w)
    return out


def _dirw(x, w: Worker):
    if isinstance(x, str):
        return x.replace("@DIRW@", str(w.dir))
    if isinstance(x, dict):
        return {k: _dirw(v, w) for k, v in x.items()}
    if isinstance(x, list):
        return [_dirw(v, w) for v in x]
    return x


# --------------------------------------------------------------------------- comparing the answers

Answer = Tuple[int, Any]


def _short(x: Any, n: int = 300) -> str:
    t = json.dumps(x, sort_keys=True)
    return t if len(t) <= n else t[:n] + "..."


def deep_diff(a: Any, b: Any, path: str = "", out: Optional[List[str]] = None, limit: int = 12) -> List[str]:
    """Where b (Moldau) differs from a (Kafka): 'path: kafka X, moldau Y' lines."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                out.append(f"{path}/{k}: missing in Moldau (Kafka: {_short(a[k], 120)})")
            else:
                deep_diff(a[k], b[k], f"{path}/{k}", out, limit)
        for k in b:
            if k not in a:
                out.append(f"{path}/{k}: only in Moldau ({_short(b[k], 120)})")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            deep_diff(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path or '/'}: Kafka {_short(a, 200)}, Moldau {_short(b, 200)}")
    return out[:limit]


def same(k: Answer, m: Answer) -> List[str]:
    """Status and JSON body equal (objects compared without their key order)."""
    if k[0] != m[0]:
        return [f"status: Kafka {k[0]} {_short(k[1])}, Moldau {m[0]} {_short(m[1])}"]
    return deep_diff(k[1], m[1])


def same_status(k: Answer, m: Answer) -> List[str]:
    return [] if k[0] == m[0] else [f"status: Kafka {k[0]}, Moldau {m[0]} {_short(m[1])}"]


def same_set(k: Answer, m: Answer) -> List[str]:
    """Status equal; the JSON lists hold the same items in any order (Kafka's come from a HashMap)."""
    p = same_status(k, m)
    if not p and sorted(map(json.dumps, k[1])) != sorted(map(json.dumps, m[1])):
        p.append(f"items: Kafka {_short(k[1])}, Moldau {_short(m[1])}")
    return p


def moldau_is(status: int, body: Any = None, prefix: Optional[str] = None) -> Callable[[Answer, Answer], List[str]]:
    """A documented difference: Moldau's own answer is asserted (Kafka's is only printed)."""
    def f(k: Answer, m: Answer) -> List[str]:
        p = []
        if m[0] != status:
            p.append(f"Moldau status {m[0]} (documented {status}): {_short(m[1])}")
        elif prefix is not None:
            msg = m[1].get("message", "") if isinstance(m[1], dict) else ""
            if not msg.startswith(prefix):
                p.append(f"Moldau message {msg!r} does not start with {prefix!r}")
        elif body is not None and m[1] != body:
            p.append(f"Moldau body {_short(m[1])}, documented {_short(body)}")
        return p
    return f


def message_prefix_until(marker: str) -> Callable[[Answer, Answer], List[str]]:
    """Same status; the messages agree up to `marker` (what follows lists classes differently)."""
    def f(k: Answer, m: Answer) -> List[str]:
        p = same_status(k, m)
        km, mm = str(k[1].get("message", "")), str(m[1].get("message", ""))
        if not p and km.split(marker)[0] != mm.split(marker)[0]:
            p.append(f"message: Kafka {km[:200]!r}, Moldau {mm[:200]!r}")
        return p
    return f


def deserialize_error(k: Answer, m: Answer) -> List[str]:
    """An unparseable body: both 500 (Jersey/Jackson's mapping of a parse error); the text is each
    parser's own."""
    return same_status(k, m) + moldau_is(500, prefix="Cannot deserialize request body: ")(k, m)


def server_info(k: Answer, m: Answer) -> List[str]:
    p = same_status(k, m)
    if set(k[1]) != set(m[1]):
        p.append(f"keys: Kafka {sorted(k[1])}, Moldau {sorted(m[1])}")
    if k[1].get("kafka_cluster_id") != m[1].get("kafka_cluster_id"):
        p.append(f"kafka_cluster_id: Kafka {k[1].get('kafka_cluster_id')!r}, "
                 f"Moldau {m[1].get('kafka_cluster_id')!r} (the same broker)")
    return p


def plugins_superset(k: Answer, m: Answer) -> List[str]:
    """Moldau lists everything Kafka lists (same class, same type). Its extras are its own
    built-in plugins (classes outside org.apache.kafka: Debezium's, Confluent's JDBC and HTTP
    sinks, ...) and, among Kafka's classes, only header converters: Kafka 4.1.1 lists a class
    once, under its first type, and does not list SimpleHeaderConverter; Moldau lists every
    header converter as `header_converter` too."""
    p = same_status(k, m)
    ks = {(x["class"], x["type"]) for x in k[1]}
    ms = {(x["class"], x["type"]) for x in m[1]}
    if ks - ms:
        p.append(f"missing in Moldau: {sorted(ks - ms)}")
    odd = [x for x in ms - ks if x[0].startswith("org.apache.kafka.") and x[1] != "header_converter"]
    if odd:
        p.append(f"unexpected in Moldau: {odd}")
    return p


def strip_docs(defn: dict) -> dict:
    return {k: v for k, v in defn.items() if k != "documentation"}


def plugin_config(k: Answer, m: Answer) -> List[str]:
    """GET /connector-plugins/{plugin}/config: the same definitions in the same order."""
    p = same_status(k, m)
    if p:
        return p
    kn, mn = [d.get("name") for d in k[1]], [d.get("name") for d in m[1]]
    if kn != mn:
        p.append(f"names: Kafka {kn}, Moldau {mn}")
    mby = {d.get("name"): d for d in m[1]}
    for d in k[1]:
        if d["name"] in mby:
            p += deep_diff(strip_docs(d), strip_docs(mby[d["name"]]), d["name"], limit=4)
    return p[:16]


def validation(k: Answer, m: Answer) -> List[str]:
    """PUT .../config/validate: name, error_count, groups, and per config its definition
    (without the documentation text) and its value (value, errors, recommended values)."""
    p = same_status(k, m)
    if p:
        return p
    kb, mb = k[1], m[1]
    for key in ("name", "error_count", "groups"):
        if kb.get(key) != mb.get(key):
            p.append(f"{key}: Kafka {_short(kb.get(key), 200)}, Moldau {_short(mb.get(key), 200)}")
    kc = {c["value"]["name"]: c for c in kb["configs"]}
    mc = {c["value"]["name"]: c for c in mb["configs"]}
    if [n for n in kc if n in mc] != [n for n in mc if n in kc] or set(kc) != set(mc):
        p.append(f"config keys: only Kafka {[n for n in kc if n not in mc]}, "
                 f"only Moldau {[n for n in mc if n not in kc]}")
    for n, c in kc.items():
        if n not in mc:
            continue
        d = mc[n]
        if c.get("definition") and d.get("definition"):
            p += deep_diff(strip_docs(c["definition"]), strip_docs(d["definition"]), f"{n}/definition", limit=3)
        kv, mv = dict(c["value"]), dict(d["value"])
        # Moldau's "class not found" error goes on to list the classes it knows: harmless.
        mv["errors"] = [e.split(" Known classes: ")[0] for e in mv.get("errors", [])]
        p += deep_diff(kv, mv, f"{n}/value", limit=3)
    return p[:20]


def transform_validation(moldau_errors: Optional[int]) -> Callable[[Answer, Answer], List[str]]:
    """A documented difference in validating transforms: the error count is Kafka's (or the
    documented one) and the configs both list agree."""
    def f(k: Answer, m: Answer) -> List[str]:
        p = same_status(k, m)
        if p:
            return p
        want = k[1].get("error_count") if moldau_errors is None else moldau_errors
        if m[1].get("error_count") != want:
            p.append(f"error_count: Moldau {m[1].get('error_count')}, documented {want}")
        kc = {c["value"]["name"]: c for c in k[1]["configs"]}
        for c in m[1]["configs"]:
            n = c["value"]["name"]
            if n in kc and not n.startswith("transforms") and c.get("definition") and kc[n].get("definition"):
                p += deep_diff(strip_docs(kc[n]["definition"]), strip_docs(c["definition"]), f"{n}/definition", limit=3)
        return p[:20]
    return f


def unversioned(k: Answer, m: Answer) -> List[str]:
    """Connector/task status bodies."""
    return same(k, m)


def tasks_configs(k: Answer, m: Answer) -> List[str]:
    return same(k, m)


def loggers_list(k: Answer, m: Answer) -> List[str]:
    p = same_status(k, m)
    if not isinstance(m[1], dict) or m[1].get("root") != k[1].get("root"):
        p.append(f"root: Kafka {_short(k[1].get('root'))}, Moldau {_short(m[1])}")
    return p


def logger_root(k: Answer, m: Answer) -> List[str]:
    return same(k, m)


def logger_set(k: Answer, m: Answer) -> List[str]:
    p = same_status(k, m)
    if not p and k[0] == 200 and not isinstance(m[1], list):
        p.append(f"body: Kafka a list ({_short(k[1])}), Moldau {_short(m[1])}")
    return p


def no_connector_type(k: Answer, m: Answer) -> List[str]:
    """400 "Connector config {..} contains no connector type": the map prints in each one's order."""
    p = same_status(k, m)
    pat = re.compile(r"^Connector config \{(.*)\} contains no connector type$")
    km, mm = pat.match(k[1].get("message", "")), pat.match(m[1].get("message", ""))
    if not (km and mm and sorted(km.group(1).split(", ")) == sorted(mm.group(1).split(", "))):
        p.append(f"message: Kafka {k[1]}, Moldau {m[1]}")
    return p


# label -> (verdict, check). Verdicts: "same" (status and body agree), "harmless" (a documented
# difference: the check asserts Moldau's answer), "BUG" (a KNOWN-DIFF: the check asserts
# Kafka's answer and fails until Moldau is fixed). Labels not listed are "same".
EXPECT: Dict[str, Tuple[str, Callable[[Answer, Answer], List[str]]]] = {
    "server info": ("same", server_info),
    # Versions are each worker's own; Moldau has more built-in connectors (Kafka: only the
    # FileStream pair here).
    "connector plugins": ("harmless", plugins_superset),
    "all plugins": ("harmless", plugins_superset),
    "plugin config (alias)": ("same", plugin_config),
    "plugin config (simple name)": ("same", plugin_config),
    "plugin config (sink, class name)": ("same", plugin_config),
    "validate: valid": ("same", validation),
    "validate: no topic": ("same", validation),
    "validate: tasks.max=abc": ("same", validation),
    # Moldau validates a transformation by configuring it (Kafka: by its ConfigDef only, listing
    # its keys under a "Transforms: <alias>" group): the same errors for an unknown class and a
    # missing type, without the per-transform entries.
    "validate: unknown transform class": ("harmless", transform_validation(None)),
    "validate: transform alias without type": ("harmless", transform_validation(None)),
    # Kafka reports 0 errors (InsertField checks its config only when the task configures it,
    # so the connector is created and its task fails); Moldau refuses it at validation.
    "validate: known transform, missing its config": ("harmless", transform_validation(1)),
    # Kafka: 500 "org.apache...BadRequestException: Connector config {name=v, topic=t} contains
    # no connector type" (its validate path wraps the 400); Moldau validates against the plugin
    # named in the path: 200, error_count 0.
    "validate: no connector.class": ("harmless", lambda k, m: moldau_is(200)(k, m) + (
        [] if m[1].get("error_count") == 0 else [f"error_count {m[1].get('error_count')}"])),
    "validate: malformed JSON": ("harmless", deserialize_error),
    # Kafka: 500 (a ConnectException naming PluginDesc{...}); Moldau: 400 on purpose.
    "validate: unknown plugin": ("harmless", moldau_is(
        400, prefix="Failed to find any class that implements Connector and which name matches NoSuchConnector, "
                    "available connectors are: ")),
    # Kafka: 500 "Cannot invoke \"java.util.Map.get(Object)\" because \"connectorConfig\" is null".
    "create without config": ("harmless", moldau_is(
        400, {"error_code": 400, "message": "Connector config must be provided"})),
    "create without connector.class": ("harmless", no_connector_type),
    "create with an unknown class": ("harmless", message_prefix_until("available connectors are:")),
    "create with malformed JSON": ("harmless", deserialize_error),
    "create with a bad initial_state": ("harmless", deserialize_error),
    "list": ("harmless", same_set),
    "list ?expand=status": ("same", unversioned),
    "list ?expand=status&expand=info": ("same", unversioned),
    "status": ("same", unversioned),
    "status of a STOPPED connector": ("same", unversioned),
    "tasks": ("same", tasks_configs),
    "tasks (sink)": ("same", tasks_configs),
    "task status": ("same", unversioned),
    # Removed in Kafka 4.0 (KIP-970; 404 "HTTP 404 Not Found"); Moldau still serves it: task id
    # -> task config.
    "tasks-config (removed in Kafka 4.0)": ("harmless", lambda k, m: moldau_is(200)(k, m) + (
        [] if isinstance(m[1], dict) and list(m[1]) == ["@W@-src-0"] else [f"body {_short(m[1])}"])),
    "PUT config: malformed JSON": ("harmless", deserialize_error),
    "status paused": ("same", unversioned),
    "status stopped": ("same", unversioned),
    # Kafka: 500 from FileStreamSourceConnector.alterOffsets (a ConnectException); Moldau: 400.
    "PATCH offsets: bad source partition": ("harmless", moldau_is(
        400, {"error_code": 400, "message": "Partition objects should contain the key 'filename'"})),
    "PATCH offsets: bad source position": ("harmless", moldau_is(
        400, {"error_code": 400, "message": "The value for the 'position' key in the offset is expected to "
                                            "be a non-negative Long value"})),
    # Both 400; Kafka: "The partition for a sink connector offset must contain the keys
    # 'kafka_topic' and 'kafka_partition'" / "Failed to parse the following Kafka offset value in
    # the provided offsets: 'one'. Offset values for sink connectors need to be integers."
    "PATCH offsets: sink without kafka_partition": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        400, {"error_code": 400, "message": "Sink connector partitions must contain 'kafka_topic' (a string) "
                                            "and 'kafka_partition' (an integer)"})(k, m)),
    "PATCH offsets: sink with a bad kafka_offset": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        400, {"error_code": 400, "message": "Sink connector offsets must contain 'kafka_offset', a non-negative "
                                            "integer"})(k, m)),
    "restart ?includeTasks=true": ("same", unversioned),
    "restart ?onlyFailed=true": ("same", unversioned),
    "restart ?includeTasks=true&onlyFailed=true": ("same", unversioned),
    "restart a stopped connector ?includeTasks=true": ("same", unversioned),
    "status of a STOPPED connector after a restart": ("same", unversioned),
    # Both 404; Kafka: "Task @W@-src-7 not found".
    "restart an unknown task": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        404, {"error_code": 404, "message": "Unknown task: @W@-src-7"})(k, m)),
    # Kafka: 200 {"nosuch": {"topics": []}}; Moldau: 404 as every other unknown-connector call.
    "unknown connector: topics": ("harmless", moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})),
    # Both 404; Kafka: "Unknown connector nosuch".
    "unknown connector: pause": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})(k, m)),
    "unknown connector: resume": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})(k, m)),
    # Kafka: 500 "No connector `nosuch` configured".
    "unknown connector: stop": ("harmless", moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})),
    # Kafka: 500 "Cannot invoke \"java.util.Map.get(Object)\" because \"connProps\" is null".
    "unknown connector: restart": ("harmless", moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})),
    # Both 404; Kafka: "Unknown connector: nosuch".
    "unknown connector: restart ?includeTasks=true": ("harmless", lambda k, m: same_status(k, m) + moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})(k, m)),
    # Kafka: 500 "Failed to start task nosuch-0 since it is not a recognizable type (source or sink)".
    "unknown connector: task restart": ("harmless", moldau_is(
        404, {"error_code": 404, "message": "Connector nosuch not found"})),
    "loggers": ("same", loggers_list),
    "logger root": ("same", logger_root),
    "set root level": ("same", logger_set),
    "set a logger with scope=cluster (standalone)": ("same", logger_set),
}


def compare_all(kafka: Dict[str, Answer], moldau: Dict[str, Answer]) -> Dict[str, List[str]]:
    """label -> problems (empty when the step agrees as expected)."""
    out = {}
    for label, *_ in steps():
        verdict, fn = EXPECT.get(label, ("same", same))
        try:
            out[label] = fn(kafka[label], moldau[label])
        except Exception as e:  # a body of an unexpected shape
            out[label] = [f"cannot compare ({type(e).__name__}: {e}): Kafka {_short(kafka[label])}, "
                          f"Moldau {_short(moldau[label])}"]
    return out


def report(kafka: Dict[str, Answer], moldau: Dict[str, Answer], log=print) -> List[str]:
    """Logs every step's verdict; returns the failed steps' descriptions."""
    failed = []
    for (label, method, path, *_), (lab, problems) in zip(steps(), compare_all(kafka, moldau).items()):
        verdict = EXPECT.get(label, ("same",))[0]
        k, m = kafka[label], moldau[label]
        if problems:
            tag = "KNOWN-DIFF" if verdict == "BUG" else "FAIL"
            failed.append(f"[{tag}] {label} ({method} {path}): " + "; ".join(problems))
            log(f"{tag:10s} {label}: {method} {path} -> Kafka {k[0]}, Moldau {m[0]}")
            for pr in problems:
                log(f"             {pr}")
        else:
            log(f"{'ok ' + verdict:10s} {label}: {method} {path} -> {k[0]}"
                + ("" if k[0] == m[0] else f" / Moldau {m[0]}"))
    return failed


# --------------------------------------------------------------------------- scenarios

def _need_connect_jars():
    jars = connect_jars()
    if not (jars / f"connect-runtime-{CONNECT_VERSION}.jar").is_file():
        raise CheckFailed(f"Kafka Connect {CONNECT_VERSION} jars missing in {jars} (compat/run fetches them)")


def register(scenario):
    @scenario
    def connect_kafka_worker(ctx):
        """the real Kafka Connect 4.1.1 standalone worker over a Moldau broker: FileStreamSource -> topic -> FileStreamSink, offsets kept across a worker restart, REST offsets read through the broker (consumer group)"""
        _need_connect_jars()
        broker = ctx.broker()
        w = Worker("kafka", "kafka", ctx.workdir, broker.bootstrap)
        inp, outp = w.dir / "in.txt", w.dir / "out.txt"
        # ASCII only: Kafka's FileStreamSourceTask records its position in chars but skips bytes
        # when it resumes, so a file with multi-byte characters is partly read again after a restart
        lines = [f"line {i} {'x' * (i % 7)}" for i in range(200)]
        inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        src = w.dir / "source.properties"
        src.write_text("\n".join([
            "name=e2e-source", "connector.class=FileStreamSource", "tasks.max=1",
            f"file={inp}", "topic=e2e-lines", "batch.size=50", ""]))
        sink = w.dir / "sink.json"
        sink.write_text(json.dumps({"name": "e2e-sink", "config": {
            "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max": "1",
            "file": str(outp), "topics": "e2e-lines"}}))
        cmd = w.command() + [str(src), str(sink)]
        w.command = lambda: cmd  # connectors given on the command line, as connect-standalone takes them

        def wait_out(n: int, timeout: float = 45.0) -> List[str]:
            deadline = time.time() + timeout
            got: List[str] = []
            while time.time() < deadline:
                got = outp.read_text(encoding="utf-8").splitlines() if outp.exists() else []
                if len(got) >= n:
                    return got
                if w.proc.poll() is not None:
                    raise CheckFailed(f"Kafka Connect exited with {w.proc.returncode}:\n{w.tail()}")
                time.sleep(0.3)
            raise CheckFailed(f"the sink file has {len(got)} of {n} lines after {timeout}s; worker log:\n{w.tail()}")

        try:
            w.start(timeout=90)
            ctx.log(f"Kafka Connect {w.version} answered its REST API {w.started_in:.1f}s after start")
            for name in ("e2e-source", "e2e-sink"):
                w.wait_status(name, "RUNNING", ["RUNNING"], timeout=45)
            got = wait_out(len(lines))
            check(got == lines, f"sink file differs from the source file: {len(got)} lines, first "
                                f"difference at {next((i for i, (a, b) in enumerate(zip(got, lines)) if a != b), None)}")
            ctx.log(f"{len(lines)} lines went file -> e2e-lines -> file")
            more = [f"appended {i}" for i in range(30)]
            with open(inp, "a", encoding="utf-8") as f:
                f.write("\n".join(more) + "\n")
            got = wait_out(len(lines) + len(more))
            check(got == lines + more, "the appended lines did not follow in order")
            ctx.log("30 appended lines followed")
            # the sink's committed offsets, read by Kafka's worker from the broker (Admin
            # listConsumerGroupOffsets of the group connect-e2e-sink) once stopped
            st, body = w.req("PUT", "/connectors/e2e-sink/stop")
            check(st == 204, f"stop sink: {st} {body}")
            w.wait_status("e2e-sink", "STOPPED", [])
            st, body = w.req("GET", "/connectors/e2e-sink/offsets")
            want = {"offsets": [{"partition": {"kafka_topic": "e2e-lines", "kafka_partition": 0},
                                 "offset": {"kafka_offset": len(lines) + len(more)}}]}
            check(st == 200 and body == want, f"sink offsets: {st} {body}, expected {want}")
            st, body = w.req("PUT", "/connectors/e2e-sink/resume")
            check(st == 202, f"resume sink: {st} {body}")
            w.wait_status("e2e-sink", "RUNNING", ["RUNNING"])
            # restart the worker: the source resumes at its flushed file position (offsets
            # file), the sink at its group's committed offset (the broker's OffsetFetch)
            time.sleep(1.5)  # > offset.flush.interval.ms
            w.stop()
            check(w.proc.returncode in (0, 143), f"Kafka Connect exit code {w.proc.returncode}")
            later = [f"after restart {i}" for i in range(20)]
            with open(inp, "a", encoding="utf-8") as f:
                f.write("\n".join(later) + "\n")
            w.start(timeout=90)
            for name in ("e2e-source", "e2e-sink"):
                w.wait_status(name, "RUNNING", ["RUNNING"], timeout=45)
            got = wait_out(len(lines) + len(more) + len(later))
            time.sleep(2)  # a duplicate would show up by now
            got = outp.read_text(encoding="utf-8").splitlines()
            check(got == lines + more + later,
                  f"after the restart the sink file has {len(got)} lines, expected "
                  f"{len(lines) + len(more) + len(later)} (no duplicates, no loss)")
            ctx.log("after a worker restart: 20 new lines, nothing read or written twice")
            bad = [ln for ln in w.log.read_text(errors="replace").splitlines() if " ERROR " in ln]
            check(not bad, "Kafka Connect logged errors:\n" + "\n".join(bad[:10]))
        finally:
            w.stop()

    @scenario
    def connect_kafka_distributed(ctx):
        """the real Kafka Connect 4.1.1 distributed worker over a Moldau broker: its compacted config/offsets/status topics, the connect group protocol, FileStreamSource -> FileStreamSink created through REST, offsets altered and reset while stopped, connectors and offsets restored from the topics after a worker restart"""
        _need_connect_jars()
        broker = ctx.broker()
        w = Worker("kafka", "dist", ctx.workdir, broker.bootstrap, distributed=True)
        inp, outp = w.dir / "in.txt", w.dir / "out.txt"
        rows = [f"row {i}" for i in range(100)]
        inp.write_text("\n".join(rows) + "\n")

        def wait_out(n: int, timeout: float = 45.0) -> List[str]:
            deadline = time.time() + timeout
            got: List[str] = []
            while time.time() < deadline:
                got = outp.read_text().splitlines() if outp.exists() else []
                if len(got) >= n:
                    return got
                time.sleep(0.3)
            raise CheckFailed(f"the sink file has {len(got)} of {n} lines after {timeout}s; worker log:\n{w.tail()}")

        def ok(answer: Answer, status: int, what: str) -> Any:
            check(answer[0] == status, f"{what}: {answer[0]} {_short(answer[1])}, expected {status}")
            return answer[1]

        try:
            w.start(timeout=90)
            ctx.log(f"Kafka Connect {w.version} (distributed) answered its REST API {w.started_in:.1f}s after start")
            ok(w.req("POST", "/connectors", {"name": "src", "config": {
                "connector.class": "FileStreamSource", "file": str(inp), "topic": "dist-lines"}}), 201, "create source")
            ok(w.req("POST", "/connectors", {"name": "sink", "config": {
                "connector.class": "FileStreamSink", "file": str(outp), "topics": "dist-lines"}}), 201, "create sink")
            for name in ("src", "sink"):
                w.wait_status(name, "RUNNING", ["RUNNING"], timeout=45)
            check(wait_out(100) == rows, "the sink file differs from the source file")
            ctx.log("100 rows went file -> dist-lines -> file")
            # the internal topics as Kafka Connect created them (Admin createTopics): compacted,
            # with Kafka's default partition counts
            for topic, parts in (("dist-configs", 1), ("dist-offsets", 25), ("dist-status", 5)):
                out = subprocess.run([broker.binary, "topics", "describe", "--bootstrap-server", broker.bootstrap,
                                      "--topic", topic], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     timeout=30).stdout.decode(errors="replace")
                check(f"PartitionCount: {parts}\t" in out and "cleanup.policy=compact" in out,
                      f"{topic}: expected {parts} partitions, cleanup.policy=compact: {out[:300]}")
            ctx.log("internal topics: dist-configs 1, dist-offsets 25, dist-status 5 partitions, compacted")
            ok(w.req("PUT", "/connectors/src/stop"), 204, "stop source")
            ok(w.req("PUT", "/connectors/sink/stop"), 204, "stop sink")
            w.wait_status("src", "STOPPED", [])
            w.wait_status("sink", "STOPPED", [])
            body = ok(w.req("GET", "/connectors/src/offsets"), 200, "source offsets")
            check(body == {"offsets": [{"partition": {"filename": str(inp)},
                                        "offset": {"position": sum(len(r) + 1 for r in rows)}}]},
                  f"source offsets from the offsets topic: {body}")
            body = ok(w.req("GET", "/connectors/sink/offsets"), 200, "sink offsets")
            check(body == {"offsets": [{"partition": {"kafka_topic": "dist-lines", "kafka_partition": 0},
                                        "offset": {"kafka_offset": 100}}]}, f"sink offsets: {body}")
            # rewind the source to row 90 (written to the offsets topic), restart the sink at 95
            pos90 = sum(len(r) + 1 for r in rows[:90])
            ok(w.req("PATCH", "/connectors/src/offsets", {"offsets": [
                {"partition": {"filename": str(inp)}, "offset": {"position": pos90}}]}), 200, "alter source offsets")
            ok(w.req("PATCH", "/connectors/sink/offsets", {"offsets": [
                {"partition": {"kafka_topic": "dist-lines", "kafka_partition": 0},
                 "offset": {"kafka_offset": 95}}]}), 200, "alter sink offsets")
            ok(w.req("PUT", "/connectors/src/resume"), 202, "resume source")
            ok(w.req("PUT", "/connectors/sink/resume"), 202, "resume sink")
            # the sink re-reads rows 95..99, then the source's rows 90..99 again
            want = rows + rows[95:] + rows[90:]
            got = wait_out(len(want))
            check(got == want, f"after altering the offsets the sink wrote {got[100:]}")
            ctx.log("offsets altered through the topics and the group: rows 95.. and 90.. again")
            # a worker restart: connectors, targets and offsets come back from the topics
            time.sleep(1.5)
            w.stop()
            more = [f"later {i}" for i in range(10)]
            with open(inp, "a") as f:
                f.write("\n".join(more) + "\n")
            w.start(timeout=90)
            for name in ("src", "sink"):
                w.wait_status(name, "RUNNING", ["RUNNING"], timeout=60)
            got = wait_out(len(want) + len(more))
            time.sleep(2)
            got = outp.read_text().splitlines()
            check(got == want + more, f"after the restart: {got[len(want):]}, expected {more}")
            ctx.log("after a worker restart: the 10 new rows exactly once")
            body = ok(w.req("GET", "/connectors"), 200, "list")
            check(sorted(body) == ["sink", "src"], f"connectors after the restart: {body}")
            bad = [ln for ln in w.log.read_text(errors="replace").splitlines() if " ERROR " in ln]
            check(not bad, "Kafka Connect logged errors:\n" + "\n".join(bad[:10]))
        finally:
            w.stop()

    @scenario
    def connect_rest(ctx):
        """the same 124 REST requests to Kafka Connect 4.1.1 and to `moldau connect standalone` (one Moldau broker): status codes and JSON bodies agree, documented differences assert Moldau's answer, KNOWN-DIFF steps assert Kafka's"""
        _need_connect_jars()
        broker = ctx.broker()
        kw = Worker("kafka", "alpha", ctx.workdir, broker.bootstrap)
        mw = Worker("moldau", "bravo", ctx.workdir, broker.bootstrap)
        try:
            mw.start(timeout=30)
            kw.start(timeout=90)
            ctx.log(f"workers up: Kafka Connect {kw.version} in {kw.started_in:.1f}s, Moldau {mw.version} "
                    f"in {mw.started_in:.1f}s")
            kafka = run_steps(kw)
            ctx.log(f"Kafka Connect answered {len(kafka)} requests")
            moldau = run_steps(mw)
            ctx.log(f"Moldau answered {len(moldau)} requests")
            (ctx.workdir / "answers.json").write_text(json.dumps({"kafka": kafka, "moldau": moldau}, indent=1))
            failed = report(kafka, moldau, log=ctx.log)
            known = [f for f in failed if f.startswith("[KNOWN-DIFF]")]
            ctx.log(f"{len(steps()) - len(failed)} of {len(steps())} steps as expected, "
                    f"{len(known)} known differences (Moldau bugs), {len(failed) - len(known)} other failures")
            if failed:
                raise CheckFailed(f"{len(failed)} step(s) differ from Kafka Connect "
                                  f"({len(known)} KNOWN-DIFF):\n" + "\n".join("  - " + f[:600] for f in failed))
        finally:
            kw.stop()
            mw.stop()


def main(argv):
    """By hand: both workers already running (on any broker); prints every step's verdict."""
    kafka_url, moldau_url, workdir = argv[0], argv[1], Path(argv[2])
    answers = {}
    for kind, url, token in (("kafka", kafka_url, "alpha"), ("moldau", moldau_url, "bravo")):
        w = Worker(kind, token, workdir, "unused")
        w.base = url
        w.port = int(url.rsplit(":", 1)[1])
        w.version = http(url, "GET", "/")[1].get("version")
        answers[kind] = run_steps(w)
    (workdir / "answers.json").write_text(json.dumps(answers, indent=1))
    failed = report(answers["kafka"], answers["moldau"])
    print(f"{len(failed)} step(s) differ")


if __name__ == "__main__":
    main(sys.argv[1:])
