"""One HTTP transaction and what LXD meant by it.

An :class:`APIResult` holds the request and the response, the parsed JSON
envelope, and knows how to tell an error from a success in every way LXD has
said it (HTTP status, ``type: error``, a failed operation nested in a
successful answer) and how to wait for an operation to end.

Example::

    result = api.post('instances', json=config)    # HTTP 202, type async
    result.operation                                # '/1.0/operations/<uuid>'
    done = result.wait(timeout=120)                 # the final, validated result
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator, Optional

import requests

from ._config import env_flag
from ._curl import render_curl
from ._endpoint import path_and_query
from ._exceptions import APIException, APINotFoundException, OperationTimeout, server_message
from ._render import (Exchange, RenderOptions, render_request, render_response,
                      render_text)
from ._transport import translate_error

if TYPE_CHECKING:  # pragma: no cover
    from ._api import API

#: LXD operation status codes below 200 (Created 100, Started 101, Running
#: 103, Cancelling 104, Pending 105, …) mean "not finished"; 200 is Success;
#: 400 Failure and 401 Cancelled are the failures.
SUCCESS = 200
FAILURE_FLOOR = 400

#: Each poll of ``wait()`` asks LXD to hold the answer this long at most, so a
#: daemon that dies during a long operation is noticed within this time.
POLL_SECONDS = 30
#: A poll's HTTP read timeout exceeds its server-side ``timeout`` by this much:
#: LXD answers a timed-out wait only after the full ``timeout``, and a client
#: that gives up first kills a healthy request with ReadTimeout.
POLL_READ_MARGIN = 10.0


class APIResult:
    """An HTTP transaction made by :class:`API`.

    ``data`` is the parsed JSON, or None when the body is empty, not JSON, or
    was not read (``stream=True`` with a non-JSON content type); it never
    raises, and the raw bytes stay on ``response.content``.
    """

    __slots__ = ("api", "response", "data", "elapsed", "waited", "__weakref__")

    def __init__(self, api: API, response: requests.Response,
                 elapsed: Optional[float] = None) -> None:
        self.api = api
        self.response = response
        self.data = _parse_json(response)
        #: Seconds from sending the request to having the whole answer.
        self.elapsed = elapsed
        #: For a poll of wait(): seconds since the wait started.
        self.waited: Optional[float] = None

    # -- the envelope ---------------------------------------------------------

    @property
    def request(self) -> requests.PreparedRequest:
        """The request as sent (``requests.PreparedRequest``)."""
        return self.response.request

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def ok(self) -> bool:
        """True when validate() would not raise.

        >>> api.get('instances/nope', validate=False).ok
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
        """The operation this result is about, or None.

        The URL an async answer announced (``/1.0/operations/<uuid>``), or,
        for the answer to ``GET /1.0/operations/<uuid>`` (or its ``/wait``),
        that operation's own URL, so a caller who fetched an operation by URL
        can wait on it.
        """
        data = self.data if isinstance(self.data, dict) else {}
        if data.get("operation"):
            return data["operation"]
        op = data.get("metadata")
        if not isinstance(op, dict) or "id" not in op:
            return None
        match = _OPERATION_PATH.match(self.request_path().split("?", 1)[0])
        return match.group("path") if match and match.group("id") == op["id"] else None

    @property
    def body_read(self) -> bool:
        """False while a ``stream=True`` body is still the caller's to read."""
        return not body_unread(self.response)

    def iter_content(self, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The body in pieces (for ``stream=True``), without loading it whole.

        Like ``response.iter_content``, but a connection that breaks or stalls
        mid-body raises apitx's errors, as every other failure does.

        >>> with open('rootfs.tar.gz', 'wb') as out:
        ...     for piece in api.get(f'images/{fp}/export', stream=True).iter_content():
        ...         out.write(piece)
        """
        try:
            yield from self.response.iter_content(chunk_size)
        except (requests.RequestException, OSError) as exc:
            raise translate_error(exc, self.api.endpoint, self.request_line()) from exc

    # -- people-readable forms ------------------------------------------------

    def request_path(self) -> str:
        """The request's path and query string, as sent."""
        return path_and_query(self.request.url or "")

    def request_line(self) -> str:
        """``METHOD readable-url``, e.g. ``GET unix:/var/lib/lxd/unix.socket /1.0``,
        secrets in the query redacted unless ``APITX_DEBUG_UNSAFE``."""
        return (f"{self.request.method} "
                f"{self.api.endpoint.describe(self.request_path(), env_flag('APITX_DEBUG_UNSAFE'))}")

    def request_summary(self) -> str:
        """The request method, readable URL, non-default headers and body, redacted."""
        return render_request(Exchange.from_result(self), RenderOptions.from_env())

    def response_summary(self) -> str:
        """The response status and body, redacted."""
        return render_response(Exchange.from_result(self), RenderOptions.from_env())

    def curl(self) -> str:
        """The request as a curl command that runs as it is, redacted.

        >>> api.get('instances').curl()
        "curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances"
        """
        return render_curl(Exchange.from_result(self), RenderOptions.from_env())

    def transaction(self) -> str:
        """The whole transaction as the text trace shows it, redacted."""
        return render_text(Exchange.from_result(self), RenderOptions.from_env())

    def __repr__(self) -> str:
        return f"<APIResult {self.request_line()} HTTP/{self.status_code}>"

    # -- validation -----------------------------------------------------------

    def validate(self) -> APIResult:
        """Raise if this answer is an error; return the result itself otherwise.

        Raises :class:`APINotFoundException` on HTTP 404 or ``error_code`` 404,
        and :class:`APIException` on HTTP >= 400, on ``type: "error"``, or on
        any nested operation or metadata whose ``status_code`` is >= 400.

        >>> api.get('instances/c1', validate=False).validate().metadata['name']
        'c1'
        """
        data = self.data if isinstance(self.data, dict) else {}
        if self.status_code == 404 or data.get("error_code") == 404:
            raise APINotFoundException(self, status_code=404)
        if self.status_code >= 400 or data.get("type") == "error":
            code = _code(data.get("error_code"))
            if code is None or code < FAILURE_FLOOR:
                code = self.status_code  # absent, odd (a string), or not an error code
            raise APIException(self, status_code=code)
        if data:
            self.validate_metadata(data)
        return self

    def validate_metadata(self, data: Any) -> None:
        """Raise :class:`APIException` for any failed operation inside ``data``.

        Walks the chain of ``metadata`` an LXD answer nests (an envelope holds
        an operation, whose ``metadata`` may hold more), dicts and lists of
        operation objects alike. It walks with a stack, not recursion, so any
        depth is fine. It does not walk other keys: an instance's config or
        the ``failure`` list of ``GET /1.0/operations`` is data, not a verdict
        on this request.
        """
        todo = [data]
        while todo:
            node = todo.pop()
            if isinstance(node, list):
                todo.extend(node)
                continue
            if not isinstance(node, dict):
                continue
            code = _code(node.get("status_code"))
            if code is not None and code >= FAILURE_FLOOR:
                raise APIException(self, error=server_message(self, node), status_code=code)
            child = node.get("metadata")
            if isinstance(child, (dict, list)):
                todo.append(child)

    # -- operations -----------------------------------------------------------

    def wait(self, timeout: Optional[float] = None) -> APIResult:
        """Wait for this result's operation to end; return the final, validated result.

        On a sync result, returns the result itself (validated), unless it is
        the answer to ``GET /1.0/operations/<id>`` for an operation still
        running: that one is waited on too. On an async one, long-polls
        ``<operation>/wait?timeout=N`` until the operation ends: success
        returns that last answer (its ``metadata`` is the finished
        operation); failure or cancellation raises :class:`APIException` with
        LXD's ``err``. When ``timeout`` seconds (rounded up to whole seconds,
        as LXD takes them) pass and the operation still runs, raises
        :class:`OperationTimeout` carrying the last answer: a running
        operation is never returned as if done.

        >>> api.post('instances', json=config).wait(timeout=120)
        """
        self.validate()
        operation = self.operation
        if not operation or (self.type != "async" and not _running(self.metadata)):
            return self
        if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
            raise ValueError(f"wait(timeout={timeout!r}): give seconds >= 0, or None to "
                             "wait until the operation ends")
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        url = operation.rstrip("/") + "/wait"
        while True:
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            poll = min(POLL_SECONDS, max(0, math.ceil(left)))
            last = self.api._send(
                "GET", url, (), {"params": {"timeout": poll},
                                 "timeout": self.api.timeout.with_read(poll + POLL_READ_MARGIN)},
                validate=True, wait_started=started)
            # _send() validated the answer: every failure encoding (HTTP error
            # status, type: error, or HTTP 200 with a Failure operation inside)
            # has raised by now.
            code = _operation_code(last.metadata)
            if code is None:
                # An HTML page from a proxy, an empty body: nothing says the
                # operation ended, and returning it would pass it off as done.
                raise APIException(last, error="the answer to a wait is not an operation: "
                                   "cannot tell whether it ended")
            if code >= SUCCESS:
                return last  # finished: a failure has raised in validate()
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationTimeout(last, time.monotonic() - started)


def body_unread(response: requests.Response) -> bool:
    """True while a ``stream=True`` body has not been read (requests marks an
    unread body with ``_content = False``)."""
    return response._content is False


def _code(value: Any) -> Optional[int]:
    """A status or error code as LXD sends it (an int; a bool is not one), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _operation_code(op: Any) -> Optional[int]:
    """The status code of an operation object, or None when ``op`` is not one."""
    return _code(op.get("status_code")) if isinstance(op, dict) else None


def _running(op: Any) -> bool:
    """True for an operation object whose status code says it has not ended."""
    code = _operation_code(op)
    return code is not None and code < SUCCESS


_OPERATION_PATH = re.compile(r"^(?P<path>/[^/]+/operations/(?P<id>[^/?]+))(?:/wait)?$")


def _parse_json(response: requests.Response) -> Any:
    """The JSON of a response, or None. Never raises, never reads a stream it
    should not: a ``stream=True`` body is read only when it is declared JSON
    (LXD's errors are), so file downloads stay untouched for the caller."""
    if body_unread(response) and "json" not in response.headers.get("Content-Type", ""):
        return None
    content = response.content  # a broken read raises: API._send translates it
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None
    except RecursionError:
        return _loads_deep(content)


#: The deepest JSON apitx parses. CPython's decoder recurses once per level,
#: against the interpreter's recursion limit (1000 by default, shared with
#: the caller's own frames): a 950-deep LXD answer failed to parse, and a
#: failure nested in it then passed validation in silence.
MAX_JSON_DEPTH = 20_000
_recursion_lock = threading.Lock()


def _loads_deep(content: bytes) -> Any:
    """Parse JSON too deep for the current recursion limit, with headroom."""
    # Every level opens a bracket, so their count bounds the depth (counted in C).
    depth = content.count(b"[") + content.count(b"{")
    if depth > MAX_JSON_DEPTH:
        return None
    with _recursion_lock:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + depth)
        try:
            return json.loads(content)
        except (ValueError, RecursionError):
            return None
        finally:
            sys.setrecursionlimit(limit)
