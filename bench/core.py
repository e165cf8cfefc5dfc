#!/usr/bin/env python3
"""apitx against a raw ``requests_unixsocket.Session``, on the same live LXD, in one run.

What is measured
----------------
1. Client CPU per ``GET /1.0`` (``time.process_time``: this process only, so
   the daemon's own work is left out). Many short rounds (default 15 rounds of
   200 requests per client) interleave the two clients, alternating which one
   goes first, and each client's figure is the median of its rounds. The
   target is apitx <= 1.10x raw. A third client, apitx with tracing on (text
   format, appended to a file with ``APITX_DEBUG_FILE``, as an operator
   would run it), is timed in the same rounds; its target is <= 2.0x raw.
   Wall-clock throughput (requests per second) is printed for information
   only: it includes LXD's time.
2. Sockets opened for 1,000 GETs of distinct URLs (half distinct paths,
   ``/1.0/instances/x{i}`` answered 404, half distinct query strings,
   ``/1.0/instances?recursion=0&filter=name+eq+x{i}``), from 1 thread and from
   4 threads (250 each, started together), with a fresh client each time. Real
   connects are counted with an audit hook on the ``socket.connect`` event: it
   observes the real transport and replaces nothing. The target is one socket
   per thread for apitx; requests-unixsocket keeps one pool per full URL, so it
   opens about one socket per distinct URL.

3. Sockets opened by one API shared by 50 threads, each sending 1,000 GETs
   (``--pool-gets``) in batches (all 50 threads send one, then wait for each
   other): apitx with its default pool (``Limits()``: 64 connections kept)
   against apitx with urllib3's default of 10. Past the pool's size, every
   request that finds no free connection opens one and closes it after its
   answer.
4. Over HTTPS (LXD's ``127.0.0.1:8443``, the sandbox's client certificate):
   client CPU per ``GET /1.0`` of apitx (the server certificate pinned, as
   ``lxc`` trusts it) against a raw ``requests.Session`` with the same
   client certificate and no verification at all (``verify=False``: the
   cheapest raw requests can be). Target: apitx <= 0.90x raw.

Why it is fair
--------------
- Both clients do the same work per request: raw runs ``session.get(url)``,
  checks the status and parses ``.json()``; apitx runs ``api.get('')``, which
  builds the URL, parses the JSON and validates the envelope. Both send through
  a ``requests.Session`` to the same socket, so the difference is apitx's own
  layer (URL building, timeout, result object, validation).
- Tracing is off: the API is made with ``trace=False``, whatever ``DEBUG`` the
  shell has (the traced client passes its own ``TraceSettings``).
- Both clients are warmed up (connection open, code paths and caches hot)
  before anything is timed, and each round times both, alternating the order,
  so drift on the machine (other tests on the same LXD, CPU frequency) hits
  both alike.
- The audit hook costs CPU on every audited event, and audit hooks cannot be
  removed, so it is installed only after the CPU measurement.

How to run
----------
::

    python3 bench/core.py                       # /var/lib/lxd/unix.socket
    python3 bench/core.py --rounds 31 --requests 300 --socket /path/unix.socket
    python3 bench/core.py --check               # exit 1 when a target is missed
    python3 bench/core.py --pool-gets 200       # a shorter pool measurement

It exits 0 whatever the figures (it is a measurement, not a test) unless
``--check`` is given. Absolute figures are noisy on a 2-core machine shared
with other work (LXD itself runs on the same cores): only the ratios within
one run mean anything; compare runs by their ratios, never by their µs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple
from urllib.parse import quote

import requests_unixsocket

import requests

from apitx import API, Limits, TraceSettings

DEFAULT_SOCKET = "/var/lib/lxd/unix.socket"
CPU_TARGET = 0.85
TRACED_TARGET = 1.6
HTTPS_TARGET = 0.90
#: The sandbox's LXD over HTTPS (scripts/lxd-sandbox).
HTTPS_URL = "https://127.0.0.1:8443"
SANDBOX = "/var/lib/apitx-sandbox"
CLIENT_CERT = (f"{SANDBOX}/client.crt", f"{SANDBOX}/client.key")
SERVER_CERT = f"{SANDBOX}/server.crt"
POOL_THREADS = 50
DISTINCT_URLS = 1000
THREAD_COUNTS = (1, 4)
WARMUP_REQUESTS = 50


class Client(NamedTuple):
    """One client under test, reduced to the calls the benchmark makes."""

    root: Callable[[], Any]         # GET /1.0, parse the JSON, check the answer
    fetch: Callable[[str], Any]     # GET an absolute path, whatever the status
    close: Callable[[], None]


def make_raw(socket_path: str) -> Client:
    """A plain requests-unixsocket session, used the way its README shows."""
    session = requests_unixsocket.Session()
    base = "http+unix://" + quote(socket_path, safe="")

    def root() -> Any:
        response = session.get(base + "/1.0")
        if response.status_code != 200:
            raise RuntimeError(f"raw GET /1.0 answered HTTP {response.status_code}")
        return response.json()

    return Client(root, lambda path: session.get(base + path), session.close)


def make_apitx(socket_path: str) -> Client:
    """An apitx API on its own session, tracing off."""
    api = API.factory(socket_path, trace=False)
    return Client(lambda: api.get(""), lambda path: api.get(path, validate=False),
                  api.close)


def make_traced(socket_path: str) -> Client:
    """apitx with tracing on, text format, appended to a file, as an operator
    would run it with DEBUG=1 APITX_DEBUG_FILE=trace.log."""
    trace = tempfile.NamedTemporaryFile(prefix="apitx-bench-", suffix=".log", delete=False)
    trace.close()
    api = API.factory(socket_path, trace=TraceSettings(enabled=True, format="text",
                                                        file=trace.name))

    def close() -> None:
        api.close()
        os.unlink(trace.name)

    return Client(lambda: api.get(""), lambda path: api.get(path, validate=False), close)


#: Clients whose sockets are counted; the CPU rounds add the traced apitx.
FACTORIES: Dict[str, Callable[[str], Client]] = {"raw": make_raw, "apitx": make_apitx}
CPU_FACTORIES: Dict[str, Callable[[str], Client]] = {**FACTORIES, "traced": make_traced}


# -- 1. CPU per request -------------------------------------------------------


class Block(NamedTuple):
    cpu: float   # seconds of this process's CPU
    wall: float  # seconds of wall-clock time


def time_block(call: Callable[[], Any], count: int) -> Block:
    """Run ``call`` ``count`` times; return the CPU and wall time taken."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    return Block(time.process_time() - cpu, time.perf_counter() - wall)


def cpu_rounds(clients: Dict[str, Client], rounds: int, requests: int) -> Dict[str, List[Block]]:
    """Time every client once per round, alternating which one goes first."""
    for client in clients.values():
        time_block(client.root, WARMUP_REQUESTS)
    blocks: Dict[str, List[Block]] = {name: [] for name in clients}
    names = list(clients)
    for number in range(rounds):
        for name in names if number % 2 == 0 else reversed(names):
            blocks[name].append(time_block(clients[name].root, requests))
    return blocks


class CpuFigures(NamedTuple):
    us_per_request: float   # median CPU µs per request
    spread: Tuple[float, float]  # fastest and slowest round, µs per request
    requests_per_second: float   # from the median wall time


def summarize(blocks: List[Block], requests: int) -> CpuFigures:
    per_request = sorted(block.cpu / requests * 1e6 for block in blocks)
    wall = statistics.median(block.wall for block in blocks)
    return CpuFigures(statistics.median(per_request), (per_request[0], per_request[-1]),
                      requests / wall)


# -- 2. sockets opened --------------------------------------------------------


class ConnectCounter:
    """Counts real ``socket.connect`` calls to one address, via an audit hook.

    The hook only watches; it cannot be removed once added, so it stays off
    (``counting`` False) except around the measured requests.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.counting = False
        self.count = 0
        self._lock = threading.Lock()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: Tuple[Any, ...]) -> None:
        if self.counting and event == "socket.connect" and args[1] == self.address:
            with self._lock:
                self.count += 1

    def measure(self, work: Callable[[], None]) -> int:
        self.count, self.counting = 0, True
        try:
            work()
        finally:
            self.counting = False
        return self.count


def distinct_paths(count: int) -> List[str]:
    """Paths that differ by path or by query string, half of each."""
    return [f"/1.0/instances/x{i}" if i % 2 == 0
            else f"/1.0/instances?recursion=0&filter=name+eq+x{i}" for i in range(count)]


def fetch_all(client: Client, paths: List[str], threads: int) -> None:
    """GET ``paths`` split evenly over ``threads`` threads started together."""
    share = len(paths) // threads
    start = threading.Barrier(threads)

    def worker(chunk: List[str]) -> None:
        start.wait()
        for path in chunk:
            client.fetch(path)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(worker, paths[n * share:(n + 1) * share]) for n in range(threads)]
        for future in futures:
            future.result()


def count_sockets(factory: Callable[[str], Client], socket_path: str,
                  counter: ConnectCounter, threads: int) -> int:
    """Sockets a fresh client opens for DISTINCT_URLS GETs from ``threads`` threads."""
    client = factory(socket_path)
    try:
        return counter.measure(lambda: fetch_all(client, distinct_paths(DISTINCT_URLS), threads))
    finally:
        client.close()


# -- 3. one API, 50 threads ---------------------------------------------------


def pool_sockets(socket_path: str, counter: ConnectCounter, limits: Limits,
                 gets: int) -> int:
    """Sockets one API opens while POOL_THREADS threads send ``gets`` GETs
    each, in batches: every thread sends one, then waits for the others (a
    fan-out per incoming request, as a web back-end does), so each batch
    needs POOL_THREADS connections at once."""
    api = API.factory(socket_path, trace=False, limits=limits)
    try:
        api.get("")  # warm: the first connection is not the pool's doing
        batch = threading.Barrier(POOL_THREADS)

        def worker() -> None:
            for _ in range(gets):
                batch.wait()
                api.get("")

        def run() -> None:
            with ThreadPoolExecutor(max_workers=POOL_THREADS) as pool:
                for future in [pool.submit(worker) for _ in range(POOL_THREADS)]:
                    future.result()

        return counter.measure(run)
    finally:
        api.close()


# -- 4. HTTPS -----------------------------------------------------------------


def make_raw_https(url: str) -> Client:
    """requests with the client certificate and no verification: the floor."""
    session = requests.Session()
    session.cert = CLIENT_CERT

    def root() -> Any:
        # verify= per request: REQUESTS_CA_BUNDLE would override the
        # session's own (psf/requests#3829).
        response = session.get(url + "/1.0", verify=False)
        if response.status_code != 200:
            raise RuntimeError(f"raw GET /1.0 answered HTTP {response.status_code}")
        return response.json()

    return Client(root, lambda path: session.get(url + path, verify=False), session.close)


def make_apitx_https(url: str) -> Client:
    """apitx with the same client certificate, the server certificate pinned."""
    api = API.factory(url, cert=CLIENT_CERT, verify=SERVER_CERT, trace=False)
    return Client(lambda: api.get(""), lambda path: api.get(path, validate=False), api.close)


HTTPS_FACTORIES: Dict[str, Callable[[str], Client]] = {"raw": make_raw_https,
                                                       "apitx": make_apitx_https}


# -- report -------------------------------------------------------------------


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report_cpu(figures: Dict[str, CpuFigures], rounds: int,
               requests: int) -> Dict[str, float]:
    print(f"1. Client CPU per GET /1.0 ({rounds} rounds x {requests} requests per client, "
          "medians)")
    print(f"   {'client':<7}{'CPU us/req':>11}{'fastest-slowest round':>24}{'wall req/s':>12}")
    for name, fig in figures.items():
        spread = f"{fig.spread[0]:.1f}-{fig.spread[1]:.1f}"
        print(f"   {name:<7}{fig.us_per_request:>11.1f}{spread:>24}"
              f"{fig.requests_per_second:>12.0f}")
    ratios = {name: figures[name].us_per_request / figures["raw"].us_per_request
              for name in ("apitx", "traced")}
    print(f"   ratio apitx/raw (tracing off): {ratios['apitx']:.3f}")
    print(f"   ratio traced/raw (tracing on, text, to a file): {ratios['traced']:.3f}\n")
    return ratios


def report_sockets(sockets: Dict[str, Dict[int, int]]) -> float:
    print(f"2. Sockets opened for {DISTINCT_URLS:,} GETs of distinct URLs (fresh client each)")
    print(f"   {'client':<7}" + "".join(f"{f'{n} thread(s)':>13}" for n in THREAD_COUNTS))
    for name, counts in sockets.items():
        print(f"   {name:<7}" + "".join(f"{counts[n]:>13}" for n in THREAD_COUNTS))
    print()
    return max(count / threads for threads, count in sockets["apitx"].items())


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15, help="CPU rounds (default 15)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per client per round (default 200)")
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help=f"default {DEFAULT_SOCKET}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--pool-gets", type=int, default=1000,
                        help=f"GETs per thread of the {POOL_THREADS}-thread pool measurement "
                             "(default 1000)")
    parser.add_argument("--https", default=HTTPS_URL, help=f"default {HTTPS_URL}")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be at least 1")
    if not os.path.exists(args.socket):
        parser.error(f"no LXD socket at {args.socket}: is LXD running? Give --socket PATH")

    print(f"apitx vs requests-unixsocket {version('requests-unixsocket')} on unix:{args.socket}; "
          f"Python {platform.python_version()}, requests {version('requests')}, "
          f"{os.cpu_count()} CPUs; trace=False (tracing off) except for the "
          "'traced' client\n")

    clients = {name: factory(args.socket) for name, factory in CPU_FACTORIES.items()}
    try:
        blocks = cpu_rounds(clients, args.rounds, args.requests)
    finally:
        for client in clients.values():
            client.close()
    ratios = report_cpu({name: summarize(b, args.requests) for name, b in blocks.items()},
                        args.rounds, args.requests)

    counter = ConnectCounter(args.socket)
    sockets = {name: {threads: count_sockets(factory, args.socket, counter, threads)
                      for threads in THREAD_COUNTS}
               for name, factory in FACTORIES.items()}
    per_thread = report_sockets(sockets)

    pooled = {label: pool_sockets(args.socket, counter, limits, args.pool_gets)
              for label, limits in (("apitx, Limits() (64 kept)", Limits()),
                                    ("apitx, 10 kept (urllib3's default)",
                                     Limits(max_keepalive_connections=10)))}
    print(f"3. Sockets opened by one API shared by {POOL_THREADS} threads x "
          f"{args.pool_gets:,} GETs")
    for label, count in pooled.items():
        print(f"   {label:<38}{count:>8}")
    print()

    import urllib3
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    https_clients = {name: factory(args.https) for name, factory in HTTPS_FACTORIES.items()}
    try:
        https_blocks = cpu_rounds(https_clients, args.rounds, args.requests)
    finally:
        for client in https_clients.values():
            client.close()
    https = {name: summarize(b, args.requests) for name, b in https_blocks.items()}
    https_ratio = https["apitx"].us_per_request / https["raw"].us_per_request
    print(f"4. Over HTTPS ({args.https}), client CPU per GET /1.0 (medians)")
    for name, fig in https.items():
        print(f"   {name:<7}{fig.us_per_request:>11.1f} us/req{fig.requests_per_second:>10.0f} req/s")
    print(f"   ratio apitx (pinned)/raw (verify=False): {https_ratio:.3f}\n")

    cpu_ok = ratios["apitx"] <= CPU_TARGET
    traced_ok = ratios["traced"] <= TRACED_TARGET
    sockets_ok = per_thread <= 1
    pool_ok = pooled["apitx, Limits() (64 kept)"] <= POOL_THREADS
    https_ok = https_ratio <= HTTPS_TARGET
    print(f"target cpu ratio <= {CPU_TARGET:.2f}: {verdict(cpu_ok)} ({ratios['apitx']:.2f})")
    print(f"target traced cpu ratio <= {TRACED_TARGET:.2f}: {verdict(traced_ok)} "
          f"({ratios['traced']:.2f})")
    print(f"target sockets per thread == 1: {verdict(sockets_ok)} ({per_thread:g})")
    print(f"target {POOL_THREADS} threads open <= {POOL_THREADS} sockets: {verdict(pool_ok)} "
          f"({pooled['apitx, Limits() (64 kept)']})")
    print(f"target https cpu ratio <= {HTTPS_TARGET:.2f}: {verdict(https_ok)} ({https_ratio:.2f})")
    passed = cpu_ok and traced_ok and sockets_ok and pool_ok and https_ok
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
