"""Start, stop, kill and restart a Moldau broker for one scenario."""
from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Optional

from .util import CheckFailed


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_versions_ok(port: int, timeout: float = 2.0) -> bool:
    """Send ApiVersions v0 and read one response frame: the broker serves requests."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            client_id = b"compat-probe"
            body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
            s.sendall(struct.pack(">i", len(body)) + body)
            hdr = b""
            while len(hdr) < 4:
                chunk = s.recv(4 - len(hdr))
                if not chunk:
                    return False
                hdr += chunk
            (size,) = struct.unpack(">i", hdr)
            data = b""
            while len(data) < size:
                chunk = s.recv(size - len(data))
                if not chunk:
                    return False
                data += chunk
            corr, err = struct.unpack(">ih", data[:6])
            return corr == 7 and err == 0
    except OSError:
        return False


class Broker:
    """One moldau server process on a free loopback port with its own data dir.

    The same port and data dir are reused on restart, as a real node would.
    """

    def __init__(self, workdir: Path, binary: Optional[str] = None, extra: Optional[dict] = None):
        self.workdir = Path(workdir)
        self.binary = binary or os.environ.get("MOLDAU_BIN") or str(
            Path(__file__).resolve().parents[2] / "target" / "release" / "moldau")
        self.port = free_port()
        self.datadir = self.workdir / "data"
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.extra = dict(extra or {})
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self._log = None
        self._stopped_on_purpose = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_path(self, n: Optional[int] = None) -> Path:
        return self.workdir / f"broker-{self.starts if n is None else n}.log"

    def command(self):
        overrides = {
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.datadir),
            "metadata.log.dir": str(self.datadir / "meta"),
        }
        overrides.update(self.extra)
        cmd = [self.binary, "server"]
        for k, v in overrides.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self, timeout: float = 30.0) -> "Broker":
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> "Broker":
        """Starts the process without waiting (a cluster's nodes serve once a majority is up)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("broker already running")
        self.starts += 1
        self._stopped_on_purpose = False
        self._log = open(self.log_path(), "wb")
        env = dict(os.environ, NO_COLOR="1")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=str(self.workdir))
        return self

    def wait_ready(self, timeout: float = 30.0) -> "Broker":
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"broker exited with code {self.proc.returncode} during startup "
                                  f"(start #{self.starts}); log tail:\n{self.log_tail()}")
            if api_versions_ok(self.port, timeout=1.0):
                return self
            time.sleep(0.1)
        raise CheckFailed(f"broker did not answer ApiVersions on {self.bootstrap} within {timeout}s "
                          f"(start #{self.starts}); log tail:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: a clean shutdown. Returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self._stopped_on_purpose = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise CheckFailed(f"broker did not exit within {timeout}s of SIGTERM; log tail:\n{self.log_tail()}")
        finally:
            self._close_log()
        return rc

    def died_unexpectedly(self) -> Optional[str]:
        """A description if the broker exited without being told to (a crash), else None."""
        if self.proc is None or self._stopped_on_purpose or self.proc.poll() is None:
            return None
        return (f"broker (start #{self.starts}, port {self.port}) exited on its own with code {self.proc.returncode}; "
                f"log tail:\n{self.log_tail()}")

    def kill9(self) -> None:
        self._stopped_on_purpose = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def restart(self, timeout: float = 30.0) -> int:
        rc = self.stop()
        self.start(timeout)
        return rc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 12) -> str:
        """The last warnings/errors of the current broker log (else its last lines), colour codes removed."""
        try:
            lines = self.log_path().read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        lines = [_ANSI.sub("", ln) for ln in lines]
        bad = [ln for ln in lines if re.search(r"WARN|ERROR|panic|error", ln)]
        pick = (bad or lines)[-n:]
        return f"    | ({self.log_path()})\n" + "\n".join("    | " + ln[:300] for ln in pick)

    def close(self) -> None:
        """Kill whatever is left (scenario teardown)."""
        self.kill9()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
