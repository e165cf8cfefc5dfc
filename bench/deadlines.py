#!/usr/bin/env python3
"""How long apitx takes to honour a timeout, a deadline or a close(): the
figures that used to be timing assertions in tests/.

The tests assert the behaviour (a timeout raises the timeout, not the drop
that would follow; a wait gives up while the operation still runs; close()
ends a blocked iteration) and never how long it took: on a shared machine a
wall-clock bound in a test is a flaky test. The durations are measured here
instead, each the median and the worst of ``--rounds`` runs (default 5),
against what was asked:

- ``events(timeout=0.3)``: ``next()`` on a stream where nothing comes;
- ``EventStream.confirm(0.3)`` on a stream that sends no ping;
- ``EventStream.close()`` from another thread: until the blocked iteration ends;
- ``Timeout(total=2)``: a server that dribbles its answer a byte each 0.1 s;
- ``apitx events --timeout 0.5`` and ``apitx --max-time 2`` (dribbling), as processes;
- live (``--endpoint``, LXD by default): ``wait(timeout=1)`` and
  ``wait(timeout=0)`` on a running exec, the ticks of ``wait(progress=)`` (the
  first, and the longest gap), ``run_exec(timeout=1)`` killing a sleep,
  how long the server keeps a finished operation, and a re-run of
  ``scripts/lxd-sandbox`` on a ready machine.

The silent and dribbling servers are the tests' own (tests/hostile.py,
tests/hostile_ws.py), on Unix sockets in a temporary directory. The
instance is made for the run (``apitx-<random>``) and deleted afterwards.

How to run (as root, with the LXD sandbox up; ``--offline`` skips the live part)::

    python3 bench/deadlines.py [--rounds 5] [--endpoint /var/lib/lxd/unix.socket] [--offline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import apitx  # noqa: E402
from apitx import run_exec  # noqa: E402
from hostile import running_server  # noqa: E402  (tests/ is on sys.path)
from hostile_ws import running_ws_server  # noqa: E402
from sandbox import instance_config, remove_instance  # noqa: E402


def start_exec(api: apitx.API, instance: str, *command: str) -> apitx.APIResult:
    """Start ``command`` in the (running) instance; the answer announces its operation."""
    return api.post(f"instances/{instance}/exec", json={
        "command": list(command), "record-output": False,
        "wait-for-websocket": False, "interactive": False})


def seconds(action: Callable[[], object]) -> float:
    """The wall-clock seconds ``action()`` took, whatever it raised."""
    started = time.perf_counter()
    try:
        action()
    except apitx.APITXError:
        pass
    return time.perf_counter() - started


def report(what: str, asked: str, samples: List[float]) -> None:
    print(f"{what:<52} {asked:>8} {statistics.median(samples):>9.3f} {max(samples):>9.3f}")


def silent_stream(timeout: float) -> Callable[[], float]:
    def measure() -> float:
        with running_ws_server([], then_drop=False) as server, \
                apitx.events(apitx.API.factory(server.server_address), timeout=timeout) as stream:
            return seconds(lambda: next(stream))
    return measure


def unconfirmed(timeout: float) -> float:
    with running_ws_server([], then_drop=False) as server, \
            apitx.events(apitx.API.factory(server.server_address)) as stream:
        return seconds(lambda: stream.confirm(timeout))


def close_from_another_thread() -> float:
    with running_ws_server([], then_drop=False) as server:
        stream = apitx.events(apitx.API.factory(server.server_address))
        ended = threading.Event()
        reader = threading.Thread(target=lambda: (list(stream), ended.set()), daemon=True)
        reader.start()
        time.sleep(0.2)  # blocked in recv by then
        closed = time.perf_counter()
        stream.close()
        ended.wait(30)
        return time.perf_counter() - closed


def dribbled(total: float) -> float:
    with running_server() as hostile, apitx.API.factory(
            hostile.server_address, timeout=apitx.Timeout(connect=1, read=1, total=total)) as api:
        return seconds(lambda: api.get("/dribble"))


def command(*argv: str) -> float:
    return seconds(lambda: subprocess.run([sys.executable, "-m", *argv], cwd=ROOT,
                                          capture_output=True, timeout=120))


def events_command(timeout: str) -> float:
    with running_ws_server([], then_drop=False) as server:
        return command("apitx._cli_events", "-e", server.server_address, "--timeout", timeout)


def max_time_command(total: str) -> float:
    with running_server() as hostile:
        return command("apitx", "-e", hostile.server_address, "--max-time", total, "/dribble")


def offline(rounds: int) -> None:
    report("events(timeout=0.3): next() on a silent stream", "0.3",
           [silent_stream(0.3)() for _ in range(rounds)])
    report("confirm(0.3) on a stream with no ping", "0.3",
           [unconfirmed(0.3) for _ in range(rounds)])
    report("close() from another thread: iteration ended", "-",
           [close_from_another_thread() for _ in range(rounds)])
    report("Timeout(total=2) on a dribbling answer", "2",
           [dribbled(2) for _ in range(rounds)])
    report("apitx events --timeout 0.5 (process)", "0.5",
           [events_command("0.5") for _ in range(rounds)])
    report("apitx --max-time 2 on a dribbling answer (process)", "2",
           [max_time_command("2") for _ in range(rounds)])


def progress_ticks(api: apitx.API, instance: str) -> List[float]:
    """[first tick, longest gap] of wait(progress=) on a 3 s command."""
    seen: List[float] = []
    start_exec(api, instance, "/bin/sleep", "3").wait(
        timeout=30, progress=lambda answer: seen.append(answer.waited))
    return [seen[0], max(b - a for a, b in zip(seen, seen[1:]))]


def kept_after_end(api: apitx.API, instance: str) -> float:
    started = start_exec(api, instance, "/bin/true")
    started.wait(timeout=30)
    ended = time.perf_counter()
    while api.get(started.operation, validate=False).status_code == 200:
        time.sleep(0.1)
    return time.perf_counter() - ended


def live(rounds: int, endpoint: str) -> None:
    with apitx.API.factory(endpoint) as api:
        name = f"apitx-{os.urandom(5).hex()}"
        try:
            api.post("instances", json=instance_config(name)).wait(timeout=120)
            api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)
            for timeout in (1, 0):
                report(f"wait(timeout={timeout}) on a running exec", str(timeout), [
                    seconds(lambda: start_exec(api, name, "/bin/sleep", "3").wait(timeout))
                    for _ in range(rounds)])
            ticks = [progress_ticks(api, name) for _ in range(rounds)]
            report("wait(progress=): first tick", "-", [first for first, _ in ticks])
            report("wait(progress=): longest gap between ticks", "1", [gap for _, gap in ticks])
            report("run_exec(timeout=1) of a sleep: killed, raised", "1", [
                seconds(lambda: run_exec(api, name, ["sleep", "60"], timeout=1))
                for _ in range(rounds)])
            report("a finished operation is kept by the server for", "-",
                   [kept_after_end(api, name) for _ in range(min(rounds, 3))])
        finally:
            remove_instance(api, name)
    report("scripts/lxd-sandbox on a ready machine", "-", [
        seconds(lambda: subprocess.run([os.path.join(ROOT, "scripts", "lxd-sandbox")],
                                       capture_output=True, timeout=600))
        for _ in range(rounds)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--endpoint", default="/var/lib/lxd/unix.socket")
    parser.add_argument("--offline", action="store_true", help="no live LXD part")
    args = parser.parse_args()
    print(f"{'':<52} {'asked s':>8} {'median s':>9} {'worst s':>9}")
    offline(args.rounds)
    if not args.offline:
        live(args.rounds, args.endpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
