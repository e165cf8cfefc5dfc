"""The sync request engine under :class:`~apitx.API`: prepare, send, read, trace.

A :class:`Sender` turns a call into a prepared request (the checks of
:mod:`apitx._prepare`, the API's defaults, requests' session preparation),
sends it through the API's :class:`~apitx._transports.Transport` within the
request's deadline, moves on to the next cluster member when it may
(:mod:`apitx._failover`), follows redirects only where asked and allowed
(:mod:`apitx._redirects`), and returns the :class:`APIResult`, traced. It
holds what an API and its siblings (``using()``) share; what differs between
siblings (``project``, ``target``, the API a result waits through) comes
with each call.

Example::

    sender = Sender(session, transport, Members([endpoint]), version='1.0',
                    timeout=Timeout(), trace=TraceSettings(), max_answer_bytes=1 << 26)
    result = sender.request(api, 'GET', 'instances', project=None, target=None)
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Mapping, Optional, Union

import requests

from ._config import Timeout, TimeoutLike, TraceSettings
from ._curl import render_curl
from ._endpoint import Endpoint
from ._exceptions import (APIConnectionError, APIException, APITimeoutError, RequestError,
                          RequestTypeError, SettingsError)
from ._failover import Members, may_try_elsewhere
from ._prepare import (Root, checked_method, header_problem, join_url, request_timeout,
                       shown_name, with_defaults)
from ._redact import redact_url
from ._redirects import redirect_method, resolve, same_origin
from ._render import Exchange, request_line
from ._result import APIResult, Route, Waits
from ._tracing import Tracer, logger
from ._transports import (CALLER_MISTAKES, BodyPolicy, Transport, UpgradeRefused,
                          WebSocketConnection, mistake)
from ._types import USE_DEFAULT, Headers, Params, UseDefault

#: How many redirects ``follow_redirects=True`` follows.
MAX_REDIRECTS = 5


class Sender:
    """Prepares and sends requests for an API and its siblings (see the module)."""

    def __init__(self, session: requests.Session, transport: Transport, members: Members, *,
                 version: Optional[str], timeout: Timeout, trace: TraceSettings,
                 max_answer_bytes: int) -> None:
        self.session = session
        self.transport = transport
        self.members = members
        self.version = version
        self.timeout = timeout
        self.trace = trace
        self.options = trace.render
        self.tracer = Tracer(trace) if trace.enabled else None
        self.max_answer_bytes = max_answer_bytes
        #: How much of an answer is read: whole, or (``stream=True``) only
        #: what apitx must judge.
        self._read = {False: BodyPolicy(max_answer_bytes, False),
                      True: BodyPolicy(max_answer_bytes, True)}
        self._routes: Dict[Endpoint, Route[Transport]] = {}
        for name, value in session.headers.items():
            problem = header_problem(name, value)
            if problem:
                raise SettingsError(f"the session's header {shown_name(name)} {problem}: fix "
                                    "session.headers before making the API")

    # -- where requests go ------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        """The member requests go to now."""
        return self.members.current

    def route(self, endpoint: Endpoint) -> Route[Transport]:
        """The :class:`Route` results sent to ``endpoint`` share."""
        route = self._routes.get(endpoint)
        if route is None:
            route = self._routes.setdefault(endpoint, Route(endpoint, self.transport,
                                                            self.options))
        return route

    def url(self, url: str) -> str:
        """The full URL of an API path on the member in use (see :func:`join_url`)."""
        endpoint = self.members.current
        return join_url(Root(endpoint.base_url, self.version, endpoint.display), url)

    def line(self, prepared: requests.PreparedRequest, endpoint: Optional[Endpoint] = None) -> str:
        """The request line of a prepared request, for messages."""
        return request_line(Exchange.from_request(prepared, endpoint or self.members.of(
            prepared.url or "")), self.options)

    # -- preparing --------------------------------------------------------------

    def prepare(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None, project: Optional[str] = None,
                target: Optional[str] = None) -> requests.PreparedRequest:
        """The request as it will be sent, or :class:`RequestError` naming what is wrong.

        Checked here, before anything is sent: the method, the JSON body
        (JSON has no NaN, and only some types) and the headers (see
        :mod:`apitx._prepare`).
        """
        full_url = self.url(url)
        method = checked_method(method)
        params = with_defaults(full_url, params, project=project, target=target)
        refused: Optional[RequestError] = None
        try:
            prepared = self.session.prepare_request(requests.Request(
                method, full_url, params=params, json=json, data=data, headers=headers))
        except (*CALLER_MISTAKES, TypeError) as exc:
            # json= that JSON cannot encode raises TypeError inside requests;
            # other arguments of the wrong type too.
            kind = RequestError if isinstance(exc, CALLER_MISTAKES) else RequestTypeError
            line = request_line(Exchange(self.members.current, method,
                                         _with_query(full_url, params)), self.options)
            refused = kind(f"{line}: {mistake(exc, headers)}; nothing was sent")
        if refused is not None:
            # Raised here, outside the except block, so that requests' own
            # exception (which quotes a bad header's value, maybe a token) is
            # neither its cause nor its context.
            raise refused
        # The caller's headers only: requests' own (and a session's, checked
        # when the API was made) are known to be sendable.
        for name, value in (headers or {}).items():
            problem = header_problem(name, value)
            if problem:
                raise RequestError(f"{self.line(prepared)}: header {shown_name(name)} "
                                   f"{problem}; nothing was sent")
        return prepared

    # -- sending ----------------------------------------------------------------

    def request(self, owner: Waits, method: str, url: str, *, params: Params = None,
                json: Any = None, data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT, stream: bool = False,
                validate: bool = True, follow_redirects: bool = False,
                project: Optional[str] = None, target: Optional[str] = None) -> APIResult:
        """:meth:`API.request`, for the API ``owner`` (see there)."""
        prepared = self.prepare(method, url, params=params, json=json, data=data,
                                headers=headers, project=project, target=target)
        chosen = self.timeout if isinstance(timeout, UseDefault) else request_timeout(
            timeout, lambda: self.line(prepared))
        result = self.send(owner, prepared, chosen, stream=stream)
        for _ in range(MAX_REDIRECTS if follow_redirects else 0):
            if not result.response.is_redirect:
                break
            result = self.send(owner, self.redirected(result), chosen, stream=stream)
        return result.validate() if validate else result

    def send(self, owner: Waits, prepared: requests.PreparedRequest, timeout: Timeout, *,
             stream: bool = False, waited_since: Optional[float] = None) -> APIResult:
        """Send a prepared request (unvalidated result), moving on to the next
        member when its member cannot be reached and it may (see
        :mod:`apitx._failover`). Each member is tried once; each attempt is
        traced."""
        endpoint = self.members.of(prepared.url or "")
        for tried in range(1, len(self.members) + 1):
            try:
                return self._send_once(owner, prepared, endpoint, timeout, stream=stream,
                                       waited_since=waited_since)
            except (APIConnectionError, APITimeoutError) as failed:
                if tried == len(self.members) or not may_try_elsewhere(
                        failed.sent, prepared.method, prepared.body):
                    raise
                before, endpoint = endpoint, self.members.advance(endpoint)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("apitx: %s; %s, trying %s", failed,
                                 "nothing was sent" if failed.sent is False else "idempotent",
                                 endpoint.display)
                prepared = prepared.copy()
                prepared.url = endpoint.base_url + (prepared.url or "")[len(before.base_url):]
        raise AssertionError("unreachable: the last member's failure is raised")

    def _send_once(self, owner: Waits, prepared: requests.PreparedRequest, endpoint: Endpoint,
                   timeout: Timeout, *, stream: bool,
                   waited_since: Optional[float]) -> APIResult:
        """Send to one member and read what apitx must read of the answer.

        The answer always comes as a stream, and the transport reads the body
        unless the caller streams a non-JSON one: JSON and error bodies up to
        ``max_answer_bytes`` (decompressed), others whole. The request's
        total deadline holds from connecting to the last byte.
        ``waited_since`` is when a wait() began, so each of its answers knows
        how long the wait has taken.
        """
        started = time.perf_counter()
        until = timeout.deadline(time.monotonic())
        policy = self._read[stream]
        response = self.transport.send(prepared, endpoint, timeout=timeout, until=until,
                                       body=policy, line=lambda: self.line(prepared, endpoint))
        result = APIResult(
            owner, response, route=self.route(endpoint), elapsed=time.perf_counter() - started,
            waited=None if waited_since is None else time.monotonic() - waited_since,
            deadline=until,
            body_read=policy.reads(response.status_code, response.headers.get("Content-Type", "")))
        if self.tracer is not None:
            self.tracer.trace(result.exchange)
        return result

    def redirected(self, result: APIResult) -> requests.PreparedRequest:
        """The request a redirect asks for, if it stays on this endpoint (see
        :mod:`apitx._redirects`); else the :class:`APIException` that says where
        it led."""
        target = resolve(result.request.url or "", result.response.headers.get("Location") or "")
        if not same_origin(target, result.endpoint.base_url):
            raise APIException(result, error=(
                f"the server redirects to {redact_url(target)}, off this endpoint "
                f"({result.endpoint.display}): apitx never follows a redirect elsewhere"))
        method = redirect_method(result.status_code, result.request.method)
        if method is None:
            prepared: requests.PreparedRequest = result.request.copy()
            prepared.prepare_url(target, None)
            return prepared
        return self.session.prepare_request(requests.Request(method, target))

    # -- answers made some other way ----------------------------------------------

    def made_result(self, owner: Waits, url: str, status_code: int, body: bytes, *,
                    reason: str = "", headers: Optional[Mapping[str, str]] = None,
                    elapsed: Optional[float] = None,
                    waited: Optional[float] = None) -> APIResult:
        """An :class:`APIResult` for an answer that came some other way than a
        plain request (a refused websocket upgrade, an operation event), so it
        validates, renders and raises like any other. Its request (a ``GET``
        of ``url``) was not sent as such."""
        response = requests.Response()
        response.status_code = status_code
        response.reason = reason
        response.headers = requests.structures.CaseInsensitiveDict(headers or {})
        response._content = body
        response.url = url
        response.request = requests.Request("GET", url).prepare()
        return APIResult(owner, response, route=self.route(self.members.of(url)),
                         elapsed=elapsed, waited=waited)

    # -- websockets ---------------------------------------------------------------

    def websocket(self, owner: Waits, path: str, params: Optional[Mapping[str, Any]] = None,
                  timeout: TimeoutLike = None) -> WebSocketConnection:
        """A websocket at an API path, moving on to the next member when one
        cannot be reached (nothing is sent before the upgrade); a refused
        upgrade raises the :class:`APIException` its answer means."""
        limits = self.timeout if timeout is None else Timeout.coerce(timeout)
        traced = self.tracer is not None and logger.isEnabledFor(logging.DEBUG)
        url = self.url(path)
        endpoint = self.members.of(url)
        for tried in range(1, len(self.members) + 1):
            prepared = requests.Request("GET", url, params=dict(params or {})).prepare()
            sent = prepared.url or url
            line = f"GET {endpoint.describe_url(sent, self.options.unsafe)}"
            try:
                return self.transport.websocket(endpoint, sent[len(endpoint.base_url):],
                                                timeout=limits, traced=traced, line=line)
            except UpgradeRefused as refused:
                result = self.made_result(owner, sent, refused.status, refused.body,
                                          reason=refused.reason, headers=refused.headers,
                                          elapsed=refused.elapsed)
                if self.tracer is not None:
                    self.tracer.trace(result.exchange)
                result.validate()
                raise APIConnectionError(  # validate() raises for any status >= 400
                    f"{line}: the server refused the websocket upgrade with HTTP "
                    f"{refused.status}", endpoint=endpoint.display) from refused
            except (APIConnectionError, APITimeoutError) as failed:
                if tried == len(self.members) or failed.sent is not False:
                    raise
                before, endpoint = endpoint, self.members.advance(endpoint)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("apitx: %s; nothing was sent, trying %s", failed,
                                 endpoint.display)
                url = endpoint.base_url + url[len(before.base_url):]
        raise AssertionError("unreachable: the last member's failure is raised")

    # -- curl ---------------------------------------------------------------------

    def curl(self, prepared: requests.PreparedRequest) -> str:
        """The curl command for a prepared request, redacted; nothing is sent."""
        exchange = Exchange.from_request(prepared, self.members.of(prepared.url or ""),
                                         cert=self.transport.cert, verify=self.transport.verify)
        try:
            return render_curl(exchange, self.options, strict=True)
        except ValueError as exc:
            raise RequestError(str(exc)) from None


def _with_query(url: str, params: Params) -> str:
    """``url`` with ``params`` encoded as requests would, for a message about a
    request that could not be prepared (params it cannot encode are left out)."""
    try:
        probe = requests.PreparedRequest()
        probe.prepare_url(url, params)
        return probe.url or url
    except (requests.RequestException, ValueError, TypeError):
        return url

