"""Both clients through one test body: the ``client_kind`` dimension.

A test that uses ``api`` (conftest), ``target`` or ``live_api`` (tests/live.py)
runs once with the sync :class:`apitx.API` and once with :class:`apitx.AsyncAPI`,
``[sync]``/``[async]`` in its id: the duties both clients share are checked
by the same assertions. The async client is driven through :class:`AsyncBridge`,
which runs each of its coroutines to completion on an event loop of its own
(in the test's thread): the test's code stays sync, the client under test is
the real async one, over aiohttp. (The bridge is for tests only; an
application awaits.)

A test about the sync client alone (``result.response.raw``, threads, the
requests session) is marked ``sync_only`` and runs once.

A pytest plugin, loaded by conftest.py.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Tuple

import pytest

import apitx

KINDS = ("sync", "async")
#: The fixtures that bring a client with them.
CLIENT_FIXTURES = ("api", "target", "live_api")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sync_only: a test of the sync client alone: it runs "
                                       "once, not once per client")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client_kind" not in metafunc.fixturenames:
        return
    kinds = ["sync"] if metafunc.definition.get_closest_marker("sync_only") else list(KINDS)
    metafunc.parametrize("client_kind", kinds, scope="function")


class AsyncBridge:
    """An :class:`apitx.AsyncAPI` driven from sync code: every coroutine it
    returns is run to its end on the bridge's own event loop; results,
    resources, files and event streams are bridged the same way."""

    def __init__(self, api: apitx.AsyncAPI, loop: asyncio.AbstractEventLoop) -> None:
        self._api = api
        self._loop = loop
        #: One wrapper per object of the async client's, so that identity holds
        #: (``result.wait() is result`` for a sync answer).
        self._wrappers: Dict[int, Tuple[Any, Any]] = {}

    def wrapper(self, value: Any, kind: Any) -> Any:
        known = self._wrappers.get(id(value))
        if known is None or known[0] is not value:
            known = self._wrappers[id(value)] = (value, kind(value, self))
        return known[1]

    def run(self, value: Any) -> Any:
        """``value``, or what it comes to when it is awaitable; bridged."""
        if inspect.isawaitable(value):
            value = self._loop.run_until_complete(_awaited(value))
        return bridged(value, self)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if name == "exec":
            return lambda *args, **kwargs: self.run(attr(*args, **_scheduling(kwargs)))
        if name == "server":
            return self.run(attr)
        if callable(attr) and not isinstance(attr, apitx.Resource):
            return lambda *args, **kwargs: self.run(attr(*unbridged(args), **unbridged(kwargs)))
        return bridged(attr, self)

    def __getitem__(self, item: Any) -> Any:
        return bridged(self._api[item], self)

    def __truediv__(self, item: Any) -> Any:
        return bridged(self._api / item, self)

    def using(self, **options: Any) -> AsyncBridge:
        return AsyncBridge(self._api.using(**options), self._loop)

    def close(self) -> None:
        self._loop.run_until_complete(self._api.close())

    def __enter__(self) -> AsyncBridge:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<AsyncBridge {self._api!r}>"


class _ScheduledControl:
    """An AsyncExecControl for sync callbacks (which run inside the loop):
    each call is scheduled, and returns the task (run_exec awaits what
    ``on_start`` returns)."""

    def __init__(self, control: Any) -> None:
        self._control = control

    def resize(self, width: int, height: int) -> Any:
        return asyncio.ensure_future(self._control.resize(width, height))

    def signal(self, number: int) -> Any:
        return asyncio.ensure_future(self._control.signal(number))


def _scheduling(options: Any) -> Any:
    """exec()'s options with ``on_start`` given a :class:`_ScheduledControl`."""
    start = options.get("on_start")
    if start is not None:
        options = {**options, "on_start": lambda control: start(_ScheduledControl(control))}
    return options


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


class _Bridged:
    """Something of the async client's, its coroutines run by the bridge."""

    def __init__(self, wrapped: Any, bridge: AsyncBridge) -> None:
        self._wrapped = wrapped
        self._bridge = bridge

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._wrapped, name)
        if callable(attr) and not isinstance(attr, apitx.Resource):
            return lambda *args, **kwargs: self._bridge.run(
                attr(*unbridged(args), **unbridged(kwargs)))
        return bridged(attr, self._bridge)

    def __getitem__(self, item: Any) -> Any:
        return bridged(self._wrapped[item], self._bridge)

    def __truediv__(self, item: Any) -> Any:
        return bridged(self._wrapped / item, self._bridge)

    def __eq__(self, other: Any) -> bool:
        return bool(self._wrapped == unbridged(other))

    def __hash__(self) -> int:
        return hash(self._wrapped)

    def __repr__(self) -> str:
        return repr(self._wrapped)

    def __str__(self) -> str:
        return str(self._wrapped)


class _BridgedResult(_Bridged):
    """An AsyncAPIResult: ``iter_content()`` collects ``aiter_content()``."""

    def iter_content(self, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        async def collect() -> List[bytes]:
            return [piece async for piece in self._wrapped.aiter_content(chunk_size)]

        return iter(self._bridge._loop.run_until_complete(collect()))


class _BridgedStream(_Bridged):
    """An AsyncEventStream as a sync iterator and context manager."""

    def __iter__(self) -> _BridgedStream:
        return self

    def __next__(self) -> apitx.Event:
        try:
            event: apitx.Event = self._bridge._loop.run_until_complete(
                self._wrapped.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None
        return event

    def __enter__(self) -> _BridgedStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bridge._loop.run_until_complete(self._wrapped.close())


class _BridgedSocket(_Bridged):
    """An AsyncWebSocketConnection as a sync context manager."""

    def __enter__(self) -> _BridgedSocket:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._bridge._loop.run_until_complete(self._wrapped.close())


def bridged(value: Any, bridge: AsyncBridge) -> Any:
    """``value`` as sync code may use it."""
    from apitx._aio._files import AsyncFiles
    from apitx._transports._aiows import AsyncWebSocketConnection

    if isinstance(value, apitx.AsyncAPIResult):
        return bridge.wrapper(value, _BridgedResult)
    if isinstance(value, apitx.AsyncEventStream):
        return bridge.wrapper(value, _BridgedStream)
    if isinstance(value, AsyncWebSocketConnection):
        return bridge.wrapper(value, _BridgedSocket)
    if isinstance(value, (apitx.Resource, AsyncFiles, apitx.AsyncAPI)):
        return bridge.wrapper(value, _Bridged)
    if isinstance(value, list):
        return [bridged(each, bridge) for each in value]
    return value


def unbridged(value: Any) -> Any:
    """``value`` as the async client takes it (results unwrapped, callbacks given plain results)."""
    if isinstance(value, _Bridged):
        return value._wrapped
    if isinstance(value, tuple):
        return tuple(unbridged(each) for each in value)
    if isinstance(value, list):
        return [unbridged(each) for each in value]
    if isinstance(value, dict):
        return {key: unbridged(each) for key, each in value.items()}
    return value


@pytest.fixture
def client_of(client_kind: str) -> Iterator[Callable[..., Any]]:
    """``client_of(endpoint, **factory_options)``: an API of the kind under
    test (sync, or async through the bridge), closed after the test."""
    made: List[Any] = []
    loop = asyncio.new_event_loop() if client_kind == "async" else None

    def make(endpoint: Any, **options: Any) -> Any:
        if loop is None:
            api: Any = apitx.API.factory(endpoint, **options)
        else:
            api = AsyncBridge(apitx.AsyncAPI.factory(endpoint, **options), loop)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()
    if loop is not None:
        loop.close()

