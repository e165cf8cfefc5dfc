"""What the live tests share: the sandbox's names, and instance helpers.

``scripts/lxd-sandbox`` prepares these; fixtures live in ``conftest.py``,
plain values and functions here, so test modules import them by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import pytest

import apitx

#: What scripts/lxd-sandbox prepares.
SANDBOX_SOCKET = os.environ.get("APITX_LXD_SOCKET", "/var/lib/lxd/unix.socket")
SANDBOX_IMAGE = "apitx-busybox"
SANDBOX_DIR = "/var/lib/apitx-sandbox"
SANDBOX_HTTPS = "https://127.0.0.1:8443"
#: The sandbox's client certificate and its server certificate, for HTTPS.
HTTPS_OPTIONS = {"cert": (f"{SANDBOX_DIR}/client.crt", f"{SANDBOX_DIR}/client.key"),
                 "verify": f"{SANDBOX_DIR}/server.crt"}


@dataclass(frozen=True)
class SandboxServer:
    """One daemon scripts/lxd-sandbox prepares: every live test runs on each.

    ``name`` is what ``GET /1.0`` says (``environment.server``) and the test id
    (``[lxd]``, ``[incus]``); ``socket`` its Unix socket; ``https`` its HTTPS
    address; ``server_cert`` its certificate, to trust over HTTPS.
    """

    name: str
    socket: str
    https: str
    server_cert: str
    #: The command that prepares it, for the message of a missing daemon.
    prepare: str
    #: The command-line client that reads the same remotes config format.
    client: str

    @property
    def https_options(self) -> dict:
        """``cert=`` and ``verify=`` for :meth:`apitx.API.factory` over HTTPS."""
        return {"cert": HTTPS_OPTIONS["cert"], "verify": self.server_cert}


#: LXD first: cassettes and golden traces are recorded from it.
SERVERS = (
    SandboxServer("lxd", SANDBOX_SOCKET, SANDBOX_HTTPS, f"{SANDBOX_DIR}/server.crt",
                  "scripts/lxd-sandbox", "lxc"),
    SandboxServer("incus", os.environ.get("APITX_INCUS_SOCKET", "/var/lib/incus/unix.socket"),
                  "https://127.0.0.1:8444", f"{SANDBOX_DIR}/incus-server.crt",
                  "scripts/lxd-sandbox incus", "incus"),
)
SERVER_BY_NAME: Dict[str, SandboxServer] = {server.name: server for server in SERVERS}


def live_server(server: SandboxServer) -> SandboxServer:
    """``server``, or a test failure saying what to run when it is not up."""
    if not os.path.exists(server.socket):
        pytest.fail(f"no {server.name} socket at {server.socket}: run {server.prepare} "
                    "(as root) first; live tests never skip")
    return server
CASSETTES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "cassettes")
#: Replays use a socket that cannot exist: they must never reach a server.
NOWHERE_SOCKET = "/nonexistent/apitx-replay.socket"


def instance_not_found(server: str, name: str) -> str:
    """The server's own words for a missing instance: Incus 6.0 names the
    instance and its project, LXD 5.0 does not."""
    return ("Instance not found" if server == "lxd" else
            f'Failed to fetch instance "{name}" in project "default": Instance not found')


def instance_config(name: str) -> dict:
    return {"name": name, "source": {"type": "image", "alias": SANDBOX_IMAGE}}


def remove_instance(api: apitx.API, name: str) -> None:
    """Stop (if running) and delete an instance; fine if it is already gone."""
    state = api.get(f"instances/{name}/state", validate=False)
    if state.status_code == 404:
        return
    if state.metadata and state.metadata.get("status") == "Running":
        api.put(f"instances/{name}/state", json={"action": "stop", "force": True}).wait(60)
    api.delete(f"instances/{name}").wait(60)


def daemon_pid(logfile: str, names: tuple = (b"lxd",)) -> Optional[int]:
    """The PID of the daemon started with ``--logfile logfile`` (the rule of
    scripts/lxd-cluster and scripts/lxd-pair: no other process carries it),
    or None when none runs. ``names``: the programs it may be."""
    wanted = logfile.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if os.path.basename(argv[0]) in names and wanted in argv:
            return int(entry.name)
    return None


def start_exec(api: apitx.API, instance: str, *command: str) -> apitx.APIResult:
    """Start the instance and a command in it; return the exec's async result."""
    api.put(f"instances/{instance}/state", json={"action": "start"}).wait(60)
    return api.post(f"instances/{instance}/exec", json={
        "command": list(command), "record-output": True,
        "wait-for-websocket": False, "interactive": False})


def as_nobody(attempt: Callable[[], str]) -> str:
    """Run ``attempt`` in a forked child that has become the real user nobody
    (uid and gid 65534, no supplementary groups); return what it returned,
    or ``"raised <type>: <message>"``. Needs root."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody, tries, and reports
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                report = attempt()
            except Exception as exc:  # noqa: BLE001 - reported to the parent as text
                report = f"raised {type(exc).__name__}: {exc}"
            os.write(write_end, report.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "the child running as nobody failed"
    return b"".join(chunks).decode()
