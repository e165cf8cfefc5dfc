"""Soak: many threads sharing one API hammer a real server; nothing may fail.

Usage::

    python3 bench/soak.py [--threads 4] [--requests 5000] [--socket /var/lib/lxd/unix.socket]

Each thread sends ``--requests`` requests through ONE shared :class:`apitx.API`
(a mix of GET /1.0, GET /1.0/instances, a GET answered 404, and a profile),
checks every answer is the one its request asked for, and records the
latency. Printed: requests, errors (must be 0), sockets opened (an audit
hook counts every connect: one per thread at most), p50/p99/max latency and
throughput. Figures are for this machine only: compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from typing import List

import apitx

CONNECTS: List[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        CONNECTS.append(str(args[1]))


def worker(api: apitx.API, count: int, latencies: List[float], errors: List[str]) -> None:
    for index in range(count):
        kind = index % 4
        started = time.perf_counter()
        try:
            if kind == 0:
                ok = api.get("").metadata["api_version"] == "1.0"
            elif kind == 1:
                ok = isinstance(api.get("instances").metadata, list)
            elif kind == 2:
                ok = api.get("instances/apitx-soak-missing", validate=False).status_code == 404
            else:  # (HEAD /1.0 is answered 501 by LXD 5.0 and Incus 6.0 alike)
                ok = "devices" in api.get("profiles/default").metadata
        except apitx.APITXError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - started)
        if not ok:
            errors.append(f"request {index} (kind {kind}) got an answer not its own")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5000, help="per thread")
    parser.add_argument("--socket", default="/var/lib/lxd/unix.socket")
    args = parser.parse_args()
    sys.addaudithook(_audit)
    latencies: List[float] = []
    errors: List[str] = []
    with apitx.API.factory(args.socket, trace=False) as api:
        server = api.get("").metadata["environment"]
        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(api, args.requests, latencies, errors))
                   for _ in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
    total = args.threads * args.requests
    ordered = sorted(latencies)
    print(f"soak: {server.get('server')} {server.get('server_version')} at unix:{args.socket}; "
          f"{args.threads} threads x {args.requests} requests, one shared API")
    print(f"  requests {total}, errors {len(errors)}, sockets opened {len(CONNECTS)} "
          f"(threads {args.threads})")
    print(f"  latency p50 {statistics.median(ordered) * 1000:.2f} ms, "
          f"p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.2f} ms, "
          f"max {ordered[-1] * 1000:.2f} ms; {total / wall:.0f} req/s over {wall:.1f} s")
    for error in errors[:5]:
        print(f"  error: {error}")
    verdict = "PASS" if not errors and len(CONNECTS) <= args.threads + 1 else "FAIL"
    print(f"target 0 errors, at most one socket per thread: {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
