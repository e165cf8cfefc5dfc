"""Live targets for the websocket tests: running instances, by daemon and transport.

``target`` runs a test once per way of reaching a running busybox instance:
LXD over its Unix socket (``lxd``), LXD over HTTPS with the sandbox's client
certificate and pinned server certificate (``lxd-https``), and Incus over its
socket (``incus``) when an Incus daemon is there. One instance per daemon
serves the whole module; it is deleted at the end whatever happens.

A pytest plugin (``pytest_plugins`` in conftest.py): ``live`` and ``target``
are fixtures of every test module.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, List, Tuple

import pytest

import apitx
from sandbox import SANDBOX_DIR, SANDBOX_HTTPS, instance_config, remove_instance

INCUS_SOCKET = "/var/lib/incus/unix.socket"
TARGETS = ["lxd", "lxd-https"] + (["incus"] if os.path.exists(INCUS_SOCKET) else [])


def https_api(**kwargs) -> apitx.API:
    """LXD over HTTPS with the sandbox's client certificate (pass verify=)."""
    return apitx.API.factory(SANDBOX_HTTPS, cert=(f"{SANDBOX_DIR}/client.crt",
                                                  f"{SANDBOX_DIR}/client.key"), **kwargs)


class Live:
    """Running instances, made on first use, one per daemon."""

    def __init__(self, lxd_socket: str) -> None:
        self.sockets = {"lxd": lxd_socket, "incus": INCUS_SOCKET}
        self.apis: Dict[str, apitx.API] = {}
        self.instances: Dict[str, str] = {}
        self.created: List[Tuple[apitx.API, str]] = []

    def api(self, target: str) -> apitx.API:
        if target not in self.apis:
            self.apis[target] = (https_api(verify=f"{SANDBOX_DIR}/server.crt")
                                 if target == "lxd-https" else
                                 apitx.API.factory(self.sockets[target]))
        return self.apis[target]

    def instance(self, daemon: str) -> str:
        if daemon not in self.instances:
            api = self.api(daemon)
            name = f"apitx-{os.urandom(5).hex()}"
            api.post("instances", json=instance_config(name)).wait(timeout=120)
            self.created.append((api, name))
            api.put(f"instances/{name}/state", json={"action": "start"}).wait(timeout=60)
            self.instances[daemon] = name
        return self.instances[daemon]

    def close(self) -> None:
        for api, name in self.created:
            remove_instance(api, name)
        for api in self.apis.values():
            api.close()


@pytest.fixture(scope="module")
def live(lxd_only_socket: str) -> Iterator[Live]:
    state = Live(lxd_only_socket)
    try:
        yield state
    finally:
        state.close()


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, live: Live) -> Tuple[apitx.API, str]:
    """``(api, instance)``: a running instance, reached one way per parameter."""
    daemon = "lxd" if request.param == "lxd-https" else request.param
    return live.api(request.param), live.instance(daemon)
