"""What each kind of transport failure says: the wording, shared by both clients.

The sync transport (requests, urllib3) and the async one (aiohttp) fail in
their own exception classes; each classifies its own (``_errors``,
``_aio_errors``) and words the failure here, so that the same fault gives the
same apitx exception and message whichever client met it. Every message
starts with the request line and ends with what to do.

>>> import errno
>>> from apitx._endpoint import Endpoint
>>> from apitx._transports._failures import by_errno
>>> lxd = Endpoint.parse('/var/lib/lxd/unix.socket')
>>> by_errno('GET unix:/var/lib/lxd/unix.socket /1.0', lxd, errno.ECONNREFUSED)
APIConnectionError('GET unix:/var/lib/lxd/unix.socket /1.0: connection refused by unix:/var/lib/lxd/unix.socket: is the daemon running? Nothing listens on that socket')
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Optional

from .._endpoint import Endpoint
from .._exceptions import APIConnectionError, APITimeoutError

#: The words of the ``socket.timeout`` a passed deadline raises: error
#: translation tells it from an ordinary read timeout by them.
DEADLINE_PASSED = "the request's total deadline passed"


def pool_exhausted(line: str, where: str) -> APITimeoutError:
    return APITimeoutError(
        f"{line}: timed out waiting for a free connection to {where}: every one the API "
        "may open (Limits.max_connections) was busy until the request's deadline; nothing "
        "was sent. Raise max_connections, or send fewer requests at once")


def deadline_passed(line: str) -> APITimeoutError:
    return APITimeoutError(
        f"{line}: timed out: {DEADLINE_PASSED} (Timeout.total) while the server was still "
        "sending; is it dribbling its answer? Raise API(timeout=Timeout(total=...)) if the "
        "request is legitimately this long")


def timed_out(line: str, connecting: bool, reason: str) -> APITimeoutError:
    return APITimeoutError(
        f"{line}: timed out {'connecting' if connecting else 'waiting for the answer'} "
        f"({reason}); is the daemon stuck or overloaded, or a cluster member without "
        "quorum? Raise API(timeout=...) if the request is legitimately slow")


def tls_failure(line: str, where: str, reason: str) -> APIConnectionError:
    return APIConnectionError(
        f"{line}: TLS failure with {where}: {reason}. Check verify= (LXD's certificate is "
        "self-signed: pass verify='/path/to/server.crt') and cert=(client.crt, client.key), "
        "a certificate the server trusts (lxc config trust add)", endpoint=where)


def by_errno(line: str, endpoint: Endpoint, code: Optional[int]) -> Optional[APIConnectionError]:
    """The failure an OS error number means for this endpoint, or None when
    the number says nothing particular."""
    where = endpoint.display
    if code in (errno.EACCES, errno.EPERM):
        hint = ("run as root, or add your user to the 'lxd' group (on Incus: "
                "'incus-admin') (then log in again)"
                if endpoint.socket_path else "check the firewall and the server's address")
        return APIConnectionError(f"{line}: permission denied on {where}: {hint}",
                                  endpoint=where)
    if code == errno.ENOENT and endpoint.socket_path:
        return APIConnectionError(
            f"{line}: no socket at {endpoint.socket_path}: is the daemon running? Start it, "
            "or point LXD_DIR/LXD_SOCKET (or endpoint=) at its socket", endpoint=where)
    if code in (errno.ECONNREFUSED, errno.ENOTSOCK) and _not_a_socket(endpoint.socket_path):
        return APIConnectionError(
            f"{line}: {endpoint.socket_path} is not a socket: point LXD_DIR/LXD_SOCKET "
            "(or endpoint=) at the daemon's unix.socket", endpoint=where)
    if code in (errno.ECONNREFUSED, errno.ENOTSOCK):
        hint = ("is the daemon running? Nothing listens on that socket"
                if endpoint.socket_path else
                "is the daemon running and listening there? (lxc config set "
                "core.https_address)")
        return APIConnectionError(f"{line}: connection refused by {where}: {hint}",
                                  endpoint=where)
    return None


def closed_without_answer(line: str, where: str) -> APIConnectionError:
    return APIConnectionError(
        f"{line}: {where} closed the connection without an answer: did the daemon stop or "
        "restart? The request may or may not have been applied: read the state back before "
        "retrying", endpoint=where)


def not_http(line: str, where: str, sent: str) -> APIConnectionError:
    return APIConnectionError(
        f"{line}: {where} did not answer in HTTP (it sent {sent!r}): is this the right "
        "socket or port?", endpoint=where)


def broken_mid_answer(line: str, where: str, reason: str) -> APIConnectionError:
    return APIConnectionError(
        f"{line}: the connection to {where} broke mid-answer: {reason}; the request may or "
        "may not have been applied: read the state back before retrying", endpoint=where)


def cannot_talk(line: str, where: str, reason: str) -> APIConnectionError:
    return APIConnectionError(f"{line}: cannot talk to {where}: {reason}", endpoint=where)


def _not_a_socket(path: Optional[str]) -> bool:
    try:
        return path is not None and not stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
