"""Live targets for the websocket tests: running instances, by daemon and transport.

``target`` runs a test once per way of reaching a running busybox instance:
each sandbox server over its Unix socket (``lxd``, ``incus``: tests/sandbox.py's
``SERVERS``), and each over HTTPS with the sandbox's client certificate and
pinned server certificate (``lxd-https``, ``incus-https``: exec output was
lost over HTTPS on both servers, see ../shared/lxd-facts.md). The targets are the same whatever
the machine has: a server that is not there FAILS its tests with what to run
(``live_server``), it never drops out of the list. One instance per daemon
serves the whole module; it is deleted at the end whatever happens.

A pytest plugin (``pytest_plugins`` in conftest.py): ``live`` and ``target``
are fixtures of every test module.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import apitx
from sandbox import (HTTPS_OPTIONS, SERVERS, SandboxServer, instance_config, live_server,
                     remove_instance)

#: LXD, the first server.
LXD = SERVERS[0]
#: Each target: the server, and True when it is reached over HTTPS (else its socket).
WAYS: Dict[str, Tuple[SandboxServer, bool]] = {
    f"{server.name}{suffix}": (server, https)
    for server in SERVERS for suffix, https in (("", False), ("-https", True))}
#: ``lxd``, ``lxd-https``, ``incus``, ``incus-https``.
TARGETS = list(WAYS)


def https_api(**kwargs) -> apitx.API:
    """LXD over HTTPS with the sandbox's client certificate (pass verify=)."""
    return apitx.API.factory(live_server(LXD).https, cert=HTTPS_OPTIONS["cert"], **kwargs)


class Live:
    """Running instances, made on first use, one per daemon."""

    def __init__(self) -> None:
        self.apis: Dict[str, apitx.API] = {}
        self.instances: Dict[str, str] = {}
        self.created: List[Tuple[apitx.API, str]] = []

    def api(self, target: str) -> apitx.API:
        """The module's API on ``target``, made on first use."""
        if target not in self.apis:
            self.apis[target] = self.new_api(target)
        return self.apis[target]

    @staticmethod
    def new_api(target: str, **options: object) -> apitx.API:
        """A new API on ``target`` with ``options`` of API.factory (the caller closes it)."""
        server, https = WAYS[target]
        live_server(server)
        return (apitx.API.factory(server.https, **server.https_options, **options)
                if https else apitx.API.factory(server.socket, **options))

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
def live() -> Iterator[Live]:
    state = Live()
    try:
        yield state
    finally:
        state.close()


def endpoint_of(target: str) -> Tuple[str, Dict[str, Any]]:
    """Where ``target`` is, and the factory options that reach it."""
    server, https = WAYS[target]
    live_server(server)
    return (server.https, dict(server.https_options)) if https else (server.socket, {})


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, live: Live,
           client_of: Callable[..., Any]) -> Tuple[Any, str]:
    """``(api, instance)``: a running instance, reached one way per parameter,
    by each client kind (tests/clients.py)."""
    endpoint, options = endpoint_of(request.param)
    return client_of(endpoint, **options), live.instance(WAYS[request.param][0].name)


@pytest.fixture
def live_api(client_of: Callable[..., Any]) -> Callable[[str], Any]:
    """``live_api(target)``: an API on ``target`` of each client kind."""
    def make(target: str) -> Any:
        endpoint, options = endpoint_of(target)
        return client_of(endpoint, **options)
    return make
