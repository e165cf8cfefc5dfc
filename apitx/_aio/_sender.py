"""The async request engine under :class:`~apitx.AsyncAPI`: prepare, send, read, trace.

The async twin of :mod:`apitx._sender`, sharing its rules (the checks of
:mod:`apitx._prepare`, :mod:`apitx._failover`, :mod:`apitx._redirects`), not
its code: requests prepares the sync client's requests; here apitx builds
its own :class:`~apitx._models.Request`, the same URL and body requests would
send, at a fraction of the cost. The answer comes from the async transport.

What it sends, seen from an :class:`~apitx.AsyncAPI` (preparing sends nothing):

>>> from apitx import AsyncAPI
>>> sender = AsyncAPI.factory()._sender
>>> sender.prepare('GET', 'instances', params={'recursion': 1}, project='p')
<Request GET http+unix://lxd/1.0/instances?recursion=1&project=p>
"""

from __future__ import annotations

import json as jsonlib
import time
from typing import Any, Dict, Mapping, Optional, Union
from urllib.parse import urlencode

from .._config import Timeout, TimeoutLike
from .._curl import render_curl
from .._endpoint import Endpoint
from .._exceptions import (APIConnectionError, APITimeoutError, RequestError,
                           RequestTypeError)
from .._models import Request, Response
from .._prepare import (checked_method, header_problem, request_timeout, shown_name,
                        with_defaults, with_query)
from .._render import Exchange, request_line
from .._sending import MAX_REDIRECTS, SenderBase
from .._transports import UpgradeRefused
from .._transports._aiobase import AsyncTransport
from .._transports._aiows import AsyncWebSocketConnection
from .._types import USE_DEFAULT, Headers, Params, UseDefault
from ._result import AsyncAPIResult, AsyncWaits

class AsyncSender(SenderBase[AsyncTransport]):
    """Prepares and sends requests for an async API and its siblings."""

    def line(self, request: Request, endpoint: Optional[Endpoint] = None) -> str:
        """The request line of a request, for messages."""
        return request_line(Exchange.from_request(
            request, endpoint or self.members.of(request.url)), self.options)  # type: ignore[arg-type]

    # -- preparing --------------------------------------------------------------

    def prepare(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None, project: Optional[str] = None,
                target: Optional[str] = None) -> Request:
        """The request as it will be sent, or :class:`RequestError` naming what is wrong:
        the same URL, headers and body the sync client would send."""
        base = self.url(url)
        full_url = with_query(base, with_defaults(base, params, project=project, target=target))
        method = checked_method(method)
        given: Dict[str, str] = {}
        for name, value in (headers or {}).items():
            problem = header_problem(name, value) or _value_problem(value)
            if problem:
                line = request_line(Exchange(self.members.current, method, full_url),
                                    self.options)
                raise RequestError(f"{line}: header {shown_name(name)} {problem}; nothing "
                                   "was sent")
            if value is not None:
                given[str(name)] = value.decode("latin-1") if isinstance(value, bytes) \
                    else value
        body = self._body(method, full_url, json, data, given)
        return Request(method, full_url, given, body)

    def _body(self, method: str, url: str, json: Any, data: Any,
              headers: Dict[str, str]) -> Any:
        """The body as sent, and its Content-Type when the caller gave none."""
        if json is None and data is None:
            return None
        typed = {name.lower() for name in headers}
        if json is not None and data is None:
            try:
                body = jsonlib.dumps(json, allow_nan=False).encode("utf-8")
            except (ValueError, TypeError) as exc:
                kind = RequestTypeError if isinstance(exc, TypeError) else RequestError
                line = request_line(Exchange(self.members.current, method, url), self.options)
                raise kind(f"{line}: InvalidJSONError: {exc}; nothing was sent") from None
            if "content-type" not in typed:
                headers["Content-Type"] = "application/json"
            return body
        if isinstance(data, Mapping):
            if "content-type" not in typed:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            return urlencode(list(data.items()), doseq=True).encode("utf-8")
        if isinstance(data, str):
            return data.encode("utf-8")
        return data  # bytes, None, a file, an (async) iterable: sent as it is

    # -- sending ----------------------------------------------------------------

    async def request(self, owner: AsyncWaits, method: str, url: str, *, params: Params = None,
                      json: Any = None, data: Any = None, headers: Headers = None,
                      timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
                      stream: bool = False, validate: bool = True,
                      follow_redirects: bool = False, project: Optional[str] = None,
                      target: Optional[str] = None) -> AsyncAPIResult:
        """:meth:`AsyncAPI.request`, for the API ``owner``."""
        request = self.prepare(method, url, params=params, json=json, data=data,
                               headers=headers, project=project, target=target)
        chosen = self.timeout if isinstance(timeout, UseDefault) else request_timeout(
            timeout, lambda: self.line(request))
        result = await self.send(owner, request, chosen, stream=stream)
        for _ in range(MAX_REDIRECTS if follow_redirects else 0):
            if not result.response.is_redirect:
                break
            result = await self.send(owner, self.redirected(result), chosen, stream=stream)
        return result.validate() if validate else result

    async def send(self, owner: AsyncWaits, request: Request, timeout: Timeout, *,
                   stream: bool = False, waited_since: Optional[float] = None) -> AsyncAPIResult:
        """Send (unvalidated result), moving on to the next member when it may."""
        endpoint = self.members.of(request.url)
        if len(self.members) == 1:
            return await self._send_once(owner, request, endpoint, timeout, stream=stream,
                                         waited_since=waited_since)
        for tried in range(1, len(self.members) + 1):
            try:
                return await self._send_once(owner, request, endpoint, timeout, stream=stream,
                                             waited_since=waited_since)
            except (APIConnectionError, APITimeoutError) as failed:
                step = self.next_member(failed, tried, endpoint, request.method, request.body,
                                        request.url)
                if step is None:
                    raise
                endpoint, request = step[0], Request(request.method, step[1], request.headers,
                                                     request.body)
        raise AssertionError("unreachable: the last member's failure is raised")

    async def _send_once(self, owner: AsyncWaits, request: Request, endpoint: Endpoint,
                         timeout: Timeout, *, stream: bool,
                         waited_since: Optional[float]) -> AsyncAPIResult:
        started = time.perf_counter()
        until = timeout.deadline(time.monotonic())
        policy = self.reading[stream]
        response = await self.transport.send(request, endpoint, timeout=timeout, until=until,
                                             body=policy,
                                             line=lambda: self.line(request, endpoint))
        result = AsyncAPIResult(
            owner, response, route=self.route(endpoint), elapsed=time.perf_counter() - started,
            waited=None if waited_since is None else time.monotonic() - waited_since,
            deadline=until, body_read=response.stream is None)
        if self.tracer is not None:
            self.tracer.trace(result.exchange)
        return result

    def redirected(self, result: AsyncAPIResult) -> Request:
        """The request a redirect asks for, if it stays on this endpoint."""
        target, method = self.redirect(result)
        request: Request = result.request
        if method is None:
            return Request(request.method, target, request.headers, request.body)
        return Request(method, target, {}, None)

    def made_result(self, owner: AsyncWaits, url: str, status_code: int, body: bytes, *,
                    reason: str = "", headers: Optional[Mapping[str, str]] = None,
                    elapsed: Optional[float] = None,
                    waited: Optional[float] = None) -> AsyncAPIResult:
        """An :class:`AsyncAPIResult` for an answer that came some other way
        (a refused websocket upgrade, an operation event)."""
        from multidict import CIMultiDict, CIMultiDictProxy

        response = Response(status_code, reason, CIMultiDictProxy(CIMultiDict(headers or {})),
                            body, Request("GET", url, {}, None))
        return AsyncAPIResult(owner, response, route=self.route(self.members.of(url)),
                              elapsed=elapsed, waited=waited)

    # -- websockets ---------------------------------------------------------------

    async def websocket(self, owner: AsyncWaits, path: str,
                        params: Optional[Mapping[str, Any]] = None,
                        timeout: TimeoutLike = None) -> AsyncWebSocketConnection:
        """A websocket at an API path, moving on to the next member when one
        cannot be reached; a refused upgrade raises the exception its answer means."""
        limits = self.timeout if timeout is None else Timeout.coerce(timeout)
        url = with_query(self.url(path), dict(params or {}))
        endpoint = self.members.of(url)
        for tried in range(1, len(self.members) + 1):
            line = f"GET {endpoint.describe_url(url, self.options.unsafe)}"
            try:
                return await self.transport.websocket(endpoint, url[len(endpoint.base_url):],
                                                      timeout=limits, traced=self.traced(),
                                                      line=line)
            except UpgradeRefused as refusal:
                raise self.refused(refusal, lambda *a, **k: self.made_result(owner, *a, **k),
                                   url, line, endpoint) from refusal
            except (APIConnectionError, APITimeoutError) as failed:
                step = self.next_member(failed, tried, endpoint, "GET", None, url)
                if step is None:
                    raise
                endpoint, url = step
        raise AssertionError("unreachable: the last member's failure is raised")

    def curl(self, request: Request) -> str:
        """The curl command for a request, redacted; nothing is sent."""
        exchange = Exchange.from_request(request, self.members.of(request.url),  # type: ignore[arg-type]
                                         cert=self.transport.cert, verify=self.transport.verify)
        try:
            return render_curl(exchange, self.options, strict=True)
        except ValueError as exc:
            raise RequestError(str(exc)) from None


def _value_problem(value: Any) -> Optional[str]:
    """What requests refuses in a header value (CR/LF, surrounding space, a
    type that is not text), said without quoting it."""
    if value is None:
        return None
    if not isinstance(value, (str, bytes)):
        return "has a value that is not a str or bytes"
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if text != text.strip() or "\r" in text or "\n" in text:
        return "cannot be sent: a value must have no CR/LF and no leading or trailing whitespace"
    return None
