"""The second LXD and second Incus of ``scripts/lxd-pair``, for the migration
tests, beside the sandbox's LXD and Incus (``sandbox.py``).

Plain values and functions, imported by name: :func:`servers` gives an API
per server, or FAILS the test (never skips) saying what to run when one is
not there. The daemon-kill tests restart the pair's own daemons with the
script, never the sandbox's.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Dict

import pytest

import apitx
from sandbox import SANDBOX_DIR, SERVER_BY_NAME, daemon_pid

ROOT = "/var/lib/apitx-pair"
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "scripts", "lxd-pair")
#: Every server of the migration tests: the sandbox's two and the pair's two.
SOCKETS = {"lxd": SERVER_BY_NAME["lxd"].socket, "incus": SERVER_BY_NAME["incus"].socket,
           "lxd2": f"{ROOT}/lxd2/unix.socket", "incus2": f"{ROOT}/incus2/unix.socket"}
#: The pair's HTTPS addresses and server certificates.
HTTPS = {"lxd2": "https://127.0.2.1:8443", "incus2": "https://127.0.2.2:8443"}
SERVER_CERTS = {"lxd2": f"{ROOT}/lxd2-server.crt", "incus2": f"{ROOT}/incus2-server.crt",
                "lxd": SERVER_BY_NAME["lxd"].server_cert}
CLIENT_CERT = (f"{SANDBOX_DIR}/client.crt", f"{SANDBOX_DIR}/client.key")
#: The pool of each pair server that fills up at 24 MiB (a tmpfs).
SMALL_POOL = "apitx-small"
HOW_TO_FIX = {"lxd2": "run scripts/lxd-pair up", "incus2": "run scripts/lxd-pair up",
              "lxd": "run scripts/lxd-sandbox", "incus": "run scripts/lxd-sandbox"}


def servers() -> Dict[str, apitx.API]:
    """An API per server, over its Unix socket; a test FAILS when one is missing."""
    missing = [name for name, socket in SOCKETS.items() if not os.path.exists(socket)]
    if missing:
        pytest.fail(f"no server at {', '.join(SOCKETS[name] for name in missing)}: "
                    f"{' and '.join(sorted({HOW_TO_FIX[name] for name in missing}))} (as root) "
                    "first; live tests never skip", pytrace=False)
    return {name: apitx.API.factory(socket) for name, socket in SOCKETS.items()}


def pid_of(server: str) -> int:
    """The PID of a pair server's daemon (the one started with its --logfile)."""
    pid = daemon_pid(f"{ROOT}/{server}.log", (b"lxd", b"incusd"))
    if pid is None:
        raise AssertionError(f"no daemon for {server}: run scripts/lxd-pair up")
    return pid


def kill(server: str) -> None:
    """SIGKILL a pair server's daemon (never one of the sandbox's)."""
    assert server in ("lxd2", "incus2")
    os.kill(pid_of(server), signal.SIGKILL)


def pair_up() -> None:
    """Bring the pair back (after a kill): the script's own idempotent ``up``."""
    done = subprocess.run([SCRIPT, "up"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
