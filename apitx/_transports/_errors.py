"""Transport failures translated into apitx's exceptions, with a fix in each message.

What requests, urllib3, ssl and the socket module raise never escapes apitx:
:func:`translate_error` names the endpoint, the request and the likely fix,
says whether the request left (``sent``), and keeps the original as
``__cause__`` (the caller raises ``from exc``).

Example::

    try:
        session.send(prepared)
    except (requests.RequestException, OSError) as exc:
        raise translate_error(exc, endpoint, 'GET unix:/var/lib/lxd/unix.socket /1.0') from exc
"""

from __future__ import annotations

import errno
import http.client
import os
import re
import socket
import stat
from collections import deque
from typing import Any, Iterator, Mapping, Optional

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .._endpoint import Endpoint
from .._exceptions import APIConnectionError, APITimeoutError, APITXError
from ._deadline import DEADLINE_PASSED

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


def _translated(exc: BaseException, endpoint: Endpoint, request_line: str) -> APITXError:
    where = endpoint.display
    cause = _root_os_error(exc)
    chain = list(_chain(exc))
    if isinstance(exc, urllib3.exceptions.EmptyPoolError):
        return APITimeoutError(
            f"{request_line}: timed out waiting for a free connection to {where}: every "
            "one the API may open (Limits.max_connections) was busy until the request's "
            "deadline; nothing was sent. Raise max_connections, or send fewer requests at once")
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
