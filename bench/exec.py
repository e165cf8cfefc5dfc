#!/usr/bin/env python3
"""Exec throughput: apitx's run_exec against ``lxc exec``, same instance, same run.

What is measured
----------------
- 50 MB out: the instance writes 50 MiB of zeros to stdout
  (``head -c 52428800 /dev/zero``); apitx collects it in memory and hashes
  it with sha256, ``lxc exec … | sha256sum`` pipes it to sha256sum. Both
  therefore move and hash the same bytes.
- 50 MB in: 50 MiB from this process to ``sha256sum`` inside the instance
  (apitx: ``stdin=bytes``; lxc: ``lxc exec … sha256sum < file``).
- The cost of one ``true``: in process for apitx; a whole process for lxc
  (what a shell script pays).

Each figure is the best of ``--rounds`` runs (default 3), wall clock, rounds
alternating the two clients: the machine is shared, so the best run is the
least disturbed one. The instance is made for the run (``apitx-<random>``)
and deleted afterwards.

How to run (as root, with the LXD sandbox up)::

    python3 bench/exec.py [--rounds N] [--endpoint /var/lib/lxd/unix.socket]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import apitx  # noqa: E402

SIZE = 50 * 1024 * 1024


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--endpoint", default="/var/lib/lxd/unix.socket")
    args = parser.parse_args()
    api = apitx.API.factory(args.endpoint)
    name = f"apitx-{os.urandom(5).hex()}"
    api.post("instances", json={"name": name, "source": {"type": "image",
                                                         "alias": "apitx-busybox"}}).wait(120)
    blob = os.urandom(SIZE)
    digest = hashlib.sha256(blob).hexdigest()
    try:
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(60)
        with tempfile.NamedTemporaryFile() as source:
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
    finally:
        api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
        api.delete(f"instances/{name}").wait(60)
    print(f"exec throughput on {api.endpoint.display}, best of {args.rounds} "
          f"(Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print("   client   50 MB out     50 MB in   `true`")
    for client in ("apitx", "lxc"):
        print(f"   {client:<6} {50 / out[client]:7.0f} MB/s {50 / into[client]:7.0f} MB/s "
              f"{true[client] * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
