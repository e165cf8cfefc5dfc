"""The one small interface between apitx and whatever carries its bytes.

Everything above :mod:`apitx._transports` (the sender, the operations engine,
exec and events) talks to a :class:`Transport` and nothing else: it sends a
prepared request within a deadline, reads the body as a
:class:`BodyPolicy` says, streams a body it left unread, and opens a
websocket. Two implement it: :class:`~apitx._transports.HTTPTransport`
(requests over apitx's adapters: Unix sockets, HTTPS, pins) and
:class:`~apitx.testing.MockTransport` (a handler in the caller's tests).

>>> import requests
>>> from apitx import API
>>> from apitx._config import Timeout
>>> from apitx._transports import BodyPolicy
>>> api = API.factory()
>>> prepared = requests.Request('GET', 'http+unix://lxd/1.0').prepare()
>>> response = api.transport.send(prepared, api.endpoint, timeout=Timeout(), until=None,
...                               body=BodyPolicy(limit=1 << 20, stream=False),
...                               line=lambda: 'GET unix:/var/lib/lxd/unix.socket /1.0')
>>> response.status_code, response.json()['metadata']['api_version']
(200, '1.0')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple, Optional, Protocol, Union

import requests

from .._config import Timeout
from .._endpoint import Endpoint
from .._envelope import declares_json

if TYPE_CHECKING:  # websocket-client only where a websocket is opened (see _messages)
    from ._websocket import WebSocketConnection


class BodyPolicy(NamedTuple):
    """How much of an answer the transport reads before returning it.

    An answer apitx must judge (one declared JSON, or an error's detail) is
    read whole, up to ``limit`` bytes decompressed (``ResponseTooLarge``
    beyond); any other body is read whole too, unless ``stream``, when it is
    left for the caller to read in pieces.

    >>> BodyPolicy(limit=64, stream=True).reads(200, 'application/octet-stream')
    False
    """

    limit: int
    stream: bool

    def reads(self, status: int, content_type: str) -> bool:
        """True when the body is read before the answer is returned."""
        return not self.stream or self.capped(status, content_type)

    def capped(self, status: int, content_type: str) -> bool:
        """True when the body is apitx's to judge, and so read up to ``limit``."""
        return status >= 400 or declares_json(content_type)


#: ``line()``: the request line (``GET readable-url``) that starts a message
#: about the request; called only when there is something to say.
Line = Callable[[], str]


class Transport(Protocol):
    """What apitx needs of a transport (see the module docstring)."""

    @property
    def cert(self) -> Any:
        """The client certificate requests go out with (for curl lines)."""

    @property
    def verify(self) -> Union[bool, str]:
        """The trust requests go out with (for curl lines)."""

    def send(self, request: requests.PreparedRequest, endpoint: Endpoint, *, timeout: Timeout,
             until: Optional[float], body: BodyPolicy, line: Line) -> requests.Response:
        """Send ``request`` to ``endpoint``, all of it over by ``until``
        (``time.monotonic()``; None: no deadline); read the body as ``body``
        says. Raises apitx's exceptions only."""

    def iter_body(self, response: requests.Response, endpoint: Endpoint, *,
                  until: Optional[float], chunk_size: int, line: Line) -> Iterator[bytes]:
        """The unread body of ``response`` in pieces, each read by ``until``."""

    def websocket(self, endpoint: Endpoint, path: str, *, timeout: Timeout, traced: bool,
                  line: str, max_message: int) -> WebSocketConnection:
        """A websocket at ``path`` (path and query) on ``endpoint``, reading
        messages of up to ``max_message`` bytes; raises ``UpgradeRefused``
        with the server's answer when it refuses."""

    def close(self) -> None:
        """Close every connection the transport keeps."""

