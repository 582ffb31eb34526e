#!/usr/bin/env python3
"""Runs the compatibility scenarios, each in its own process group with a time limit.

    runner.py                 all scenarios
    runner.py NAME...         the named scenarios (prefix match: "matrix" runs all matrix_*)
    runner.py --list          names and what each checks

Prints "PASS name (secs)" / "FAIL name (secs)" with the reason, and ends with the
line "N passed, N failed". Exit code 1 when anything failed.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
OUT = HERE / ".out"


def run_child(name: str) -> int:
    """Body of the per-scenario process."""
    import scenarios
    from harness.util import CheckFailed
    workdir = Path(os.environ["COMPAT_SCENARIO_DIR"])
    ctx = scenarios.Ctx(workdir)
    def crashed():
        for b in ctx.brokers:
            msg = b.died_unexpectedly()
            if msg:
                print("BROKER CRASH: " + msg, flush=True)
            elif b.starts:
                print(f"broker log (warnings/errors, else last lines):\n{b.log_tail(8)}", flush=True)
        # The clients' own logs often say why (CI keeps only what is printed here).
        for client_log in sorted(workdir.glob("*.log")):
            if client_log.name == "scenario.log":
                continue
            try:
                lines = client_log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if lines:
                print(f"client log {client_log.name} (last lines):", flush=True)
                print("\n".join("    | " + ln[:300] for ln in lines[-15:]), flush=True)
    try:
        scenarios.SCENARIOS[name](ctx)
        return 0
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", flush=True)
        crashed()
        return 1
    except Exception:
        print("ERROR: " + traceback.format_exc(), flush=True)
        crashed()
        return 1
    finally:
        try:
            ctx.close()
        except Exception:
            pass


_CURRENT = []


def _on_signal(signum, frame):
    # compat/run was interrupted: take the running scenario's brokers and clients down too
    for p in _CURRENT:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sys.exit(128 + signum)


def main(argv) -> int:
    if len(argv) >= 2 and argv[0] == "--child":
        return run_child(argv[1])
    import scenarios
    names = list(scenarios.SCENARIOS)
    if argv and argv[0] == "--list":
        for n in names:
            print(f"{n:28s} {scenarios.DESCRIPTIONS[n]}")
        return 0
    if argv:
        sel = [n for n in names if any(n == a or n.startswith(a) for a in argv)]
        unknown = [a for a in argv if not any(n == a or n.startswith(a) for n in names)]
        if unknown:
            print(f"unknown scenario(s): {' '.join(unknown)}; see --list", file=sys.stderr)
            return 2
        names = sel
    limit = float(os.environ.get("COMPAT_TIMEOUT", "150"))
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    OUT.mkdir(exist_ok=True)
    passed = failed = 0
    t_all = time.time()
    for name in names:
        wd = OUT / name
        shutil.rmtree(wd, ignore_errors=True)
        wd.mkdir(parents=True)
        env = dict(os.environ, COMPAT_SCENARIO_DIR=str(wd), PYTHONUNBUFFERED="1")
        t0 = time.time()
        with open(wd / "scenario.log", "wb") as logf:
            proc = subprocess.Popen([sys.executable, "-u", str(HERE / "runner.py"), "--child", name],
                                    stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(HERE),
                                    start_new_session=True)
            _CURRENT[:] = [proc]
            try:
                rc = proc.wait(limit)
                timed_out = False
            except subprocess.TimeoutExpired:
                rc, timed_out = -1, True
            # the scenario's process group holds its brokers and client processes: end them all
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        dt = time.time() - t0
        text = (wd / "scenario.log").read_text(errors="replace")
        if rc == 0:
            passed += 1
            print(f"PASS {name} ({dt:.1f}s)", flush=True)
        else:
            failed += 1
            why = "timed out after %.0fs" % limit if timed_out else "exit %d" % rc
            print(f"FAIL {name} ({dt:.1f}s, {why})", flush=True)
            lines = [ln for ln in text.splitlines() if ln.strip()]
            for ln in lines[-40:]:
                print("    " + ln)
            print(f"    (logs: {wd})", flush=True)
    print(f"compat suite: {len(names)} scenarios in {time.time() - t_all:.0f}s", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
