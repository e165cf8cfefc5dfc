"""The entry point: :class:`API` sends requests and returns :class:`APIResult`.

Example::

    api = API.factory()                                   # the local LXD
    api.get('').metadata['api_version']                   # GET /1.0
    api.post('instances', json=config).wait()             # create, and wait
    api.get('instances/c1', validate=False).status_code   # branch instead of raising
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Union

import requests
from requests.adapters import HTTPAdapter

from . import _envelope
from ._config import DEFAULT_TIMEOUT, Timeout, TimeoutLike, TraceLike, TraceSettings
from ._curl import render_curl
from ._endpoint import Endpoint
from ._exceptions import APIException, EndpointError, OperationTimeout, RequestError
from ._pinning import FingerprintLike, PinningAdapter, pin_for
from ._remotes import apply_remote
from ._render import Exchange, request_line
from ._resource import Resource, Segment
from ._result import APIResult, Progress
from ._tracing import Tracer
from ._transport import StrictLengthAdapter, UnixSocketAdapter, translate_error
from ._types import USE_DEFAULT, Cert, Headers, Params, UseDefault

#: Each poll of ``wait()`` asks LXD to hold the answer this long at most, so a
#: daemon that dies during a long operation is noticed within this time.
POLL_SECONDS = 30
#: With a progress callback, polls are this short, so it is called this often.
PROGRESS_POLL_SECONDS = 1
#: A poll's HTTP read timeout exceeds its server-side ``timeout`` by this much:
#: LXD answers a timed-out wait only after the full ``timeout``, and a client
#: that gives up first kills a healthy request with ReadTimeout.
POLL_READ_MARGIN = 10.0

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
    request (see :class:`Timeout`; None means no limit); ``trace`` how
    transactions are traced and rendered (see :meth:`TraceSettings.coerce`:
    None follows ``DEBUG`` and ``APITX_DEBUG*``, read here, once); ``debug``
    turns tracing on.

    One API is safe to share between threads: requests' session and urllib3's
    pool are, and the API itself holds no per-request state.
    """

    def __init__(self, session: requests.Session, endpoint: Union[Endpoint, str],
                 default_version: Optional[str] = None, debug: bool = False,
                 timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None) -> None:
        self.session = session
        self.endpoint = Endpoint.coerce(endpoint)
        self.default_version = default_version.strip("/") if default_version else None
        self.timeout = Timeout.coerce(timeout)
        #: How this API traces and renders: read once, here.
        self.trace = TraceSettings.coerce(trace, debug=debug)
        self.render_options = self.trace.render
        self.debug = self.trace.enabled
        self.tracer = Tracer(self.trace) if self.trace.enabled else None
        prefix = self.endpoint.base_url + "/"
        if self.endpoint.socket_path:
            mounted = session.adapters.get(prefix)
            if isinstance(mounted, UnixSocketAdapter) and \
                    mounted.socket_path != self.endpoint.socket_path:
                # Every socket is reached through the same URL prefix: a second
                # socket would silently take over the first API's traffic.
                raise EndpointError(
                    f"this requests.Session already talks to unix:{mounted.socket_path}; "
                    f"give the API for {self.endpoint.display} a session of its own")
            session.mount(prefix, UnixSocketAdapter(self.endpoint.socket_path))
        elif type(session.get_adapter(prefix)) is HTTPAdapter:
            # Only requests' stock adapter is replaced: a caller's own
            # (retries, pool sizes) is theirs to keep.
            session.mount(prefix, StrictLengthAdapter())
        self._root = self.endpoint.base_url + (f"/{self.default_version}" if self.default_version else "")

    @classmethod
    def factory(cls, endpoint: Optional[Union[Endpoint, str]] = None,
                default_version: Optional[str] = "1.0", *, cert: Cert = None,
                verify: Union[bool, str] = True, debug: bool = False,
                timeout: TimeoutLike = DEFAULT_TIMEOUT, trace: TraceLike = None,
                fingerprint: FingerprintLike = None, project: Optional[str] = None) -> API:
        """Make an API with its own session.

        ``endpoint=None`` discovers the local LXD socket (``$LXD_SOCKET``,
        ``$LXD_DIR/unix.socket``, the snap's, Debian's); otherwise give a socket
        path, ``unix:///path``, or ``https://host:8443``. For HTTPS, ``cert=(crt,
        key)`` is the client certificate and ``verify`` the CA bundle or server
        certificate to trust (or False): a file of non-CA certificates is a pin
        (trusted as itself, by any name), ``fingerprint='sha256:…'`` pins by
        fingerprint (see _pinning.py). ``'name:'`` is a remote as ``lxc`` or
        ``incus`` keep it (see _remotes.py); ``project`` adds ``?project=`` to
        every request. ``debug``, ``timeout`` and ``trace`` are :class:`API`'s.

        >>> api = API.factory('https://10.0.0.5:8443', cert=('c.crt', 'c.key'), verify='server.crt')
        >>> api = API.factory('web:')
        """
        endpoint, cert, fingerprint, project = apply_remote(endpoint, cert, verify,
                                                            fingerprint, project)
        resolved = Endpoint.discover() if endpoint is None else Endpoint.coerce(endpoint)
        session = requests.Session()
        session.cert = cert
        session.verify = verify
        pin = pin_for(verify, fingerprint)
        if pin is not None:
            if not resolved.base_url.startswith("https://"):
                raise EndpointError(f"a pinned certificate needs an https:// endpoint, not "
                                    f"{resolved.display}: drop fingerprint=/verify=")
            session.mount(resolved.base_url + "/", PinningAdapter(pin))
        if project:
            session.params = {"project": project}
        # Proxies and .netrc never apply to a Unix socket, and looking them up
        # in the environment is the largest single cost of a request (~12% of
        # client CPU, measured by bench/core.py). Remote endpoints keep them.
        session.trust_env = resolved.socket_path is None
        return cls(session, resolved, default_version=default_version, debug=debug,
                   timeout=timeout, trace=trace)

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
                validate: bool = True) -> APIResult:
        """Send one request; return its :class:`APIResult`, validated.

        ``params`` is the query, ``json`` a body to encode as JSON, ``data`` a
        raw body (bytes, str, or a file or iterator, streamed), ``headers``
        extra headers, ``timeout`` this request's (default: the API's; None:
        no limit), ``stream=True`` leaves a non-JSON body unread for
        ``iter_content()``. With ``validate=False`` the result is returned as
        it is, for callers who branch on ``result.ok`` and
        ``result.status_code``; transport failures still raise (there is no
        result to return).

        When tracing is on the transaction is logged before validation, so a
        failing request is always visible.

        >>> api.request('GET', 'instances', params={'recursion': 1}).metadata
        """
        prepared = self._prepare(method, url, params=params, json=json, data=data,
                                 headers=headers)
        return self._send(prepared, self.timeout if isinstance(timeout, UseDefault)
                          else Timeout.coerce(timeout), stream=stream, validate=validate)

    def _prepare(self, method: str, url: str, *, params: Params = None, json: Any = None,
                 data: Any = None, headers: Headers = None) -> requests.PreparedRequest:
        """The request as it will be sent, or RequestError naming what is wrong."""
        full_url = self.url(url)
        try:
            return self.session.prepare_request(requests.Request(
                method, full_url, params=params, json=json, data=data, headers=headers))
        except _CALLER_MISTAKES as exc:
            line = request_line(Exchange(self.endpoint, str(method), _with_query(full_url, params)),
                                self.render_options)
            raise RequestError(f"{line}: {_mistake(exc, headers)}; nothing was sent") from exc

    def _send(self, prepared: requests.PreparedRequest, timeout: Timeout, *,
              stream: bool = False, validate: bool = True,
              waited_since: Optional[float] = None) -> APIResult:
        """Send a prepared request; ``waited_since`` is when a wait() began,
        so each of its answers knows how long the wait has taken."""
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
        # session's own verify= (psf/requests#3829): LXD's self-signed
        # certificate, given as verify='server.crt', would be ignored
        # wherever those are set. Passing it per request makes it win.
        cert, verify = self.session.cert, self.session.verify
        started = time.perf_counter()
        try:
            settings = self.session.merge_environment_settings(
                prepared.url, {}, stream, verify, cert)
            response = self.session.send(prepared, timeout=timeout.as_requests(),
                                         allow_redirects=True, **settings)
            if response.status_code >= 400:
                # Even with stream=True: an error's body is its detail (a
                # proxy's page), not the caller's data, and reading it gives
                # the connection back to the pool.
                response.content  # noqa: B018
            # Inside the try: with stream=True a JSON body is read here, and a
            # connection that breaks while it is read must raise, not parse
            # to None and pass validation.
            result = APIResult(
                self, response, endpoint=self.endpoint, options=self.render_options,
                cert=cert, verify=verify, elapsed=time.perf_counter() - started,
                waited=None if waited_since is None else time.monotonic() - waited_since)
        except (requests.RequestException, OSError) as exc:
            line = request_line(Exchange.from_request(prepared, self.endpoint),
                                self.render_options)
            if isinstance(exc, _CALLER_MISTAKES):
                raise RequestError(f"{line}: {_mistake(exc, prepared.headers)}; "
                                   "nothing was sent") from exc
            raise translate_error(exc, self.endpoint, line) from exc
        if self.tracer is not None:
            self.tracer.trace(result.exchange)
        return result.validate() if validate else result

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
        as LXD takes them) pass and the operation still runs, raises
        :class:`OperationTimeout` carrying the last answer: a running
        operation is never returned as if done.

        ``progress`` is called with each answer while the operation runs (its
        ``metadata`` is the operation, with LXD's progress figures; its
        ``waited`` the seconds so far); polls are then 1 s long.

        >>> api.wait(api.post('instances', json=config), timeout=120,
        ...          progress=lambda answer: print(answer.metadata['metadata']))
        """
        result.validate()
        operation = result.operation
        if not operation or (result.type != "async" and not result.running):
            return result
        if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
            raise ValueError(f"wait(timeout={timeout!r}): give seconds >= 0, or None to "
                             "wait until the operation ends")
        longest = POLL_SECONDS if progress is None else PROGRESS_POLL_SECONDS
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        url = operation.rstrip("/") + "/wait"
        while True:
            left = longest if deadline is None else deadline - time.monotonic()
            poll = min(longest, max(0, math.ceil(left)))
            last = self._send(self._prepare("GET", url, params={"timeout": poll}),
                              self.timeout.with_read(poll + POLL_READ_MARGIN),
                              waited_since=started)
            # _send() validated the answer: every failure encoding (HTTP error
            # status, type: error, or HTTP 200 with a Failure operation inside)
            # has raised by now.
            code = _envelope.operation_code(last.metadata)
            if code is None:
                # An HTML page from a proxy, an empty body: nothing says the
                # operation ended, and returning it would pass it off as done.
                raise APIException(last, error="the answer to a wait is not an operation: "
                                   "cannot tell whether it ended")
            if code >= _envelope.SUCCESS:
                return last  # finished: a failure has raised in validate()
            if deadline is not None and time.monotonic() >= deadline:
                raise OperationTimeout(last, time.monotonic() - started)
            if progress is not None:
                progress(last)

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


def _with_query(url: str, params: Params) -> str:
    """``url`` with ``params`` encoded as requests would, for a message about a
    request that could not be prepared (params it cannot encode are left out)."""
    try:
        probe = requests.PreparedRequest()
        probe.prepare_url(url, params)
        return probe.url or url
    except (requests.RequestException, ValueError, TypeError):
        return url
