"""One HTTP transaction and what LXD meant by it: a view, sending nothing.

An :class:`APIResult` holds the request and the response, the parsed JSON
envelope, and tells an error from a success in every way LXD has said it
(HTTP status, ``type: error``, a failed operation nested in a successful
answer), by the rules of :mod:`apitx._envelope`. It renders itself for people
with the settings its API was made with. Waiting is the API's work
(:meth:`API.wait`); :meth:`APIResult.wait` is a shortcut to it.

>>> from apitx import API
>>> api = API.factory()
>>> result = api.post(f'instances/{c1}/exec', json={'command': ['true'],
...     'record-output': True, 'wait-for-websocket': False})
>>> result.status_code, result.type, result.operation
(202, 'async', '/1.0/operations/...')
>>> result.wait(timeout=60).metadata['status']    # the final, validated result
'Success'
"""

from __future__ import annotations

import json
from typing import Any, Callable, Generic, Iterator, Optional, Protocol, TypeVar, Union

import requests

from . import _checks, _envelope
from ._config import DEFAULT_RENDER, RenderOptions
from ._endpoint import Endpoint, path_and_query
from ._exceptions import APIException, APINotFoundException
from ._redact import redact_url
from ._render import (Exchange, render_request, render_response, render_text,
                      request_line)
from ._transports import Transport
from ._value import Value

#: What ``wait(progress=...)`` calls with each answer while the operation runs.
Progress = Callable[["APIResult"], None]


class Waits(Protocol):
    """What a result's ``api`` does for it: wait on its operation (the
    :class:`~apitx.API` that made it)."""

    def wait(self, result: APIResult, timeout: Optional[float] = None,
             progress: Optional[Progress] = None) -> APIResult: ...


class Trusts(Protocol):
    """What a rendering needs of a transport: the client certificate and the
    trust its requests go out with (for curl lines)."""

    @property
    def cert(self) -> Any: ...

    @property
    def verify(self) -> Union[bool, str]: ...


#: A result of either kind (what ``validate()`` returns: the result itself).
ResultT = TypeVar("ResultT", bound="BaseResult")

#: The transport of a route: sync (:class:`~apitx._transports.Transport`) or async.
T = TypeVar("T", bound=Trusts)


class Route(Value, Generic[T]):
    """How a request went: the endpoint, the transport that carried it, the
    client certificate and trust it went with, and the render settings of
    the API that sent it. One value per API and endpoint, shared by every
    result sent that way, so a result renders itself and reads its stream
    without asking its API.
    """

    endpoint: Endpoint
    transport: T
    options: RenderOptions

    def __init__(self, endpoint: Endpoint, transport: T,
                 options: RenderOptions = DEFAULT_RENDER) -> None:
        self._set(endpoint=endpoint, transport=transport, options=options)

    @property
    def cert(self) -> Any:
        return self.transport.cert

    @property
    def verify(self) -> Union[bool, str]:
        return self.transport.verify


class BaseResult:
    """One HTTP transaction and what the server meant by it, as a view: what
    :class:`APIResult` (sync) and :class:`~apitx.AsyncAPIResult` share.

    ``data`` is the parsed JSON of an answer declared as JSON (by its
    ``Content-Type``), or None when the body is empty, not declared JSON (a
    pulled file is data, whatever it holds), unreadable, or not read
    (``stream=True`` with a non-JSON content type); it never raises, and the
    raw bytes stay on ``response.content``. ``route`` is where and how the
    request went, so the result renders itself without asking its API;
    ``deadline`` is when the request must be over (``iter_content()`` keeps
    to it); ``body_read`` is False while a streamed body is the caller's to
    read.
    """

    __slots__ = ("response", "data", "unreadable", "route", "elapsed", "waited",
                 "deadline", "body_read", "__weakref__")

    route: Route[Any]
    #: What reads a JSON body: json here; the async client's results read
    #: with orjson when it is installed (``apitx/_json.py`` says why).
    read_json: Callable[[bytes], Any] = staticmethod(json.loads)

    def __init__(self, response: Any, *, route: Route[Any], elapsed: Optional[float] = None,
                 waited: Optional[float] = None, deadline: Optional[float] = None,
                 body_read: bool = True) -> None:
        #: The response: ``requests.Response`` (sync), or apitx's own
        #: :class:`~apitx._aio._models.Response` (async), with the same
        #: ``status_code``, ``reason``, ``headers``, ``content`` and ``request``.
        self.response = response
        self.route = route
        self.deadline = deadline
        self.body_read = body_read
        parsed = _envelope.parse_json(response.content, self.read_json) if body_read and \
            _envelope.declares_json(response.headers.get("Content-Type", "")) else None
        #: Why an answer declared as JSON could not be read, or None.
        self.unreadable = parsed.reason if isinstance(parsed, _envelope.Unreadable) else None
        self.data = None if self.unreadable is not None else parsed
        #: Seconds from sending the request to having the whole answer.
        self.elapsed = elapsed
        #: For an answer of wait(): seconds since the wait started.
        self.waited = waited

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint the request went to."""
        return self.route.endpoint

    @property
    def options(self) -> RenderOptions:
        """How this result renders itself (its API's settings)."""
        return self.route.options

    # -- the envelope ---------------------------------------------------------

    @property
    def request(self) -> Any:
        """The request as sent (``requests.PreparedRequest``, or the async
        client's own request, with the same ``method``, ``url``, ``headers``
        and ``body``)."""
        return self.response.request

    @property
    def status_code(self) -> int:
        return int(self.response.status_code)

    @property
    def ok(self) -> bool:
        """True when validate() would not raise.

        >>> from apitx import API
        >>> API.factory().get('instances/nope', validate=False).ok
        False
        """
        try:
            self.validate()
        except APIException:
            return False
        return True

    @property
    def type(self) -> Optional[str]:
        """The envelope's ``type``: ``sync``, ``async`` or ``error`` (None if no envelope)."""
        return self.data.get("type") if isinstance(self.data, dict) else None

    @property
    def metadata(self) -> Any:
        """The envelope's ``metadata`` (None if absent or no envelope)."""
        return self.data.get("metadata") if isinstance(self.data, dict) else None

    @property
    def operation(self) -> Optional[str]:
        """The operation this result is about, or None: the URL an async answer
        announced, or the operation a ``GET /1.0/operations/<uuid>`` (or its
        ``/wait``) returned, so a caller who fetched one by URL can wait on it."""
        return _envelope.operation_url(self.data, self.request_path())

    @property
    def running(self) -> bool:
        """True when this answer is an operation that has not ended."""
        return _envelope.is_running(self.metadata)

    # -- people-readable forms ------------------------------------------------

    def exchange(self, seq: Optional[int] = None) -> Exchange:
        """This transaction as plain values, for the renderers."""
        route = self.route
        return Exchange.from_response(self.response, route.endpoint, body_read=self.body_read,
                                      cert=route.cert, verify=route.verify, seq=seq,
                                      elapsed=self.elapsed, waited=self.waited)

    def request_path(self) -> str:
        """The request's path and query string, as sent."""
        return path_and_query(self.request.url or "")

    def request_line(self) -> str:
        """``METHOD readable-url``, e.g. ``GET unix:/var/lib/lxd/unix.socket /1.0``,
        secrets in the query redacted unless the API's settings are unsafe."""
        return request_line(Exchange.from_request(self.request, self.endpoint), self.options)

    def locate(self, path: str) -> str:
        """A path on this result's endpoint, as people read it.

        >>> from apitx import API
        >>> result = API.factory().get('')
        >>> result.locate('/1.0/operations/x')
        'unix:/var/lib/lxd/unix.socket /1.0/operations/x'
        """
        return self.endpoint.describe(_checks.text(path, "locate(path)"), self.options.unsafe)

    def request_summary(self) -> str:
        """The request method, readable URL, non-default headers and body, redacted."""
        return render_request(self.exchange(), self.options)

    def response_summary(self) -> str:
        """The response status and body, redacted."""
        return render_response(self.exchange(), self.options)

    def curl(self) -> str:
        """The request as a curl command that runs as it is, redacted.

        >>> from apitx import API
        >>> API.factory().get('instances').curl()
        'curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances'
        """
        from ._curl import render_curl  # curl lines are asked for: not every start pays

        return render_curl(self.exchange(), self.options)

    def transaction(self) -> str:
        """The whole transaction as the text trace shows it, redacted."""
        return render_text(self.exchange(), self.options)

    def server_message(self, node: Any = None) -> str:
        """The server's own words for this answer's error (``node``: a failed
        operation inside it), as one line: LXD's ``error``, else a failed
        operation's ``err``, else the body's text or the HTTP reason."""
        return _envelope.server_message(
            self.data, node, text=self.response.text if self.body_read else "",
            status=self.status_code, reason=self.response.reason or "")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request_line()} HTTP/{self.status_code}>"

    # -- validation -----------------------------------------------------------

    def validate(self: ResultT) -> ResultT:
        """Raise if this answer is an error; return the result itself otherwise.

        Raises :class:`APINotFoundException` on HTTP 404 or ``error_code`` 404,
        and :class:`APIException` on HTTP >= 400, on ``type: "error"``, or on
        any nested operation or metadata whose ``status_code`` is >= 400.

        >>> from apitx import API
        >>> api = API.factory()
        >>> api.get(f'instances/{c1}', validate=False).validate().metadata['name'] == c1
        True
        >>> api.get('instances/nope', validate=False).validate()
        Traceback (most recent call last):
        ...
        apitx.APINotFoundException: GET unix:/var/lib/lxd/unix.socket /1.0/instances/nope: Instance not found
        """
        failure = _envelope.top_failure(self.data, self.status_code)
        if failure is not None:
            kind = APINotFoundException if failure.not_found else APIException
            raise kind(self, status_code=failure.status_code)
        if 300 <= self.status_code < 400:
            where = redact_url(self.response.headers.get("Location") or "nowhere")
            raise APIException(self, error=(
                f"the server redirects (HTTP {self.status_code}) to {where}: LXD never "
                "redirects, so apitx does not follow; is the endpoint an LXD server? "
                "(request(..., follow_redirects=True) follows within the endpoint)"))
        if self.unreadable is not None:
            raise APIException(self, error=(
                f"the answer is declared JSON but {self.unreadable}: apitx cannot tell "
                "success from failure"))
        if _envelope.is_envelope(self.data):
            self.validate_metadata(self.data)
        return self

    def validate_metadata(self, data: Any) -> None:
        """Raise :class:`APIException` for any failed operation inside ``data``
        (the chain of ``metadata`` an LXD answer nests: an exec's or a
        migration's operation holds the one that failed)."""
        node = _envelope.nested_failure(data)
        if node is not None:
            raise APIException(self, error=self.server_message(node),
                               status_code=node["status_code"])


class APIResult(BaseResult):
    """An HTTP transaction made by :class:`API`: the view of
    :class:`BaseResult`, a body streamed in pieces (``iter_content()``), and
    ``wait()`` for its operation, through ``api``, the API that made it.
    """

    __slots__ = ("api",)

    route: Route[Transport]

    def __init__(self, api: Waits, response: requests.Response, *, route: Route[Transport],
                 elapsed: Optional[float] = None, waited: Optional[float] = None,
                 deadline: Optional[float] = None, body_read: bool = True) -> None:
        self.api = api
        super().__init__(response, route=route, elapsed=elapsed, waited=waited,
                         deadline=deadline, body_read=body_read)

    def iter_content(self, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The body in pieces (for ``stream=True``), without loading it whole.

        Like ``response.iter_content``, but a connection that breaks or stalls
        mid-body raises apitx's errors, as every other failure does, and the
        request's total deadline (``Timeout.total``) still holds: a server
        that dribbles the body cannot hold the reader forever.

        >>> from apitx import API
        >>> api = API.factory()
        >>> answer = api.get(f'instances/{c1}/files', params={'path': '/bin/busybox'},
        ...                  stream=True)
        >>> sum(len(piece) for piece in answer.iter_content()) > 500_000
        True
        """
        chunk_size = _checks.whole_number(chunk_size, "iter_content(chunk_size)", minimum=1)
        return self.route.transport.iter_body(self.response, self.endpoint, until=self.deadline,
                                              chunk_size=chunk_size, line=self.request_line)

    # -- operations -----------------------------------------------------------

    def wait(self, timeout: Optional[float] = None,
             progress: Optional[Progress] = None) -> APIResult:
        """``self.api.wait(self, timeout, progress)``: wait for this result's
        operation to end and return the final, validated result.

        >>> from apitx import API
        >>> api = API.factory()
        >>> started = api.put(f'instances/{c1}/state', json={'action': 'start'})
        >>> started.wait(timeout=60)
        Traceback (most recent call last):
        ...
        apitx.APIException: PUT unix:/var/lib/lxd/unix.socket /1.0/instances/.../state: operation ... failed: The instance is already running
        """
        return self.api.wait(self, timeout=timeout, progress=progress)
