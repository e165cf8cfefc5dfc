"""scripts/lxd-pair: the second LXD and Incus of the migration tests.

The real script, as root, on the real daemons: a ready pair is left alone
(no progress line), each server answers as what it is on its own address
with the sandbox's client certificate, and ``down`` leaves no process, mount
or directory behind before ``up`` brings the pair back.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import apitx
from pair import CLIENT_CERT, HTTPS, ROOT, SCRIPT, SERVER_CERTS, SMALL_POOL, SOCKETS

pytestmark = pytest.mark.live


def run(*args: str) -> subprocess.CompletedProcess:
    if os.geteuid() != 0:
        pytest.fail("scripts/lxd-pair needs root: run the tests as root (scripts/test does)")
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=600)


def leftovers() -> str:
    """Processes and mounts naming the pair's root, and the root itself."""
    processes = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True,
                               text=True).stdout
    ours = [line for line in processes.splitlines() if f"{ROOT}/" in line]
    with open("/proc/self/mountinfo") as mounts:
        mounted = [line.split()[4] for line in mounts if line.split()[4].startswith(ROOT)]
    return "\n".join(ours + mounted + ([ROOT] if os.path.exists(ROOT) else []))


@pytest.fixture(scope="module")
def ready() -> None:
    done = run("up")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("server, family", [("lxd2", "lxd"), ("incus2", "incus")])
def test_each_server_answers_as_itself_over_https_with_the_sandbox_certificate(
        ready, server, family):
    with apitx.API.factory(HTTPS[server], cert=CLIENT_CERT, verify=SERVER_CERTS[server]) as api:
        assert api.server.name == family
        assert api.get("").metadata["auth"] == "trusted"
        assert api.get(f"storage-pools/{SMALL_POOL}/resources").metadata["space"]["total"] == \
            24 << 20
    with apitx.API.factory(SOCKETS[server]) as api:
        assert api.get("images/aliases/apitx-busybox").ok


def test_up_on_a_ready_pair_changes_nothing_and_says_so_only_on_stdout(ready):
    done = run("up")
    assert (done.returncode, done.stderr) == (0, "")
    for server in ("lxd2", "incus2"):
        assert re.search(rf"^{server}:\n  server: +\w+ [\d.]+\n", done.stdout, re.MULTILINE)
    assert run("status").returncode == 0


def test_down_leaves_nothing_and_up_brings_the_pair_back(ready):
    down = run("down")
    assert down.returncode == 0, down.stderr
    assert leftovers() == ""
    assert run("status").returncode == 1
    assert run("down").returncode == 0  # nothing there: a no-op
    up = run("up")
    assert up.returncode == 0, up.stderr
    assert run("status").returncode == 0
