"""Websockets of the async client: aiohttp's, read the way apitx reads them.

The same rules as the sync websocket (see :mod:`._websocket`): no Origin,
secrets redacted in traces, a refused upgrade raised with the server's own
answer. Two more that matter here:

- pings are counted, never answered: LXD needs no pong, and a pong written
  on an exec output stream LXD never reads can cost that stream its last
  bytes over TCP (``shared/lxd-facts.md``, "Exec output lost over HTTPS");
- a message larger than the API's cap is refused by aiohttp from its header
  (``max_msg_size``), before its payload is read.

>>> import asyncio, json
>>> from apitx import AsyncAPI
>>> async def one_event():
...     async with AsyncAPI.factory() as api:
...         async with await api.websocket('events', {'type': 'lifecycle'}) as ws:
...             while ws.pings == 0:     # LXD's first ping: it listens from now on
...                 await ws.recv_frame()
...             await api.exec(c1, ['true'])
...             return json.loads(await ws.recv())['type']
>>> asyncio.run(one_event())
'lifecycle'
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional, Union

import aiohttp

from .._exceptions import APIConnectionError, APITimeoutError, ResponseTooLarge
from ._messages import NO_MESSAGE, Message, describe_message
from ._messages import _sequence  # one numbering of websockets, both clients

logger = logging.getLogger("apitx")


class AsyncWebSocketConnection:
    """One open websocket of the async client; an async context manager that closes it.

    ``recv()`` returns a ``str`` (text message), ``bytes`` (binary message),
    or None once the peer closed the websocket (LXD's end of a stream).
    Reads wait at most the read timeout (``settimeout`` changes it; None:
    no limit), then raise :class:`APITimeoutError`.

    >>> import asyncio
    >>> from apitx import AsyncAPI
    >>> async def opened():
    ...     async with AsyncAPI.factory() as api:
    ...         async with await api.websocket('events', {'type': 'operation'}) as ws:
    ...             print(ws)
    ...         return ws.closed
    >>> asyncio.run(opened())
    <AsyncWebSocketConnection unix:/var/lib/lxd/unix.socket /1.0/events?type=operation>
    True
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, endpoint: str, describe: str,
                 traced: bool, timeout: Optional[float], max_size: int) -> None:
        self._ws = ws
        self.endpoint, self.describe = endpoint, describe
        self._seq = next(_sequence) if traced else None
        self._timeout = timeout
        self._max_size = max_size
        self.closed = False
        #: Pings received so far (LXD's first says its event listener is registered).
        self.pings = 0
        #: When a frame (any, pings included) last arrived (``time.monotonic()``).
        self.last_frame = time.monotonic()

    # -- sending and receiving ------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send one text message."""
        self._trace(">", text)
        await self._send(self._ws.send_str(text))

    async def send_binary(self, data: bytes) -> None:
        """Send one binary message (a piece of a stream)."""
        self._trace(">", data)
        await self._send(self._ws.send_bytes(data))

    async def send_close(self) -> None:
        """Send a close frame only, and keep reading: "end of my input"."""
        self._trace(">", "<close>")
        await self._send(self._ws._writer.send_frame(  # noqa: SLF001 - no public way
            b"\x03\xe8", aiohttp.WSMsgType.CLOSE))

    async def recv(self, timeout: Union[float, None, object] = NO_MESSAGE) -> Optional[Message]:
        """The next message, or None when the peer closed the websocket."""
        limit = self._limit(timeout)
        until = None if limit is None else time.monotonic() + limit
        while True:
            left = None if until is None else max(0.0, until - time.monotonic())
            message = await self.recv_frame(left)
            if message is not NO_MESSAGE:
                return message  # type: ignore[return-value]

    async def recv_frame(self, timeout: Union[float, None, object] = NO_MESSAGE
                         ) -> Union[Message, None, object]:
        """One frame: a message, None (closed), or :data:`NO_MESSAGE` (a ping, a pong)."""
        try:
            frame = await self._ws.receive(self._limit(timeout))
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(
                f"websocket {self.describe}: nothing received in time "
                f"({self._limit(timeout)}s); raise the timeout if the wait is "
                "legitimate") from exc
        self.last_frame = time.monotonic()
        kind = frame.type
        if kind is aiohttp.WSMsgType.BINARY or kind is aiohttp.WSMsgType.TEXT:
            self._trace("<", frame.data)
            return frame.data  # type: ignore[no-any-return]
        if kind is aiohttp.WSMsgType.PING:
            self.pings += 1
            return NO_MESSAGE
        if kind is aiohttp.WSMsgType.PONG:
            return NO_MESSAGE
        if kind is aiohttp.WSMsgType.ERROR:
            if isinstance(frame.data, aiohttp.WebSocketError) and \
                    frame.data.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                raise ResponseTooLarge(
                    f"websocket {self.describe}: a message is larger than {self._max_size} "
                    "bytes (max_answer_bytes); the connection was closed") from frame.data
            if not self.closed:
                raise APIConnectionError(f"websocket {self.describe}: {frame.data}",
                                         endpoint=self.endpoint)
        self._trace("<", "<close>")
        return None  # CLOSE, CLOSING, CLOSED: the peer left (or we did)

    def settimeout(self, seconds: Optional[float]) -> None:
        """The read timeout from now on; None waits forever."""
        self._timeout = seconds

    # -- ending -----------------------------------------------------------------

    async def close(self) -> None:
        """Close the websocket (a close frame, then the connection), without
        waiting long for the peer's answer: LXD does not always send one."""
        if self.closed:
            return
        self.closed = True
        self._trace(">", "<close>")
        try:
            await asyncio.wait_for(self._ws.close(), 1.0)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once (a cancelled task, a killed command)."""
        self.closed = True
        response = getattr(self._ws, "_response", None)
        if response is not None:
            response.close()

    async def __aenter__(self) -> AsyncWebSocketConnection:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncWebSocketConnection {self.describe}{' closed' if self.closed else ''}>"

    # -- internals --------------------------------------------------------------

    def _limit(self, timeout: Union[float, None, object]) -> Optional[float]:
        return self._timeout if timeout is NO_MESSAGE else timeout  # type: ignore[return-value]

    async def _send(self, sending: Any) -> None:
        try:
            await sending
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            reason = "it is closed already" if self.closed else (
                "the connection was dropped: the server went away or the network broke; "
                f"what it was doing may or may not have finished ({exc})")
            raise APIConnectionError(f"websocket {self.describe}: {reason}",
                                     endpoint=self.endpoint) from exc

    def _trace(self, direction: str, message: Message) -> None:
        if self._seq is None or not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug("#ws%d %s %s", self._seq, direction, describe_message(message))
