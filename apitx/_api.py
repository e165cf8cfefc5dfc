"""The entry point: :class:`API` sends requests and returns :class:`APIResult`.

Example::

    api = API.factory()                                   # the local LXD
    api.get('').metadata['api_version']                   # GET /1.0
    api.post('instances', json=config).wait()             # create, and wait
    api.get('instances/c1', validate=False).status_code   # branch instead of raising
"""

from __future__ import annotations

import copy
import logging
import math
import re
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from . import _envelope
from ._config import DEFAULT_TIMEOUT, Timeout, TimeoutLike, TraceLike, TraceSettings
from ._curl import render_curl
from ._endpoint import Endpoint
from ._exceptions import (APIConnectionError, APIException, APINotFoundException,
                          APITimeoutError, APITXError, EndpointError, MissingExtension,
                          RequestError, RequestTypeError, ResponseTooLarge,
                          SettingsError)
from ._events import EventStream, events
from ._exec import ExecControl, ExecResult, run_exec
from ._exec import Input as ExecInput
from ._exec import Output as ExecOutput
from ._files import Files
from ._websocket import WebSocketConnection, open_websocket
from ._pinning import FingerprintLike, PinningAdapter, pin_for
from ._redact import redact_url
from ._remotes import apply_remote
from ._render import Exchange, request_line
from ._resource import Resource, Segment
from ._result import APIResult, Progress, is_json
from ._server import Server, ServerOnce
from ._tracing import Tracer, logger
from ._transport import StrictLengthAdapter, UnixSocketAdapter, deadline, translate_error
from ._types import USE_DEFAULT, Cert, Headers, Params, UseDefault
from ._waiting import Poll, wait_operations

#: Each poll of ``wait()`` asks LXD to hold the answer this long at most, so a
#: daemon that dies during a long operation is noticed within this time.
POLL_SECONDS = 30
#: Polls this short when waiting without events (with a progress callback, or
#: on many operations: LXD forgets one 5 s after it ends, so each is checked
#: at least this often).
PROGRESS_POLL_SECONDS = 1
#: A poll's HTTP read timeout exceeds its server-side ``timeout`` by this much:
#: LXD answers a timed-out wait only after the full ``timeout``, and a client
#: that gives up first kills a healthy request with ReadTimeout.
POLL_READ_MARGIN = 10.0

#: How many redirects ``follow_redirects=True`` follows.
MAX_REDIRECTS = 5
#: The largest answer apitx reads for the caller (JSON, an error's detail),
#: decompressed: LXD's largest answers (recursion=2 listings) are megabytes.
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
#: Bodies are read in pieces of this size.
BODY_PIECE = 1 << 16

#: What requests refuses before sending: the caller's arguments, not the
#: server or the connection, are at fault.
_CALLER_MISTAKES = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidJSONError,
                    requests.exceptions.InvalidURL)


def _mistake(exc: Exception, headers: Headers) -> str:
    """What was wrong, without quoting a header's value (it may be a token)."""
    if isinstance(exc, requests.exceptions.InvalidHeader):
        names = [str(name) for name, value in dict(headers or {}).items()
                 if not isinstance(value, (str, bytes)) or str(value) != str(value).strip()
                 or any(c in str(value) for c in "\r\n")]
        which = f"header {', '.join(names)}" if names else "a header"
        return (f"{which} cannot be sent: a value must be a str or bytes with no CR/LF "
                "and no leading or trailing whitespace")
    return f"{type(exc).__name__}: {exc}"


class API:
    """A connection to one LXD-style API server.

    ``session`` is a ``requests.Session`` (apitx mounts its Unix socket adapter
    on it when the endpoint is a socket); ``endpoint`` an :class:`Endpoint` or
    any string :meth:`Endpoint.parse` accepts; ``default_version`` the version
    prefix of relative URLs (``'1.0'``: ``'instances'`` means
    ``/1.0/instances``; None: no prefix); ``timeout`` the default for every
    request (see :class:`Timeout`; None means no limit); ``max_answer_bytes``
    the largest JSON answer or error detail apitx reads, decompressed
    (:class:`ResponseTooLarge` beyond it); ``trace`` how
    transactions are traced and rendered (see :meth:`TraceSettings.coerce`:
    None follows ``DEBUG`` and ``APITX_DEBUG*``, read here, once); ``debug``
    turns tracing on.

    ``project`` and ``target`` are added to every request's query (as
    ``project=`` and ``target=``) unless the request names them itself (or
    ``all-projects``), as LXD's Go client does; :meth:`using` makes a
    sibling API with others.

    ``endpoint`` may also be a list of HTTPS endpoints, the members of a
    cluster: the API talks to the first that answers. A request that cannot
    reach a member (nothing was sent) moves on to the next, whatever its
    method; one that failed after it was sent moves on only if it is
    idempotent (GET, HEAD, PUT, DELETE) and its body can be sent again.
    Each attempt is traced.

    One API is safe to share between threads: requests' session and urllib3's
    pool are, and the API itself holds no per-request state.
    """

    def __init__(self, session: requests.Session, endpoint: EndpointsLike,
                 default_version: Optional[str] = None, debug: bool = False,
                 timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                 max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                 project: Optional[str] = None, target: Optional[str] = None) -> None:
        self.session = session
        #: Every endpoint the API may talk to; ``endpoint`` is the one in use.
        self.endpoints = _endpoints(endpoint)
        self._current = 0
        #: Added to every request's query unless it names them (see the class).
        self.project = project
        self.target = target
        if isinstance(max_answer_bytes, bool) or not isinstance(max_answer_bytes, int) \
                or max_answer_bytes <= 0:
            raise SettingsError(f"max_answer_bytes={max_answer_bytes!r}: give a positive "
                                f"number of bytes (default {DEFAULT_MAX_ANSWER_BYTES})")
        #: The largest JSON answer or error detail read, decompressed.
        self.max_answer_bytes = max_answer_bytes
        self.default_version = default_version.strip("/") if default_version else None
        self.timeout = Timeout.coerce(timeout)
        #: How this API traces and renders: read once, here.
        self.trace = TraceSettings.coerce(trace, debug=debug)
        self.render_options = self.trace.render
        self.debug = self.trace.enabled
        self.tracer = Tracer(self.trace) if self.trace.enabled else None
        for each in self.endpoints:
            prefix = each.base_url + "/"
            if each.socket_path:
                mounted = session.adapters.get(prefix)
                if isinstance(mounted, UnixSocketAdapter) and \
                        mounted.socket_path != each.socket_path:
                    # Every socket is reached through the same URL prefix: a second
                    # socket would silently take over the first API's traffic.
                    raise EndpointError(
                        f"this requests.Session already talks to unix:{mounted.socket_path}; "
                        f"give the API for {each.display} a session of its own")
                session.mount(prefix, UnixSocketAdapter(each.socket_path))
            elif type(session.get_adapter(prefix)) is HTTPAdapter:
                # Only requests' stock adapter is replaced: a caller's own
                # (retries, pool sizes) is theirs to keep.
                session.mount(prefix, StrictLengthAdapter())
        self._server = ServerOnce()  # api.server: GET /1.0, once

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint requests go to now (of :attr:`endpoints`)."""
        return self.endpoints[self._current]

    @property
    def _root(self) -> str:
        return self.endpoint.base_url + (f"/{self.default_version}" if self.default_version else "")

    def using(self, *, project: Union[Optional[str], UseDefault] = USE_DEFAULT,
              target: Union[Optional[str], UseDefault] = USE_DEFAULT) -> API:
        """A sibling API on the same session with other defaults (None: none).

        >>> api.using(project='web', target='m2').post('instances', json=config).wait()
        """
        sibling = copy.copy(self)
        if not isinstance(project, UseDefault):
            sibling.project = project
        if not isinstance(target, UseDefault):
            sibling.target = target
        return sibling

    @classmethod
    def factory(cls, endpoint: Optional[EndpointsLike] = None,
                default_version: Optional[str] = "1.0", *, cert: Cert = None,
                verify: Union[bool, str] = True, debug: bool = False,
                timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
                fingerprint: FingerprintLike = None, project: Optional[str] = None,
                target: Optional[str] = None) -> API:
        """Make an API with its own session.

        ``endpoint=None`` discovers the local LXD or Incus socket (see
        :meth:`Endpoint.discover`), ``'lxd'`` or ``'incus'`` one of that
        family; otherwise give a socket path, ``unix:///path``, or
        ``https://host:8443``. For HTTPS, ``cert=(crt,
        key)`` is the client certificate and ``verify`` the CA bundle or server
        certificate to trust (or False): a file of non-CA certificates is a pin
        (trusted as itself, by any name), ``fingerprint='sha256:…'`` pins by
        fingerprint (see _pinning.py). ``'name:'`` is a remote as ``lxc`` or
        ``incus`` keep it (see _remotes.py). A list of HTTPS endpoints is a
        cluster's members (see :class:`API`). ``debug``, ``timeout``,
        ``trace``, ``max_answer_bytes``, ``project`` and ``target`` are
        :class:`API`'s.

        >>> api = API.factory('https://10.0.0.5:8443', cert=('c.crt', 'c.key'), verify='server.crt')
        >>> api = API.factory('web:')
        >>> api = API.factory(['https://10.0.0.1:8443', 'https://10.0.0.2:8443'],
        ...                   cert=('c.crt', 'c.key'), verify='cluster.crt')
        """
        if endpoint is None or isinstance(endpoint, (str, Endpoint)):
            endpoint, cert, fingerprint, project = apply_remote(endpoint, cert, verify,
                                                                fingerprint, project)
        resolved = _endpoints(endpoint)
        if project is None:
            # Incus's per-user socket serves one project, user-<uid>: make
            # it the default, or every request would need project= by hand.
            project = resolved[0].project
        session = requests.Session()
        session.cert = cert
        session.verify = verify
        pin = pin_for(verify, fingerprint)
        if pin is not None:
            for each in resolved:
                if not each.base_url.startswith("https://"):
                    raise EndpointError(f"a pinned certificate needs an https:// endpoint, "
                                        f"not {each.display}: drop fingerprint=/verify=")
                session.mount(each.base_url + "/", PinningAdapter(pin))
        # Proxies and .netrc never apply to a Unix socket, and looking them up
        # in the environment is the largest single cost of a request (~12% of
        # client CPU, measured by bench/core.py). Remote endpoints keep them.
        session.trust_env = resolved[0].socket_path is None
        return cls(session, resolved, default_version=default_version, debug=debug,
                   timeout=timeout, trace=trace, max_answer_bytes=max_answer_bytes,
                   project=project, target=target)

    # -- requests -------------------------------------------------------------

    def url(self, url: str) -> str:
        """The full URL for an API path.

        ``''`` and ``'/'`` mean the version root (``/1.0``, never ``/1.0/``,
        which LXD answers 404); ``'instances'`` is relative to it; a path
        starting with ``/`` (such as the operation URLs LXD returns) is used
        as it is.
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a path string such as 'instances', got {url!r}")
        if url in ("", "/"):
            return self._root or self.endpoint.base_url + "/"
        if url.startswith("/"):
            return self.endpoint.base_url + url
        if "://" in url.split("?", 1)[0]:
            raise EndpointError(
                f"url {url!r} is a full URL: apitx takes paths ('instances', "
                f"'/1.0/instances'); the server is set by the API's endpoint "
                f"({self.endpoint.display})")
        return f"{self._root}/{url}"

    def request(self, method: str, url: str, *, params: Params = None, json: Any = None,
                data: Any = None, headers: Headers = None,
                timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT, stream: bool = False,
                validate: bool = True, follow_redirects: bool = False) -> APIResult:
        """Send one request; return its :class:`APIResult`, validated.

        ``params`` is the query, ``json`` a body to encode as JSON, ``data`` a
        raw body (bytes, str, or a file or iterator, streamed), ``headers``
        extra headers, ``timeout`` this request's (default: the API's; None:
        no limit), ``stream=True`` leaves a non-JSON body unread for
        ``iter_content()``. With ``validate=False`` the result is returned as
        it is, for callers who branch on ``result.ok`` and
        ``result.status_code``; transport failures still raise (there is no
        result to return). A redirect (3xx) is not followed, since LXD never
        sends one: it fails validation, unless ``follow_redirects=True``,
        which follows it within this API's endpoint only, never to another.

        Mistakes in the arguments raise :class:`RequestError` (or
        :class:`RequestTypeError`) before anything is sent. When tracing is
        on the transaction is logged before validation, so a failing request
        is always visible.

        >>> api.request('GET', 'instances', params={'recursion': 1}).metadata
        """
        prepared = self._prepare(method, url, params=params, json=json, data=data,
                                 headers=headers)
        if isinstance(timeout, UseDefault):
            chosen = self.timeout
        else:
            try:
                chosen = Timeout.coerce(timeout)
            except SettingsError as exc:
                kind = RequestTypeError if isinstance(exc, TypeError) else RequestError
                raise kind(f"{self._line(prepared)}: {exc}; nothing was sent") from None
        result = self._send(prepared, chosen, stream=stream, validate=False)
        for _ in range(MAX_REDIRECTS if follow_redirects else 0):
            if not result.response.is_redirect:
                break
            result = self._send(self._redirected(result), chosen, stream=stream, validate=False)
        return result.validate() if validate else result

    def _line(self, prepared: requests.PreparedRequest) -> str:
        """The request line of a prepared request, for messages."""
        return request_line(Exchange.from_request(prepared, self.endpoint), self.render_options)

    def _prepare(self, method: str, url: str, *, params: Params = None, json: Any = None,
                 data: Any = None, headers: Headers = None) -> requests.PreparedRequest:
        """The request as it will be sent, or RequestError naming what is wrong.

        Checked here, before anything is sent: the method (a bare word of
        letters: requests would send an empty one as a request with no
        method), the JSON body (JSON has no NaN, and only some types), and
        the headers (HTTP sends names that are tokens and values in
        Latin-1; http.client would raise UnicodeEncodeError mid-send).
        """
        full_url = self.url(url)
        if not isinstance(method, str):
            raise RequestTypeError(f"method {method!r} is not a string: give an HTTP method "
                                   "such as 'GET'; nothing was sent")
        if not _METHOD.fullmatch(method):
            raise RequestError(f"method {method!r} is not an HTTP method (GET, POST, PUT, "
                               "PATCH, DELETE, HEAD...); nothing was sent")
        refused: Optional[RequestError] = None
        try:
            if self.project is not None or self.target is not None:
                params = self._with_defaults(full_url, params)
            prepared = self.session.prepare_request(requests.Request(
                method.upper(), full_url, params=params, json=json, data=data, headers=headers))
        except (*_CALLER_MISTAKES, TypeError) as exc:
            # json= that JSON cannot encode raises TypeError inside requests;
            # other arguments of the wrong type too.
            kind = RequestError if isinstance(exc, _CALLER_MISTAKES) else RequestTypeError
            line = request_line(Exchange(self.endpoint, method.upper(),
                                         _with_query(full_url, params)), self.render_options)
            refused = kind(f"{line}: {_mistake(exc, headers)}; nothing was sent")
        if refused is not None:
            # Raised here, outside the except block, so that requests' own
            # exception (which quotes a bad header's value, maybe a token) is
            # neither its cause nor its context.
            raise refused
        for name, value in prepared.headers.items():
            problem = _header_problem(name, value)
            if problem:
                raise RequestError(f"{self._line(prepared)}: header {_shown_name(name)} "
                                   f"{problem}; nothing was sent")
        return prepared

    def _with_defaults(self, url: str, params: Params) -> Params:
        """``params`` with the API's project and target added, unless the
        request names them (in ``params`` or already in ``url``); a
        request for ``all-projects`` gets no project."""
        pairs = _pairs(params)
        named = {name for name, _ in pairs} | {
            name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        if self.project is not None and not named & {"project", "all-projects"}:
            pairs.append(("project", self.project))
        if self.target is not None and "target" not in named:
            pairs.append(("target", self.target))
        return pairs

    def _redirected(self, result: APIResult) -> requests.PreparedRequest:
        """The request a redirect asks for, if it stays on this endpoint.

        301, 302 and 303 become a GET without a body, as browsers do; 307
        and 308 repeat the method and body. A redirect elsewhere (another
        host, scheme, or off the Unix socket) is refused: it would carry the
        request's body and credentials to a server the caller never named.
        """
        target = _resolve(result.request.url or "", result.response.headers.get("Location") or "")
        if _origin(target) != _origin(self.endpoint.base_url):
            raise APIException(result, error=(
                f"the server redirects to {redact_url(target)}, off this endpoint "
                f"({self.endpoint.display}): apitx never follows a redirect elsewhere"))
        if result.status_code in (307, 308):
            prepared = result.request.copy()
            prepared.prepare_url(target, None)
            return prepared
        return self.session.prepare_request(requests.Request(
            "HEAD" if result.request.method == "HEAD" else "GET", target))

    def _send(self, prepared: requests.PreparedRequest, timeout: Timeout, *,
              stream: bool = False, validate: bool = True,
              waited_since: Optional[float] = None) -> APIResult:
        """Send a prepared request to the endpoint in use, moving on to the
        next of :attr:`endpoints` when it cannot be reached (see the class)."""
        while True:
            try:
                return self._send_once(prepared, timeout, stream=stream, validate=validate,
                                       waited_since=waited_since)
            except (APIConnectionError, APITimeoutError) as failed:
                if len(self.endpoints) == 1 or not _may_try_elsewhere(failed, prepared):
                    raise
                tried = getattr(prepared, "apitx_tried", 1)
                if tried >= len(self.endpoints):
                    raise
                before = self.endpoint
                self._current = (self._current + 1) % len(self.endpoints)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("apitx: %s; %s, trying %s", failed,
                                 "nothing was sent" if failed.sent is False else "idempotent",
                                 self.endpoint.display)
                prepared = prepared.copy()
                prepared.url = self.endpoint.base_url + (prepared.url or "")[len(before.base_url):]
                prepared.apitx_tried = tried + 1  # type: ignore[attr-defined]

    def _send_once(self, prepared: requests.PreparedRequest, timeout: Timeout, *,
                   stream: bool = False, validate: bool = True,
                   waited_since: Optional[float] = None) -> APIResult:
        """Send a prepared request and read what apitx must read of the answer.

        The answer always comes as a stream, and apitx reads the body itself
        unless the caller streams a non-JSON one: JSON and error bodies up to
        ``max_answer_bytes`` (decompressed), others whole. The request's
        total deadline holds from connecting to the last byte.
        ``waited_since`` is when a wait() began, so each of its answers knows
        how long the wait has taken.
        """
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
        # session's own verify= (psf/requests#3829): LXD's self-signed
        # certificate, given as verify='server.crt', would be ignored
        # wherever those are set. Passing it per request makes it win.
        cert, verify = self.session.cert, self.session.verify
        started = time.perf_counter()
        until = timeout.deadline(time.monotonic())
        refused: Optional[RequestError] = None
        try:
            with deadline(until):
                settings = self.session.merge_environment_settings(
                    prepared.url, {}, True, verify, cert)
                response = self.session.send(prepared, timeout=timeout.as_requests(),
                                             allow_redirects=False, **settings)
                # Inside the try: a connection that breaks while a JSON body
                # is read must raise, not parse to None and pass validation.
                # An error's body is read even with stream=True: it is its
                # detail (a proxy's page), not the caller's data.
                if response.status_code >= 400 or is_json(response):
                    self._read_body(response, prepared, self.max_answer_bytes)
                elif not stream:
                    self._read_body(response, prepared, None)
            result = APIResult(
                self, response, endpoint=self.endpoint, options=self.render_options,
                cert=cert, verify=verify, elapsed=time.perf_counter() - started,
                waited=None if waited_since is None else time.monotonic() - waited_since,
                deadline=until)
        except _CALLER_MISTAKES as exc:
            refused = RequestError(f"{self._line(prepared)}: {_mistake(exc, prepared.headers)}; "
                                   "nothing was sent")
        except (requests.RequestException, OSError) as exc:
            raise translate_error(exc, self.endpoint, self._line(prepared)) from exc
        if refused is not None:
            raise refused  # outside the except block: see _prepare
        if self.tracer is not None:
            self.tracer.trace(result.exchange)
        return result.validate() if validate else result

    def _read_body(self, response: requests.Response, prepared: requests.PreparedRequest,
                   limit: Optional[int]) -> None:
        """Read a body whole (decompressed), refusing more than ``limit`` bytes.

        A compressed or chunked answer has no size until it is read: 0.5 MB of
        gzip grew to 2 GB here before this limit. Counting the decoded
        pieces as they come keeps memory within the limit.
        """
        pieces = []
        size = 0
        for piece in response.iter_content(BODY_PIECE):
            size += len(piece)
            if limit is not None and size > limit:
                response.close()
                raise ResponseTooLarge(
                    f"{self._line(prepared)}: the answer is larger than {limit} bytes "
                    f"(max_answer_bytes); the connection was closed. Raise "
                    "API(max_answer_bytes=...) if it is legitimately this large")
            pieces.append(piece)
        response._content = b"".join(pieces)  # type: ignore[attr-defined]

    def get(self, url: str, *, params: Params = None, headers: Headers = None,
            timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT, stream: bool = False,
            validate: bool = True) -> APIResult:
        """``request('GET', url, ...)``."""
        return self.request("GET", url, params=params, headers=headers, timeout=timeout,
                            stream=stream, validate=validate)

    def head(self, url: str, *, params: Params = None, headers: Headers = None,
             timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
             validate: bool = True) -> APIResult:
        """``request('HEAD', url, ...)``."""
        return self.request("HEAD", url, params=params, headers=headers, timeout=timeout,
                            validate=validate)

    def delete(self, url: str, *, params: Params = None, json: Any = None,
               headers: Headers = None, timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
               validate: bool = True) -> APIResult:
        """``request('DELETE', url, ...)``."""
        return self.request("DELETE", url, params=params, json=json, headers=headers,
                            timeout=timeout, validate=validate)

    def post(self, url: str, *, params: Params = None, json: Any = None, data: Any = None,
             headers: Headers = None, timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
             stream: bool = False, validate: bool = True) -> APIResult:
        """``request('POST', url, ...)``."""
        return self.request("POST", url, params=params, json=json, data=data, headers=headers,
                            timeout=timeout, stream=stream, validate=validate)

    def put(self, url: str, *, params: Params = None, json: Any = None, data: Any = None,
            headers: Headers = None, timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
            stream: bool = False, validate: bool = True) -> APIResult:
        """``request('PUT', url, ...)``."""
        return self.request("PUT", url, params=params, json=json, data=data, headers=headers,
                            timeout=timeout, stream=stream, validate=validate)

    def patch(self, url: str, *, params: Params = None, json: Any = None, data: Any = None,
              headers: Headers = None, timeout: Union[TimeoutLike, UseDefault] = USE_DEFAULT,
              stream: bool = False, validate: bool = True) -> APIResult:
        """``request('PATCH', url, ...)``."""
        return self.request("PATCH", url, params=params, json=json, data=data, headers=headers,
                            timeout=timeout, stream=stream, validate=validate)

    def curl(self, method: str, url: str, *, params: Params = None, json: Any = None,
             data: Any = None, headers: Headers = None) -> str:
        """The curl command that would send this request, redacted; nothing is sent.

        Raises :class:`RequestError` when the body cannot be put on a command
        line (a stream with no file name, binary data over the body limit).

        >>> api.curl('GET', 'instances')
        'curl --unix-socket /var/lib/lxd/unix.socket http://lxd/1.0/instances'
        """
        prepared = self._prepare(method, url, params=params, json=json, data=data,
                                 headers=headers)
        exchange = Exchange.from_request(prepared, self.endpoint, cert=self.session.cert,
                                         verify=self.session.verify)
        try:
            return render_curl(exchange, self.render_options, strict=True)
        except ValueError as exc:
            raise RequestError(str(exc)) from None

    # -- operations -----------------------------------------------------------

    def wait(self, result: APIResult, timeout: Optional[float] = None,
             progress: Optional[Progress] = None) -> APIResult:
        """Wait for a result's operation to end; return the final, validated result.

        On a sync result, returns the result itself (validated), unless it is
        the answer to ``GET /1.0/operations/<id>`` for an operation still
        running: that one is waited on too. On an async one, long-polls
        ``<operation>/wait?timeout=N`` until the operation ends: success
        returns that last answer (its ``metadata`` is the finished
        operation); failure or cancellation raises :class:`APIException` with
        LXD's ``err``. When ``timeout`` seconds (rounded up to whole seconds,
        as LXD takes them; None or ``math.inf``: no limit) pass and the
        operation still runs, raises :class:`OperationTimeout` carrying the
        last answer: a running operation is never returned as if done.

        ``progress`` is called with each update of the operation while it
        runs, as an :class:`APIResult` whose ``metadata`` is the operation
        (with LXD's progress figures) and ``waited`` the seconds so far:
        the updates come from the event stream (``/1.0/events?type=operation``,
        subscribed before the operation is checked once, so none is missed;
        an update's answer is made from its event, not fetched), and, between
        updates, the last state again each second, so a clock shown beside it
        ticks. The final answer is fetched as without ``progress``. A server
        with no event stream is polled instead, 1 s at a time.

        >>> api.wait(api.post('instances', json=config), timeout=120,
        ...          progress=lambda answer: print(answer.metadata['metadata']))
        """
        operation = _waitable(result)
        if operation is None:
            return result
        limit = _wait_limit(timeout)
        started = time.monotonic()
        [outcome] = wait_operations(
            self, [operation], self._poller(started), started=started,
            until=None if limit is None else started + limit,
            longest=POLL_SECONDS if progress is None else PROGRESS_POLL_SECONDS,
            watch=progress is not None, progress=progress)
        if isinstance(outcome, APIException):
            raise outcome
        return outcome

    def wait_all(self, results: Sequence[APIResult], timeout: Optional[float] = None,
                 return_exceptions: bool = False) -> List[Union[APIResult, APIException]]:
        """Wait for many results' operations at once; return their final
        results in the order given.

        One event stream watches them all (subscribed before each operation
        is checked once, so one that ends meanwhile is not missed); without
        events, one poll round a second checks them all. Each result is
        what :meth:`wait` would return for it (a sync one passes through).
        All are waited for; then the first failure in the order given
        raises as :meth:`wait` raises it, or, with
        ``return_exceptions=True``, each failure (:class:`APIException`)
        is returned in its place. When ``timeout`` seconds pass (rounded up
        as :meth:`wait` does), :class:`OperationTimeout` is raised for the
        first operation still running.

        >>> started = [api.post(f'instances/{n}/exec', json=cmd) for n in names]
        >>> done = api.wait_all(started, timeout=600)
        """
        limit = _wait_limit(timeout)
        started = time.monotonic()
        outcomes: List[Union[APIResult, APIException]] = []
        waiting: Dict[int, str] = {}
        for index, result in enumerate(results):
            try:
                operation = _waitable(result)
            except APIException as failed:
                outcomes.append(failed)
                continue
            outcomes.append(result)
            if operation is not None:
                waiting[index] = operation
        if waiting:
            ended = wait_operations(self, list(waiting.values()), self._poller(started),
                                    started=started,
                                    until=None if limit is None else started + limit,
                                    longest=PROGRESS_POLL_SECONDS, watch=True)
            for index, outcome in zip(waiting, ended):
                outcomes[index] = outcome
        if not return_exceptions:
            for outcome in outcomes:
                if isinstance(outcome, APIException):
                    raise outcome
        return outcomes

    def _poller(self, started: float) -> Poll:
        """One poll of an operation, for a wait that began at ``started``."""
        return lambda operation, seconds: self._poll(operation, seconds, started)

    def _poll(self, operation: str, seconds: int, started: float) -> APIResult:
        """``GET <operation>/wait?timeout=seconds``: the operation running or
        ended; a failed one raises :class:`APIException` with LXD's ``err``."""
        # A cluster member that forwarded the request names the operation
        # with a query (``/1.0/operations/<id>?project=default``): ``/wait``
        # goes on the path, before it. (Appended after it, the request was a
        # plain GET answered at once: 367 polls for a 2-second operation.)
        path, _, query = operation.partition("?")
        url = path.rstrip("/") + "/wait" + (f"?{query}" if query else "")
        try:
            last = self._send(self._prepare("GET", url, params={"timeout": seconds}),
                              self.timeout.with_read(seconds + POLL_READ_MARGIN),
                              validate=False, waited_since=started)
            if last.type == "error" and last.status_code < 400:
                # Incus sends HTTP 200 as soon as a wait starts, so a poll
                # that times out ends as 200 with type: error ("context
                # deadline exceeded"), the same shape as a failure; with
                # timeout=0 it may say so even of an operation that ended
                # (Go's select picks either ready case: seen here). The
                # operation itself tells: running, ended, or failed.
                current = self._send(self._prepare("GET", operation), self.timeout,
                                     validate=False, waited_since=started)
                if _envelope.operation_code(current.metadata) is not None:
                    last = current
            # Every failure encoding (HTTP error status, type: error, or
            # HTTP 200 with a Failure operation inside) raises here.
            last.validate()
        except APINotFoundException as gone:
            raise _forgotten(gone, operation) from None
        if _envelope.operation_code(last.metadata) is None:
            # An HTML page from a proxy, an empty body: nothing says the
            # operation ended, and returning it would pass it off as done.
            raise APIException(last, error="the answer to a wait is not an operation: "
                               "cannot tell whether it ended")
        return last

    # -- websockets (exec, events: _exec.py, _events.py, _websocket.py) ---------

    def exec(self, instance: str, command: Sequence[str], *, stdin: ExecInput = None,
             env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
             user: Optional[int] = None, group: Optional[int] = None,
             timeout: Optional[float] = None, stdout: ExecOutput = None,
             stderr: ExecOutput = None, project: Optional[str] = None,
             terminal: Optional[Tuple[int, int]] = None,
             on_start: Optional[Callable[[ExecControl], Any]] = None) -> ExecResult:
        """Run a command in an instance with live streams; see :func:`apitx._exec.run_exec`.

        >>> api.exec('c1', ['sh', '-c', 'echo hi']).stdout
        b'hi\\n'
        """
        return run_exec(self, instance, command, stdin=stdin, env=env, cwd=cwd, user=user,
                        group=group, timeout=timeout, stdout=stdout, stderr=stderr,
                        project=project if project is not None else self.project,
                        terminal=terminal, on_start=on_start)

    def events(self, types: Optional[Iterable[str]] = None, project: Optional[str] = None,
               all_projects: bool = False, timeout: Optional[float] = None) -> EventStream:
        """The server's events (``/1.0/events``) as an iterator of :class:`Event`;
        see :func:`apitx._events.events`.

        >>> with api.events(types=['lifecycle']) as stream:
        ...     for event in stream: print(event.metadata['action'])
        """
        return events(self, types=types, project=project if project is not None else
                      None if all_projects else self.project, all_projects=all_projects,
                      timeout=timeout)

    def websocket(self, path: str, params: Optional[Mapping[str, Any]] = None,
                  timeout: TimeoutLike = None) -> WebSocketConnection:
        """A websocket at an API path, over this API's transport; see
        :func:`apitx._websocket.open_websocket`.

        >>> with api.websocket('events', {'type': 'lifecycle'}) as ws: ws.recv()
        """
        return open_websocket(self, path, params=params, timeout=timeout)

    # -- navigation (rules and reasons in _resource.py) ------------------------

    def __getattr__(self, name: str) -> Resource:
        """``api.instances`` is the resource ``/1.0/instances``; ``_names`` raise."""
        return getattr(Resource(self, ""), name)

    def __getitem__(self, item: Segment) -> Resource:
        """``api['get']``: a segment that would collide with a method name."""
        return Resource(self, "")[item]

    def __truediv__(self, item: Segment) -> Resource:
        """``api / 'instances' / 'c1'``."""
        return Resource(self, "") / item

    __iter__ = None  # __getitem__ must not make an API iterable

    def close(self) -> None:
        """Close the session and its pooled connections."""
        self.session.close()

    def __enter__(self) -> API:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<API {self.endpoint.display} version={self.default_version}>"

    # -- the server (what it is: _server.py; its file API: _files.py) ---------

    @property
    def server(self) -> Server:
        """What the server says about itself in ``GET /1.0``: LXD or Incus, its
        version, API extensions, ``auth`` and project (see :class:`Server`).

        Fetched on first use, once, whichever thread asks first (the others
        wait for that answer); a frozen value after that. With tracing on,
        the trace then says which server this API talks to, in one line.

        >>> api.server.name, api.server.version
        ('incus', '6.0.4')
        """
        return self._server.get(self._fetch_server)

    def _fetch_server(self) -> Server:
        # Always /1.0, whatever default_version: that is where an LXD-style
        # server describes itself.
        server = Server.from_metadata(self.get("/1.0").metadata)
        if self.tracer is not None:
            self.tracer.note(f"apitx: talking to {server} at {self.endpoint.display}")
        return server

    def has_extension(self, name: str) -> bool:
        """True when the server announces API extension ``name``.

        >>> api.has_extension('instance_bulk_state_change')
        """
        return self.server.has(name)

    def require(self, *names: str) -> Server:
        """Raise :class:`MissingExtension` unless the server has every one of
        these API extensions; return the server. Call it before a feature
        that needs them, to fail with a clear message instead of an obscure
        error halfway through.

        >>> api.require('container_exec_recording', 'file_delete')
        """
        server = self.server
        missing = server.missing(names)
        if missing:
            raise MissingExtension(
                f"{server} at {self.endpoint.display} lacks API extension"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: this needs a newer "
                f"{server.name or 'server'}, or a way that does without "
                f"(api.has_extension() tells which)", server=server.name,
                version=server.version, missing=missing)
        return server

    def files(self, instance: str, project: Optional[str] = None) -> Files:
        """The files of ``instance``, in this server's dialect (see :class:`Files`).

        >>> api.files('c1').push('/etc/motd', 'hello\\n', mode=0o644)
        """
        return Files(self, instance, project=project)


def _with_query(url: str, params: Params) -> str:
    """``url`` with ``params`` encoded as requests would, for a message about a
    request that could not be prepared (params it cannot encode are left out)."""
    try:
        probe = requests.PreparedRequest()
        probe.prepare_url(url, params)
        return probe.url or url
    except (requests.RequestException, ValueError, TypeError):
        return url


#: Methods are bare words of letters (HTTP allows more, LXD uses these).
_METHOD = re.compile(r"[A-Za-z]+")
#: A header name: an RFC 7230 token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _header_problem(name: Any, value: Any) -> Optional[str]:
    """What is wrong with one header as HTTP would send it, or None."""
    if not isinstance(name, (str, bytes)) or not _TOKEN.fullmatch(
            name if isinstance(name, str) else name.decode("latin-1")):
        return "has a name that is not an HTTP token (letters, digits and !#$%&'*+.^_`|~-)"
    if isinstance(value, str):
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return ("has a value HTTP cannot carry (headers are Latin-1): encode it, e.g. "
                    "percent-encoding or base64")
    return None


def _shown_name(name: Any) -> str:
    """A header name as a message may show it (never its value)."""
    return repr(name) if isinstance(name, str) and _TOKEN.fullmatch(name) else "(name not shown)"


def _resolve(base: str, location: str) -> str:
    """A Location resolved against the request's URL. urljoin() leaves a
    relative Location alone for schemes it does not know (``http+unix``),
    so the join is made as http and the scheme put back."""
    parts = urlsplit(base)
    joined = urlsplit(urljoin(urlunsplit(("http",) + tuple(parts[1:])), location))
    return urlunsplit((parts.scheme if joined.scheme == "http" and not urlsplit(location).scheme
                       else joined.scheme,) + tuple(joined[1:]))


def _origin(url: str) -> str:
    """``scheme://host:port`` of a URL, lower-cased, for comparing endpoints."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _wait_limit(timeout: Any) -> Optional[float]:
    """wait()'s ``timeout`` as seconds, or None for no limit; a mistake raises."""
    if timeout is None or timeout == math.inf:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise RequestTypeError(f"wait(timeout={timeout!r}): give seconds as a number >= 0, "
                               "or None to wait until the operation ends")
    if math.isnan(timeout) or timeout < 0:
        raise RequestError(f"wait(timeout={timeout!r}): give seconds >= 0, or None to wait "
                           "until the operation ends")
    return float(timeout)


def _waitable(result: APIResult) -> Optional[str]:
    """The operation to wait on for a result (validated first), or None when
    the result is final as it is: a sync answer, unless it is an operation
    still running (``GET /1.0/operations/<id>``)."""
    result.validate()
    operation = result.operation
    if not operation or (result.type != "async" and not result.running):
        return None
    return operation


def _forgotten(gone: APINotFoundException, operation: str) -> APINotFoundException:
    """The 404 of a wait, saying what it means: the operation is over, and
    the server has forgotten it (LXD keeps a finished operation about 5 s)."""
    return APINotFoundException(gone.result, status_code=404, error=(
        f"{gone.error}: operation {_envelope.operation_id(operation)} is unknown to the server; if "
        "it was started, it ended and was forgotten (LXD keeps a finished operation about "
        "5 s). To keep its outcome, wait on it at once after starting it, or watch events"))


#: One endpoint, or the members of a cluster.
EndpointsLike = Union[Endpoint, str, Sequence[Union[Endpoint, str]]]


def _endpoints(given: Optional[EndpointsLike]) -> Tuple[Endpoint, ...]:
    """The endpoints an API talks to: one (None and ``'lxd'``/``'incus'``
    discover it), or a cluster's HTTPS members."""
    if given is None or isinstance(given, (str, Endpoint)):
        return (Endpoint.resolve(given),)
    if not isinstance(given, (list, tuple)) or not given:
        raise EndpointError(f"endpoint={given!r}: give one endpoint, or a non-empty list of "
                            "https:// endpoints (a cluster's members)")
    endpoints = tuple(Endpoint.coerce(each) for each in given)
    if len(endpoints) > 1 and any(each.socket_path for each in endpoints):
        raise EndpointError("a list of endpoints is for a cluster's members over HTTPS; a Unix "
                            f"socket reaches one daemon: {', '.join(e.display for e in endpoints)}")
    return endpoints


def _pairs(params: Params) -> List[Tuple[str, Any]]:
    """Query parameters as ``(name, value)`` pairs, in the order given."""
    if params is None:
        return []
    if isinstance(params, (str, bytes)):
        text = params.decode() if isinstance(params, bytes) else params
        return list(parse_qsl(text, keep_blank_values=True))
    if isinstance(params, Mapping):
        return list(params.items())
    return [tuple(pair) for pair in params]  # type: ignore[misc]


#: Methods that do the same thing however often they are sent.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _may_try_elsewhere(failed: APITXError, prepared: requests.PreparedRequest) -> bool:
    """True when a request that failed may be sent to another member: it
    never left (any method), or it is idempotent and its body (none, bytes
    or text) can be sent again; a stream already read cannot."""
    if failed.sent is False:
        return True
    return (prepared.method or "") in _IDEMPOTENT and (
        prepared.body is None or isinstance(prepared.body, (bytes, str)))
