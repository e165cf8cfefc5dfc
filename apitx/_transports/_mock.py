"""A transport that answers from a function: unit tests with no server.

:class:`MockTransport` sits where :class:`HTTPTransport` would, under the same
sender, validation, waiting and tracing: only the bytes come from a
``handler`` (a :class:`MockRequest` in, an :class:`Answer` out) instead of a
socket. So a program's own logic meets apitx exactly as it would meet LXD:
``validate()`` raises the same exceptions with the handler's words, ``wait()``
polls the handler's operations, traces show every request.

Websockets are not mocked: ``events()`` and ``exec()`` raise
:class:`~apitx.APIConnectionError`, and ``wait()`` (with or without
``progress=``) and ``wait_all()`` poll ``<operation>/wait`` instead, as they
do on a server without an event stream.

>>> from apitx import API
>>> from apitx.testing import Answer, MockRequest, MockTransport
>>> def lxd(request: MockRequest) -> Answer:
...     if request.path == '/1.0/instances/c1':
...         return Answer.sync({'name': 'c1', 'status': 'Running'})
...     return Answer.error(404, 'Instance not found')
>>> api = API.factory(transport=MockTransport(lxd))
>>> api.get('instances/c1').metadata['status']
'Running'
>>> api.get('instances/c2')
Traceback (most recent call last):
  ...
apitx.APINotFoundException: GET https://lxd.test:8443/1.0/instances/c2: Instance not found
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Union
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from .._config import Timeout
from .._endpoint import Endpoint
from .._exceptions import APIConnectionError, RequestError, RequestTypeError, SettingsTypeError
from ._base import BodyPolicy, Line
from ._http import read_answer

if TYPE_CHECKING:
    from ._websocket import WebSocketConnection

#: The endpoint an API on a MockTransport shows when none is given.
MOCK_ENDPOINT = "https://lxd.test:8443"


@dataclass(frozen=True)
class MockRequest:
    """A request as the handler sees it: ``method``, the ``path`` and its
    query as ``params`` (last value of each name), ``headers``, and the body
    as bytes (``json()`` parses it).

    >>> MockRequest('GET', '/1.0/instances', {'recursion': '1'}, {}, b'').params['recursion']
    '1'
    """

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Answer:
    """What the handler answers: ``status``, ``headers`` and ``body`` (bytes,
    or a JSON value, sent as ``application/json``). The class methods make
    the answers an LXD-style server gives.

    >>> Answer.sync({'api_version': '1.0'}).status
    200
    """

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked here, where the test wrote it, not when a request meets it.
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise RequestTypeError(f"Answer(status={self.status!r}): give an HTTP status (an "
                                   "int, 100 to 599)")
        if not 100 <= self.status <= 599:
            raise RequestError(f"Answer(status={self.status!r}): give an HTTP status, 100 to 599")
        if not isinstance(self.headers, Mapping) or not all(
                isinstance(name, str) and isinstance(value, str)
                for name, value in self.headers.items()):
            raise RequestTypeError(f"Answer(headers={self.headers!r}): give a dict of str "
                                   "names to str values")

    @classmethod
    def sync(cls, metadata: Any = None, status: int = 200) -> Answer:
        """A synchronous success: the envelope around ``metadata``."""
        return cls(status, _envelope("sync", metadata, status_code=200))

    @classmethod
    def error(cls, status: int, message: str) -> Answer:
        """A failure as LXD sends it: HTTP ``status``, ``type: error``, its message."""
        return cls(status, _envelope("error", None, error=message, error_code=status))

    @classmethod
    def operation(cls, operation: Mapping[str, Any], status: int = 202) -> Answer:
        """An asynchronous answer (HTTP 202) announcing ``operation`` (an
        operation object with an ``id``, see :func:`operation`)."""
        return cls(status, _envelope("async", dict(operation), status_code=100,
                                     operation=f"/1.0/operations/{operation['id']}"))


def operation(op_id: str, status_code: int = 200, err: str = "",
              metadata: Any = None) -> Dict[str, Any]:
    """An operation object: running (``status_code`` 103), ended (200), or
    failed (400, with ``err``); for :meth:`Answer.operation` and for the
    answers to ``/1.0/operations/<id>/wait``.

    >>> operation('op1', 103)['status']
    'Running'
    """
    if not isinstance(op_id, str) or isinstance(status_code, bool) \
            or not isinstance(status_code, int) or not isinstance(err, str):
        raise RequestTypeError(f"operation({op_id!r}, {status_code!r}, {err!r}): give an id "
                               "(str), an LXD status code (int) and an error (str)")
    status = {100: "Created", 103: "Running", 105: "Pending", 200: "Success",
              400: "Failure", 401: "Cancelled"}.get(status_code, "Unknown")
    return {"id": op_id, "class": "task", "description": "", "status": status,
            "status_code": status_code, "err": err, "may_cancel": False,
            "metadata": metadata, "resources": None, "location": "none"}


def _envelope(kind: str, metadata: Any, *, status_code: int = 0, error: str = "",
              error_code: int = 0, operation: str = "") -> Dict[str, Any]:
    return {"type": kind, "status": {"sync": "Success", "async": "Operation created"}.get(
        kind, ""), "status_code": status_code, "operation": operation,
        "error_code": error_code, "error": error, "metadata": metadata}


Handler = Callable[[MockRequest], Answer]


class MockTransport:
    """Answers every request with ``handler(request)``; see the module docstring.

    ``requests`` lists every :class:`MockRequest` the handler saw, in order.
    A handler may raise an apitx exception (``APIConnectionError``, say) to
    play a transport fault; anything else it raises is a bug of the test and
    propagates as it is.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise SettingsTypeError(f"MockTransport(handler): give a function taking a MockRequest "
                            f"and returning an Answer, not {handler!r}")
        self.handler = handler
        self.requests: List[MockRequest] = []
        self._lock = threading.Lock()

    cert: Any = None
    verify: Union[bool, str] = True

    def send(self, request: requests.PreparedRequest, endpoint: Endpoint, *, timeout: Timeout,
             until: Optional[float], body: BodyPolicy, line: Line) -> requests.Response:
        seen = _mock_request(request)
        with self._lock:
            self.requests.append(seen)
        answer = self.handler(seen)
        if not isinstance(answer, Answer):
            raise RequestTypeError(f"the MockTransport handler answered {answer!r} to {line()}: "
                            "return an apitx.testing.Answer")
        response = _response(request, answer)
        read_answer(response, body, line)
        return response

    def iter_body(self, response: requests.Response, endpoint: Endpoint, *,
                  until: Optional[float], chunk_size: int, line: Line) -> Iterator[bytes]:
        return response.iter_content(chunk_size)

    def websocket(self, endpoint: Endpoint, path: str, *, timeout: Timeout, traced: bool,
                  line: str, max_message: int) -> WebSocketConnection:
        raise APIConnectionError(f"{line}: MockTransport opens no websockets (events and "
                                 "exec need a server; wait() polls instead)",
                                 endpoint=endpoint.display)

    def close(self) -> None:
        pass


def _mock_request(request: requests.PreparedRequest) -> MockRequest:
    parts = urlsplit(request.url or "")
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif not isinstance(body, (bytes, type(None))):
        body = b"".join(_pieces(body))  # a file or an iterator, read as a server would
    return MockRequest(method=request.method or "", path=parts.path,
                       params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                       headers=dict(request.headers), body=body or b"")


def _pieces(body: Any) -> Iterator[bytes]:
    if hasattr(body, "read"):
        while True:
            piece = body.read(1 << 16)
            if not piece:
                return
            yield piece.encode("utf-8") if isinstance(piece, str) else piece
    for piece in body:
        yield piece.encode("utf-8") if isinstance(piece, str) else piece


def _response(request: requests.PreparedRequest, answer: Answer) -> requests.Response:
    headers = CaseInsensitiveDict(answer.headers)
    if isinstance(answer.body, (bytes, bytearray)):
        data = bytes(answer.body)
    else:
        try:
            data = json.dumps(answer.body).encode("utf-8")
        except (TypeError, ValueError) as exc:  # a value JSON has no form for, or a cycle
            raise RequestTypeError(f"the MockTransport handler's Answer to {request.method} "
                                   f"{request.url}: its body is neither bytes nor JSON ({exc})"
                                   ) from exc
        headers.setdefault("Content-Type", "application/json")
    response = requests.Response()
    response.status_code = answer.status
    response.reason = _REASONS.get(answer.status, "")
    response.headers = headers
    response.raw = io.BytesIO(data)
    response.url = request.url or ""
    response.request = request
    response.encoding = None
    return response


_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            412: "Precondition Failed", 500: "Internal Server Error",
            503: "Service Unavailable"}

