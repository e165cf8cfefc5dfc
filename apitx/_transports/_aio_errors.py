"""aiohttp's failures translated into apitx's exceptions (the async transport).

The same faults as the sync transport meets, met by aiohttp: classified here,
worded by :mod:`._failures`, so each ends as the same apitx exception with
the same message whichever client met it, ``sent`` saying whether the
request left, and the original kept as ``__cause__`` (the caller raises
``from exc``).

>>> import asyncio, aiohttp
>>> from apitx._endpoint import Endpoint
>>> from apitx._transports._aio_errors import translate_aiohttp_error
>>> async def get(path):
...     connector = aiohttp.UnixConnector(path=path)
...     async with aiohttp.ClientSession(connector=connector) as session:
...         try:
...             await session.get('http://lxd/1.0')
...         except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
...             return translate_aiohttp_error(exc, Endpoint.parse(path), f'GET unix:{path} /1.0')
>>> asyncio.run(get('/nowhere.socket'))
APIConnectionError('GET unix:/nowhere.socket /1.0: no socket at /nowhere.socket: is the daemon running? Start it, or point LXD_DIR/LXD_SOCKET (or endpoint=) at its socket')
"""

from __future__ import annotations

import asyncio
import errno
from typing import Optional

import aiohttp

from .._endpoint import Endpoint
from .._exceptions import APITXError, CertificateMismatch
from ._pinning import format_fingerprint
from . import _failures as failures

#: aiohttp's failures that happen before a byte of the request leaves.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ServerFingerprintMismatch,
             aiohttp.ConnectionTimeoutError)


def translate_aiohttp_error(exc: BaseException, endpoint: Endpoint, line: str,
                            expected: str = "") -> APITXError:
    """The apitx exception for what aiohttp (or the socket under it) raised.
    ``expected`` names the pinned fingerprints, for a certificate mismatch."""
    error = _translated(exc, endpoint, line, expected)
    error.sent = not isinstance(exc, _NOT_SENT)
    return error


def _translated(exc: BaseException, endpoint: Endpoint, line: str, expected: str) -> APITXError:
    where = endpoint.display
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        seen = format_fingerprint(exc.got)
        return CertificateMismatch(
            f"{where} presented certificate {seen}, not the pinned {expected}; nothing was "
            "sent. If the server's certificate changed on purpose, re-pin it (apitx remote "
            "add, or a new verify=/fingerprint=); otherwise check the address: another server "
            "answers there", endpoint=where, seen=seen, expected=expected)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return failures.timed_out(line, True, f"no connection in time: {_reason(exc)}")
    if isinstance(exc, (aiohttp.ServerTimeoutError, aiohttp.SocketTimeoutError)):
        return failures.timed_out(line, False, _reason(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return failures.deadline_passed(line)
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError,
                        aiohttp.ClientConnectorSSLError, aiohttp.ClientSSLError)):
        return failures.tls_failure(line, where, _reason(exc))
    known = failures.by_errno(line, endpoint, _errno(exc))
    if known is not None:
        return known
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return failures.closed_without_answer(line, where)
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 400 and \
            "status" in str(exc.message).lower():
        return failures.not_http(line, where, str(exc.message))
    if isinstance(exc, aiohttp.ClientPayloadError) or _errno(exc) in (
            errno.ECONNRESET, errno.EPIPE):
        return failures.broken_mid_answer(line, where, _reason(exc))
    return failures.cannot_talk(line, where, _reason(exc))


def _errno(exc: BaseException) -> Optional[int]:
    """The OS error number behind an aiohttp failure, if any."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.errno
    if isinstance(exc, OSError):
        return exc.errno
    cause = exc.__cause__ or exc.__context__
    return cause.errno if isinstance(cause, OSError) else None


def _reason(exc: BaseException) -> str:
    """The most useful message, on one line."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
