"""The async client's result: the shared view, a streamed body and wait, awaited.

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         result = await api.post(f'instances/{c1}/exec', json={'command': ['true'],
...             'record-output': True, 'wait-for-websocket': False})
...         done = await result.wait(timeout=60)
...         return result.status_code, done.metadata['status']
>>> asyncio.run(main())
(202, 'Success')
"""

from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable, Optional, Protocol, Union

from .._json import loads
from .._models import Response
from .._result import BaseResult, Route
from .._transports._aiobase import AsyncTransport

#: What ``wait(progress=...)`` calls with each answer: a function, or a
#: coroutine function (awaited).
AsyncProgress = Callable[["AsyncAPIResult"], Union[None, Awaitable[None]]]


class AsyncWaits(Protocol):
    """What an async result's ``api`` does for it: wait on its operation."""

    async def wait(self, result: AsyncAPIResult, timeout: Optional[float] = None,
                   progress: Optional[AsyncProgress] = None) -> AsyncAPIResult: ...


class AsyncAPIResult(BaseResult):
    """An HTTP transaction made by :class:`~apitx.AsyncAPI`: the view every
    result has (``data``, ``metadata``, ``validate()``, renderings), a body
    streamed in pieces (``aiter_content()``), and ``await wait()``.

    >>> import asyncio
    >>> from apitx import AsyncAPI
    >>> async def main():
    ...     async with AsyncAPI.factory() as api:
    ...         return await api.get(f'instances/{c1}/state')
    >>> result = asyncio.run(main())
    >>> result.status_code, result.type, result.metadata['status']
    (200, 'sync', 'Running')
    """

    __slots__ = ("api",)

    # A service's many answers are read with orjson when it is installed
    # (the async extra): see apitx/_json.py.
    read_json = staticmethod(loads)

    route: Route[AsyncTransport]
    response: Response

    def __init__(self, api: AsyncWaits, response: Response, *, route: Route[AsyncTransport],
                 elapsed: Optional[float] = None, waited: Optional[float] = None,
                 deadline: Optional[float] = None, body_read: bool = True) -> None:
        self.api = api
        super().__init__(response, route=route, elapsed=elapsed, waited=waited,
                         deadline=deadline, body_read=body_read)

    def aiter_content(self, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """The body in pieces (for ``stream=True``), without loading it whole;
        a broken or stalled connection raises apitx's errors, and the
        request's total deadline still holds.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         answer = await api.get(f'instances/{c1}/files', params={'path': '/bin/busybox'},
        ...                                stream=True)
        ...         return sum([len(piece) async for piece in answer.aiter_content()])
        >>> asyncio.run(main()) > 500_000
        True
        """
        return self.route.transport.aiter_body(self.response, self.endpoint,
                                               chunk_size=chunk_size, line=self.request_line)

    async def wait(self, timeout: Optional[float] = None,
                   progress: Optional[AsyncProgress] = None) -> AsyncAPIResult:
        """``await self.api.wait(self, timeout, progress)``: wait for this
        result's operation to end and return the final, validated result.

        >>> import asyncio
        >>> from apitx import AsyncAPI
        >>> async def main():
        ...     async with AsyncAPI.factory() as api:
        ...         started = await api.put(f'instances/{c1}/state', json={'action': 'start'})
        ...         await started.wait(timeout=60)
        >>> asyncio.run(main())
        Traceback (most recent call last):
        ...
        apitx.APIException: PUT unix:/var/lib/lxd/unix.socket /1.0/instances/.../state: operation ... failed: The instance is already running
        """
        return await self.api.wait(self, timeout=timeout, progress=progress)

    def close(self) -> None:
        """Drop a streamed body not read (its connection closes)."""
        self.route.transport.discard(self.response)
