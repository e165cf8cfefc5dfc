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

Example: the sender :meth:`API.factory <apitx.API.factory>` made
(``Sender(session, transport, Members([endpoint]), version='1.0', ...)``),
sending for its API:

>>> from apitx import API
>>> api = API.factory()
>>> api._sender.request(api, 'GET', 'instances', project=None, target=None)
<APIResult GET unix:/var/lib/lxd/unix.socket /1.0/instances HTTP/200>
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import requests
from requests.utils import get_netrc_auth

from . import _checks
from ._config import Timeout, TimeoutLike, TraceSettings
from ._endpoint import Endpoint
from ._exceptions import (APIConnectionError, APITimeoutError, RequestError,
                          RequestTypeError, SettingsError)
from ._failover import Members
from ._prepare import (arguments_problem, checked_method, header_problem, request_timeout,
                       shown_name, with_defaults, with_query)
from ._render import Exchange, request_line
from ._result import APIResult, Waits
from ._sending import MAX_REDIRECTS, SenderBase
from ._transports import CALLER_MISTAKES, Transport, UpgradeRefused, mistake
from ._types import USE_DEFAULT, Headers, Params, UseDefault

if TYPE_CHECKING:  # a type only: importing it imports websocket-client
    from ._transports import WebSocketConnection

class Sender(SenderBase[Transport]):
    """Prepares and sends requests for an API and its siblings (see the module)."""

    def __init__(self, session: requests.Session, transport: Transport, members: Members, *,
                 version: Optional[str], timeout: Timeout, trace: TraceSettings,
                 max_answer_bytes: int) -> None:
        super().__init__(transport, members, version=version, timeout=timeout, trace=trace,
                         max_answer_bytes=max_answer_bytes)
        self.session = session
        for name, value in session.headers.items():
            problem = header_problem(name, value)
            if problem:
                raise SettingsError(f"the session's header {shown_name(name)} {problem}: fix "
                                    "session.headers before making the API")

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

        def line() -> str:
            return request_line(Exchange(self.members.current, method,
                                         _with_query(full_url, params)), self.options)

        # requests would take a float body or a str of headers as far as the
        # socket (or an AttributeError of its own): refused here, by type.
        problem = arguments_problem(data, headers)
        if problem:
            raise RequestTypeError(f"{line()}: {problem}; nothing was sent")
        refused: Optional[RequestError] = None
        try:
            prepared = prepared_request(self.session, method, full_url, params=params,
                                        json=json, data=data, headers=headers)
        except (*CALLER_MISTAKES, TypeError) as exc:
            # json= that JSON cannot encode raises TypeError inside requests;
            # other arguments of the wrong type too.
            kind = RequestError if isinstance(exc, CALLER_MISTAKES) else RequestTypeError
            refused = kind(f"{line()}: {mistake(exc, headers)}; nothing was sent")
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
        if not isinstance(stream, bool):  # it picks the body policy, by key
            raise RequestTypeError(f"{self.line(prepared)}: stream={stream!r}: give True or "
                                   "False; nothing was sent")
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
                step = self.next_member(failed, tried, endpoint, prepared.method, prepared.body,
                                        prepared.url or "")
                if step is None:
                    raise
                endpoint, prepared = step[0], prepared.copy()
                prepared.url = step[1]
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
        policy = self.reading[stream]
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
        """The request a redirect asks for, if it stays on this endpoint."""
        target, method = self.redirect(result)
        if method is None:
            prepared: requests.PreparedRequest = result.request.copy()
            prepared.prepare_url(target, None)
            return prepared
        return prepared_request(self.session, method, target)

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
        params = _checks.optional_mapping(params, f"websocket({path!r}, params)")
        url = with_query(self.url(path), dict(params or {}))
        endpoint = self.members.of(url)
        for tried in range(1, len(self.members) + 1):
            line = f"GET {endpoint.describe_url(url, self.options.unsafe)}"
            try:
                return self.transport.websocket(endpoint, url[len(endpoint.base_url):],
                                                timeout=limits, traced=self.traced(), line=line,
                                                max_message=self.max_answer_bytes)
            except UpgradeRefused as refusal:
                raise self.refused(refusal, lambda *a, **k: self.made_result(owner, *a, **k),
                                   url, line, endpoint) from refusal
            except (APIConnectionError, APITimeoutError) as failed:
                step = self.next_member(failed, tried, endpoint, "GET", None, url)
                if step is None:
                    raise
                endpoint, url = step
        raise AssertionError("unreachable: the last member's failure is raised")

    # -- curl ---------------------------------------------------------------------

    def curl(self, prepared: requests.PreparedRequest) -> str:
        """The curl command for a prepared request, redacted; nothing is sent."""
        from ._curl import render_curl  # curl lines are asked for: not every start pays

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


# -- requests' session preparation, without the merges that change nothing ------------

# What a params= of each of these types becomes is the same whether or not it
# goes through requests' merge with an empty session.params (see below).
_PASSED_AS_GIVEN = (dict, list, tuple, str, bytes)


def prepared_request(session: requests.Session, method: str, url: str, *, params: Params = None,
                     json: Any = None, data: Any = None,
                     headers: Headers = None) -> requests.PreparedRequest:
    """What ``session.prepare_request(requests.Request(method, url, ...))``
    makes, made without the merges that would change nothing.

    Why: on Python 3.11, ``Session.prepare_request()`` costs about 115 us of a
    request to LXD's socket that costs apitx about 800 us in all. Most of it is
    merging the request's settings with the session's: each merge of two
    mappings runs ``isinstance()`` against requests' runtime-checkable
    ``SupportsItems`` protocol twice, and before Python 3.12 such a check
    walks the protocol's attributes every time. When the session adds nothing
    (no cookies, auth, params or response hooks, no header set to None) and
    the request has no headers of its own, those merges give back what went
    in, and ``PreparedRequest.prepare()`` alone makes the same request
    (``tests/test_sender.py`` holds the two equal): about 40 us. A session
    that adds anything, now or later (a server's cookie, a hook appended by a
    test), takes requests' own path on that request.

    >>> from apitx import API
    >>> prepared_request(API.factory().session, 'get', 'http+unix://lxd/1.0', params={'a': 1}).url
    'http+unix://lxd/1.0?a=1'
    """
    if headers or not _adds_nothing(session, params):
        return session.prepare_request(requests.Request(
            method, url, params=params, json=json, data=data, headers=headers))
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method, url=url, data=data, json=json, params=params,
                     headers=session.headers,
                     # As requests does: a session that reads the environment
                     # (apitx's for HTTPS, for its proxies) sends ~/.netrc's
                     # credentials for the host, looked up for each request.
                     auth=get_netrc_auth(url) if session.trust_env else None)
    return prepared


def _adds_nothing(session: requests.Session, params: Params) -> bool:
    """Whether ``Session.prepare_request()`` would take nothing from ``session``
    but its headers, and take those unchanged, for a request with ``params``.

    Each test is one branch of requests' merges: ``merge_cookies`` (no
    cookies), ``merge_setting`` of the auth (none in the session: then the
    request's is ``~/.netrc``'s, if the session reads the environment),
    ``merge_hooks`` (it returns the request's own hooks when the session's
    response hooks are ``[]``), ``merge_setting`` of the params
    (with none in the session, a dict comes back as the same pairs without
    the ``None`` values, which the URL's encoding drops anyway, and the other
    types come back as they went in; another mapping type, say a multi-dict,
    goes through requests) and of the headers (with none of the request's
    own, the merge copies the session's without those set to ``None``:
    a session with such a header goes through requests too).
    """
    hooks = session.hooks
    return (session.auth is None and not session.params
            and not session.cookies
            and (hooks is None or hooks.get("response") == [])
            and (params is None or type(params) in _PASSED_AS_GIVEN)
            and None not in session.headers.values())
