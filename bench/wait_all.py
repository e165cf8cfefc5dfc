#!/usr/bin/env python3
"""Waiting on many operations: ``api.wait_all`` (one event stream) against one
thread per operation long-polling ``wait()``, on the same LXD, in one run.

What is measured
----------------
1. Many at once: ``--count`` (default 200) execs of ``sleep --sleep`` (default
   10 s) in one busybox instance, all started before the wait begins, then
   waited for by each client in turn (fresh execs each time): ``wait_all``
   from this thread, or a pool of one thread per operation each calling
   ``wait()`` (what a caller without wait_all writes). Sockets are real
   ``socket.connect`` calls to LXD's socket during the wait, counted with an
   audit hook (it observes the transport and replaces nothing); threads are
   the threads alive while waiting, this one included; wall time is from the
   start of the wait until every result is back, and the notice latency of
   the last one is when the wait returned minus when LXD marked the last
   operation ended (its ``updated_at``, the same machine's clock).
2. Notice latency: ``--samples`` (default 30) single execs of ``sleep 0.3``,
   each waited on by ``wait_all([op])``, then as many by ``wait()``; each
   sample is the moment the call returned minus the operation's final
   ``updated_at``. p50 and p99 (with 30 samples p99 is about the worst).

The machine is shared (2 cores, LXD on the same cores, other engineers'
tests on the same daemon): absolute figures move between runs; the sockets
and threads do not.

How to run (as root, with the LXD sandbox up)::

    python3 bench/wait_all.py [--count 200] [--sleep 10] [--samples 30]
                              [--endpoint /var/lib/lxd/unix.socket]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, NamedTuple, Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apitx  # noqa: E402
from core import ConnectCounter as Connects  # noqa: E402  (bench/ is on sys.path when run)

LATENCY_TARGET_MS = 5.0


def ended_at(answer: apitx.APIResult) -> float:
    """When LXD marked the operation ended (``updated_at``), as a Unix time."""
    whole, _, fraction = answer.metadata["updated_at"].rstrip("Z").partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base.timestamp() + float(f"0.{fraction or 0}")


def start(api: apitx.API, instance: str, seconds: str) -> apitx.APIResult:
    return api.post(f"instances/{instance}/exec", json={
        "command": ["sleep", seconds], "record-output": False,
        "wait-for-websocket": False, "interactive": False})


def by_wait_all(api: apitx.API, started: Sequence[apitx.APIResult]) -> List[Any]:
    return api.wait_all(started, timeout=600)


def by_threads(api: apitx.API, started: Sequence[apitx.APIResult]) -> List[Any]:
    with ThreadPoolExecutor(max_workers=len(started)) as pool:
        return list(pool.map(lambda result: result.wait(timeout=600), started))


class Many(NamedTuple):
    sockets: int
    threads: int
    wall: float          # seconds
    last_notice: float   # seconds from the last operation's end to the return


def many(api: apitx.API, instance: str, count: int, seconds: str, connects: Connects,
         wait: Callable[[apitx.APIResult, Sequence[apitx.APIResult]], List[Any]]) -> Many:
    started = [start(api, instance, seconds) for _ in range(count)]
    peak = [threading.active_count()]
    watching = threading.Event()

    def sample() -> None:  # the threads alive while waiting (this sampler left out)
        while not watching.wait(0.05):
            peak.append(threading.active_count() - 1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    connects.count, connects.counting = 0, True
    began = time.perf_counter()
    try:
        done = wait(api, started)
        returned, wall = time.time(), time.perf_counter() - began
    finally:
        connects.counting = False
        watching.set()
        sampler.join()
    assert [a.metadata["id"] for a in done] == [r.metadata["id"] for r in started]
    assert all(a.metadata["status"] == "Success" for a in done)
    return Many(connects.count, max(peak), wall, returned - max(map(ended_at, done)))


def notice(api: apitx.API, instance: str, samples: int,
           wait: Callable[[apitx.APIResult], apitx.APIResult]) -> List[float]:
    """Seconds from each operation's end to the wait's return."""
    seen = []
    for _ in range(samples):
        done = wait(start(api, instance, "0.3"))
        seen.append(time.time() - ended_at(done))
    return seen


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--sleep", default="10", help="seconds each exec sleeps (default 10)")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--endpoint", default="/var/lib/lxd/unix.socket")
    args = parser.parse_args()
    api = apitx.API.factory(args.endpoint, trace=False)
    name = f"apitx-{os.urandom(5).hex()}"
    api.post("instances", json={"name": name, "source": {"type": "image",
                                                         "alias": "apitx-busybox"}}).wait(120)
    connects = Connects(args.endpoint)
    try:
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
        server = api.get("").metadata["environment"]
        print(f"wait_all vs one thread per wait() on unix:{args.endpoint} "
              f"({server['server']} {server['server_version']}); {os.cpu_count()} CPUs\n")

        print(f"1. {args.count} execs of sleep {args.sleep}, started, then waited on")
        print(f"   {'client':<18}{'sockets':>8}{'threads':>8}{'wall s':>9}{'last noticed ms':>17}")
        results: Dict[str, Many] = {}
        for label, wait in (("wait_all", by_wait_all), ("threads x wait()", by_threads)):
            results[label] = many(api, name, args.count, args.sleep, connects, wait)
            fig = results[label]
            print(f"   {label:<18}{fig.sockets:>8}{fig.threads:>8}{fig.wall:>9.2f}"
                  f"{fig.last_notice * 1000:>17.1f}")

        print(f"\n2. Notice latency: {args.samples} single execs of sleep 0.3 each, "
              "from the operation's end (updated_at) to the call's return")
        print(f"   {'client':<18}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
        latencies = {
            "wait_all([op])": notice(api, name, args.samples, lambda r: api.wait_all([r])[0]),
            "wait()": notice(api, name, args.samples, lambda r: r.wait()),
            "wait(progress=)": notice(api, name, args.samples,
                                      lambda r: r.wait(progress=lambda answer: None)),
        }
        for label, values in latencies.items():
            print(f"   {label:<18}{percentile(values, .5) * 1000:>8.1f}"
                  f"{percentile(values, .99) * 1000:>8.1f}{max(values) * 1000:>8.1f}")
        p50 = statistics.median(latencies["wait_all([op])"]) * 1000
        print(f"\ntarget wait_all notice p50 < {LATENCY_TARGET_MS:g} ms: "
              f"{'PASS' if p50 < LATENCY_TARGET_MS else 'FAIL'} ({p50:.1f})")
        print(f"sockets: wait_all {results['wait_all'].sockets}, "
              f"threads x wait() {results['threads x wait()'].sockets}")
    finally:
        state = api.get(f"instances/{name}/state", validate=False)
        if state.ok and state.metadata.get("status") == "Running":
            api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
        api.delete(f"instances/{name}").wait(60)
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
