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

Differences that are Moldau bugs are asserted with Kafka's behaviour and marked
`# KNOWN-DIFF:` so they can be found; they fail until Moldau is fixed.

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

    def __init__(self, kind: str, token: str, workdir: Path, bootstrap: str):
        self.kind, self.token = kind, token
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
            f"offset.storage.file.filename={self.dir / 'connect.offsets'}",
            "offset.flush.interval.ms=1000",
            f"listeners=http://127.0.0.1:{self.port}",
            "",
        ]))
        self.started_in = None

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
                "org.apache.kafka.connect.cli.ConnectStandalone", str(self.props)]

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


