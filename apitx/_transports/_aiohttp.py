"""The async transport: aiohttp, over Unix sockets and (pinned) HTTPS.

:class:`AiohttpTransport` keeps one ``aiohttp.ClientSession`` per endpoint
(made inside the running event loop, on first use): a ``UnixConnector`` for
a socket, a TCP connector with the client certificate and the trust for
HTTPS. It sends a request within its deadline, reads what apitx must read of
the answer (with the size cap), streams a body left unread, and opens
websockets on the same connections and trust. Everything it raises is
apitx's (:mod:`._aio_errors`).

Why aiohttp (README "Dependencies"): one well-kept package does HTTP and
websockets over Unix sockets and TLS, and a request costs ~0.24x the client
CPU of requests here (httpx: ~0.96x, and no websockets of its own).

Three things aiohttp does not do as apitx needs, done here:

- **pins**: aiohttp checks one sha256 fingerprint, with no client
  certificate; :class:`_PinnedConnector` presents the client certificate and
  checks the peer against every pinned digest before a byte is sent;
- **a refused upgrade's words**: aiohttp drops the body of a refused
  websocket upgrade (LXD's JSON error); :class:`_Answer` keeps it for the
  upgrade that asked (a context variable says which);
- **cancellation**: a task cancelled mid-answer closes its connection, so no
  half-read one goes back to the pool.

>>> import asyncio, json
>>> from apitx._config import Timeout
>>> from apitx._endpoint import Endpoint
>>> from apitx._models import Request
>>> from apitx._transports import BodyPolicy
>>> from apitx._transports._aiohttp import AiohttpTransport
>>> async def server_name():
...     lxd = Endpoint.parse('/var/lib/lxd/unix.socket')
...     transport = AiohttpTransport([lxd])
...     try:
...         response = await transport.send(
...             Request('GET', lxd.base_url + '/1.0', {}, None), lxd, timeout=Timeout(),
...             until=None, body=BodyPolicy(1 << 26, False), line=lambda: 'GET /1.0')
...     finally:
...         await transport.close()
...     return response.status_code, json.loads(response.content)['metadata']['api_version']
>>> asyncio.run(server_name())
(200, '1.0')
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
import time
from contextvars import ContextVar
from typing import Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple, Union

import aiohttp
from yarl import URL

from .._config import Limits, Timeout
from .._endpoint import UNIX_BASE_URL, Endpoint
from .._exceptions import ResponseTooLarge
from .._models import Request, Response
from . import _failures as failures
from ._aio_errors import translate_aiohttp_error
from ._aiows import AsyncWebSocketConnection
from ._base import BodyPolicy, Line
from ._pinning import Pin, format_fingerprint
from ._messages import UpgradeRefused, trace_upgrade
from ._websocket import ssl_context

#: The body of a refused websocket upgrade, for the upgrade that set it.
_REFUSAL: ContextVar[Optional[List[bytes]]] = ContextVar("apitx_refusal", default=None)


class _Answer(aiohttp.ClientResponse):
    """aiohttp's response, keeping the body of a refused websocket upgrade."""

    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        started = await super().start(connection)
        holder = _REFUSAL.get()
        if holder is not None and self.status != 101:
            holder.append(await self.read())
        return started


class _PinFingerprint(aiohttp.Fingerprint):
    """aiohttp's fingerprint check, against every digest of a :class:`Pin`."""

    def __init__(self, pin: Pin) -> None:
        super().__init__(sorted(pin.digests)[0])
        self.pin = pin

    def check(self, transport: asyncio.Transport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        seen = hashlib.sha256(der or b"").digest()
        if seen not in self.pin.digests:
            host, port, *_ = transport.get_extra_info("peername") or ("?", 0)
            raise aiohttp.ServerFingerprintMismatch(self.fingerprint, seen, host, port)


class _PinnedConnector(aiohttp.TCPConnector):
    """A TCP connector that presents the client certificate and trusts only the pin."""

    def __init__(self, context: ssl.SSLContext, pin: Pin, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._apitx_context = context
        self._apitx_pin = _PinFingerprint(pin)

    def _get_ssl_context(self, req: Any) -> Optional[ssl.SSLContext]:
        return self._apitx_context if req.is_ssl() else None

    def _get_fingerprint(self, req: Any) -> Optional[aiohttp.Fingerprint]:
        return self._apitx_pin if req.is_ssl() else None


class AiohttpTransport:
    """aiohttp for every endpoint of one async API (see the module)."""

    def __init__(self, endpoints: Sequence[Endpoint], *, cert: Any = None,
                 verify: Union[bool, str] = True, pin: Optional[Pin] = None,
                 limits: Limits = Limits(), max_message: int = 64 * 1024 * 1024) -> None:
        self.endpoints = tuple(endpoints)
        self._cert, self._verify, self._pin = cert, verify, pin
        self.limits = limits
        self.max_message = max_message
        self._expected = " or ".join(sorted(format_fingerprint(d) for d in pin.digests)) \
            if pin is not None else ""
        self._sessions: Dict[Tuple[str, bool], aiohttp.ClientSession] = {}

    @property
    def cert(self) -> Any:
        return self._cert

    @property
    def verify(self) -> Union[bool, str]:
        return self._verify

    # -- sessions ---------------------------------------------------------------

    def _session(self, endpoint: Endpoint, upgrades: bool = False) -> aiohttp.ClientSession:
        """The session of an endpoint; websocket upgrades have one of their own
        on the same connector, whose responses keep a refused upgrade's body
        (requests need no such check on every answer)."""
        key = (endpoint.base_url, upgrades)
        session = self._sessions.get(key)
        if session is None or session.closed:
            main = self._sessions.get((endpoint.base_url, False))
            connector = main.connector if upgrades and main is not None and not main.closed \
                else self._connector(endpoint)
            session = self._sessions[key] = aiohttp.ClientSession(
                connector=connector, connector_owner=not upgrades or main is None,
                response_class=_Answer if upgrades else aiohttp.ClientResponse,
                trust_env=endpoint.socket_path is None, auto_decompress=True,
                timeout=aiohttp.ClientTimeout(total=None))
        return session

    def _connector(self, endpoint: Endpoint) -> aiohttp.BaseConnector:
        # The pool's size is a cap here: aiohttp makes a request wait for a
        # free connection (within its connect timeout) rather than open more.
        limit = self.limits.pool_size
        if endpoint.socket_path:
            return aiohttp.UnixConnector(path=endpoint.socket_path, limit=limit)
        if not endpoint.base_url.startswith("https://"):
            return aiohttp.TCPConnector(limit=limit)
        if self._pin is not None:
            return _PinnedConnector(ssl_context(self._cert, False), self._pin, limit=limit)
        return aiohttp.TCPConnector(limit=limit, ssl=ssl_context(self._cert, self._verify))

    # -- requests ---------------------------------------------------------------

    async def send(self, request: Request, endpoint: Endpoint, *, timeout: Timeout,
                   until: Optional[float], body: BodyPolicy, line: Line) -> Response:
        """Send and read as the async transport interface says."""
        limits = aiohttp.ClientTimeout(
            total=None if until is None else max(0.001, until - time.monotonic()),
            connect=timeout.connect, sock_read=timeout.read)
        answer: Optional[aiohttp.ClientResponse] = None
        try:
            answer = await self._session(endpoint).request(
                request.method, _wire(request.url), headers=request.headers,
                data=request.body, allow_redirects=False, timeout=limits)
            content_type = answer.headers.get("Content-Type", "")
            if body.capped(answer.status, content_type):
                content = await _read_capped(answer, body.limit, line)
            elif body.reads(answer.status, content_type):
                content = await answer.read()
            else:
                return Response(answer.status, answer.reason or "", answer.headers, b"",
                                request, stream=answer)
            answer.release()
            return Response(answer.status, answer.reason or "", answer.headers, content,
                            request)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if answer is not None:
                answer.close()
            raise translate_aiohttp_error(exc, endpoint, line(), self._expected) from exc
        except BaseException:
            # Cancelled (or ResponseTooLarge): a half-read answer must not go
            # back to the pool, where the next request would read its rest.
            if answer is not None:
                answer.close()
            raise

    async def aiter_body(self, response: Response, endpoint: Endpoint, *, chunk_size: int,
                         line: Line) -> AsyncIterator[bytes]:
        """The unread body of ``response`` in pieces (its deadline still holds)."""
        answer: Optional[aiohttp.ClientResponse] = response.stream
        if answer is None:
            if response.content:
                yield response.content
            return
        response.stream = None
        try:
            async for piece in answer.content.iter_chunked(chunk_size):
                yield piece
            answer.release()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            answer.close()
            raise translate_aiohttp_error(exc, endpoint, line(), self._expected) from exc
        except BaseException:
            answer.close()
            raise

    def discard(self, response: Response) -> None:
        """Drop a streamed body the caller will not read (its connection closes)."""
        if response.stream is not None:
            response.stream.close()
            response.stream = None

    # -- websockets -------------------------------------------------------------

    async def websocket(self, endpoint: Endpoint, path: str, *, timeout: Timeout,
                        traced: bool, line: str) -> AsyncWebSocketConnection:
        """A websocket at ``path`` on ``endpoint``, on the API's connections
        and trust; ``UpgradeRefused`` with the server's answer when refused."""
        refusal: List[bytes] = []
        token = _REFUSAL.set(refusal)
        started = time.perf_counter()
        try:
            # The upgrade is bounded by the connect timeout; later reads by the read one.
            ws = await asyncio.wait_for(self._session(endpoint, upgrades=True).ws_connect(
                _wire(endpoint.base_url + path), autoping=False, autoclose=True,
                max_msg_size=self.max_message, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=1.0),
                origin=None), timeout.connect)
        except asyncio.TimeoutError as exc:
            late = failures.timed_out(line, True, f"no upgrade in {timeout.connect}s")
            late.sent = False
            raise late from exc
        except aiohttp.WSServerHandshakeError as exc:
            raise UpgradeRefused(exc.status, exc.message or "", exc.headers or {},
                                 refusal[0] if refusal else b"",
                                 time.perf_counter() - started) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise translate_aiohttp_error(exc, endpoint, line, self._expected) from exc
        finally:
            _REFUSAL.reset(token)
        connection = AsyncWebSocketConnection(ws, endpoint.display, line[len("GET "):], traced,
                                              timeout.read, self.max_message)
        trace_upgrade(connection._seq, line, started)
        return connection

    async def close(self) -> None:
        """Close every session and its connections."""
        sessions, self._sessions = self._sessions, {}
        for key in sorted(sessions, key=lambda key: not key[1]):  # upgrades' first: theirs
            await sessions[key].close()                         # is the main one's connector


def _wire(url: str) -> URL:
    """The URL aiohttp sends: a socket's ``http+unix://lxd/…`` (apitx's own
    scheme, which no proxy setting can capture) is plain ``http://lxd/…`` on
    the socket's own connector. Already encoded: sent as it is.

    A URL without a query is kept (a yarl ``URL`` is immutable, so one
    serves every request to its address): building one costs ~7,000 CPU
    instructions, 1% of an async ``GET /1.0`` (callgrind, issue 17), and a
    service asks the same few paths over and over. One with a query is not:
    a websocket's carries its one-time secret, which must not outlive it.
    """
    return _built(url) if "?" in url else _kept(url)


def _built(url: str) -> URL:
    if url.startswith(UNIX_BASE_URL):
        url = "http://" + url[len(UNIX_BASE_URL) - len("lxd"):]
    return URL(url, encoded=True)


_kept = functools.lru_cache(maxsize=256)(_built)


async def _read_capped(answer: aiohttp.ClientResponse, limit: int, line: Line) -> bytes:
    """The whole body (decompressed), refusing more than ``limit`` bytes:
    counted as it comes, so a compressed or endless answer cannot exhaust memory."""
    pieces: List[bytes] = []
    size = 0
    content = answer.content
    while True:
        piece = await content.readany()
        if not piece:
            break
        size += len(piece)
        if size > limit:
            answer.close()
            raise ResponseTooLarge(
                f"{line()}: the answer is larger than {limit} bytes (max_answer_bytes); the "
                "connection was closed. Raise max_answer_bytes=... if it is legitimately "
                "this large")
        pieces.append(piece)
    return b"".join(pieces)
