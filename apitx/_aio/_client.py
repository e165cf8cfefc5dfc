"""What the async modules under :class:`~apitx.AsyncAPI` need of it, as a Protocol.

As :mod:`apitx._client` is for the sync client: files and exec are written
against :class:`AsyncClient`, never against ``AsyncAPI``, which sits above them.

>>> import asyncio
>>> from apitx import AsyncAPI
>>> from apitx._aio._client import AsyncClient
>>> async def status(client: AsyncClient, name: str) -> str:
...     return (await client.request('GET', f'instances/{name}/state')).metadata['status']
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         return await status(api, c1)
>>> asyncio.run(main())
'Running'
"""

from __future__ import annotations

from typing import Any, Awaitable, Mapping, Optional, Protocol, Union

from .._config import TimeoutLike
from .._endpoint import Endpoint
from .._server import Server
from .._transports._aiows import AsyncWebSocketConnection
from .._types import Headers, Params, UseDefault
from ._result import AsyncAPIResult


class AsyncClient(Protocol):
    """The part of :class:`~apitx.AsyncAPI` the lower modules use."""

    @property
    def endpoint(self) -> Endpoint: ...

    @property
    def project(self) -> Optional[str]: ...

    @property
    def server(self) -> Awaitable[Server]: ...

    async def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                      data: Any = None, headers: Headers = None,
                      timeout: Union[TimeoutLike, UseDefault] = ..., stream: bool = False,
                      validate: bool = True, follow_redirects: bool = False) -> AsyncAPIResult: ...

    async def websocket(self, path: str, params: Optional[Mapping[str, Any]] = None,
                        timeout: TimeoutLike = None) -> AsyncWebSocketConnection: ...
