"""What the live tests share: the sandbox's names, and instance helpers.

``scripts/lxd-sandbox`` prepares these; fixtures live in ``conftest.py``,
plain values and functions here, so test modules import them by name.
"""

from __future__ import annotations

import os

import apitx

#: What scripts/lxd-sandbox prepares.
SANDBOX_SOCKET = os.environ.get("APITX_LXD_SOCKET", "/var/lib/lxd/unix.socket")
SANDBOX_IMAGE = "apitx-busybox"
SANDBOX_DIR = "/var/lib/apitx-sandbox"
SANDBOX_HTTPS = "https://127.0.0.1:8443"
#: The sandbox's client certificate and its server certificate, for HTTPS.
HTTPS_OPTIONS = {"cert": (f"{SANDBOX_DIR}/client.crt", f"{SANDBOX_DIR}/client.key"),
                 "verify": f"{SANDBOX_DIR}/server.crt"}
CASSETTES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "cassettes")
#: Replays use a socket that cannot exist: they must never reach a server.
NOWHERE_SOCKET = "/nonexistent/apitx-replay.socket"


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


def start_exec(api: apitx.API, instance: str, *command: str) -> apitx.APIResult:
    """Start the instance and a command in it; return the exec's async result."""
    api.put(f"instances/{instance}/state", json={"action": "start"}).wait(60)
    return api.post(f"instances/{instance}/exec", json={
        "command": list(command), "record-output": True,
        "wait-for-websocket": False, "interactive": False})
