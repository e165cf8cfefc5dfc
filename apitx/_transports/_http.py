"""The sync transport: requests, over apitx's adapters.

:class:`HTTPTransport` owns a ``requests.Session`` and what is mounted on it
for each endpoint (the Unix socket adapter, a pinning adapter, or requests'
own adapter made strict), sends prepared requests within their deadline,
reads what apitx must read of each answer (with the size cap), and opens
websockets with the same certificates and trust.

>>> import time, requests
>>> from apitx._config import Timeout
>>> from apitx._endpoint import Endpoint
>>> from apitx._transports import BodyPolicy, HTTPTransport
>>> lxd = Endpoint.parse('/var/lib/lxd/unix.socket')
>>> transport = HTTPTransport(requests.Session(), [lxd])
>>> prepared = requests.Request('GET', lxd.base_url + '/1.0').prepare()
>>> def send(until):
...     return transport.send(prepared, lxd, timeout=Timeout(), until=until,
...                           body=BodyPolicy(limit=1 << 26, stream=False),
...                           line=lambda: 'GET unix:/var/lib/lxd/unix.socket /1.0')
>>> send(until=None).status_code
200
>>> send(until=time.monotonic())
Traceback (most recent call last):
  ...
apitx.APITimeoutError: GET unix:/var/lib/lxd/unix.socket /1.0: timed out: the request's total deadline passed (Timeout.total) while the server was still sending; ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Union

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .._config import Limits, Timeout
from .._endpoint import Endpoint
from .._exceptions import EndpointError, RequestError, ResponseTooLarge
from ._adapters import StrictLengthAdapter, UnixSocketAdapter
from ._base import BodyPolicy, Line
from ._deadline import DEADLINE, deadline
from ._errors import CALLER_MISTAKES, mistake, translate_error
from ._pinning import Pin, PinningAdapter

if TYPE_CHECKING:
    from ._websocket import WebSocketConnection

#: Bodies are read in pieces of this size.
BODY_PIECE = 1 << 16

#: What a send may raise that is the transport's to translate: requests'
#: errors, the socket's, and urllib3's own that requests passes through (a
#: pool that waited in vain for a free connection).
_TRANSPORT_ERRORS = (requests.RequestException, OSError, urllib3.exceptions.HTTPError)


class HTTPTransport:
    """requests over apitx's adapters, for every endpoint of one API.

    ``session`` is the caller's or the factory's; for each endpoint an
    adapter is mounted on it: the Unix socket adapter for a socket, a
    :class:`PinningAdapter` when ``pin`` is given, else requests' stock
    adapter is replaced by a strict one (a caller's own adapter, with its
    retries and pool sizes, is kept). ``limits`` sizes the pools.
    """

    def __init__(self, session: requests.Session, endpoints: Sequence[Endpoint], *,
                 pin: Optional[Pin] = None, limits: Limits = Limits()) -> None:
        self.session = session
        self.limits = limits
        size, block = limits.pool_size, limits.max_connections is not None
        if pin is not None:
            for each in endpoints:
                if not each.base_url.startswith("https://"):
                    raise EndpointError(f"a pinned certificate needs an https:// endpoint, "
                                        f"not {each.display}: drop fingerprint=/verify=")
        for each in endpoints:
            prefix = each.base_url + "/"
            if each.socket_path:
                mounted = session.adapters.get(prefix)
                if isinstance(mounted, UnixSocketAdapter):
                    if mounted.socket_path != each.socket_path:
                        # Every socket is reached through the same URL prefix: a
                        # second socket would silently take over the first API's traffic.
                        raise EndpointError(
                            f"this requests.Session already talks to unix:"
                            f"{mounted.socket_path}; give the API for {each.display} a "
                            "session of its own")
                    continue
                session.mount(prefix, UnixSocketAdapter(each.socket_path, maxsize=size,
                                                        block=block))
            elif pin is not None:
                session.mount(prefix, PinningAdapter(pin, maxsize=size, block=block))
            elif type(session.get_adapter(prefix)) is HTTPAdapter:
                session.mount(prefix, StrictLengthAdapter(maxsize=size, block=block))
        #: requests' settings for each endpoint prefix, from the environment
        #: (proxies, CA bundle variables), read once: see :meth:`_settings`.
        self._environment: Dict[str, Dict[str, Any]] = {}

    @property
    def cert(self) -> Any:
        return self.session.cert

    @property
    def verify(self) -> Union[bool, str]:
        verify = self.session.verify
        return True if verify is None else verify

    def send(self, request: requests.PreparedRequest, endpoint: Endpoint, *, timeout: Timeout,
             until: Optional[float], body: BodyPolicy, line: Line) -> requests.Response:
        """Send and read as the :class:`~apitx._transports.Transport` interface says."""
        refused: Optional[RequestError] = None
        # The deadline as a context variable, set and reset here rather than
        # by deadline()'s context manager: this is every request's path.
        token = DEADLINE.set(until)
        try:
            response = self.session.send(request, timeout=timeout.as_requests(),
                                         allow_redirects=False,
                                         **self._settings(endpoint, request.url or ""))
            # Inside the try: a connection that breaks while a JSON body is
            # read must raise, not parse to None and pass validation. An
            # error's body is read even when streaming: it is its detail (a
            # proxy's page), not the caller's data.
            read_answer(response, body, line)
        except CALLER_MISTAKES as exc:
            refused = RequestError(f"{line()}: {mistake(exc, request.headers)}; "
                                   "nothing was sent")
        except _TRANSPORT_ERRORS as exc:
            raise translate_error(exc, endpoint, line()) from exc
        finally:
            DEADLINE.reset(token)
        if refused is not None:
            # Raised outside the except block, so that requests' own exception
            # (which quotes a bad header's value, maybe a token) is neither its
            # cause nor its context.
            raise refused
        return response

    def _settings(self, endpoint: Endpoint, url: str) -> Dict[str, Any]:
        """requests' per-request settings (proxies, verify, cert) for a URL.

        requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override the
        session's own ``verify=`` (psf/requests#3829): LXD's self-signed
        certificate, given as ``verify='server.crt'``, would be ignored
        wherever those are set. Passing them per request makes the session's
        win. The environment's part (proxies) is looked up once per endpoint,
        not per request: it was ~12% of a request's client CPU.
        """
        settings = self._environment.get(endpoint.base_url)
        if settings is None:
            settings = dict(self.session.merge_environment_settings(
                url, {}, True, self.session.verify, self.session.cert))
            self._environment[endpoint.base_url] = settings
        return settings

    def iter_body(self, response: requests.Response, endpoint: Endpoint, *,
                  until: Optional[float], chunk_size: int, line: Line) -> Iterator[bytes]:
        """The unread body in pieces, a broken or stalled connection raising
        apitx's errors, each read kept to ``until``."""
        pieces = response.iter_content(chunk_size)
        while True:
            # The deadline is set around each read only, not across the
            # yield: between pieces the caller's thread is the caller's.
            try:
                with deadline(until):
                    piece = next(pieces, None)
            except _TRANSPORT_ERRORS as exc:
                raise translate_error(exc, endpoint, line()) from exc
            if piece is None:
                return
            yield piece

    def websocket(self, endpoint: Endpoint, path: str, *, timeout: Timeout, traced: bool,
                  line: str, max_message: int) -> WebSocketConnection:
        """A websocket with the session's client certificate and trust (the
        endpoint's pin when one is mounted)."""
        # Imported here: websocket-client is for exec and events, and a
        # program that only sends requests should not pay for it (issue 19).
        from ._websocket import connect_websocket

        adapter = self.session.get_adapter(endpoint.base_url + "/")
        return connect_websocket(endpoint, path, timeout=timeout, cert=self.session.cert,
                                 verify=self.verify,
                                 pin=adapter.pin if isinstance(adapter, PinningAdapter) else None,
                                 traced=traced, line=line, max_message=max_message)

    def close(self) -> None:
        self.session.close()


def read_answer(response: requests.Response, body: BodyPolicy, line: Line) -> None:
    """Read what ``body`` says apitx reads of this answer before returning it."""
    content_type = response.headers.get("Content-Type", "")
    if body.capped(response.status_code, content_type):
        _read_body(response, body.limit, line)
    elif body.reads(response.status_code, content_type):
        _read_body(response, None, line)


def _read_body(response: requests.Response, limit: Optional[int], line: Line) -> None:
    """Read a body whole (decompressed), refusing more than ``limit`` bytes.

    A compressed or chunked answer has no size until it is read: 0.5 MB of
    gzip grew to 2 GB here before this limit. Counting the decoded pieces as
    they come keeps memory within the limit. What is read is kept where
    requests keeps a body it read itself (``response.content`` reads it).
    """
    pieces: List[bytes] = []
    size = 0
    for piece in response.iter_content(BODY_PIECE):
        size += len(piece)
        if limit is not None and size > limit:
            response.close()
            raise ResponseTooLarge(
                f"{line()}: the answer is larger than {limit} bytes (max_answer_bytes); "
                "the connection was closed. Raise API(max_answer_bytes=...) if it is "
                "legitimately this large")
        pieces.append(piece)
    response._content = b"".join(pieces)
