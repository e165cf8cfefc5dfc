"""The entry point: :class:`API` sends requests and returns :class:`APIResult`.

Example::

    api = API.factory()                                   # the local LXD
    api.get('').metadata['api_version']                   # GET /1.0
    api.post('instances', json=config).wait()             # create, and wait
    api.get('instances/c1', validate=False).status_code   # branch instead of raising
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence, Tuple, Union

import requests
from requests.adapters import HTTPAdapter

from ._config import DEFAULT_TIMEOUT, Timeout, TimeoutLike, env_flag
from ._endpoint import Endpoint
from ._exceptions import EndpointError, RequestError
from ._exec import ExecResult, run_exec
from ._resource import Resource, Segment
from ._result import APIResult
from ._tracing import Tracer
from ._transport import StrictLengthAdapter, UnixSocketAdapter, translate_error


#: What requests refuses before sending: the caller's arguments, not the
#: server or the connection, are at fault.
_CALLER_MISTAKES = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidJSONError,
                    requests.exceptions.InvalidURL)


def _mistake(exc: Exception, kwargs: Any) -> str:
    """What was wrong, without quoting a header's value (it may be a token)."""
    if isinstance(exc, requests.exceptions.InvalidHeader):
        names = [str(name) for name, value in dict(kwargs.get("headers") or {}).items()
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
    ``/1.0/instances``; None: no prefix); ``debug`` turns tracing on (so does
    ``DEBUG=1`` in the environment); ``timeout`` is the default for every
    request (see :class:`Timeout`; None means no limit).

    One API is safe to share between threads: requests' session and urllib3's
    pool are, and the API itself holds no per-request state.
    """

    def __init__(self, session: requests.Session, endpoint: Union[Endpoint, str],
                 default_version: Optional[str] = None, debug: bool = False,
                 timeout: TimeoutLike = DEFAULT_TIMEOUT) -> None:
        self.session = session
        self.endpoint = Endpoint.coerce(endpoint)
        self.default_version = default_version.strip("/") if default_version else None
        self.timeout = Timeout.coerce(timeout)
        self._timeout_tuple = self.timeout.as_requests()
        self.debug = bool(debug) or env_flag("DEBUG")
        self.tracer = Tracer.from_env() if self.debug else None
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
                default_version: Optional[str] = "1.0", **kwargs: Any) -> API:
        """Make an API with its own session.

        ``endpoint=None`` discovers the local LXD socket (``$LXD_SOCKET``,
        ``$LXD_DIR/unix.socket``, the snap's, Debian's); otherwise give a socket
        path, ``unix:///path``, or ``https://host:8443``. For HTTPS, ``cert=(crt,
        key)`` is the client certificate and ``verify`` the CA bundle or server
        certificate to trust (or False). Other keyword arguments (``debug``,
        ``timeout``) go to :class:`API`.

        >>> api = API.factory('https://10.0.0.5:8443', cert=('c.crt', 'c.key'), verify='server.crt')
        """
        cert: Optional[Union[str, Tuple[str, str]]] = kwargs.pop("cert", None)
        verify: Union[bool, str] = kwargs.pop("verify", True)
        resolved = Endpoint.discover() if endpoint is None else Endpoint.coerce(endpoint)
        session = requests.Session()
        session.cert = cert
        session.verify = verify
        # Proxies and .netrc never apply to a Unix socket, and looking them up
        # in the environment is the largest single cost of a request (~12% of
        # client CPU, measured by bench/core.py). Remote endpoints keep them.
        session.trust_env = resolved.socket_path is None
        return cls(session, resolved, default_version=default_version, **kwargs)

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

    def request(self, method: str, url: str, *args: Any, validate: bool = True,
                **kwargs: Any) -> APIResult:
        """Send one request; return its :class:`APIResult`, validated.

        Extra arguments (``json``, ``data``, ``params``, ``headers``,
        ``stream``, ``timeout``…) go to ``requests.Session.request``. With
        ``validate=False`` the result is returned as it is, for callers who
        branch on ``result.ok`` and ``result.status_code``; transport failures
        still raise (there is no result to return).

        When tracing is on the transaction is logged before validation, so a
        failing request is always visible.
        """
        return self._send(method, url, args, kwargs, validate=validate)

    def _send(self, method: str, url: str, args: Any, kwargs: Any, validate: bool,
              wait_started: Optional[float] = None) -> APIResult:
        """request(), for wait() too: it passes when its wait started, so the
        trace of each poll shows the total time waited."""
        full_url = self.url(url)
        # timeout=None given explicitly means "no limit", like requests.
        kwargs["timeout"] = (Timeout.coerce(kwargs["timeout"]).as_requests()
                             if "timeout" in kwargs else self._timeout_tuple)
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
        # session's own verify= (psf/requests#3829): LXD's self-signed
        # certificate, given as verify='server.crt', would be ignored
        # wherever those are set. Passing it per request makes it win.
        kwargs.setdefault("verify", self.session.verify)
        started = time.perf_counter()
        try:
            response = self.session.request(method, full_url, *args, **kwargs)
            if response.status_code >= 400:
                # Even with stream=True: an error's body is its detail (a
                # proxy's page), not the caller's data, and reading it gives
                # the connection back to the pool.
                response.content  # noqa: B018
            # Inside the try: with stream=True a JSON body is read here, and a
            # connection that breaks while it is read must raise, not parse
            # to None and pass validation.
            result = APIResult(self, response, elapsed=time.perf_counter() - started)
        except (requests.RequestException, OSError) as exc:
            line = f"{method.upper()} {self.endpoint.describe_url(full_url)}"
            if isinstance(exc, _CALLER_MISTAKES):
                raise RequestError(f"{line}: {_mistake(exc, kwargs)}; nothing was sent") from exc
            raise translate_error(exc, self.endpoint, line) from exc
        if self.tracer is not None:
            if wait_started is not None:
                result.waited = time.monotonic() - wait_started
            self.tracer.trace(result)
        return result.validate() if validate else result

    def get(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('GET', url, ...)``."""
        return self.request("GET", url, *args, **kwargs)

    def post(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('POST', url, ...)``."""
        return self.request("POST", url, *args, **kwargs)

    def put(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('PUT', url, ...)``."""
        return self.request("PUT", url, *args, **kwargs)

    def patch(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('PATCH', url, ...)``."""
        return self.request("PATCH", url, *args, **kwargs)

    def delete(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('DELETE', url, ...)``."""
        return self.request("DELETE", url, *args, **kwargs)

    def head(self, url: str, *args: Any, **kwargs: Any) -> APIResult:
        """``request('HEAD', url, ...)``."""
        return self.request("HEAD", url, *args, **kwargs)

    def exec(self, instance: str, command: Sequence[str], **kwargs: Any) -> ExecResult:
        """Run a command in an instance, with live streams; see :func:`apitx._exec.run_exec`.

        >>> api.exec('c1', ['sh', '-c', 'echo hi']).stdout
        b'hi\\n'
        """
        return run_exec(self, instance, command, **kwargs)

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
