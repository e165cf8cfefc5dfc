#!/usr/bin/env python3
"""Exec against ``lxc exec`` / ``incus exec``: throughput, lost output, many threads.

Three measurements, each in one run on the same instance:

``--mode throughput`` (the default)
    - 50 MB out: the instance writes 50 MiB of zeros to stdout
      (``head -c 52428800 /dev/zero``); apitx collects it in memory and
      hashes it with sha256, ``lxc exec … | sha256sum`` pipes it to
      sha256sum. Both therefore move and hash the same bytes.
    - 50 MB in: 50 MiB from this process to ``sha256sum`` inside the instance
      (apitx: ``stdin=bytes``; lxc: ``lxc exec … sha256sum < file``).
    - The cost of one ``true``: in process for apitx; a whole process for
      lxc (what a shell script pays).
    Each figure is the best of ``--rounds`` runs (default 3), wall clock,
    rounds alternating the two clients: the machine is shared, so the best
    run is the least disturbed one. Over ``--endpoint`` (default LXD's socket).

``--mode loss``
    Lost output over HTTPS under load. ``--runs`` execs (default 100) per
    client and server of a command that interleaves ~57 KB on each of stdout
    and stderr (``out0`` … ``out7299``, ``err0`` …), while ``--burners``
    processes (default 2, one per core here) spin the CPU. Each exec's output
    is compared with what the command writes, byte for byte; a short one is
    counted, and so is an apitx exception (apitx must never return output
    short, so a loss it detects is a raise). The clients: apitx over HTTPS
    with the sandbox's client certificate, and the server's own command-line
    client (``lxc exec`` / ``incus exec``) through a remote made for the run
    with the same certificate. Servers: LXD (127.0.0.1:8443) and Incus
    (127.0.0.1:8444).

``--mode threads``
    ``--threads`` threads (default 16) sharing one API, each running
    ``--runs`` execs (default 10) over LXD's HTTPS; counts the execs whose
    output is whole, those refused because LXD gave up waiting for their
    websockets (the command never ran), and any other failure.

Why it is fair: the same instance, command and bytes for both clients; the
comparison client is the server's own, over the same HTTPS endpoint and
certificate. The machine is shared (2 cores), so the load figures say how
often, not exactly how often: compare the clients within one run.

How to run (as root, with the sandbox of scripts/lxd-sandbox up)::

    python3 bench/exec.py [--rounds N] [--endpoint /var/lib/lxd/unix.socket]
    python3 bench/exec.py --mode loss [--runs 100] [--burners 2] [--servers lxd,incus]
    python3 bench/exec.py --mode threads [--threads 16] [--runs 10]

Every instance it makes (``apitx-<random>``) and the temporary client
configuration are deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterator, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apitx  # noqa: E402

SIZE = 50 * 1024 * 1024
SANDBOX = "/var/lib/apitx-sandbox"
CLIENT_CERT = (f"{SANDBOX}/client.crt", f"{SANDBOX}/client.key")


class Server:
    """One sandbox daemon: its socket, HTTPS address, certificate and client."""

    def __init__(self, name: str, socket: str, port: int, cert: str, client: str,
                 conf_variable: str) -> None:
        self.name, self.socket, self.cert, self.client = name, socket, cert, client
        self.https = f"https://127.0.0.1:{port}"
        self.conf_variable = conf_variable

    def https_api(self) -> apitx.API:
        return apitx.API.factory(self.https, cert=CLIENT_CERT, verify=self.cert)


SERVERS = {
    "lxd": Server("lxd", "/var/lib/lxd/unix.socket", 8443, f"{SANDBOX}/server.crt", "lxc",
                  "LXD_CONF"),
    "incus": Server("incus", "/var/lib/incus/unix.socket", 8444, f"{SANDBOX}/incus-server.crt",
                    "incus", "INCUS_CONF"),
}

#: ~57 KB on each stream, interleaved line by line.
LINES = 7300
INTERLEAVED = (f"i=0; while [ $i -lt {LINES} ]; do echo out$i; echo err$i >&2; "
               "i=$((i+1)); done")
EXPECTED_OUT = "".join(f"out{i}\n" for i in range(LINES)).encode()
EXPECTED_ERR = EXPECTED_OUT.replace(b"out", b"err")


@contextlib.contextmanager
def instance(api: apitx.API) -> Iterator[str]:
    """A running busybox instance, deleted afterwards whatever happens."""
    name = f"apitx-{os.urandom(5).hex()}"
    api.post("instances", json={"name": name, "source": {"type": "image",
                                                         "alias": "apitx-busybox"}}).wait(120)
    try:
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
        yield name
    finally:
        with contextlib.suppress(apitx.APITXError):
            api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
        api.delete(f"instances/{name}").wait(60)


@contextlib.contextmanager
def burning(processes: int) -> Iterator[None]:
    """``processes`` children spinning the CPU while inside."""
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
               for _ in range(processes)]
    for burner in burners:
        burner.start()
    try:
        yield
    finally:
        stop.set()
        for burner in burners:
            burner.join()


def _burn(stop: "multiprocessing.synchronize.Event") -> None:
    while not stop.is_set():
        pass


@contextlib.contextmanager
def https_remote(server: Server) -> Iterator[Dict[str, str]]:
    """The environment for ``lxc``/``incus`` with a default remote ``bench``:
    the server over HTTPS, the sandbox's client certificate, its server
    certificate trusted (a config directory of our own, removed afterwards)."""
    conf = tempfile.mkdtemp(prefix="apitx-bench-")
    try:
        os.makedirs(os.path.join(conf, "servercerts"))
        for path in CLIENT_CERT:
            shutil.copy(path, conf)
        shutil.copy(server.cert, os.path.join(conf, "servercerts", "bench.crt"))
        with open(os.path.join(conf, "config.yml"), "w") as config:
            config.write(f"default-remote: bench\nremotes:\n  bench:\n    addr: {server.https}\n"
                         f"    protocol: {server.name}\n    public: false\naliases: {{}}\n")
        yield dict(os.environ, **{server.conf_variable: conf})
    finally:
        shutil.rmtree(conf)


def loss(args: argparse.Namespace) -> int:
    print(f"lost output over HTTPS: {args.runs} execs per client, ~{len(EXPECTED_OUT) // 1000} "
          f"KB on each of stdout and stderr, {args.burners} CPU burners "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"   {'server':<7}{'client':<13}{'short':>7}{'(raised)':>10}")
    for server in (SERVERS[name] for name in args.servers.split(",")):
        with apitx.API.factory(server.socket) as local, instance(local) as name, \
                server.https_api() as api, https_remote(server) as env, burning(args.burners):
            counts: Dict[str, List[int]] = {"apitx": [0, 0], f"{server.client} exec": [0, 0]}
            for _ in range(args.runs):
                try:
                    result = api.exec(name, ["sh", "-c", INTERLEAVED])
                    whole = (result.stdout, result.stderr) == (EXPECTED_OUT, EXPECTED_ERR)
                except apitx.APIConnectionError:
                    whole = False
                    counts["apitx"][1] += 1
                counts["apitx"][0] += not whole
                done = subprocess.run([server.client, "exec", f"bench:{name}", "--", "sh", "-c",
                                       INTERLEAVED], env=env, capture_output=True)
                counts[f"{server.client} exec"][0] += \
                    (done.stdout, done.stderr) != (EXPECTED_OUT, EXPECTED_ERR)
        for client, (short, raised) in counts.items():
            print(f"   {server.name:<7}{client:<13}{short:>4}/{args.runs}{raised:>7}")
    return 0


def threads(args: argparse.Namespace) -> int:
    server = SERVERS["lxd"]
    outcomes: Dict[str, int] = collections.Counter()
    lock = threading.Lock()
    with apitx.API.factory(server.socket) as local, instance(local) as name, \
            server.https_api() as api:

        def work() -> None:
            for _ in range(args.runs):
                try:
                    result = api.exec(name, ["sh", "-c", "echo out; echo err >&2"])
                    outcome = "whole" if (result.stdout, result.stderr) == (
                        b"out\n", b"err\n") else "short"
                except apitx.APIException as exc:
                    outcome = "never ran" if "never ran" in str(exc) else \
                        f"{type(exc).__name__}: {exc.error}"
                except apitx.APITXError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes[outcome] += 1

        started = time.perf_counter()
        workers = [threading.Thread(target=work) for _ in range(args.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - started
    print(f"{args.threads} threads x {args.runs} execs over {server.https} in {seconds:.1f}s "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    for outcome, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"   {count:>5}  {outcome}")
    return 0


def best(rounds: int, clients: Dict[str, Callable[[], None]]) -> Dict[str, float]:
    """The fastest of ``rounds`` wall-clock runs of each client, interleaved."""
    times: Dict[str, list] = {name: [] for name in clients}
    for round_ in range(rounds):
        order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
        for name in order:
            started = time.perf_counter()
            clients[name]()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def throughput(args: argparse.Namespace) -> int:
    api = apitx.API.factory(args.endpoint)
    blob = os.urandom(SIZE)
    digest = hashlib.sha256(blob).hexdigest()
    with instance(api) as name, tempfile.NamedTemporaryFile() as source:
        source.write(blob)
        source.flush()

        def apitx_out() -> None:
            out = api.exec(name, ["head", "-c", str(SIZE), "/dev/zero"]).check().stdout
            assert len(out) == SIZE and hashlib.sha256(out).digest()

        def lxc_out() -> None:
            subprocess.run(f"lxc exec {name} -- head -c {SIZE} /dev/zero | sha256sum",
                           shell=True, check=True, stdout=subprocess.DEVNULL)

        def apitx_in() -> None:
            out = api.exec(name, ["sha256sum"], stdin=blob).check().stdout
            assert out.split()[0].decode() == digest

        def lxc_in() -> None:
            with open(source.name, "rb") as data:
                out = subprocess.run(["lxc", "exec", name, "--", "sha256sum"], stdin=data,
                                     check=True, capture_output=True).stdout
            assert out.split()[0].decode() == digest

        out = best(args.rounds, {"apitx": apitx_out, "lxc": lxc_out})
        into = best(args.rounds, {"apitx": apitx_in, "lxc": lxc_in})
        true = best(args.rounds * 5, {
            "apitx": lambda: api.exec(name, ["true"]).check(),
            "lxc": lambda: subprocess.run(["lxc", "exec", name, "--", "true"], check=True)})
    print(f"exec throughput on {api.endpoint.display}, best of {args.rounds} "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print("   client   50 MB out     50 MB in   `true`")
    for client in ("apitx", "lxc"):
        print(f"   {client:<6} {50 / out[client]:7.0f} MB/s {50 / into[client]:7.0f} MB/s "
              f"{true[client] * 1000:6.0f} ms")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--mode", choices=("throughput", "loss", "threads"),
                        default="throughput")
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds per client")
    parser.add_argument("--endpoint", default="/var/lib/lxd/unix.socket",
                        help="throughput: where to run")
    parser.add_argument("--runs", type=int, help="loss: execs per client and server "
                        "(100); threads: execs per thread (10)")
    parser.add_argument("--burners", type=int, default=2, help="loss: CPU-spinning processes")
    parser.add_argument("--servers", default="lxd,incus", help="loss: lxd, incus or both")
    parser.add_argument("--threads", type=int, default=16, help="threads: how many")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 100 if args.mode == "loss" else 10
    modes: Dict[str, Callable[[argparse.Namespace], int]] = {
        "throughput": throughput, "loss": loss, "threads": threads}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
