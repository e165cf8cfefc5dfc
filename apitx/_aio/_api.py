"""The async entry point: :class:`AsyncAPI`, the whole contract of ``API``, awaited.

A facade like :class:`~apitx.API`: the :class:`~apitx._aio._sender.AsyncSender`
sends through aiohttp (:class:`~apitx._transports._aiohttp.AiohttpTransport`),
the :class:`~apitx._aio._operations.AsyncOperations` engine waits, both on the
rules the sync client uses. One event loop can drive many servers and
thousands of requests at once; nothing here runs in a thread.

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def main():
...     async with AsyncAPI.factory() as api:              # the local LXD
...         root = await api.get('')                       # GET /1.0
...         names = await asyncio.gather(*(api.get(f'instances/{c1}') for _ in range(3)))
...         return root.metadata['api_version'], [n.metadata['name'] == c1 for n in names]
>>> asyncio.run(main())
('1.0', [True, True, True])
"""

from __future__ import annotations

import asyncio
from typing import (Any, Callable, Coroutine, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from .._config import DEFAULT_TIMEOUT, Limits, TimeoutLike, TraceLike
from .._event import event_params
from .._exceptions import APIException
from .._exec_plan import ExecResult, Output
from .._facade import DEFAULT_MAX_ANSWER_BYTES, EndpointsLike, Facade, FactoryPlan
from .._failover import Members
from .._prepare import finite_seconds
from .._server import Server
from .._transports import FingerprintLike, Pin
from .._transports._aiobase import AsyncTransport
from .._transports._aiohttp import AiohttpTransport
from .._transports._aiows import AsyncWebSocketConnection
from .._types import USE_DEFAULT, Cert, Headers, Params, UseDefault
from .._verbs import Verbs
from ._events import AsyncEventStream
from ._exec import AsyncExecControl, AsyncInput, run_exec
from ._files import AsyncFiles
from ._operations import AsyncOperations
from ._result import AsyncAPIResult, AsyncProgress
from ._sender import AsyncSender

#: What the async verbs return: a coroutine of the result, to await.
Call = Coroutine[Any, Any, AsyncAPIResult]


class AsyncAPI(Facade[Call], Verbs[Call]):
    """A connection to one LXD-style API server, for asyncio.

    The same settings as :class:`~apitx.API` (``default_version``,
    ``timeout``, ``trace``/``debug``, ``max_answer_bytes``, ``project``,
    ``target``, ``limits``), the same endpoints (a socket, HTTPS with a
    client certificate and pins, a cluster's members), the same exceptions
    and messages; every method that talks to the server is a coroutine.
    Connections are made in the running event loop, on first use; close them
    with ``await api.close()`` or ``async with``.

    ``limits`` caps the connections per endpoint (``Limits.max_connections``,
    or ``max_keepalive_connections``, 64, when no cap is given): past it, a
    request waits for a free connection within its connect timeout, rather
    than open one more.
    """

    _sender: AsyncSender

    def __init__(self, endpoint: EndpointsLike, default_version: Optional[str] = None,
                 debug: bool = False, timeout: TimeoutLike = DEFAULT_TIMEOUT,
                 trace: TraceLike = None, max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 project: Optional[str] = None, target: Optional[str] = None, *,
                 limits: Optional[Limits] = None, cert: Cert = None,
                 verify: Union[bool, str] = True, pin: Optional[Pin] = None,
                 transport: Optional[AsyncTransport] = None) -> None:
        self._settle(endpoint, default_version=default_version, debug=debug, timeout=timeout,
                     trace=trace, max_answer_bytes=max_answer_bytes, project=project,
                     target=target, limits=limits)
        if transport is None:
            transport = AiohttpTransport(self.endpoints, cert=cert, verify=verify, pin=pin,
                                         limits=self.limits, max_message=max_answer_bytes)
        self._sender = AsyncSender(transport, Members(self.endpoints),
                                   version=self.default_version, timeout=self.timeout,
                                   trace=self.trace, max_answer_bytes=max_answer_bytes)
        self._operations = AsyncOperations(self._sender)
        self._server: Optional[Server] = None
        self._server_lock: Optional[asyncio.Lock] = None

    @classmethod
    def factory(cls, endpoint: Optional[EndpointsLike] = None,
                default_version: Optional[str] = "1.0", *, cert: Cert = None,
                verify: Union[bool, str] = True, debug: bool = False,
                timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                fingerprint: FingerprintLike = None, project: Optional[str] = None,
                target: Optional[str] = None, limits: Optional[Limits] = None,
                transport: Optional[AsyncTransport] = None) -> AsyncAPI:
        """Make an async API: the arguments of :meth:`API.factory <apitx.API.factory>`,
        with the same discovery, remotes (``'name:'``), pins and cluster lists.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> tls = '/var/lib/apitx-sandbox/'
        >>> async def main():
        ...     async with AsyncAPI.factory('https://127.0.0.1:8443', verify=tls + 'server.crt',
        ...                                 cert=(tls + 'client.crt', tls + 'client.key')) as api:
        ...         return (await api.server).name
        >>> asyncio.run(main())
        'lxd'
        """
        plan = FactoryPlan.resolve(endpoint, cert=cert, verify=verify, fingerprint=fingerprint,
                                   project=project, mock=transport is not None)
        return cls(plan.endpoints, default_version=default_version, debug=debug,
                   timeout=timeout, trace=trace, max_answer_bytes=max_answer_bytes,
                   project=plan.project, target=target, limits=limits, cert=plan.cert,
                   verify=verify, pin=plan.pin, transport=transport)

    @property
    def transport(self) -> AsyncTransport:
        """What carries this API's bytes."""
        return self._sender.transport

    # -- requests -------------------------------------------------------------

    def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
                stream: bool = False, validate: bool = True,
                follow_redirects: bool = False) -> Call:
        """Send one request; return its :class:`AsyncAPIResult`, validated
        (see :meth:`API.request <apitx.API.request>`). ``data`` may also be an
        async iterable of bytes, streamed. A ``stream=True`` body is read with
        ``aiter_content()``.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         found = await api.request('GET', 'instances', params={'recursion': 1})
        ...         return c1 in [instance['name'] for instance in found.metadata]
        >>> asyncio.run(main())
        True
        """
        # The sender's coroutine itself, not one wrapping it: a coroutine
        # less per request (this is every request's path).
        return self._sender.request(
            self, method, url, params=params, json=json, data=data, headers=headers,
            timeout=timeout, stream=stream, validate=validate,
            follow_redirects=follow_redirects, project=self.project, target=self.target)

    def _call(self, method: str, url: str, **options: Any) -> Call:
        """How the verbs (``get``, ``post``... of :class:`~apitx._verbs.Verbs`) call."""
        return self.request(method, url, **options)

    def curl(self, method: str, url: str, *, params: Params = None, json: Any = None,
             data: Any = None, headers: Headers = None) -> str:
        """The curl command that would send this request, redacted; nothing is sent."""
        return self._sender.curl(self._sender.prepare(
            method, url, params=params, json=json, data=data, headers=headers,
            project=self.project, target=self.target))

    # -- operations -----------------------------------------------------------

    async def wait(self, result: AsyncAPIResult, timeout: Optional[float] = None,
                   progress: Optional[AsyncProgress] = None) -> AsyncAPIResult:
        """Wait for a result's operation to end (see :meth:`API.wait
        <apitx.API.wait>`); ``progress`` may be a coroutine function.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> seen = []
        >>> async def progress(answer):
        ...     seen.append(answer.metadata['status'])
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         started = await api.post(f'instances/{c1}/exec', json={
        ...             'command': ['sleep', '1.5'], 'record-output': True,
        ...             'wait-for-websocket': False})
        ...         return await api.wait(started, timeout=60, progress=progress)
        >>> asyncio.run(main()).metadata['status'], seen[0]
        ('Success', 'Running')
        """
        return await self._operations.wait(self, result, timeout, progress,
                                           project=self.project, target=self.target)

    async def wait_all(self, results: Sequence[AsyncAPIResult], timeout: Optional[float] = None,
                       return_exceptions: bool = False
                       ) -> List[Union[AsyncAPIResult, APIException]]:
        """Wait for many results' operations over one event stream (see
        :meth:`API.wait_all <apitx.API.wait_all>`).

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> cmd = {'record-output': True, 'wait-for-websocket': False}
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         started = [await api.post(f'instances/{c1}/exec',
        ...                                   json={**cmd, 'command': ['sh', '-c', f'exit {n}']})
        ...                    for n in (0, 1, 2)]
        ...         done = await api.wait_all(started, timeout=60)
        ...         return [result.metadata['metadata']['return'] for result in done]
        >>> asyncio.run(main())
        [0, 1, 2]
        """
        return await self._operations.wait_all(self, results, timeout, return_exceptions,
                                               project=self.project, target=self.target)

    # -- websockets -------------------------------------------------------------

    async def exec(self, instance: str, command: Sequence[str], *, stdin: AsyncInput = None,
                   env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
                   user: Optional[int] = None, group: Optional[int] = None,
                   timeout: Optional[float] = None, stdout: Output = None,
                   stderr: Output = None, project: Optional[str] = None,
                   terminal: Optional[Tuple[int, int]] = None,
                   on_start: Optional[Callable[[AsyncExecControl], Any]] = None) -> ExecResult:
        """Run a command in an instance with live streams (see
        :func:`apitx._aio._exec.run_exec`): ``stdin`` may be an async iterable,
        ``stdout``/``stderr`` coroutine functions; cancelling the task kills
        the command.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         return (await api.exec(c1, ['sh', '-c', 'echo hi'])).stdout
        >>> asyncio.run(main())
        b'hi\\n'
        """
        return await run_exec(self, instance, command, stdin=stdin, env=env, cwd=cwd,
                              user=user, group=group, timeout=timeout, stdout=stdout,
                              stderr=stderr, project=project if project is not None
                              else self.project, terminal=terminal, on_start=on_start)

    async def websocket(self, path: str, params: Optional[Mapping[str, Any]] = None,
                        timeout: TimeoutLike = None) -> AsyncWebSocketConnection:
        """A websocket at an API path, on this API's connections and trust
        (see :meth:`API.websocket <apitx.API.websocket>`).

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         async with await api.websocket('events', {'type': 'lifecycle'}) as ws:
        ...             await api.patch(f'instances/{c1}', json={'config': {'user.note': 'hi'}})
        ...             return await ws.recv()
        >>> print(asyncio.run(main()))
        {"type":"lifecycle",...}
        """
        return await self._sender.websocket(self, path, params, timeout)

    async def events(self, types: Optional[Iterable[str]] = None,
                     project: Optional[str] = None, all_projects: bool = False,
                     timeout: Optional[float] = None) -> AsyncEventStream:
        """The server's events as an async iterator of :class:`~apitx.Event`
        (see :meth:`API.events <apitx.API.events>`); a task cancelled while
        it waits for one closes the stream.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         async with await api.events(types=['lifecycle'], timeout=30) as stream:
        ...             await api.patch(f'instances/{c1}', json={'config': {'user.note': 'hi'}})
        ...             async for event in stream:
        ...                 if event.metadata['source'] == f'/1.0/instances/{c1}':
        ...                     return event.metadata['action']
        >>> asyncio.run(main())
        'instance-updated'
        """
        limit = finite_seconds(timeout, "events(timeout=...)")
        ws = await self.websocket("events", event_params(
            types, project if project is not None else None if all_projects else self.project,
            all_projects))
        return AsyncEventStream(ws, limit)

    def files(self, instance: str, project: Optional[str] = None) -> AsyncFiles:
        """The files of ``instance``, in this server's dialect (see :class:`AsyncFiles`).

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         await api.files(c1).push('/tmp/motd', 'hello\\n', mode=0o644)
        ...         return await api.files(c1).pull('/tmp/motd')
        >>> asyncio.run(main())
        b'hello\\n'
        """
        return AsyncFiles(self, instance, project=project)

    # -- the server -------------------------------------------------------------

    @property
    async def server(self) -> Server:
        """What the server says about itself in ``GET /1.0``, fetched once
        (``await api.server``); see :attr:`API.server <apitx.API.server>`."""
        if self._server is None:
            if self._server_lock is None:
                self._server_lock = asyncio.Lock()
            async with self._server_lock:
                if self._server is None:
                    answer = await self.get("/1.0")
                    self._server = Server.from_metadata(answer.metadata)
                    if self.tracer is not None:
                        self.tracer.note(f"apitx: talking to {self._server} at "
                                         f"{self.endpoint.display}")
        return self._server

    async def has_extension(self, name: str) -> bool:
        """True when the server announces API extension ``name``."""
        return (await self.server).has(name)

    async def require(self, *names: str) -> Server:
        """Raise :class:`~apitx.MissingExtension` unless the server has every
        one of these API extensions; return the server."""
        server = await self.server
        missing = self._missing(server, names)
        if missing is not None:
            raise missing
        return server

    # -- ending -----------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections (every sibling's: they share them)."""
        await self._sender.transport.close()

    async def __aenter__(self) -> AsyncAPI:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
