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
- ``_messages``: what websockets share with the layers above (messages, a
  refused upgrade), apart, so that nothing else imports websocket-client;
- ``_relay``: websockets carried between two servers, frame by frame;
- the async client's, imported only by :mod:`apitx._aio`: ``_aiobase`` (its
  interface), ``_aiohttp`` (aiohttp), ``_aiows`` (its websockets),
  ``_aio_errors`` (aiohttp's failures translated).
"""

from typing import TYPE_CHECKING, List

from .._lazy import LazyExports

# Each name is imported on first use, with only the module it lives in: a
# request over a socket never imports websocket-client (``_websocket``),
# the pinning adapter's certificates, the relay or the mock (issue 19).
_exports = LazyExports(__name__, {
    "._base": ("BodyPolicy", "Line", "Transport"),
    "._deadline": ("deadline",),
    "._errors": ("CALLER_MISTAKES", "mistake", "translate_error"),
    "._http": ("HTTPTransport",),
    "._messages": ("NO_MESSAGE", "Message", "UpgradeRefused", "describe_message"),
    "._mock": ("MOCK_ENDPOINT", "Answer", "MockRequest", "MockTransport", "operation"),
    "._relay": ("Relay",),
    "._pinning": ("FingerprintLike", "Pin", "PinningAdapter", "certificate_fingerprint",
                  "fetch_certificate", "parse_fingerprint", "pin_for"),
    "._websocket": ("WebSocketConnection",),
})

# Type checkers see the names here, and only these: a misspelt name is an
# error, not an ``object`` from ``__getattr__``.
if TYPE_CHECKING:
    from ._base import BodyPolicy, Line, Transport
    from ._deadline import deadline
    from ._errors import CALLER_MISTAKES, mistake, translate_error
    from ._http import HTTPTransport
    from ._messages import NO_MESSAGE, Message, UpgradeRefused, describe_message
    from ._mock import MOCK_ENDPOINT, Answer, MockRequest, MockTransport, operation
    from ._relay import Relay
    from ._pinning import (FingerprintLike, Pin, PinningAdapter, certificate_fingerprint,
                           fetch_certificate, parse_fingerprint, pin_for)
    from ._websocket import WebSocketConnection
else:
    __getattr__ = _exports.attribute
    __dir__ = _exports.names

__all__: List[str] = [
    "Answer", "BodyPolicy", "CALLER_MISTAKES", "mistake", "FingerprintLike", "HTTPTransport", "Line", "MOCK_ENDPOINT",
    "Message", "MockRequest", "MockTransport", "NO_MESSAGE", "Pin", "PinningAdapter",
    "Relay", "Transport", "UpgradeRefused", "WebSocketConnection", "describe_message", "certificate_fingerprint",
    "deadline", "fetch_certificate", "operation", "parse_fingerprint", "pin_for",
    "translate_error",
]
