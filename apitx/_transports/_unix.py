"""HTTP over a Unix socket: the connection, its connect, and one pool per socket.

Why a pool of our own rather than requests-unixsocket's:

1. One connection pool per *socket*: every URL and query string reuses the
   same keep-alive connections (a pool per full URL would open and drop a
   socket for each of 1,000 instances walked).
2. The pool only sets ``ConnectionCls`` and leaves ``_new_conn`` to urllib3,
   so a recorder can swap the class (see :mod:`apitx.testing`): vcrpy swaps
   it and discards pooled connections that are not its stub, and a pool that
   builds its own connections in ``_new_conn`` makes it loop forever.

The connection class changes one thing in urllib3's ``HTTPConnection``: how
the socket is made (``AF_UNIX``, connected to ``socket_path``).

>>> from apitx._transports._unix import UnixSocketConnectionPool
>>> pool = UnixSocketConnectionPool('/var/lib/lxd/unix.socket', maxsize=64)
>>> pool.urlopen('GET', '/1.0').status
200
>>> pool.close()
"""

from __future__ import annotations

import socket
import time
from typing import Any, Optional

import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ._deadline import BoundedWaitMixin, DeadlineSocket


def connect_unix(sock: socket.socket, path: str, timeout: Optional[float]) -> None:
    """Connect, waiting up to ``timeout`` while the listener's backlog is full.

    A blocking AF_UNIX connect waits for room in a full backlog, but a socket
    with a timeout is non-blocking underneath, and Linux then answers EAGAIN
    at once instead of EINPROGRESS: a daemon busy for a moment would fail
    instantly. Retry with a short back-off until the connect timeout is spent.
    """
    until = None if timeout is None else time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if until is not None and time.monotonic() + pause > until:
                raise socket.timeout(f"{path}: backlog full for {timeout}s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def open_unix_socket(path: str, timeout: Optional[float]) -> DeadlineSocket:
    """A socket connected to ``path`` (see :func:`connect_unix`), keeping to the deadline."""
    sock = DeadlineSocket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        connect_unix(sock, path, timeout)
    except BaseException:
        sock.close()
        raise
    return sock


class UnixSocketConnection(urllib3.connection.HTTPConnection):
    """urllib3's HTTP connection, over a Unix socket instead of TCP."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        # urllib3 passes its "use the default" sentinel when no timeout is set.
        timeout = self.timeout if self.timeout is None or isinstance(
            self.timeout, (int, float)) else socket.getdefaulttimeout()
        try:
            return open_unix_socket(self.socket_path, timeout)
        except socket.timeout as exc:
            raise ConnectTimeoutError(
                self, f"connecting to {self.socket_path} timed out "
                f"(connect timeout={timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(
                self, f"cannot connect to {self.socket_path}: {exc}") from exc


class UnixSocketConnectionPool(BoundedWaitMixin, urllib3.HTTPConnectionPool):
    """A keep-alive pool of connections to one Unix socket (its connections
    make deadline sockets themselves).

    ``maxsize`` connections are kept for reuse; with ``block`` no more are
    ever open at once (a request waits for one, within its deadline).
    """

    ConnectionCls = UnixSocketConnection

    def __init__(self, socket_path: str, maxsize: int = 10, block: bool = False) -> None:
        # The host is only a label: it becomes the Host header (LXD ignores it).
        super().__init__("lxd", maxsize=maxsize, block=block, socket_path=socket_path)
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
