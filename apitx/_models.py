"""The async client's request and response, as plain objects.

The sync client's results hold requests' own ``PreparedRequest`` and
``Response`` (users of ``result.response`` rely on them). The async client
has no such objects to give, and making them would cost more than the
request itself: these two carry the same attributes that apitx and its
users read (``method``, ``url``, ``headers``, ``body``; ``status_code``,
``reason``, ``headers``, ``content``, ``text``, ``request``), and nothing
else. No I/O here: the async transport fills them in.

Example:

>>> request = Request('GET', 'http+unix://lxd/1.0', {}, None)
>>> response = Response(200, 'OK', {'Content-Type': 'application/json'}, b'{}', request)
>>> response.text, response.ok, response.url
('{}', True, 'http+unix://lxd/1.0')
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

#: Status codes of a redirect (with a Location, as requests defines it).
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class Request:
    """A request as the async client sends it: ``body`` is bytes, None, or a
    stream (a file object or an async iterable), as the caller gave it."""

    __slots__ = ("method", "url", "headers", "body")

    def __init__(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response:
    """An answer as the async client read it. ``content`` is the body (b''
    until read; a streamed body is read with ``aiter_content()``);
    ``headers`` are case-insensitive (aiohttp's ``CIMultiDictProxy``)."""

    __slots__ = ("status_code", "reason", "headers", "content", "request", "stream")

    def __init__(self, status_code: int, reason: str, headers: Mapping[str, str],
                 content: bytes, request: Request, stream: Optional[Any] = None) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.content = content
        self.request = request
        #: The transport's handle on a body not read yet (None once read).
        self.stream = stream

    @property
    def url(self) -> str:
        return self.request.url

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    @property
    def is_redirect(self) -> bool:
        """True for a redirect status with a Location, as requests defines it."""
        return self.status_code in REDIRECT_STATUSES and "Location" in self.headers

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"
