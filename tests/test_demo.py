"""scripts/demo: a few lines of set-up, then the trace it exists to show.

The real demo runs against the sandbox LXD (live). What a fresh machine
prints cannot be made on a shared one (the daemons are installed), so the
set-up's output handling is also run with a stand-in for scripts/lxd-sandbox
that prints what the real one prints on a fresh machine (its progress lines
and hundreds of lines of apt), in a copy of the scripts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The issue's bound: the demo's stderr starts with at most this many lines of set-up.
SETUP_LINES = 10

#: What scripts/lxd-sandbox prints on stderr on a fresh machine: its progress
#: lines (from its say calls, in order) with apt's and lxc's output between.
FRESH_MACHINE = [
    "lxd-sandbox: installing busybox-static lxd lxd-client",
    *(f"Get:{n} http://deb.debian.org/debian bookworm/main amd64 pkg{n}" for n in range(600)),
    "lxd-sandbox: creating client certificate in /var/lib/apitx-sandbox",
    "lxd-sandbox: starting lxd daemon (log: /var/log/apitx-lxd.log)",
    "lxd-sandbox: lxd is ready",
    "lxd-sandbox: lxd: creating storage pool 'default' (dir)",
    "Storage pool default created",
    "lxd-sandbox: lxd: adding root disk (pool 'default') to the default profile",
    "Device root added to default",
    "lxd-sandbox: building image 'apitx-busybox'",
    "lxd-sandbox: lxd: importing image 'apitx-busybox'",
    *(f"Transferring image: {n}%" for n in range(100)),
    "lxd-sandbox: lxd: setting core.https_address=127.0.0.1:8443",
    "lxd-sandbox: lxd: trusting client certificate 0123456789ab",
    "lxd-sandbox: lxd: copying server certificate to /var/lib/apitx-sandbox/server.crt",
]


def setup_lines(stderr: str) -> list:
    """The lines before the first traced transaction."""
    lines = stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("#1 "))
    return lines[:first]


def env_with_this_python(**extra: str) -> dict:
    """The demo runs `python3`: make it this interpreter (the checkout under test)."""
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    return {**os.environ, "PATH": path, **extra}


@pytest.mark.live
def test_the_demo_shows_a_few_lines_of_set_up_then_the_trace(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("scripts/demo needs root: run the tests as root (scripts/test does)")
    log, name = tmp_path / "setup.log", f"apitx-{uuid.uuid4().hex[:10]}"
    done = subprocess.run([str(ROOT / "scripts" / "demo"), name], capture_output=True, text=True,
                          timeout=600, env=env_with_this_python(APITX_DEMO_LOG=str(log)))
    assert done.returncode == 0, done.stderr[-3000:]
    shown = setup_lines(done.stderr)
    assert shown[0] == f"demo: setting up apitx and LXD (the whole output: {log})"
    assert len(shown) <= SETUP_LINES
    assert "lxd:\n  server:        lxd 5.0.2" in log.read_text()  # the sandbox's summary
    assert done.stdout.splitlines()[-1] == f"deleted {name}"


def fake_tree(tmp_path: Path, sandbox_lines: list, sandbox_status: int) -> Path:
    """A copy of scripts/demo beside a stand-in sandbox, demo and python3."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "examples").mkdir()
    (tree / "bin").mkdir()
    shutil.copy(ROOT / "scripts" / "demo", tree / "scripts" / "demo")
    (tree / "sandbox.txt").write_text("".join(line + "\n" for line in sandbox_lines))
    sandbox = tree / "scripts" / "lxd-sandbox"
    sandbox.write_text(f"#!/bin/sh\necho 'lxd: (summary)'\ncat {tree}/sandbox.txt >&2\n"
                       f"exit {sandbox_status}\n")
    python = tree / "bin" / "python3"   # pip does nothing; the demo prints a trace line
    python.write_text("#!/bin/sh\n[ \"$1\" = -m ] && exit 0\n"
                      "echo '#1 unix:/var/lib/lxd/unix.socket GET /1.0 1.0 ms' >&2\n")
    for script in (sandbox, python):
        script.chmod(0o755)
    return tree


def run_fake(tree: Path, log: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{tree / 'bin'}:{os.environ['PATH']}",
           "APITX_DEMO_LOG": str(log)}
    return subprocess.run([str(tree / "scripts" / "demo")], capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_fresh_machine_shows_the_slow_steps_and_logs_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    done = run_fake(fake_tree(tmp_path, FRESH_MACHINE, 0), log)
    assert done.returncode == 0, done.stderr
    assert setup_lines(done.stderr) == [
        f"demo: setting up apitx and LXD (the whole output: {log})",
        "lxd-sandbox: installing busybox-static lxd lxd-client",
        "lxd-sandbox: starting lxd daemon (log: /var/log/apitx-lxd.log)",
        "lxd-sandbox: building image 'apitx-busybox'",
        "lxd-sandbox: lxd: importing image 'apitx-busybox'",
        "demo: LXD is ready",
    ]
    logged = log.read_text()
    assert all(line in logged for line in FRESH_MACHINE) and "lxd: (summary)" in logged


def test_a_failed_set_up_shows_the_end_of_its_log_and_stops(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    failing = [*FRESH_MACHINE[:300], "E: Unable to locate package lxd",
               "lxd-sandbox: error: 'lxd' still missing after apt-get install"]
    done = run_fake(fake_tree(tmp_path, failing, 1), log)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert "lxd-sandbox: error: 'lxd' still missing after apt-get install" in lines
    assert f"demo: set-up failed; the last lines of {log}:" in lines
    assert lines[-2:] == failing[-2:]
    assert not any(line.startswith("#1 ") for line in lines)   # the demo did not run
