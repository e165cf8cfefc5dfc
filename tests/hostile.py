"""A small hostile HTTP server on a Unix socket, for faults LXD cannot produce.

It answers by path. Everything LXD *can* show (404s, failed operations,
timeouts of ``wait``) is tested against the real LXD instead, and answers
that are only odd LXD envelopes (other versions' failure encodings) against
canned answers (tests/canned.py, no socket); this server covers what needs
a socket: garbage, slowness, truncation, proxies' HTML pages, redirects.

It speaks raw bytes from a ``socketserver`` handler rather than
``http.server``, whose request logging crashes on AF_UNIX (the client
address is ``''``).
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
import tempfile
import threading
import time
import zlib
from typing import Dict, Tuple

from apitx.testing import operation

Answer = Tuple[int, Dict[str, str], bytes]


def envelope(metadata=None, *, type_="sync", status_code=200, error="", error_code=0,
             operation="") -> bytes:
    return json.dumps({"type": type_, "status": "Success", "status_code": status_code,
                       "operation": operation, "error_code": error_code, "error": error,
                       "metadata": metadata}).encode()


def deep_metadata(levels: int, innermost_code: int, err: str = "") -> dict:
    node: dict = {"status_code": innermost_code, "err": err}
    for _ in range(levels):
        node = {"status_code": 200, "metadata": node}
    return node


JSON = {"Content-Type": "application/json"}

#: Plain answers, by path.
ANSWERS: Dict[str, Answer] = {
    "/1.0": (200, JSON, envelope({"api_version": "1.0"})),
    "/html-502": (502, {"Content-Type": "text/html"},
                  b"<html><head><title>502 Bad Gateway</title></head>\n<body>"
                  b"<h1>Bad Gateway</h1>\n<p>nginx</p></body></html>"),
    "/text": (200, {"Content-Type": "text/plain"}, b"plain text, not JSON\n"),
    "/binary": (200, {"Content-Type": "application/octet-stream"}, bytes(range(256))),
    "/empty": (204, {}, b""),
    "/deep": (200, JSON, json.dumps({"type": "sync", "status_code": 200, "error": "",
                                     "metadata": deep_metadata(950, 400, "deep failure")}).encode()),
    "/deep-ok": (200, JSON, json.dumps({"type": "sync", "status_code": 200, "error": "",
                                        "metadata": deep_metadata(950, 200)}).encode()),
    "/1.0/operations/op-ok/wait": (200, JSON, envelope(operation("op-ok", 200))),
    # Too deep to read, with type: error at the top: it must not pass.
    "/deep-error-200": (200, JSON, b'{"type": "error", "error_code": 500, "error": "deep", '
                                   b'"metadata": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
    "/not-json-declared-json": (200, JSON, b"{this is not json"),
    # Secrets in error bodies that are not LXD envelopes.
    "/secret-400": (400, {"Content-Type": "text/plain"},
                    b"rejected: password=PLANTED-PW token: PLANTED-TOKEN api_key=PLANTED-KEY"),
    "/secret-json-400": (400, JSON, b'{"password": "PLANTED-PW", "detail": "bad"}'),
    # Redirects: LXD never sends one.
    "/redirect-away": (302, {"Location": "http://127.0.0.1:9/stolen?token=PLANTED-TOKEN"}, b""),
    "/redirect-here": (307, {"Location": "/1.0"}, b""),
    "/redirect-see-other": (303, {"Location": "/text"}, b""),
    "/redirect-loop": (302, {"Location": "/redirect-loop"}, b""),
}

# GET /async/op-ok answers like an LXD POST that started operation op-ok (for
# the apitx command, which needs a socket).
ANSWERS["/async/op-ok"] = (202, JSON, envelope(operation("op-ok", 103), type_="async",
                                               status_code=100,
                                               operation="/1.0/operations/op-ok"))


def _gzip_bomb(size: int) -> bytes:
    """A JSON envelope of ``size`` bytes and more, gzip-compressed to about a
    thousandth of that (made in pieces: the whole never exists here)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [packer.compress(b'{"type": "sync", "metadata": "')]
    zeros = b"0" * (1 << 20)
    parts += [packer.compress(zeros) for _ in range(size >> 20)]
    parts.append(packer.compress(b'"}') + packer.flush())
    return b"".join(parts)


#: 256 MiB of JSON in about 250 KB: what a decompression bomb looks like.
GZIP_BOMB = _gzip_bomb(256 << 20)


class _Handler(socketserver.StreamRequestHandler):
    server: "HostileServer"

    def handle(self) -> None:
        while True:  # keep-alive: several requests per connection
            line = self.rfile.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers = {}
            while True:
                header = self.rfile.readline().decode("latin-1").strip()
                if not header:
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = self.rfile.read(int(headers.get("content-length", 0) or 0))
            path = target.split("?", 1)[0]
            self.server.log.append((method, target, headers, body))
            if not self.fault(path):
                return
            self.answer(*self.reply(path, body))

    def reply(self, path: str, body: bytes) -> Answer:
        if path == "/echo":  # the request body back as metadata, and a cookie
            return (200, {**JSON, "Set-Cookie": "session=PLANTED-COOKIE"},
                    envelope(json.loads(body or b"null")))
        return self.server.answers.get(path, (404, JSON, envelope(
            None, type_="error", error="not found", error_code=404)))

    def fault(self, path: str) -> bool:
        """Misbehave for the fault paths; False means the connection is done."""
        write = self.wfile.write
        if path == "/garbage":
            write(b"SSH-2.0-this is not HTTP at all\r\n\r\n")
            return False
        if path == "/close":
            return False
        if path in ("/truncated", "/truncated-binary"):
            kind = b"application/json" if path == "/truncated" else b"application/octet-stream"
            write(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind +
                  b"\r\nContent-Length: 1000\r\n\r\n{\"type\": \"sync\", \"meta")
            return False
        if path == "/slow":
            time.sleep(self.server.slow_seconds)
        if path in ("/dribble", "/dribble-binary"):  # headers at once, the body a byte at a time
            body = envelope({"dribbled": "x" * 200})
            kind = b"application/json" if path == "/dribble" else b"application/octet-stream"
            write(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            return self._dribble(body)
        if path == "/dribble-headers":  # the status line and headers a byte at a time
            return self._dribble(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 + b"X-Padding: " + b"p" * 200 + b"\r\n\r\n")
        if path == "/gzip-bomb":
            write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Encoding: gzip\r\nContent-Length: "
                  + str(len(GZIP_BOMB)).encode() + b"\r\n\r\n" + GZIP_BOMB)
            return False
        if path == "/chunked-endless":  # JSON that never ends, in chunks
            write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b"[" * 65536
            for _ in range(16_384):  # 1 GiB at most, unless the client hangs up first
                write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            return False
        return True

    def _dribble(self, data: bytes) -> bool:
        for index in range(len(data)):
            self.wfile.write(data[index:index + 1])
            self.wfile.flush()
            time.sleep(self.server.dribble_seconds)
        return False

    def answer(self, status: int, headers: Dict[str, str], body: bytes) -> None:
        head = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()


class HostileServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        self.log: list = []
        self.answers: Dict[str, Answer] = dict(ANSWERS)
        self.slow_seconds = 3.0
        self.dribble_seconds = 0.1
        super().__init__(path, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out hang up on us: that is the point of some
        # tests, not an error worth a traceback in the test output.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class HostileTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The same server on loopback TCP, for the http(s):// transport path."""

    daemon_threads = True
    allow_reuse_address = True
    handle_error = HostileServer.handle_error

    def __init__(self) -> None:
        self.log: list = []
        self.answers: Dict[str, Answer] = dict(ANSWERS)
        self.slow_seconds = 3.0
        self.dribble_seconds = 0.1
        super().__init__(("127.0.0.1", 0), _Handler)


class running_server:
    """Context manager: a HostileServer on a short temp path, served in a thread.

    AF_UNIX paths are limited to ~107 bytes, so the path lives in a short
    temporary directory rather than pytest's long tmp_path.
    """

    def __enter__(self) -> HostileServer:
        self._dir = tempfile.mkdtemp(prefix="apitx-")
        self.server = HostileServer(os.path.join(self._dir, "s.sock"))
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        os.unlink(self.server.server_address)
        os.rmdir(self._dir)

