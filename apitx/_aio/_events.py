"""LXD's event stream for the async client: an async iterator of :class:`Event`.

The sync stream's rules (:mod:`apitx._events`), awaited: ``timeout=`` is a
deadline for each next event that keepalive pings do not extend; ``close()``
ends an iteration another task is blocked in; a stream the server drops
raises :class:`APIConnectionError`. And one of asyncio's own: a task
cancelled while it waits for an event closes the websocket on its way out.
A stream the server refuses raises as a request would (LXD 5.0.2 answers
this one with HTTP 500):

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         await api.events(types=['lifecycle'], project='no-such-project')
>>> asyncio.run(main())
Traceback (most recent call last):
...
apitx.APIException: GET unix:/var/lib/lxd/unix.socket /1.0/events?type=lifecycle&project=no-such-project: Project not found
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Deque, Optional

from .._event import Event, dropped, not_an_event
from .._exceptions import APIConnectionError, APITimeoutError
from .._transports import NO_MESSAGE, Message
from .._transports._aiows import AsyncWebSocketConnection


class AsyncEventStream:
    """An async iterator of :class:`Event`; an async context manager that closes it.

    >>> import asyncio
    >>> from apitx import AsyncAPI
    >>> async def main():
    ...     async with AsyncAPI.factory() as api:
    ...         stream = await api.events(types=['operation'], timeout=30)
    ...         await api.exec(c1, ['true'])
    ...         event = await stream.__anext__()
    ...         await stream.close()
    ...         return event.type
    >>> asyncio.run(main())
    'operation'
    """

    def __init__(self, ws: AsyncWebSocketConnection, timeout: Optional[float] = None) -> None:
        self._ws = ws
        self._timeout = timeout
        self._closed = False
        #: Messages read by :meth:`confirm` before the ping it waited for.
        self._early: Deque[Message] = deque()

    @property
    def last_frame(self) -> float:
        """When the stream last received anything, pings included (``time.monotonic()``)."""
        return self._ws.last_frame

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        event = await self.next_event(self._timeout)
        if event is None:
            raise APITimeoutError(
                f"events {self._ws.describe}: no event in {self._timeout:g}s "
                "(events(timeout=...)); the stream is still open: iterate again to wait more")
        return event

    async def next_event(self, timeout: Optional[float]) -> Optional[Event]:
        """The next event, or None when none came within ``timeout`` seconds.
        StopAsyncIteration once closed; :class:`APIConnectionError` when dropped."""
        if self._closed:
            raise StopAsyncIteration
        try:
            message = self._early.popleft() if self._early else await self._read(timeout)
        except APIConnectionError as exc:
            if self._closed:
                raise StopAsyncIteration from None
            raise dropped(self._ws.describe, self._ws.endpoint) from exc
        except BaseException:
            self._ws.abort()  # cancelled: the websocket goes with the task's wait
            raise
        if self._closed:
            raise StopAsyncIteration
        if message is None:
            return None
        try:
            return Event.parse(message)
        except ValueError as exc:
            raise not_an_event(self._ws.describe, self._ws.endpoint, exc) from exc

    async def _read(self, timeout: Optional[float]) -> Optional[Message]:
        until = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if until is None else until - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                frame = await self._ws.recv_frame(left)
            except APITimeoutError:
                return None
            if frame is None:
                if self._closed:
                    raise StopAsyncIteration
                raise dropped(self._ws.describe, self._ws.endpoint)
            if frame is not NO_MESSAGE:
                return frame  # type: ignore[return-value]

    async def confirm(self, timeout: float) -> bool:
        """Wait until the server sends events to this stream (its first ping);
        False when it does not within ``timeout`` seconds. Events read
        meanwhile are kept for iteration (see :meth:`apitx.EventStream.confirm`)."""
        until = time.monotonic() + timeout
        while self._ws.pings == 0:
            left = until - time.monotonic()
            if left <= 0:
                return False
            try:
                frame = await self._ws.recv_frame(left)
            except APITimeoutError:
                return False
            except APIConnectionError as exc:
                raise dropped(self._ws.describe, self._ws.endpoint) from exc
            if frame is None:
                raise dropped(self._ws.describe, self._ws.endpoint)
            if frame is not NO_MESSAGE:
                self._early.append(frame)  # type: ignore[arg-type]
        return True

    def settimeout(self, seconds: Optional[float]) -> None:
        """The longest wait for each next event from now on (None: no limit)."""
        self._timeout = seconds

    async def close(self) -> None:
        """End the stream; an iteration another task is blocked in ends at once."""
        self._closed = True
        self._ws.abort()
        await asyncio.sleep(0)  # let a blocked reader see it

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncEventStream {self._ws.describe}{' closed' if self._closed else ''}>"
