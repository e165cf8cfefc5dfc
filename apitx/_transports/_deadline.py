"""The deadline of a whole request, kept by every socket apitx reads or writes.

A read timeout restarts with every byte, so a server that dribbles a byte a
second holds a caller forever. :func:`deadline` sets, for the calling thread
(or asyncio task), the moment by which the request must be over; every read
and write on apitx's sockets waits at most until then (see
:class:`_DeadlineMixin`), and a pool that must wait for a free connection
waits no longer either.

>>> import time, requests
>>> from apitx._transports import deadline
>>> from apitx._transports._adapters import UnixSocketAdapter
>>> session = requests.Session()
>>> session.mount('http+unix://lxd/', UnixSocketAdapter('/var/lib/lxd/unix.socket', maxsize=4))
>>> with deadline(time.monotonic() + 30):
...     session.get('http+unix://lxd/1.0').status_code
200
>>> with deadline(time.monotonic()):              # passed already: no socket waits
...     session.get('http+unix://lxd/1.0')
Traceback (most recent call last):
  ...
requests.exceptions.ConnectionError: ('Connection aborted.', TimeoutError("the request's total deadline passed"))
"""

from __future__ import annotations

import socket
import ssl
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Dict, Iterator, Optional, Type

import urllib3

from ._failures import DEADLINE_PASSED

#: When the request being sent or read on this thread must be over
#: (``time.monotonic()``), or None. A context variable, so each thread (and
#: each asyncio task of a caller's) has its own.
DEADLINE: ContextVar[Optional[float]] = ContextVar("apitx_deadline", default=None)




@contextmanager
def deadline(at: Optional[float]) -> Iterator[None]:
    """Within the block, apitx's sockets on this thread wait no later than
    ``at`` (a ``time.monotonic()`` value; None: no deadline).

    >>> import time
    >>> from apitx._transports._deadline import deadline, time_left
    >>> with deadline(time.monotonic() + 30):
    ...     0 < time_left() <= 30
    True
    >>> time_left() is None
    True
    """
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)


def time_left() -> Optional[float]:
    """Seconds until the current deadline (0 when it passed), or None when there is none."""
    at = DEADLINE.get()
    return None if at is None else max(0.0, at - time.monotonic())


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
        at = DEADLINE.get()
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


def arm(sock: Any) -> None:
    """Make a socket urllib3 or ssl made keep to the deadline (see :data:`_ARMED`)."""
    armed = _ARMED.get(type(sock))
    if armed is not None:
        sock.__class__ = armed


class BoundedWaitMixin:
    """A urllib3 pool whose wait for a free connection (a pool that blocks)
    keeps to the request deadline: urllib3 waits without limit otherwise."""

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        # urllib3 then raises EmptyPoolError, translated as a timeout.
        left = time_left()
        if left is not None and (timeout is None or left < timeout):
            timeout = left
        return super()._get_conn(timeout)  # type: ignore[misc]


class DeadlinePoolMixin(BoundedWaitMixin):
    """A urllib3 pool whose connections keep to the request deadline, and
    whose wait for a free connection does too.

    It leaves ``ConnectionCls`` alone (so a recorder such as vcrpy, which
    swaps that class, still works) and arms each connection's socket right
    after it connects.
    """

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        connect = conn.connect

        def connect_armed() -> None:
            connect()
            arm(getattr(conn, "sock", None))

        conn.connect = connect_armed
        return conn


class DeadlineHTTPConnectionPool(DeadlinePoolMixin, urllib3.HTTPConnectionPool):
    """urllib3's HTTP pool, keeping to the deadline."""


class DeadlineHTTPSConnectionPool(DeadlinePoolMixin, urllib3.HTTPSConnectionPool):
    """urllib3's HTTPS pool, keeping to the deadline."""
