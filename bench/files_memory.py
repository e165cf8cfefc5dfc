#!/usr/bin/env python3
"""Peak memory (RSS) of ``api.files(...).push`` and ``.pull`` moving a big file.

Issue 9's target: under 64 MB for a 200 MB file, on LXD and on Incus. The
library streams: a push hands requests an open file (read in pieces as it is
sent), a pull to a path writes each 64 KiB piece as it arrives. To show the
size does not matter, the bench moves files of two sizes (20 MB and 200 MB by
default) into a busybox instance's /tmp on each server, and compares.

Each push and pull runs in a child process; GNU time gives that child's
own peak RSS (``cli_memory.peak_rss`` says why not ``os.wait4``). A child that only imports apitx
and reads ``api.server`` gives the floor.

    python3 bench/files_memory.py [--sizes 20,200] [--servers lxd,incus]

Needs root and the servers of scripts/lxd-sandbox. Everything it makes (the
instances, the files) is deleted at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from apitx import API  # noqa: E402
from apitx.ensure import file_fingerprint  # noqa: E402  (sha256 of a file, streamed)

from cli_memory import MB, make_file, peak_rss, report  # noqa: E402  (same file, same target)

SOCKETS = {"lxd": os.environ.get("APITX_LXD_SOCKET", "/var/lib/lxd/unix.socket"),
           "incus": os.environ.get("APITX_INCUS_SOCKET", "/var/lib/incus/unix.socket")}
IMAGE = "apitx-busybox"

#: What each child runs: argv[1] the socket, [2] the instance, [3] a local path.
CHILD = {
    "floor": "from apitx import API; API.factory(sys.argv[1]).server",
    "push": "from pathlib import Path; from apitx import API; "
            "API.factory(sys.argv[1]).files(sys.argv[2]).push('/tmp/big.bin', Path(sys.argv[3]))",
    "pull": "from apitx import API; "
            "API.factory(sys.argv[1]).files(sys.argv[2]).pull('/tmp/big.bin', sys.argv[3])",
}


def run_child(what: str, socket: str, instance: str, path: str) -> Tuple[float, float]:
    """Run one CHILD script; return (peak RSS in MB, seconds)."""
    return peak_rss([sys.executable, "-c", f"import sys; {CHILD[what]}", socket, instance, path],
                    what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="20,200", help="file sizes in MB (default 20,200)")
    parser.add_argument("--servers", default="lxd,incus", help="servers (default lxd,incus)")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    rows: List[Tuple[str, int, float, float]] = []
    workdir = tempfile.mkdtemp(prefix="apitx-bench-")
    try:
        for server in options.servers.split(","):
            socket = SOCKETS[server]
            name = f"apitx-bench-{uuid.uuid4().hex[:8]}"
            with API.factory(socket) as api:
                api.post("instances", json={"name": name, "source": {
                    "type": "image", "alias": IMAGE}}).wait(120)
                try:
                    floor, _ = run_child("floor", socket, name, "")
                    rows.append((f"{server:<6} {'floor (import, GET /1.0)':<26}", 0, floor, 0.0))
                    for size_mb in sizes:
                        source = os.path.join(workdir, "push.bin")
                        pulled = os.path.join(workdir, "pull.bin")
                        expected = make_file(source, size_mb * MB)
                        rss, seconds = run_child("push", socket, name, source)
                        rows.append((f"{server:<6} {'push(Path)':<26}", size_mb, rss, seconds))
                        rss, seconds = run_child("pull", socket, name, pulled)
                        rows.append((f"{server:<6} {'pull(path)':<26}", size_mb, rss, seconds))
                        if file_fingerprint(pulled) != expected:
                            raise SystemExit(f"the {size_mb} MB file came back different "
                                             f"from {server}")
                        for path in (source, pulled):
                            os.unlink(path)
                finally:
                    state = api.get(f"instances/{name}", validate=False)
                    if state.status_code != 404:
                        api.delete(f"instances/{name}").wait(60)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(f"{'server':<6} {'what':<26}", rows)


if __name__ == "__main__":
    sys.exit(main())
