"""Shared fixtures: the live servers, canned answers, the hostile server, and cassettes.

Live tests (mark ``live``) talk to the LXD and the Incus that
``scripts/lxd-sandbox`` prepares, each test once per server (``server``). When it is not there they FAIL with what to run, never skip:
CI must not go green on tests that did not run.

Cassettes: ``pytest --record`` re-records ``cassettes/`` from the live LXD;
without it they replay with no LXD at all (vcrpy record mode ``none``, so a
missing recording fails).
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any, Callable, Iterator

import pytest

import apitx
from apitx.testing import recorder

from canned import Canned
from hostile import HostileServer, running_server
from sandbox import (CASSETTES, NOWHERE_SOCKET, SANDBOX_SOCKET, SERVER_BY_NAME, SERVERS,
                     SandboxServer, instance_config, live_server, remove_instance)

#: The websocket tests' targets (running instances by daemon and transport),
#: the check that every test needing a server is marked live, pytester
#: (the tests of that check run pytest on small test files), the client
#: kinds of the live tests (clients.py), and the migration tests' servers
#: and workloads (the fixtures apis and made).
pytest_plugins = ["live", "livemarks", "pytester", "clients", "workloads"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--record", action="store_true",
                     help="re-record cassettes/ from the live LXD (and the golden traces)")
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/ from the cassettes (review the diff)")


@pytest.fixture(scope="session", params=SERVERS, ids=lambda server: server.name)
def server(request: pytest.FixtureRequest) -> SandboxServer:
    """Each server the sandbox runs (LXD, then Incus): every live test that
    uses it, or ``lxd_socket``, ``api`` or ``instance``, runs once per server,
    with ``[lxd]`` or ``[incus]`` in its id."""
    return live_server(request.param)


@pytest.fixture(scope="session")
def lxd_only_socket() -> str:
    """LXD's socket, not parametrised: for tests about the LXD daemon alone
    (killing and restarting it) or with targets of their own (tests/live.py)."""
    return live_server(SERVER_BY_NAME["lxd"]).socket


@pytest.fixture(scope="session")
def lxd_socket(server: SandboxServer) -> str:
    """The Unix socket of the server under test (LXD's or Incus's)."""
    return server.socket


@pytest.fixture
def api(lxd_socket: str, client_of: Callable[..., Any]) -> Any:
    """An API on the live sandbox server (LXD or Incus), of each client kind
    (``[sync]``, ``[async]``: tests/clients.py)."""
    return client_of(lxd_socket)


@pytest.fixture
def instance_name() -> str:
    """A name no other test (or earlier run) uses."""
    return f"apitx-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def instance(api: apitx.API, instance_name: str) -> Iterator[str]:
    """A created (stopped) busybox instance, deleted afterwards whatever happens."""
    api.post("instances", json=instance_config(instance_name)).wait(timeout=120)
    yield instance_name
    remove_instance(api, instance_name)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def hostile_api(hostile: HostileServer) -> Iterator[apitx.API]:
    with apitx.API.factory(hostile.server_address, timeout=apitx.Timeout(connect=2, read=1)) as api:
        yield api


@pytest.fixture
def canned() -> Canned:
    """Canned LXD answers by path (tests/canned.py), for ``canned_api``."""
    return Canned()


@pytest.fixture
def canned_api(canned: Canned) -> Iterator[apitx.API]:
    """An API on a MockTransport answering from ``canned``: no server, no socket."""
    with apitx.API.factory(transport=canned.transport) as api:
        yield api


@pytest.fixture
def cassette(request: pytest.FixtureRequest):
    """``cassette(name)``: a context that records (with --record) or replays it.

    Returns ``(context, socket_path)``: replays get a socket that does not exist.
    """
    recording = request.config.getoption("--record")

    def use(name: str):
        if recording:
            if not os.path.exists(SANDBOX_SOCKET):
                pytest.fail(f"--record needs the live LXD at {SANDBOX_SOCKET}")
            path = os.path.join(CASSETTES, name)
            if os.path.exists(path):
                os.unlink(path)
            return recorder(CASSETTES, record_mode="once").use_cassette(name), SANDBOX_SOCKET
        if not os.path.exists(os.path.join(CASSETTES, name)):
            pytest.fail(f"cassette {name} is missing: record it with pytest --record")
        return recorder(CASSETTES, record_mode="none").use_cassette(name), NOWHERE_SOCKET

    return use


# -- counting real socket connections -------------------------------------------
#
# An audit hook sees every socket.connect() the interpreter makes: it observes
# the real transport instead of replacing any of it. Hooks cannot be removed,
# so one hook feeds whichever list is currently listening.

_connect_listeners: list = []


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _connect_listeners:
        _connect_listeners[-1].append(args[1])


sys.addaudithook(_audit)


@pytest.fixture
def socket_connects() -> Iterator[list]:
    """The addresses of every socket connected during the test."""
    seen: list = []
    _connect_listeners.append(seen)
    yield seen
    _connect_listeners.remove(seen)
