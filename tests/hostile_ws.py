"""A tiny websocket server on a Unix socket, for what LXD will not do on request.

It upgrades any path (plain HTTP requests get its ``http`` answers), records the request targets and headers (to prove what apitx
sends, such as no ``Origin``), sends the text messages it is given, and then
either drops the connection without a close frame (a daemon that dies) or
keeps it open until the test ends.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socketserver
import struct
import tempfile
import threading
from typing import Callable, Dict, List, Optional, Tuple

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def text_frame(text: str) -> bytes:
    """One unmasked server-to-client text frame."""
    payload = text.encode()
    if len(payload) < 126:
        return struct.pack("!BB", 0x81, len(payload)) + payload
    return struct.pack("!BBH", 0x81, 126, len(payload)) + payload


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
            self.wfile.write(b"\x89\x00")
        for message in self.server.messages:
            self.wfile.write(text_frame(message))
        self.wfile.flush()
        if self.server.then_drop:
            return  # the handler's end closes the socket: no close frame
        if not self.server.ping_every:
            self.server.release.wait(10)
            return
        # LXD and Incus ping every stream every 10 s; here as often as asked.
        while not self.server.release.wait(self.server.ping_every):
            self.wfile.write(b"\x89\x00")
            self.wfile.flush()


class WebSocketServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, messages: List[str], then_drop: bool) -> None:
        self.requests: List[Dict[str, str]] = []
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

    def __init__(self, messages: List[str], then_drop: bool = True) -> None:
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
