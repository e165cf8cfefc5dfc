"""scripts/lxd-sandbox on a ready machine: silent, and deaf to the
variables that point each client at a server.

It runs the real script (as root, like scripts/test) against the two real
daemons. On a ready machine it must change nothing, so it prints no progress
line (how fast it is then: bench/deadlines.py). A caller's LXD_DIR or INCUS_DIR
must not send one server's client to the other daemon: the server and image
the summary names for each are compared with what each socket itself says.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import apitx

from sandbox import SERVERS

pytestmark = pytest.mark.live

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "scripts", "lxd-sandbox")
SOCKETS = {server.name: server.socket for server in SERVERS}
#: Every variable either client reads, each pointing at the wrong server.
CROSSED = {"LXD_DIR": "/var/lib/incus", "LXD_SOCKET": SOCKETS["incus"],
           "INCUS_DIR": "/var/lib/lxd", "INCUS_SOCKET": SOCKETS["lxd"],
           "LXD_CONF": "/nonexistent", "INCUS_CONF": "/nonexistent",
           "INCUS_PROJECT": "apitx-nope", "INCUS_REMOTE": "apitx-nope"}


def run_sandbox(*args: str, env: dict = None) -> subprocess.CompletedProcess:
    """One run of the script."""
    if os.geteuid() != 0:
        pytest.fail("scripts/lxd-sandbox needs root: run the tests as root (scripts/test does)")
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def truth(server: str) -> dict:
    """What the server's own socket says: its name and version, its image."""
    with apitx.API.factory(SOCKETS[server]) as api:
        environment = api.get("").metadata["environment"]
        return {"server": f"{environment['server']} {environment['server_version']}",
                "image": api.get("images/aliases/apitx-busybox").metadata["target"]}


def summary(stdout: str) -> dict:
    """{server: {"server": ..., "image": ...}} from the summary on stdout."""
    blocks = re.findall(r"^(lxd|incus):\n((?:  .*\n)+)", stdout, re.MULTILINE)
    return {name: {key: value for key, value in re.findall(r"^  (server|image): +(.*)$", body,
                                                           re.MULTILINE)}
            for name, body in blocks}


@pytest.fixture(scope="module")
def ready() -> None:
    """Make sure both are ready first, so the runs under test have nothing to do."""
    done = run_sandbox()
    assert done.returncode == 0, done.stderr


def test_rerun_on_a_ready_machine_is_silent(ready: None) -> None:
    """Nothing to do, so no progress line (how fast: bench/deadlines.py)."""
    done = run_sandbox()
    assert (done.returncode, done.stderr) == (0, "")
    assert summary(done.stdout) == {"lxd": truth("lxd"), "incus": truth("incus")}


def test_crossed_server_variables_do_not_leak(ready: None) -> None:
    done = run_sandbox(env=CROSSED)
    assert (done.returncode, done.stderr) == (0, "")
    # Each client still reached its own daemon (the script checks it before
    # changing anything through a client, and says which one it reached).
    assert summary(done.stdout) == {"lxd": truth("lxd"), "incus": truth("incus")}


@pytest.mark.parametrize("server", ["lxd", "incus"])
def test_one_server_by_name(ready: None, server: str) -> None:
    done = run_sandbox(server)
    assert (done.returncode, done.stderr) == (0, "")
    assert summary(done.stdout) == {server: truth(server)}


@pytest.mark.parametrize("server", sorted(SOCKETS))
def test_the_daemon_runs_from_the_root_directory(ready: None, server: str) -> None:
    # What the daemon runs (rsync, for snapshots and migrations) inherits its
    # directory: a CI checkout deleted under it made each of those fail with
    # "getcwd(): No such file or directory". scripts/lxd-sandbox starts it in /.
    with apitx.API.factory(SOCKETS[server]) as api:
        pid = api.get("").metadata["environment"]["server_pid"]
    assert os.readlink(f"/proc/{pid}/cwd") == "/"


def test_unknown_argument_is_refused_with_the_choices() -> None:
    done = run_sandbox("lxc")
    assert done.returncode == 1
    assert ("unknown argument: lxc (expected lxd, incus, lxd2, incus2, or nothing for lxd and "
            "incus)") in done.stderr
