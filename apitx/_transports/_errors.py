"""Transport failures translated into apitx's exceptions, with a fix in each message.

What requests, urllib3, ssl and the socket module raise never escapes apitx:
:func:`translate_error` names the endpoint, the request and the likely fix,
says whether the request left (``sent``), and keeps the original as
``__cause__`` (the caller raises ``from exc``).

>>> import requests
>>> from apitx._endpoint import Endpoint
>>> from apitx._transports import translate_error
>>> from apitx._transports._adapters import UnixSocketAdapter
>>> session = requests.Session()
>>> session.mount('http+unix://lxd/', UnixSocketAdapter('/nowhere.socket', maxsize=1))
>>> try:
...     session.get('http+unix://lxd/1.0')
... except (requests.RequestException, OSError) as exc:
...     translate_error(exc, Endpoint.parse('/nowhere.socket'), 'GET unix:/nowhere.socket /1.0')
APIConnectionError('GET unix:/nowhere.socket /1.0: no socket at /nowhere.socket: is the daemon running? Start it, or point LXD_DIR/LXD_SOCKET (or endpoint=) at its socket')
"""

from __future__ import annotations

import errno
import http.client
import socket
from collections import deque
from typing import Any, Iterator, Mapping, Optional

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .._endpoint import Endpoint
from .._exceptions import APITXError
from .._lazy import LazyPattern
from . import _failures as failures
from ._failures import DEADLINE_PASSED

#: What requests refuses before sending: the caller's arguments, not the
#: server or the connection, are at fault.
CALLER_MISTAKES = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidJSONError,
                   requests.exceptions.InvalidURL)


def mistake(exc: Exception, headers: Optional[Mapping[Any, Any]]) -> str:
    """What was wrong with a request requests refused, without quoting a
    header's value (it may be a token)."""
    if isinstance(exc, requests.exceptions.InvalidHeader):
        names = [str(name) for name, value in dict(headers or {}).items()
                 if not isinstance(value, (str, bytes)) or str(value) != str(value).strip()
                 or any(c in str(value) for c in "\r\n")]
        which = f"header {', '.join(names)}" if names else "a header"
        return (f"{which} cannot be sent: a value must be a str or bytes with no CR/LF "
                "and no leading or trailing whitespace")
    return f"{type(exc).__name__}: {exc}"


def translate_error(exc: BaseException, endpoint: Endpoint, request_line: str) -> APITXError:
    """The apitx exception for a transport failure, with a fix in its message,
    and ``sent`` saying whether the request left before it failed.

    ``request_line`` is ``METHOD readable-url``. The caller raises the result
    ``from exc``.
    """
    error = _translated(exc, endpoint, request_line)
    error.sent = not any(isinstance(e, _NOT_SENT) for e in _chain(exc))
    return error


#: Failures that happen before a byte of the request leaves: no connection
#: (refused, not made in time, no such host) or none free in the pool.
_NOT_SENT = (NewConnectionError, ConnectTimeoutError, socket.gaierror,
             urllib3.exceptions.EmptyPoolError)


def _translated(exc: BaseException, endpoint: Endpoint, line: str) -> APITXError:
    """Classify what requests, urllib3 and the socket raised; the wording is
    :mod:`._failures`'s."""
    where = endpoint.display
    cause = _root_os_error(exc)
    chain = list(_chain(exc))
    if isinstance(exc, urllib3.exceptions.EmptyPoolError):
        return failures.pool_exhausted(line, where)
    if any(isinstance(e, socket.timeout) and str(e) == DEADLINE_PASSED for e in chain):
        return failures.deadline_passed(line)
    # Not urllib3's TimeoutError family: its NewConnectionError (a refused
    # connection) subclasses ConnectTimeoutError, for old callers' sake.
    if isinstance(exc, requests.Timeout) or any(
            isinstance(e, (socket.timeout, urllib3.exceptions.ReadTimeoutError)) for e in chain):
        return failures.timed_out(line, isinstance(exc, requests.ConnectTimeout), _reason(exc))
    if isinstance(exc, requests.exceptions.SSLError):
        return failures.tls_failure(line, where, _reason(exc))
    code = cause.errno if cause is not None else None
    known = failures.by_errno(line, endpoint, code)
    if known is not None:
        return known
    if any(isinstance(e, http.client.RemoteDisconnected) for e in chain):
        return failures.closed_without_answer(line, where)
    garbage = next((e for e in chain if isinstance(e, http.client.BadStatusLine)), None)
    if garbage is not None:
        return failures.not_http(line, where, _reason(garbage))
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                        requests.exceptions.ContentDecodingError)) or code in (
            errno.ECONNRESET, errno.EPIPE):
        return failures.broken_mid_answer(line, where, _reason(exc))
    return failures.cannot_talk(line, where, _reason(exc))


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
_POOL_REPR = LazyPattern(r"^\w+\(host=[^)]*\):\s*")


def _reason(exc: BaseException) -> str:
    """The innermost useful message, on one line."""
    inner = next((e for e in _chain(exc) if not isinstance(e, _WRAPPERS)), exc)
    text = _POOL_REPR.sub("", " ".join(str(inner).split()))
    return text or type(inner).__name__
