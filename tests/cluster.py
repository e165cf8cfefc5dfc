"""The 3-member LXD cluster of ``scripts/lxd-cluster``: a pytest plugin for tests
marked ``cluster``, and helpers for them.

tox.ini loads this module as a plugin (``-p cluster``, with ``tests`` on
``pythonpath``), so the marker alone is enough::

    pytestmark = pytest.mark.cluster

Its hook checks the cluster once before the first selected cluster test:
when the cluster is not up, every such test FAILS with "run
scripts/lxd-cluster up". It never skips: CI must not go green on tests that
did not run. Its fixture ``members`` gives an API per member.

Everything here talks to the members over HTTPS, as a remote client would,
with the sandbox's client certificate (``scripts/lxd-cluster up`` trusts it
on the cluster). Members are killed by PID and brought back by the script,
so destructive tests leave the cluster as they found it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from typing import Any, Callable, Dict, Optional, Union

import pytest

import apitx
from sandbox import daemon_pid, remove_instance

#: What scripts/lxd-cluster makes (its header names the same paths).
ROOT = "/var/lib/apitx-cluster"
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "scripts", "lxd-cluster")
MEMBERS = {name: f"https://127.0.1.{name[1:]}:8443" for name in ("m1", "m2", "m3")}
CLUSTER_CRT = os.path.join(ROOT, "cluster.crt")
CLIENT_CERT = ("/var/lib/apitx-sandbox/client.crt", "/var/lib/apitx-sandbox/client.key")
IMAGE = "apitx-busybox"
HOW_TO_FIX = "run scripts/lxd-cluster up (as root) first; cluster tests never skip"

#: verify= for every API on the cluster: the cluster's certificate, pinned.
#: Every member presents it and its names include no 127.0.1.x address, so a
#: host-name check would fail; apitx trusts a file of non-CA certificates as
#: a pin (as lxc does), by whatever address the member is reached.
VERIFY: Union[bool, str] = CLUSTER_CRT

#: The factory options of every member's API, for either client (the connect
#: timeout is short: it is loopback).
MEMBER_OPTIONS: Dict[str, Any] = {"cert": CLIENT_CERT, "verify": VERIFY,
                                  "timeout": apitx.Timeout(connect=2, read=30)}


def member_api(name: str, timeout: Union[apitx.Timeout, float, None] = None) -> apitx.API:
    """A sync API on member ``name`` over HTTPS."""
    options = dict(MEMBER_OPTIONS, **({} if timeout is None else {"timeout": timeout}))
    return apitx.API.factory(MEMBERS[name], **options)


def cluster_problem() -> Optional[str]:
    """Why the cluster cannot be used, or None when all 3 members serve,
    each forwards requests to the others, and all are Online."""
    try:
        for name in MEMBERS:
            with member_api(name, timeout=5) as api:
                env = api.get("").metadata["environment"]
                if env.get("server_name") != name or not env.get("server_clustered"):
                    return (f"{MEMBERS[name]} is {env.get('server_name')!r}, clustered: "
                            f"{env.get('server_clustered')}, not cluster member {name}")
                # Serving is not forwarding: after a restart, a member
                # reconnects its event listener to another only at a
                # heartbeat, and until then refuses to forward there ("Missing
                # event connection with target cluster member"; see
                # scripts/lxd-cluster up, which waits for it).
                for other in MEMBERS:
                    if other != name:
                        api.get("", params={"target": other})
        with member_api("m1", timeout=5) as api:
            listed = api.get("cluster/members", params={"recursion": 1}).metadata
    except apitx.APITXError as exc:
        return str(exc)
    states = {member["server_name"]: member["status"] for member in listed}
    if states != {name: "Online" for name in MEMBERS}:
        return f"members are not all Online: {states}"
    return None


# -- the plugin ----------------------------------------------------------------------

_PROBLEM = pytest.StashKey[Optional[str]]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail (never skip) a cluster test when the cluster is not there to test.

    Checked once, before the first cluster test of the session: the
    destructive tests restore what they break.
    """
    if item.get_closest_marker("cluster") is None:
        return
    if _PROBLEM not in item.config.stash:
        item.config.stash[_PROBLEM] = cluster_problem()
    problem = item.config.stash[_PROBLEM]
    if problem:
        pytest.fail(f"the LXD cluster is not up ({problem}): {HOW_TO_FIX}", pytrace=False)


@pytest.fixture
def members(client_of: Callable[..., Any]) -> Dict[str, Any]:
    """A fresh API per member, of the client under test (tests/clients.py):
    a killed member's pooled connections die with it. Closed after the test."""
    return {name: client_of(url, **MEMBER_OPTIONS) for name, url in MEMBERS.items()}


# -- instances ------------------------------------------------------------------

def new_name() -> str:
    return f"apitx-cl-{uuid.uuid4().hex[:8]}"


def create_instance(api: apitx.API, name: str, target: str, start: bool = False) -> None:
    """Create (and start) an instance of the busybox image on member ``target``."""
    api.post("instances", params={"target": target},
             json={"name": name, "source": {"type": "image", "alias": IMAGE}}).wait(timeout=120)
    if start:
        api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)


#: Stop (if running) and delete an instance; fine if it is already gone.
delete_instance = remove_instance


def start_exec(api: Any, name: str, *command: str) -> Any:
    """Start ``command`` in instance ``name``; the answer announces its
    operation (for an :class:`apitx.AsyncAPI`, await it)."""
    return api.post(f"instances/{name}/exec", json={
        "command": list(command), "record-output": False,
        "wait-for-websocket": False, "interactive": False})


# -- members' processes ------------------------------------------------------------

def member_pid(name: str) -> int:
    """The PID of member ``name``'s daemon: the ``lxd`` process whose
    ``--logfile`` is ``ROOT/<name>.log``, as scripts/lxd-cluster finds it."""
    pid = daemon_pid(f"{ROOT}/{name}.log")
    if pid is None:
        raise AssertionError(f"no daemon for member {name}: {HOW_TO_FIX}")
    return pid


def kill_member(name: str) -> None:
    """SIGKILL member ``name``'s daemon by PID, and wait until it is gone."""
    pid = member_pid(name)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL for 10 s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (killed, not reaped yet) is dead."""
    try:
        with open(f"/proc/{pid}/status") as f:
            states = [line.split()[1] for line in f if line.startswith("State:")]
    except OSError:
        return False
    return states != ["Z"]


def restore_cluster() -> float:
    """``scripts/lxd-cluster up`` (restarts dead members), then wait until
    every member is Online and serves; the seconds it took.

    ``up`` returns once a heartbeat round has heard every member since the
    restart (before, members read Online on their old heartbeats, then
    Offline until the next round: seen here) and every member forwards to
    every other; the loop below is the tests' own check of the same.
    """
    started = time.monotonic()
    done = subprocess.run([SCRIPT, "up"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"scripts/lxd-cluster up failed:\n{done.stderr}"
    deadline = time.monotonic() + 40
    while cluster_problem() is not None:
        assert time.monotonic() < deadline, f"the cluster is not healthy: {cluster_problem()}"
        time.sleep(0.5)
    return time.monotonic() - started
