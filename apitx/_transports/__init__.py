"""Everything that touches a socket, behind one small interface.

The package owns connections and pools (Unix sockets and HTTPS), pinned
certificates, the deadline of a whole request, fork safety, the translation
of transport failures into apitx's exceptions, and opening websockets. What
sits above it sees only :class:`Transport` (send a prepared request within a
deadline, stream a body, open a websocket) and the values it takes; nothing
reaches past it.

Modules, each with one job:

- ``_base``: the interface (:class:`Transport`, :class:`BodyPolicy`);
- ``_http``: :class:`HTTPTransport`, requests over apitx's adapters;
- ``_mock``: :class:`MockTransport`, answers from a function (for tests);
- ``_adapters``: requests adapters (strict lengths, pool sizes, fork safety);
- ``_unix``: HTTP over a Unix socket, one pool per socket;
- ``_pinning``: pinned server certificates, as ``lxc`` pins them;
- ``_deadline``: the whole-request deadline every socket keeps;
- ``_errors``: failures translated, with a fix in each message;
- ``_websocket``: a websocket over the same connections and trust;
- ``_relay``: websockets carried between two servers, frame by frame;
- the async client's, imported only by :mod:`apitx._aio`: ``_aiobase`` (its
  interface), ``_aiohttp`` (aiohttp), ``_aiows`` (its websockets),
  ``_aio_errors`` (aiohttp's failures translated).
"""

from ._base import BodyPolicy, Line, Transport
from ._deadline import deadline
from ._errors import CALLER_MISTAKES, mistake, translate_error
from ._http import HTTPTransport
from ._mock import MOCK_ENDPOINT, Answer, MockRequest, MockTransport, operation
from ._relay import Relay
from ._pinning import (FingerprintLike, Pin, PinningAdapter, certificate_fingerprint,
                       fetch_certificate, parse_fingerprint, pin_for)
from ._websocket import (NO_MESSAGE, Message, UpgradeRefused, WebSocketConnection,
                         describe_message)

__all__ = [
    "Answer", "BodyPolicy", "CALLER_MISTAKES", "mistake", "FingerprintLike", "HTTPTransport", "Line", "MOCK_ENDPOINT",
    "Message", "MockRequest", "MockTransport", "NO_MESSAGE", "Pin", "PinningAdapter",
    "Relay", "Transport", "UpgradeRefused", "WebSocketConnection", "describe_message", "certificate_fingerprint",
    "deadline", "fetch_certificate", "operation", "parse_fingerprint", "pin_for",
    "translate_error",
]
