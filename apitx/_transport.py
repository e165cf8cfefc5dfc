"""HTTP over a Unix socket, one connection pool per socket, and error translation.

Why a transport of its own:

1. One connection pool per *socket*: every URL and query string reuses the
   same keep-alive connections (a pool per full URL would open and drop a
   socket for each of 1,000 instances walked).
2. The pool only sets ``ConnectionCls`` and leaves ``_new_conn`` to urllib3,
   so a recorder can swap the class (see :mod:`apitx.testing`): vcrpy swaps
   it and discards pooled connections that are not its stub, and a pool that
   builds its own connections in ``_new_conn`` makes it loop forever.

The connection class changes one thing in urllib3's ``HTTPConnection``: how
the socket is made (``AF_UNIX``, connected to ``socket_path``).

Two more duties, for every connection apitx makes (Unix, HTTP, HTTPS):

3. **A deadline for the whole request.** A read timeout restarts with every
   byte, so a server that dribbles a byte a second holds a caller forever.
   :func:`deadline` sets, for the calling thread, the moment by which the
   request must be over; every read and write on apitx's sockets waits at
   most until then (see :class:`_DeadlineMixin`).
4. **fork()**. A process that forks after using an API would share its
   pooled connections with the child, and each would read the other's
   answers. The child forgets every pool at fork (``os.register_at_fork``)
   and opens connections of its own.

:func:`translate_error` turns what requests, urllib3 and the socket module
raise into apitx's exceptions, with the endpoint and a likely fix in the
message and the original kept as ``__cause__``.
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import ssl
import stat
import time
import weakref
from collections import deque
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Dict, Iterator, Optional, Type

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ._endpoint import Endpoint
from ._exceptions import APIConnectionError, APITimeoutError, APITXError


# -- the deadline of a whole request ------------------------------------------------

#: When the request being sent or read on this thread must be over
#: (``time.monotonic()``), or None. A context variable, so each thread (and
#: each asyncio task of a caller's) has its own.
_deadline: ContextVar[Optional[float]] = ContextVar("apitx_deadline", default=None)

DEADLINE_PASSED = "the request's total deadline passed"


@contextmanager
def deadline(at: Optional[float]) -> Iterator[None]:
    """Within the block, apitx's sockets on this thread wait no later than
    ``at`` (a ``time.monotonic()`` value; None: no deadline).

    >>> with deadline(time.monotonic() + 30):
    ...     session.send(prepared)
    """
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


class _DeadlineMixin:
    """Clamps each blocking read and write to the thread's request deadline.

    Python applies a socket's timeout to each call, and urllib3 sets it to
    the read timeout; here a call that would wait past the deadline waits
    only until it, then raises ``socket.timeout`` (which the request's error
    translation reports as a timeout). While the deadline is further away
    than the socket's own timeout (the usual case) this costs one context
    variable lookup and one clock read per call: the timeout is changed only
    for calls that need the clamp, and restored after them.
    """

    __slots__ = ()

    def _clamped(self, call: Any, *args: Any) -> Any:
        at = _deadline.get()
        if at is None:
            return call(*args)
        left = at - time.monotonic()
        if left <= 0:
            raise socket.timeout(DEADLINE_PASSED)
        own = self.gettimeout()  # type: ignore[attr-defined]
        if own is not None and own <= left:
            return call(*args)
        self.settimeout(left)  # type: ignore[attr-defined]
        try:
            return call(*args)
        except socket.timeout:
            raise socket.timeout(DEADLINE_PASSED) from None
        finally:
            self.settimeout(own)  # type: ignore[attr-defined]

    def recv(self, *args: Any) -> Any:
        return self._clamped(super().recv, *args)  # type: ignore[misc]

    def recv_into(self, *args: Any) -> Any:
        return self._clamped(super().recv_into, *args)  # type: ignore[misc]

    def send(self, *args: Any) -> Any:
        return self._clamped(super().send, *args)  # type: ignore[misc]

    def sendall(self, *args: Any) -> Any:
        return self._clamped(super().sendall, *args)  # type: ignore[misc]


class DeadlineSocket(_DeadlineMixin, socket.socket):
    """A socket whose blocking calls keep to the request's deadline."""

    __slots__ = ()


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    __slots__ = ()


#: Sockets that urllib3 and ssl make (TCP, TLS) become deadline sockets by a
#: change of class: they add no state, only the clamp, so the object is the
#: same socket. Only these exact types are changed; anything else (a test
#: double, a recorder's fake socket) is left as it is.
_ARMED: Dict[Type[Any], Type[Any]] = {socket.socket: DeadlineSocket,
                                      ssl.SSLSocket: _DeadlineSSLSocket}


def _arm(sock: Any) -> None:
    armed = _ARMED.get(type(sock))
    if armed is not None:
        sock.__class__ = armed


class _ArmedPoolMixin:
    """A urllib3 pool whose connections keep to the request deadline.

    It leaves ``ConnectionCls`` alone (so a recorder such as vcrpy, which
    swaps that class, still works) and arms each connection's socket right
    after it connects.
    """

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        connect = conn.connect

        def connect_armed() -> None:
            connect()
            _arm(getattr(conn, "sock", None))

        conn.connect = connect_armed
        return conn


class _ArmedHTTPConnectionPool(_ArmedPoolMixin, urllib3.HTTPConnectionPool):
    pass


class _ArmedHTTPSConnectionPool(_ArmedPoolMixin, urllib3.HTTPSConnectionPool):
    pass


# -- Unix sockets --------------------------------------------------------------------

class UnixSocketConnection(urllib3.connection.HTTPConnection):
    """urllib3's HTTP connection, over a Unix socket instead of TCP."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        # urllib3 passes its "use the default" sentinel when no timeout is set.
        timeout = self.timeout if self.timeout is None or isinstance(
            self.timeout, (int, float)) else socket.getdefaulttimeout()
        sock = DeadlineSocket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            _connect_unix(sock, self.socket_path, timeout)
        except socket.timeout as exc:
            sock.close()
            raise ConnectTimeoutError(
                self, f"connecting to {self.socket_path} timed out "
                f"(connect timeout={timeout})") from exc
        except OSError as exc:
            sock.close()
            raise NewConnectionError(
                self, f"cannot connect to {self.socket_path}: {exc}") from exc
        return sock


def _connect_unix(sock: socket.socket, path: str, timeout: Optional[float]) -> None:
    """Connect, waiting up to ``timeout`` while the listener's backlog is full.

    A blocking AF_UNIX connect waits for room in a full backlog, but a socket
    with a timeout is non-blocking underneath, and Linux then answers EAGAIN
    at once instead of EINPROGRESS: a daemon busy for a moment would fail
    instantly. Retry with a short back-off until the connect timeout is spent.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() + pause > deadline:
                raise socket.timeout(f"{path}: backlog full for {timeout}s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class UnixSocketConnectionPool(urllib3.HTTPConnectionPool):
    """A keep-alive pool of connections to one Unix socket."""

    ConnectionCls = UnixSocketConnection

    def __init__(self, socket_path: str, maxsize: int = 10) -> None:
        # The host is only a label: it becomes the Host header (LXD ignores it).
        super().__init__("lxd", maxsize=maxsize, socket_path=socket_path)
        self.socket_path = socket_path

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        conn = super()._get_conn(timeout)
        # A connection made while a recorder had swapped ConnectionCls (vcrpy's
        # stub, bound to a cassette) must not outlive that swap: reusing it
        # after the cassette closed would keep replaying the cassette. The
        # check is on the exact type because the stub subclasses ours.
        if type(conn) is not self.ConnectionCls:
            conn.close()
            conn = self._new_conn()
        return conn


class StrictLengthAdapter(HTTPAdapter):
    """requests' adapter, refusing a body shorter than its Content-Length,
    with connections that keep to the request deadline and pools of the
    process's own (a forked child starts afresh).

    urllib3 2 refuses a short body by default; urllib3 1.26 (what Python 3.9
    gets with vcrpy 7) returns the truncated body in silence, and a
    half-read JSON answer would then pass as "not JSON". The flag is read
    while the body is read, so setting it on the response before that is
    enough.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _adapters.add(self)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _ArmedHTTPConnectionPool,
                                                   "https": _ArmedHTTPSConnectionPool}

    def build_response(self, req: Any, resp: Any) -> requests.Response:
        resp.enforce_content_length = True
        return super().build_response(req, resp)

    def forget_pools(self) -> None:
        """Drop every pooled connection without touching it: after fork(), in
        the child, they belong to the parent. A new pool manager, rather
        than clearing the old one, since a lock the parent held at fork time
        stays held in the child forever."""
        # requests keeps its pool arguments on the adapter (untyped there).
        self.init_poolmanager(self._pool_connections, self._pool_maxsize,  # type: ignore[attr-defined]
                              block=self._pool_block)  # type: ignore[attr-defined]


class UnixSocketAdapter(StrictLengthAdapter):
    """A requests transport adapter that sends everything to one Unix socket.

    Mount it on the prefix of :data:`apitx._endpoint.UNIX_BASE_URL`::

        session.mount('http+unix://lxd/', UnixSocketAdapter('/var/lib/lxd/unix.socket'))
    """

    def __init__(self, socket_path: str, pool_maxsize: int = 10) -> None:
        super().__init__(pool_connections=1, pool_maxsize=pool_maxsize)
        self.socket_path = socket_path
        self.pool_maxsize = pool_maxsize
        self.pool = UnixSocketConnectionPool(socket_path, maxsize=pool_maxsize)

    def get_connection_with_tls_context(self, request: Any, verify: Any,
                                        proxies: Any = None, cert: Any = None) -> Any:
        return self.pool

    def get_connection(self, url: Any, proxies: Any = None) -> Any:
        # requests < 2.32.2 calls this one instead of the method above.
        return self.pool

    def request_url(self, request: Any, proxies: Any) -> str:
        return request.path_url

    def forget_pools(self) -> None:
        super().forget_pools()
        self.pool = UnixSocketConnectionPool(self.socket_path, maxsize=self.pool_maxsize)

    def close(self) -> None:
        self.pool.close()
        super().close()


#: Every adapter apitx made, so a forked child can make each forget its pools.
_adapters: "weakref.WeakSet[StrictLengthAdapter]" = weakref.WeakSet()


def _forget_pools_after_fork() -> None:
    for adapter in list(_adapters):
        adapter.forget_pools()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def translate_error(exc: BaseException, endpoint: Endpoint, request_line: str) -> APITXError:
    """The apitx exception for a transport failure, with a fix in its message,
    and ``sent`` saying whether the request left before it failed.

    ``request_line`` is ``METHOD readable-url``. The caller raises the result
    ``from exc``.
    """
    error = _translated(exc, endpoint, request_line)
    error.sent = not any(isinstance(e, (NewConnectionError, ConnectTimeoutError, socket.gaierror))
                         for e in _chain(exc))
    return error


def _translated(exc: BaseException, endpoint: Endpoint, request_line: str) -> APITXError:
    where = endpoint.display
    cause = _root_os_error(exc)
    chain = list(_chain(exc))
    if any(isinstance(e, socket.timeout) and str(e) == DEADLINE_PASSED for e in chain):
        return APITimeoutError(
            f"{request_line}: timed out: {DEADLINE_PASSED} (Timeout.total) while the server "
            "was still sending; is it dribbling its answer? Raise "
            "API(timeout=Timeout(total=...)) if the request is legitimately this long")
    # Not urllib3's TimeoutError family: its NewConnectionError (a refused
    # connection) subclasses ConnectTimeoutError, for old callers' sake.
    if isinstance(exc, requests.Timeout) or any(
            isinstance(e, (socket.timeout, urllib3.exceptions.ReadTimeoutError)) for e in chain):
        phase = "connecting" if isinstance(exc, requests.ConnectTimeout) else "waiting for the answer"
        return APITimeoutError(
            f"{request_line}: timed out {phase} ({_reason(exc)}); is the daemon stuck or "
            "overloaded, or a cluster member without quorum? Raise API(timeout=...) if the "
            "request is legitimately slow")
    if isinstance(exc, requests.exceptions.SSLError):
        return APIConnectionError(
            f"{request_line}: TLS failure with {where}: {_reason(exc)}. Check verify= "
            "(LXD's certificate is self-signed: pass verify='/path/to/server.crt') and "
            "cert=(client.crt, client.key), a certificate the server trusts "
            "(lxc config trust add)", endpoint=where)
    code = cause.errno if cause is not None else None
    if code in (errno.EACCES, errno.EPERM):
        hint = ("run as root, or add your user to the 'lxd' group (on Incus: "
                "'incus-admin') (then log in again)"
                if endpoint.socket_path else "check the firewall and the server's address")
        return APIConnectionError(f"{request_line}: permission denied on {where}: {hint}",
                                  endpoint=where)
    if code == errno.ENOENT and endpoint.socket_path:
        return APIConnectionError(
            f"{request_line}: no socket at {endpoint.socket_path}: is the daemon running? "
            "Start it, or point LXD_DIR/LXD_SOCKET (or endpoint=) at its socket",
            endpoint=where)
    if code in (errno.ECONNREFUSED, errno.ENOTSOCK) and _not_a_socket(endpoint.socket_path):
        return APIConnectionError(
            f"{request_line}: {endpoint.socket_path} is not a socket: point LXD_DIR/LXD_SOCKET "
            "(or endpoint=) at the daemon's unix.socket", endpoint=where)
    if code in (errno.ECONNREFUSED, errno.ENOTSOCK):
        hint = ("is the daemon running? Nothing listens on that socket"
                if endpoint.socket_path else
                "is the daemon running and listening there? (lxc config set "
                "core.https_address)")
        return APIConnectionError(f"{request_line}: connection refused by {where}: {hint}",
                                  endpoint=where)
    if any(isinstance(e, http.client.RemoteDisconnected) for e in chain):
        return APIConnectionError(
            f"{request_line}: {where} closed the connection without an answer: did the "
            "daemon stop or restart? The request may or may not have been applied: read the "
            "state back before retrying", endpoint=where)
    garbage = next((e for e in _chain(exc) if isinstance(e, http.client.BadStatusLine)), None)
    if garbage is not None and not isinstance(garbage, http.client.RemoteDisconnected):
        return APIConnectionError(
            f"{request_line}: {where} did not answer in HTTP (it sent {_reason(garbage)!r}): "
            "is this the right socket or port?", endpoint=where)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)) or code in (
            errno.ECONNRESET, errno.EPIPE):
        return APIConnectionError(
            f"{request_line}: the connection to {where} broke mid-answer: {_reason(exc)}; "
            "the request may or may not have been applied: read the state back before "
            "retrying", endpoint=where)
    return APIConnectionError(f"{request_line}: cannot talk to {where}: {_reason(exc)}",
                              endpoint=where)


def _not_a_socket(path: Optional[str]) -> bool:
    try:
        return path is not None and not stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception behind ``exc``, outermost first: causes, contexts,
    urllib3's ``reason`` and exceptions passed as arguments."""
    seen = set()
    todo = deque([exc])
    while todo:
        current = todo.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None),
                    *current.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def _root_os_error(exc: BaseException) -> Optional[OSError]:
    """The first plain OSError with an errno behind a wrapped exception."""
    for current in _chain(exc):
        if isinstance(current, OSError) and current.errno is not None \
                and not isinstance(current, requests.RequestException):
            return current
    return None


#: Exceptions that only wrap another one and add noise to a message.
_WRAPPERS = (requests.RequestException, urllib3.exceptions.MaxRetryError,
             urllib3.exceptions.ProtocolError)
#: urllib3 prefixes messages with the pool's repr: "XPool(host='lxd', port=None): ".
_POOL_REPR = re.compile(r"^\w+\(host=[^)]*\):\s*")


def _reason(exc: BaseException) -> str:
    """The innermost useful message, on one line."""
    inner = next((e for e in _chain(exc) if not isinstance(e, _WRAPPERS)), exc)
    text = _POOL_REPR.sub("", " ".join(str(inner).split()))
    return text or type(inner).__name__
