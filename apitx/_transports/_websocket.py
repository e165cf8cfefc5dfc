"""Websockets to an LXD-style API: the transport under exec and events.

:func:`connect_websocket` connects the socket itself, the way every other
apitx request does (the Unix socket through :func:`open_unix_socket`, HTTPS
with the API's own client certificate and trust, pins included), and hands
the connected socket to websocket-client for the upgrade. So the endpoint,
timeouts and error messages are apitx's, whatever the transport.

Three rules LXD imposes, all measured on LXD 5.0.2 and Incus 6.0:

- no ``Origin`` header: LXD refuses an upgrade whose origin it does not
  know, and websocket-client sends one unless told not to;
- the ``secret`` query parameter is a credential for a running command:
  traces and messages redact it (``secret`` is a secret name to
  :func:`apitx._redact.redact_url`);
- a refused upgrade answers with LXD's usual JSON envelope (403 for a bad
  secret): :class:`UpgradeRefused` carries it up, to be raised as the same
  :class:`APIException` a plain request would raise, with the server's message.

Two rules of our own:

- a message is capped (``max_message``: the API's ``max_answer_bytes``). A
  frame that would take a message past the cap is refused from its header,
  before its payload is read, and the connection is closed
  (:class:`ResponseTooLarge`); fragments are collected and joined once, so a
  message costs its size, not its size squared;
- a connection can be made *silent* (:attr:`WebSocketConnection.silent`):
  then it writes only what its caller sends, never a pong or a close frame
  of its own. Exec needs it: LXD never reads some exec websockets, and a
  byte left unread in a TCP socket turns LXD's close into a reset that
  discards output still queued (see :mod:`apitx._exec`).

>>> import json
>>> from apitx import API
>>> api = API.factory()
>>> with api.websocket('events', {'type': 'lifecycle'}) as ws:
...     while ws.pings == 0:             # LXD's first ping: it listens from now on
...         frame = ws.recv_frame()
...     result = api.exec(c1, ['true'])
...     json.loads(ws.recv())['type']    # one JSON text message
'lifecycle'
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import struct
import threading
import time
from typing import Any, Dict, List, NoReturn, Optional, Tuple, Union, cast
from urllib.parse import urlsplit

import requests
import websocket

from .._config import Timeout
from .._endpoint import Endpoint
from .._exceptions import APIConnectionError, APITimeoutError, APITXError, ResponseTooLarge
from ._errors import translate_error
from ._messages import (NO_MESSAGE, Message, UpgradeRefused, _sequence, describe_message,
                        trace_upgrade)
from ._pinning import Pin
from ._unix import open_unix_socket

logger = logging.getLogger("apitx")

_OP = websocket.ABNF


class WebSocketConnection:
    """One open websocket; a context manager that closes it.

    ``recv()`` returns a ``str`` (text message), ``bytes`` (binary message),
    or None once the peer has closed the websocket (LXD's end of a stream).
    Reads wait at most the API's read timeout (``settimeout`` changes it;
    None waits forever), then raise :class:`APITimeoutError`. A message
    longer than ``max_message`` bytes raises :class:`ResponseTooLarge`.

    >>> from apitx import API
    >>> with API.factory().websocket('events', {'type': 'operation'}) as ws:
    ...     ws
    <WebSocketConnection unix:/var/lib/lxd/unix.socket /1.0/events?type=operation>
    >>> ws.closed
    True
    """

    def __init__(self, ws: websocket.WebSocket, endpoint: str, describe: str,
                 traced: bool, max_message: int) -> None:
        self._ws = ws
        #: The readable endpoint (``unix:/var/lib/lxd/unix.socket``) and the
        #: whole websocket (endpoint and path, secrets redacted).
        self.endpoint, self.describe = endpoint, describe
        #: Kept here: websocket-client forgets its socket once it shut it down,
        #: and fileno(), pending() and abort() may come later, from elsewhere.
        if ws.sock is None:
            raise APIConnectionError(f"{describe}: the websocket is not connected")
        self._sock: socket.socket = ws.sock
        self._seq = next(_sequence) if traced else None
        #: True when this connection's messages are traced.
        self.traced = traced
        self.closed = False
        self._close_sent = False
        #: The largest message read (the API's ``max_answer_bytes``).
        self.max_message = max_message
        #: True: write nothing but what the caller sends (no pong, no close
        #: frame of our own): for a peer that does not read this websocket.
        self.silent = False
        #: The fragments of a message not whole yet, their opcode and size.
        self._pieces: List[bytes] = []
        self._opcode = 0
        self._gathered = 0
        #: Pings received so far (LXD's first one says its event listener is
        #: registered: see :meth:`apitx._events.EventStream.confirm`).
        self.pings = 0
        #: When a frame (any, pings included) last arrived (``time.monotonic()``):
        #: a stream silent for long is a daemon that stopped answering.
        self.last_frame = time.monotonic()

    # -- sending and receiving ------------------------------------------------

    def send_text(self, text: str) -> None:
        """Send one text message (LXD's control and events messages are JSON text)."""
        self._trace(">", text)
        self._io(self._ws.send, text, _OP.OPCODE_TEXT)

    def send_binary(self, data: bytes) -> None:
        """Send one binary message (a piece of a stream)."""
        self._trace(">", data)
        self._io(self._ws.send_bytes, data)

    def recv(self) -> Optional[Message]:
        """The next message, or None when the peer closed the websocket."""
        while True:
            message = self.recv_frame()
            if message is not NO_MESSAGE:
                return message  # type: ignore[return-value]

    def recv_frame(self) -> Union[Message, None, object]:
        """Read exactly one frame: a message, None (closed), or :data:`NO_MESSAGE`.

        For callers that multiplex sockets with ``selectors``: one readable
        socket means one frame can be read without blocking for long, and a
        ping must not turn into a wait for the next message.

        Pings are answered here (unless :attr:`silent`). A pong that cannot
        be sent is ignored: a peer that sent its last messages and left (LXD
        does, at the end of a stream) must not lose them to a failed reply; a
        real loss shows on the next read.
        """
        try:
            frame = self._io(self._next_frame, reading=True)
        except _PeerClosed:
            return None
        self.last_frame = time.monotonic()
        if frame.opcode in (_OP.OPCODE_TEXT, _OP.OPCODE_BINARY, _OP.OPCODE_CONT):
            return self._gather(frame)
        if frame.opcode == _OP.OPCODE_CLOSE:
            self._trace("<", "<close>")
            if not self._close_sent:  # the closing handshake: answer once
                self._close_sent = True
                self._reply(_OP.OPCODE_CLOSE, struct.pack("!H", websocket.STATUS_NORMAL))
            return None
        if frame.opcode == _OP.OPCODE_PING:
            self.pings += 1
            self._reply(_OP.OPCODE_PONG, frame.data)
        return NO_MESSAGE

    def _next_frame(self) -> websocket.ABNF:
        """The next frame, its size checked against :attr:`max_message` from
        its header, before its payload is read.

        websocket-client keeps a partly read frame (header, length) across a
        read timeout; its reader is driven here step by step so the length is
        known first, then left to read the rest.
        """
        reader = self._ws.frame_buffer
        if reader.needs_header():
            reader.recv_header()
        if reader.needs_length():
            reader.recv_length()
        header: Any = reader.header  # (fin, rsv1, rsv2, rsv3, opcode, mask, length bits)
        opcode, size = header[4], int(reader.length or 0)
        if opcode >= _OP.OPCODE_CLOSE and size > 125:  # RFC 6455 5.5
            self._broken(f"a control frame of {size} bytes")
        so_far = self._gathered if opcode == _OP.OPCODE_CONT else 0
        if so_far + size > self.max_message:
            self.abort()  # the rest of that frame is never read: nothing to resume
            raise ResponseTooLarge(
                f"websocket {self.describe}: the server sent a message larger than "
                f"{self.max_message} bytes (max_answer_bytes): a frame of {size} bytes"
                f"{f' after {so_far} in fragments' if so_far else ''}, refused unread; the "
                "connection was closed. Raise API(max_answer_bytes=...) if it is legitimately "
                "this large")
        frame: websocket.ABNF = self._ws.recv_frame()  # type: ignore[no-untyped-call]
        return frame

    def _gather(self, frame: websocket.ABNF) -> Union[Message, object]:
        """A whole message from a data frame, or NO_MESSAGE while fragments
        arrive: the pieces are kept apart and joined once, in linear time."""
        starts = frame.opcode != _OP.OPCODE_CONT
        if starts == bool(self._opcode):
            self._broken("a new message inside a fragmented one" if starts else
                         "a continuation frame with no message to continue")
        if starts:
            self._opcode = frame.opcode
        data = cast(bytes, frame.data)  # a frame read from a socket carries bytes
        if not frame.fin:
            self._pieces.append(data)
            self._gathered += len(data)
            return NO_MESSAGE
        raw = b"".join(self._pieces + [data]) if self._pieces else data
        opcode, self._opcode, self._pieces, self._gathered = self._opcode, 0, [], 0
        message: Message = raw.decode("utf-8", "replace") if opcode == _OP.OPCODE_TEXT else raw
        self._trace("<", message)
        return message

    def _broken(self, what: str) -> NoReturn:
        """The peer broke the protocol: close, and say what it sent."""
        self.abort()
        raise APIConnectionError(f"websocket {self.describe}: the server broke the websocket "
                                 f"protocol ({what}); the connection was closed",
                                 endpoint=self.endpoint)

    def _reply(self, opcode: int, payload: bytes) -> None:
        """Answer a ping or a close, best effort, never waiting; never when silent.

        Another thread may be blocked sending on this websocket (exec's stdin
        writer, while the command does not read): waiting for it here would
        stop this thread from reading the output the command is blocked on, a
        deadlock. So the reply is skipped while a send is in progress (LXD
        needs no pong: its pings only keep the connection alive). It is also
        skipped when the peer already left: the next read says so, after
        what it sent.
        """
        ws = self._ws
        if self.silent or not ws.lock.acquire(blocking=False):
            return
        try:
            ws._send(websocket.ABNF.create_frame(payload, opcode).format())
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            ws.lock.release()

    def settimeout(self, seconds: Optional[float]) -> None:
        """The read (and send) timeout from now on; None waits forever."""
        self._ws.settimeout(seconds)

    def fileno(self) -> int:
        """The socket's file descriptor, for ``selectors``."""
        return self._sock.fileno()

    def relay_socket(self) -> socket.socket:
        """The connected socket itself, for :class:`~apitx._transports._relay.Relay`,
        which then reads and writes frames on it directly (websocket-client
        reads exactly what a frame needs, so nothing of the stream is held
        here): from then on, no other method but :meth:`abort` and
        :meth:`close` may be used."""
        return self._sock

    def pending(self) -> bool:
        """True when bytes already decrypted by TLS wait to be read:
        ``select`` cannot see those, so check before waiting on :meth:`fileno`."""
        return isinstance(self._sock, ssl.SSLSocket) and self._sock.pending() > 0

    # -- ending -----------------------------------------------------------------

    def close(self) -> None:
        """Send a close frame (the end of what we send) and drop the connection.

        Does not wait for the peer's close frame: LXD does not always answer
        one, and the caller has read what it wanted. A :attr:`silent`
        connection, or one after :meth:`abort`, is only dropped.
        """
        if not self.closed and not self._close_sent and not self.silent:
            self._close_sent = True
            self._trace(">", "<close>")
            try:
                self._ws.close(timeout=0)
            except (websocket.WebSocketException, OSError):
                pass  # the peer left first: closing is all that was asked
        self.closed = True
        self._ws.shutdown()  # type: ignore[no-untyped-call]

    def send_close(self) -> None:
        """Send a close frame only, and keep reading: "end of my input"."""
        self._close_sent = True
        self._trace(">", "<close>")
        self._io(self._ws.send_close)

    def abort(self) -> None:
        """End the connection at once, even while another thread is blocked in
        :meth:`recv` (that call then sees the connection closed)."""
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone

    def __enter__(self) -> WebSocketConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<WebSocketConnection {self.describe}{' closed' if self.closed else ''}>"

    # -- internals --------------------------------------------------------------

    def _io(self, method: Any, *args: Any, reading: bool = False) -> Any:
        """Run one websocket-client call, translating its failures.

        A read that fails because we closed (or aborted) the connection is
        the end of the stream (:class:`_PeerClosed`); a send is an error.
        """
        try:
            return method(*args)
        except (websocket.WebSocketTimeoutException, socket.timeout) as exc:
            raise APITimeoutError(
                f"websocket {self.describe}: nothing "
                f"{'received' if reading else 'could be sent'} in time "
                f"({self._ws.gettimeout()}s); raise the timeout if the wait is "
                "legitimate") from exc
        except (websocket.WebSocketException, OSError) as exc:
            if self.closed and reading:
                raise _PeerClosed() from exc
            if self.closed:
                reason = "it is closed already"
            elif isinstance(exc, websocket.WebSocketConnectionClosedException):
                reason = ("the connection was dropped: the server went away or the network "
                          "broke; what it was doing may or may not have finished")
            else:
                reason = str(exc)
            raise APIConnectionError(f"websocket {self.describe}: {reason}",
                                     endpoint=self.endpoint) from exc

    def _trace(self, direction: str, message: Message) -> None:
        if self._seq is None or not logger.isEnabledFor(logging.DEBUG):
            return
        logger.debug("#ws%d %s %s", self._seq, direction, describe_message(message))


class _PeerClosed(Exception):
    """Internal: the connection ended after (or because) we closed it."""


def connect_websocket(endpoint: Endpoint, path: str, *, timeout: Timeout, cert: Any,
                      verify: Union[bool, str], pin: Optional[Pin], traced: bool,
                      line: str, max_message: int) -> WebSocketConnection:
    """Open a websocket at ``path`` (path and query, as sent) on ``endpoint``.

    The socket is connected here, the way every other apitx request is (the
    Unix socket through :func:`open_unix_socket`, HTTPS with the client
    certificate ``cert`` and the trust ``verify`` or ``pin``), and handed to
    websocket-client for the upgrade only. ``timeout.connect`` bounds
    connecting and the upgrade, ``timeout.read`` every later read. ``line``
    (``GET readable-url``) starts every message; ``max_message`` caps each
    message read (bytes). Raises
    :class:`APIConnectionError`, :class:`APITimeoutError`, or
    :class:`UpgradeRefused` with the server's answer.

    >>> from apitx._config import Timeout
    >>> from apitx._endpoint import Endpoint
    >>> from apitx._transports._websocket import connect_websocket
    >>> lxd = Endpoint.parse('/var/lib/lxd/unix.socket')
    >>> def connect(path):
    ...     return connect_websocket(lxd, path, timeout=Timeout(), cert=None, verify=True,
    ...                              pin=None, traced=False, line=f'GET {path}',
    ...                              max_message=1 << 26)
    >>> connect('/1.0/events?type=operation').close()
    >>> connect('/1.0/nowhere')
    Traceback (most recent call last):
      ...
    apitx._transports._messages.UpgradeRefused: HTTP 404 Not Found
    """
    started = time.perf_counter()
    try:
        sock = _connect(endpoint, timeout.connect, cert, verify, pin)
    except (OSError, ssl.SSLError) as exc:
        # No connection, or no trusted one: the upgrade never left, so the
        # caller may try another cluster member.
        error = _translate(exc, endpoint, line)
        error.sent = False
        raise error from exc
    ws = websocket.WebSocket(skip_utf8_validation=True)
    # The socket is connected already: the URL only gives websocket-client
    # the Host header and the path.
    secure = endpoint.base_url.startswith("https:")
    ws_url = f"{'wss' if secure else 'ws'}://{urlsplit(endpoint.base_url).netloc}{path}"
    try:
        # The upgrade is bounded by the connect timeout; later reads by the read one.
        ws.connect(ws_url, socket=sock, timeout=timeout.connect,  # type: ignore[no-untyped-call]
                   suppress_origin=True)
    except websocket.WebSocketBadStatusException as exc:
        sock.close()
        raise UpgradeRefused(exc.status_code, _reason_phrase(exc), exc.resp_headers or {},
                             exc.resp_body or b"", time.perf_counter() - started) from exc
    except (OSError, ssl.SSLError, websocket.WebSocketException) as exc:
        sock.close()
        if isinstance(exc, websocket.WebSocketTimeoutException):
            exc = socket.timeout(str(exc))
        raise _translate(exc, endpoint, line) from exc
    ws.settimeout(timeout.read)
    connection = WebSocketConnection(ws, endpoint.display, line[len("GET "):], traced,
                                     max_message)
    trace_upgrade(connection._seq, line, started)
    return connection


def _connect(endpoint: Endpoint, connect_timeout: Optional[float], cert: Any,
             verify: Union[bool, str], pin: Optional[Pin]) -> socket.socket:
    """A socket connected to the endpoint: AF_UNIX, or TCP wrapped in TLS
    with the client certificate and trust."""
    if endpoint.socket_path:
        return open_unix_socket(endpoint.socket_path, connect_timeout)
    parts = urlsplit(endpoint.base_url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    sock = socket.create_connection((parts.hostname, port), timeout=connect_timeout)
    if not secure:
        return sock
    # A pinned endpoint (verify= a server's own certificate, or fingerprint=)
    # trusts that certificate whatever name reached it, as requests does
    # through the PinningAdapter: no CA or hostname check, the pin checked
    # before anything is sent.
    try:
        tls = ssl_context(cert, False if pin else verify).wrap_socket(
            sock, server_hostname=parts.hostname)
        if pin is not None:
            pin.check(tls.getpeercert(binary_form=True), endpoint.origin)
        return tls
    except BaseException:
        sock.close()
        raise


#: TLS settings already built, by ``(cert, verify)``, with the files' stamps.
#: Building them reads the certificate files (and the system's CA store when
#: ``verify=True``): 20-60 ms here, four times per exec. Under 16 threads
#: that alone pushed connecting an exec's websockets past the 5 s LXD waits
#: for them. A context is rebuilt when one of its files changed.
_contexts: Dict[Tuple[Any, Any], Tuple[Tuple[Any, ...], ssl.SSLContext]] = {}
_contexts_lock = threading.Lock()
_CONTEXTS_KEPT = 16


def ssl_context(cert: Any, verify: Union[bool, str]) -> ssl.SSLContext:
    """The TLS settings requests would use for ``cert=`` and ``verify=``,
    built once while their files are unchanged (contexts are thread-safe).

    The system's CA store is loaded only when it is the trust (``verify=True``):
    loading it costs ~90 ms here, for every websocket, and a pinned endpoint
    (``verify=False``, the pin checked after the handshake) or a CA file of
    the caller's never reads it.

    >>> from apitx._transports._websocket import ssl_context
    >>> cert = ('/var/lib/apitx-sandbox/client.crt', '/var/lib/apitx-sandbox/client.key')
    >>> context = ssl_context(cert, '/var/lib/apitx-sandbox/server.crt')
    >>> context.verify_mode, context is ssl_context(cert, '/var/lib/apitx-sandbox/server.crt')
    (<VerifyMode.CERT_REQUIRED: 2>, True)
    """
    key = (tuple(cert) if isinstance(cert, (list, tuple)) else cert, verify)
    files = ([cert] if isinstance(cert, str) else list(cert or ())) + \
        ([verify] if isinstance(verify, str) else [])
    stamp = tuple(_stamp(path) for path in files)
    with _contexts_lock:
        kept = _contexts.get(key)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    context = _new_context(cert, verify)
    with _contexts_lock:
        if len(_contexts) >= _CONTEXTS_KEPT:
            _contexts.clear()
        _contexts[key] = (stamp, context)
    return context


def _stamp(path: Any) -> Optional[Tuple[int, int, int]]:
    """What says a file changed: its inode, size and modification time."""
    try:
        info = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None  # loading it will say what is wrong
    return info.st_ino, info.st_size, info.st_mtime_ns


def _new_context(cert: Any, verify: Union[bool, str]) -> ssl.SSLContext:
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):  # that CA (or directory of CAs) alone, as requests does
        context = ssl.create_default_context(
            capath=verify if os.path.isdir(verify) else None,
            cafile=None if os.path.isdir(verify) else verify)
    else:
        context = ssl.create_default_context()
    if cert:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
        context.load_cert_chain(certfile, keyfile)
    return context


def _translate(exc: BaseException, endpoint: Endpoint, line: str) -> APITXError:
    """translate_error() for what a websocket connect raises; TLS failures
    read as requests' so they get the same advice about cert= and verify=."""
    if isinstance(exc, ssl.SSLError):
        exc = requests.exceptions.SSLError(exc)
    return translate_error(exc, endpoint, line)


def _reason_phrase(exc: websocket.WebSocketBadStatusException) -> str:
    # websocket-client's message is "Handshake status 403 Forbidden -+-+- …".
    words = str(exc).split(" -+-+- ", 1)[0].split(" ", 3)
    return words[3] if len(words) > 3 else ""
