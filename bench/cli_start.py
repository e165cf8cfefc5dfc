#!/usr/bin/env python3
"""How fast the ``apitx`` command starts: ``apitx /1.0`` against the floor, in one run.

Issue 19: ``apitx /1.0`` took 0.38-0.46 s of wall time where ``lxc query
/1.0`` takes 0.02 s, because ``import apitx`` imported everything it can do
(websockets, events, exec, remotes, migrations...) whatever was asked.

What is measured
----------------
Each command below is a whole process, run ``--runs`` times (default 30);
the runs are interleaved (one of each per round, the order rotated every
round), so drift on the machine (other tests, CPU frequency) hits all alike.
For each: the median wall time, and the median CPU time (user + system, the
``resource.getrusage(RUSAGE_CHILDREN)`` delta across the run: the child's
own, not this bench's nor the daemon's); the targets are judged on those.
The least CPU of any run is shown too: on a shared machine the medians move
by several percent from one run of the bench to the next, the least much
less.

- ``python -c pass``: the interpreter alone, for scale;
- ``import requests``, ``import apitx``, ``from apitx import API``: imports only;
- the floor, ``requests GET /1.0``: Python, ``requests`` and
  ``requests-unixsocket`` doing the same request as ``apitx /1.0`` and
  printing the same thing (the metadata, indented): what requests alone
  costs, the floor the issue names;
- ``apitx /1.0``: what the console script runs (``from apitx.cli import
  run; sys.exit(run())``), with this checkout first on the path;
- ``lxc query /1.0``: for reference (Go: no interpreter to start).

Targets (both wall and CPU must meet them): ``apitx /1.0`` <= 1.15x the floor;
``import apitx`` <= 1.10x ``import requests``. Since ``import apitx`` now
imports only the exceptions (every other name on first use), ``from apitx
import API``, what a program using the library really imports, is held to
the same 1.10x.

    python3 bench/cli_start.py [--runs 30] [--socket /var/lib/lxd/unix.socket]

Needs the LXD of scripts/lxd-sandbox. Exits 0 when every target is met, 1 if not.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOCKET = os.environ.get("APITX_LXD_SOCKET", "/var/lib/lxd/unix.socket")

#: The floor: the same request and output as ``apitx /1.0``, with nothing
#: but requests and requests-unixsocket.
FLOOR = """\
import json, sys, urllib.parse
import requests_unixsocket
url = "http+unix://" + urllib.parse.quote(sys.argv[1], safe="") + "/1.0"
answer = requests_unixsocket.Session().get(url)
answer.raise_for_status()
print(json.dumps(answer.json()["metadata"], indent=4))
"""

#: What the ``apitx`` console script runs (pip writes this wrapper).
CONSOLE_SCRIPT = "import sys; from apitx.cli import run; sys.exit(run())"


class Command(NamedTuple):
    label: str
    argv: List[str]


class Figures(NamedTuple):
    wall: float  # median seconds
    cpu: float   # median seconds, user + system
    least: float  # the least CPU of any run: the cost with the least interference


def commands(socket_path: str) -> List[Command]:
    """Every command the bench times, in the order it prints them."""
    python = sys.executable
    found = [
        Command("python -c pass", [python, "-c", "pass"]),
        Command("import requests", [python, "-c", "import requests"]),
        Command("import apitx", [python, "-c", "import apitx"]),
        Command("from apitx import API", [python, "-c", "from apitx import API"]),
        Command("requests GET /1.0 (floor)", [python, "-c", FLOOR, socket_path]),
        Command("apitx /1.0", [python, "-c", CONSOLE_SCRIPT, "/1.0"]),
    ]
    lxc = shutil.which("lxc")
    if lxc is not None:
        found.append(Command("lxc query /1.0", [lxc, "query", "/1.0"]))
    return found


def run_once(command: Command, env: Dict[str, str]) -> Tuple[float, float]:
    """Run ``command`` once; return its (wall, CPU) seconds. A failure ends the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command.argv, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command.label} failed (exit {done.returncode}): "
                         f"{done.stderr.decode(errors='replace').strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(found: Sequence[Command], runs: int, env: Dict[str, str]) -> Dict[str, Figures]:
    """Run every command ``runs`` times, interleaved; return the medians by label."""
    for command in found:  # warm up: bytecode written, files in the page cache
        run_once(command, env)
    walls: Dict[str, List[float]] = {command.label: [] for command in found}
    cpus: Dict[str, List[float]] = {command.label: [] for command in found}
    for round_ in range(runs):
        shift = round_ % len(found)
        for command in list(found[shift:]) + list(found[:shift]):
            wall, cpu = run_once(command, env)
            walls[command.label].append(wall)
            cpus[command.label].append(cpu)
    return {label: Figures(statistics.median(walls[label]), statistics.median(cpus[label]),
                           min(cpus[label])) for label in walls}


def judge(figures: Dict[str, Figures], label: str, floor: str, target: float) -> bool:
    """Print ``label``'s ratios to ``floor``'s; True when both are within ``target``."""
    mine, base = figures[label], figures[floor]
    wall, cpu = mine.wall / base.wall, mine.cpu / base.cpu
    met = wall <= target and cpu <= target
    print(f"{label} / {floor}: wall {wall:.2f}x, CPU {cpu:.2f}x (target <= {target:.2f}x): "
          f"{'met' if met else 'NOT MET'}")
    return met


def environment(socket_path: str, pycache: str) -> Dict[str, str]:
    """The environment of every command."""
    # This checkout's apitx for every command (the same sys.path for the
    # floor too; the commands run in it, since ``-c`` puts the current
    # directory first); $LXD_DIR points apitx's discovery and lxc at the
    # same socket.
    env = dict(os.environ, PYTHONPATH=ROOT, LXD_DIR=os.path.dirname(socket_path))
    for name in [name for name in env if name == "DEBUG" or name.startswith("APITX_DEBUG")]:
        del env[name]  # tracing would be apitx's work, not its start
    # Bytecode as an installed package has it (pip compiles at install):
    # without it every run compiles apitx from source, which costs more than
    # everything else here. A cache of this run's own keeps the checkout clean
    # and treats every command alike (the warm-up runs fill it).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    parser.add_argument("--socket", default=SOCKET, help=f"LXD's socket (default {SOCKET})")
    args = parser.parse_args(argv)
    found = commands(args.socket)
    with tempfile.TemporaryDirectory(prefix="apitx-bench-pycache-") as pycache:
        figures = measure(found, args.runs, environment(args.socket, pycache))
    print(f"{args.runs} runs of each, interleaved; medians ({sys.executable}, "
          f"Python {sys.version.split()[0]})")
    print(f"{'command':<28} {'wall':>8} {'CPU':>8} {'CPU min':>8}")
    for command in found:
        wall, cpu, least = figures[command.label]
        print(f"{command.label:<28} {wall * 1000:>6.0f}ms {cpu * 1000:>6.0f}ms "
              f"{least * 1000:>6.0f}ms")
    if len(found) < 7:
        print("lxc query /1.0: lxc is not installed (reference only)")
    met = [judge(figures, "apitx /1.0", "requests GET /1.0 (floor)", 1.15),
           judge(figures, "import apitx", "import requests", 1.10),
           judge(figures, "from apitx import API", "import requests", 1.10)]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
