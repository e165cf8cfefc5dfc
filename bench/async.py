#!/usr/bin/env python3
"""The async client against its floor, its peers and the sync client, in one run.

What is measured, on the same live LXD (Unix socket):

1. Client CPU per ``GET /1.0`` (``time.process_time``: this process only),
   medians of interleaved rounds, for: raw ``requests`` (requests-unixsocket,
   the ratio's denominator), the floor (``http.client`` over AF_UNIX,
   keep-alive), sync apitx, async apitx, bare aiohttp (what async apitx is
   built on) reading the JSON with json and with orjson (apitx reads with
   orjson when it is installed: apitx/_json.py; the second row is the fair
   floor of apitx's own work), and the async peers where they work (aiolxd, incus-sdk:
   installed in the interpreter given by ``--peers-python``, measured in a
   child process, reported as a ratio to raw requests measured in that same
   child). Target: async apitx <= 0.40x raw requests.
2. 1,000 concurrent GETs from one event loop (async apitx) against sync apitx
   with 50 threads sharing one API: wall time, sockets opened (an audit hook
   counts real connects) and peak RSS of this process (``ru_maxrss`` is the
   process's high-water mark, so async runs first, before the threads).
   Target: async <= 0.6x the sync wall time, opening no more sockets than
   its connection cap (``Limits.pool_size``, 64 by default).
3. exec ``true`` latency, sync and async (median of 20), and 50 MB of exec
   output byte-exact (sha256 inside the instance against sha256 of what
   arrived), throughput of each. Target: async latency <= sync's, async
   throughput >= sync's. (Needs apitx with async exec.)
4. ``wait_all`` over 200 operations (``sleep 2`` execs): wall time from the
   last operation's end to ``wait_all`` returning, for both clients.

Run::

    python3 bench/async.py
    python3 bench/async.py --peers-python /path/to/venv/bin/python   # with aiolxd, incus-sdk

It prints the figures and whether each target is met; it exits 0 whatever
the figures unless ``--check`` is given. Absolute figures are noisy on a
2-core machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Tuple

import aiohttp
import orjson
import requests_unixsocket

import apitx

SOCKET = "/var/lib/lxd/unix.socket"
RAW_URL = "http+unix://" + SOCKET.replace("/", "%2F") + "/1.0"
CPU_TARGET = 0.40
CONCURRENCY_TARGET = 0.6
IMAGE = "apitx-busybox"


# -- 1. CPU per request ---------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX: the floor, no library above the socket."""

    def __init__(self, path: str) -> None:
        super().__init__("lxd")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def sync_clients(socket_path: str) -> Dict[str, Callable[[], Any]]:
    raw = requests_unixsocket.Session()
    url = "http+unix://" + socket_path.replace("/", "%2F") + "/1.0"
    floor = UnixHTTPConnection(socket_path)
    api = apitx.API.factory(socket_path, trace=False)

    def floor_get() -> Any:
        floor.request("GET", "/1.0")
        return json.loads(floor.getresponse().read())

    return {"raw requests": lambda: raw.get(url).json(), "floor (http.client)": floor_get,
            "sync apitx": lambda: api.get("")}


async def async_rounds(socket_path: str, rounds: int, count: int) -> Dict[str, List[float]]:
    """Interleaved rounds of every client; CPU µs per request of each round."""
    clients = sync_clients(socket_path)
    times: Dict[str, List[float]] = {}
    async with apitx.AsyncAPI.factory(socket_path, trace=False) as api, \
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket_path)) as bare:
        def bare_get(loads: Callable[[bytes], Any]) -> Callable[[], Any]:
            """``GET /1.0`` on bare aiohttp, its answer read with ``loads``."""
            async def get() -> Any:
                async with bare.get("http://lxd/1.0") as answer:
                    return loads(await answer.read())
            return get

        async_clients: Dict[str, Callable[[], Any]] = {
            "async apitx": lambda: api.get(""), "bare aiohttp": bare_get(json.loads),
            "bare aiohttp + orjson": bare_get(orjson.loads)}
        for _ in range(2):  # warm: connections open, caches hot
            for call in clients.values():
                call()
            for acall in async_clients.values():
                await acall()
        for number in range(rounds):
            order = list(clients) + list(async_clients)
            for name in order if number % 2 == 0 else reversed(order):
                started = time.process_time()
                if name in clients:
                    for _ in range(count):
                        clients[name]()
                else:
                    for _ in range(count):
                        await async_clients[name]()
                times.setdefault(name, []).append((time.process_time() - started) / count * 1e6)
    return times


PEER_CODE = textwrap.dedent('''
    import asyncio, json, sys, time, statistics
    import aiohttp, requests_unixsocket
    socket_path, rounds, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    url = "http+unix://" + socket_path.replace("/", "%2F") + "/1.0"
    async def main():
        raw = requests_unixsocket.Session()
        out = {}
        try:
            from aiolxd.transport import AsyncTransport, RequestMethod
            session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=socket_path))
            aiolxd = AsyncTransport("http://lxd", session=session)
            async def aiolxd_get():
                return await aiolxd.request(RequestMethod.GET, "/1.0")
            await aiolxd_get()
        except Exception as exc:
            aiolxd_get = None; out["aiolxd"] = f"does not work here: {exc!r}"
        try:
            from incus_sdk.api.client import APIClient
            incus = APIClient(endpoint="unix://" + socket_path)
            await incus.connect()
            async def incus_get():
                return await incus.get("/1.0")
            await incus_get()
        except Exception as exc:
            incus_get = None; out["incus-sdk"] = f"does not work here: {exc!r}"
        times = {"raw": []}
        peers = {k: v for k, v in (("aiolxd", aiolxd_get), ("incus-sdk", incus_get)) if v}
        for _ in range(rounds):
            t = time.process_time()
            for _ in range(count): raw.get(url).json()
            times["raw"].append(time.process_time() - t)
            for name, call in peers.items():
                t = time.process_time()
                for _ in range(count): await call()
                times.setdefault(name, []).append(time.process_time() - t)
        raw_median = statistics.median(times["raw"])
        for name in peers:
            out[name] = statistics.median(times[name]) / raw_median
        print(json.dumps(out))
    asyncio.run(main())
''')


def peer_ratios(python: str, socket_path: str, rounds: int, count: int) -> Dict[str, Any]:
    done = subprocess.run([python, "-c", PEER_CODE, socket_path, str(rounds), str(count)],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"peers": f"could not run: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# -- 2. concurrency -----------------------------------------------------------------------

class ConnectCounter:
    """Counts real ``socket.connect`` calls to one address (an audit hook that only watches)."""

    def __init__(self, address: str) -> None:
        self.address, self.counting, self.count = address, False, 0
        self._lock = threading.Lock()
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: Tuple[Any, ...]) -> None:
        if self.counting and event == "socket.connect" and args[1] == self.address:
            with self._lock:
                self.count += 1

    def measure(self, work: Callable[[], Any]) -> Tuple[int, float]:
        self.count, self.counting = 0, True
        started = time.perf_counter()
        try:
            work()
        finally:
            self.counting = False
        return self.count, time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def concurrency(socket_path: str, counter: ConnectCounter, gets: int,
                threads: int) -> Dict[str, Tuple[int, float, float]]:
    async def burst() -> None:
        async with apitx.AsyncAPI.factory(socket_path, trace=False) as api:
            await asyncio.gather(*[api.get("") for _ in range(gets)])

    figures = {}
    sockets, wall = counter.measure(lambda: asyncio.run(burst()))
    figures["async apitx, one loop"] = (sockets, wall, peak_rss_mb())
    api = apitx.API.factory(socket_path, trace=False)

    def pooled() -> None:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda _: api.get(""), range(gets)))

    sockets, wall = counter.measure(pooled)
    figures[f"sync apitx, {threads} threads"] = (sockets, wall, peak_rss_mb())
    api.close()
    return figures


# -- 3. exec: latency and 50 MB byte-exact ----------------------------------------------------

BLOB = "/root/apitx-bench-blob"
LATENCY_TARGET = 1.0
THROUGHPUT_TARGET = 1.0


class Digest:
    """What an exec's stdout callable got: its sha256 and its length, kept flat in memory."""

    def __init__(self) -> None:
        self.hash, self.size = hashlib.sha256(), 0

    def __call__(self, piece: bytes) -> None:
        self.hash.update(piece)
        self.size += len(piece)


def make_blob(api: apitx.API, instance: str, size: int) -> str:
    """Write ``size`` random bytes in the instance; their sha256 as the instance computed it."""
    made = api.exec(instance, ["sh", "-c", f"head -c {size} /dev/urandom > {BLOB} && "
                                           f"sha256sum {BLOB}"]).check()
    return made.stdout.split()[0].decode()


def exec_figures(socket_path: str, instance: str, latencies: int, size: int,
                 transfers: int) -> Dict[str, Dict[str, Any]]:
    """Median ``exec true`` seconds and median MB/s of ``cat`` of the blob, per client.

    Sync and async alternate (which goes first flips each round) in one event
    loop: the sync calls block it, which is fine, nothing else runs on it.
    Every transfer is checked byte-exact (length and sha256) or the bench stops.
    """
    api = apitx.API.factory(socket_path, trace=False)
    expected = make_blob(api, instance, size)

    async def run() -> Dict[str, Dict[str, List[float]]]:
        times: Dict[str, Dict[str, List[float]]] = {"sync": {}, "async": {}}
        async with apitx.AsyncAPI.factory(socket_path, trace=False) as aapi:
            async def timed(client: str, command: List[str], stdout: Any) -> float:
                started = time.perf_counter()
                if client == "sync":
                    done = api.exec(instance, command, stdout=stdout)
                else:
                    done = await aapi.exec(instance, command, stdout=stdout)
                done.check()
                return time.perf_counter() - started

            async def transfer(client: str) -> float:
                got = Digest()
                seconds = await timed(client, ["cat", BLOB], got)
                if got.size != size or got.hash.hexdigest() != expected:
                    raise SystemExit(f"{client} exec output NOT byte-exact: {got.size} of "
                                     f"{size} bytes, sha256 {got.hash.hexdigest()}")
                return size / seconds / 1e6

            for client in ("sync", "async"):  # warm: connections open, code paths hot
                await timed(client, ["true"], None)
            for number in range(max(latencies, transfers)):
                order = ("sync", "async") if number % 2 == 0 else ("async", "sync")
                for client in order:
                    if number < latencies:
                        times[client].setdefault("latency", []).append(
                            await timed(client, ["true"], None))
                    if number < transfers:
                        times[client].setdefault("throughput", []).append(
                            await transfer(client))
        return times

    try:
        times = asyncio.run(run())
    finally:
        api.exec(instance, ["rm", "-f", BLOB])
        api.close()
    return {client: {kind: statistics.median(values) for kind, values in kinds.items()}
            for client, kinds in times.items()}


# -- 4. wait_all over many operations ---------------------------------------------------------

def make_instance(api: apitx.API) -> str:
    name = f"apitx-bench-{uuid.uuid4().hex[:8]}"
    api.post("instances", json={"name": name, "source": {"type": "image",
                                                         "alias": IMAGE}}).wait(120)
    api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
    return name


def drop_instance(api: apitx.API, name: str) -> None:
    api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
    api.delete(f"instances/{name}").wait(60)


EXEC = {"record-output": False, "wait-for-websocket": False, "interactive": False}


def wait_all_figures(socket_path: str, instance: str, count: int) -> Dict[str, float]:
    """Seconds from the start of ``count`` ``sleep 2`` execs to wait_all's return."""
    api = apitx.API.factory(socket_path, trace=False)
    figures = {}
    started = time.perf_counter()
    results = [api.post(f"instances/{instance}/exec", json={"command": ["sleep", "2"], **EXEC})
               for _ in range(count)]
    api.wait_all(results, timeout=300)
    figures["sync wait_all"] = time.perf_counter() - started

    async def run() -> float:
        async with apitx.AsyncAPI.factory(socket_path, trace=False) as aapi:
            begun = time.perf_counter()
            started_ = await asyncio.gather(*[aapi.post(
                f"instances/{instance}/exec", json={"command": ["sleep", "2"], **EXEC})
                for _ in range(count)])
            await aapi.wait_all(started_, timeout=300)
            return time.perf_counter() - begun

    figures["async wait_all"] = asyncio.run(run())
    api.close()
    return figures


# -- report ---------------------------------------------------------------------------------

def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--socket", default=SOCKET)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--latencies", type=int, default=20, help="exec true runs per client")
    parser.add_argument("--megabytes", type=int, default=50, help="exec output size, MB")
    parser.add_argument("--transfers", type=int, default=3, help="exec output runs per client")
    parser.add_argument("--peers-python", help="an interpreter with aiolxd and incus-sdk")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    print(f"apitx {apitx.__version__}, aiohttp {aiohttp.__version__}, Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, on unix:{args.socket}\n")

    counter = ConnectCounter(args.socket)
    crowd = concurrency(args.socket, counter, args.gets, args.threads)
    times = asyncio.run(async_rounds(args.socket, args.rounds, args.requests))
    medians = {name: statistics.median(values) for name, values in times.items()}
    raw = medians["raw requests"]
    print(f"1. Client CPU per GET /1.0 ({args.rounds} rounds x {args.requests}, medians)")
    for name, value in medians.items():
        print(f"   {name:<22}{value:>9.1f} us   {value / raw:>6.3f}x raw requests")
    if args.peers_python:
        for name, ratio in peer_ratios(args.peers_python, args.socket, args.rounds,
                                       args.requests).items():
            shown = f"{ratio:>6.3f}x raw requests" if isinstance(ratio, float) else ratio
            print(f"   {name:<22}{'':>12}   {shown}  (in their own interpreter)")
    print()
    print(f"2. {args.gets:,} concurrent GETs")
    for name, (sockets, wall, rss) in crowd.items():
        print(f"   {name:<28} {wall:>7.2f} s  {sockets:>5} sockets  peak RSS {rss:>6.1f} MB")
    async_wall = crowd["async apitx, one loop"][1]
    sync_wall = crowd[f"sync apitx, {args.threads} threads"][1]
    async_sockets = crowd["async apitx, one loop"][0]
    print()
    with apitx.API.factory(args.socket) as api:
        instance = make_instance(api)
        try:
            execs = exec_figures(args.socket, instance, args.latencies,
                                 args.megabytes * 1024 * 1024, args.transfers)
            waits = wait_all_figures(args.socket, instance, args.operations)
        finally:
            drop_instance(api, instance)
    print(f"3. exec: `true` latency (median of {args.latencies}), {args.megabytes} MB of output "
          f"byte-exact (sha256, median of {args.transfers})")
    for client, figures in execs.items():
        print(f"   {client + ' apitx':<22}{figures['latency'] * 1e3:>8.1f} ms  "
              f"{figures['throughput']:>8.1f} MB/s")
    print()
    print(f"4. wait_all over {args.operations} operations (sleep 2 each), start to return")
    for name, seconds in waits.items():
        print(f"   {name:<22}{seconds:>8.2f} s")
    print()
    cpu_ok = medians["async apitx"] / raw <= CPU_TARGET
    crowd_ok = async_wall <= CONCURRENCY_TARGET * sync_wall and \
        async_sockets <= apitx.Limits().pool_size
    print(f"target async CPU <= {CPU_TARGET}x raw: "
          f"{'PASS' if cpu_ok else 'FAIL'} ({medians['async apitx'] / raw:.3f})")
    print(f"target {args.gets} concurrent <= {CONCURRENCY_TARGET}x the threads' wall time, "
          f"<= {apitx.Limits().pool_size} sockets: {'PASS' if crowd_ok else 'FAIL'} "
          f"({async_wall / sync_wall:.2f}x, {async_sockets} sockets)")
    latency_ok = execs["async"]["latency"] <= LATENCY_TARGET * execs["sync"]["latency"]
    throughput_ok = execs["async"]["throughput"] >= THROUGHPUT_TARGET * execs["sync"]["throughput"]
    print(f"target async exec latency <= sync's: {'PASS' if latency_ok else 'FAIL'} "
          f"({execs['async']['latency'] / execs['sync']['latency']:.2f}x)")
    print(f"target async exec throughput >= sync's: {'PASS' if throughput_ok else 'FAIL'} "
          f"({execs['async']['throughput'] / execs['sync']['throughput']:.2f}x)")
    met = cpu_ok and crowd_ok and latency_ok and throughput_ok
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
