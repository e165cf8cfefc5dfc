"""The async transport's interface: the duties of :class:`~._base.Transport`, awaited.

Apart from ``_base`` so that the sync client, which imports the package,
never imports aiohttp, not even for a type: only :mod:`apitx._aio` imports
this module.

The async API's transport (an ``AiohttpTransport`` unless one is given):

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def transport_of():
...     async with AsyncAPI.factory() as api:
...         return type(api.transport).__name__
>>> asyncio.run(transport_of())
'AiohttpTransport'
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Optional, Protocol, Union

from .._config import Timeout
from .._endpoint import Endpoint
from .._models import Request, Response
from ._aiows import AsyncWebSocketConnection
from ._base import BodyPolicy, Line


class AsyncTransport(Protocol):
    """What the async client needs of a transport: the same duties, awaited,
    on apitx's own :class:`~apitx._models.Request` and ``Response``."""

    @property
    def cert(self) -> Any:
        """The client certificate requests go out with (for curl lines)."""

    @property
    def verify(self) -> Union[bool, str]:
        """The trust requests go out with (for curl lines)."""

    async def send(self, request: Request, endpoint: Endpoint, *, timeout: Timeout,
                   until: Optional[float], body: BodyPolicy, line: Line) -> Response:
        """Send ``request`` within ``until``; read the body as ``body`` says."""

    def aiter_body(self, response: Response, endpoint: Endpoint, *, chunk_size: int,
                   line: Line) -> AsyncIterator[bytes]:
        """The unread body of ``response`` in pieces."""

    def discard(self, response: Response) -> None:
        """Drop a streamed body the caller will not read."""

    async def websocket(self, endpoint: Endpoint, path: str, *, timeout: Timeout,
                        traced: bool, line: str) -> AsyncWebSocketConnection:
        """A websocket at ``path`` on ``endpoint``."""

    async def close(self) -> None:
        """Close every connection the transport keeps."""
