"""A tiny websocket server on a Unix socket, for what LXD will not do on request.

It upgrades any path (plain HTTP requests get its ``http`` answers), records
the request targets and headers (to prove what apitx sends, such as no
``Origin``), sends what it is given (a str as a text message, bytes as they
are: a frame crafted with :func:`frame` or :func:`header`, such as a
1 GiB frame that never comes), and then either drops the connection without
a close frame (a daemon that dies) or keeps it open until the test ends,
recording every byte the client sends meanwhile (``received``: to prove
what apitx does not send, such as a pong).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import socketserver
import struct
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def header(opcode: int, length: int, fin: bool = True) -> bytes:
    """The header of an unmasked server-to-client frame of ``length`` bytes."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One whole unmasked server-to-client frame."""
    return header(opcode, len(payload), fin) + payload


class _Handler(socketserver.StreamRequestHandler):
    server: "WebSocketServer"

    def handle(self) -> None:
        self.server.targets.append(self.rfile.readline().decode("latin-1").split(" ")[1])
        headers: Dict[str, str] = {}
        while True:
            line = self.rfile.readline().decode("latin-1").strip()
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.server.requests.append(headers)
        if "sec-websocket-key" not in headers:  # plain HTTP: the server's http() answers
            status, body = self.server.http(self.server.targets[-1])
            self.wfile.write((f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json"
                              f"\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                              ).encode() + body)
            return
        accept = base64.b64encode(hashlib.sha1(
            headers["sec-websocket-key"].encode() + _GUID).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                          ).encode())
        if self.server.ping_first:  # as LXD does once it registered an event listener
            self.wfile.write(frame(PING, b""))
        for message in self.server.messages:
            self.wfile.write(frame(TEXT, message.encode()) if isinstance(message, str)
                             else message)
        self.wfile.flush()
        if self.server.then_drop:
            return  # the handler's end closes the socket: no close frame
        self._hold()

    def _hold(self) -> None:
        """Until the client leaves or the test ends: record what the client
        sends and, if asked, ping every ``ping_every`` seconds (LXD and Incus
        ping every stream every 10 s). 10 s at most when not pinging."""
        received = bytearray()
        self.connection.settimeout(0.05)
        every = self.server.ping_every
        deadline = None if every else time.monotonic() + 10
        next_ping = time.monotonic() + (every or 0)
        try:
            while not self.server.release.is_set() and (
                    deadline is None or time.monotonic() < deadline):
                if every and time.monotonic() >= next_ping:
                    self.wfile.write(frame(PING, b""))
                    self.wfile.flush()
                    next_ping += every
                try:
                    data = self.connection.recv(1 << 16)
                except socket.timeout:
                    continue
                if not data:
                    return
                received += data
        except OSError:
            return
        finally:
            self.server.received.append(bytes(received))
            self.server.recorded.set()


class WebSocketServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, messages: Sequence[Union[str, bytes]],
                 then_drop: bool) -> None:
        self.requests: List[Dict[str, str]] = []
        #: Per held connection that ended, the bytes the client sent after the
        #: upgrade; ``recorded`` is set as each is added.
        self.received: List[bytes] = []
        self.recorded = threading.Event()
        self.targets: List[str] = []
        self.messages = messages
        self.then_drop = then_drop
        self.release = threading.Event()
        self.ping_first = False
        #: Seconds between keepalive pings while the connection stays open (None: none).
        self.ping_every: Optional[float] = None
        #: Answers plain HTTP requests: ``http(target) -> (status, JSON body)``.
        self.http: Callable[[str], Tuple[int, bytes]] = lambda target: (404, b"{}")
        super().__init__(path, _Handler)


class running_ws_server:
    """Context manager: a WebSocketServer on a short temp path, in a thread."""

    def __init__(self, messages: Sequence[Union[str, bytes]], then_drop: bool = True) -> None:
        self.messages, self.then_drop = messages, then_drop

    def __enter__(self) -> WebSocketServer:
        self._dir = tempfile.mkdtemp(prefix="apitx-ws-")
        self.server = WebSocketServer(os.path.join(self._dir, "s.sock"), self.messages,
                                      self.then_drop)
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.release.set()
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.server.server_address)
        os.rmdir(self._dir)
