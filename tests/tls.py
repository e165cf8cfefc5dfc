"""Certificates made on the spot, a small TLS server, and the sandbox's HTTPS servers.

The TLS server answers every request with one LXD-style JSON envelope and
records, per connection, the bytes it received after the handshake and the
client certificate presented: what the pinning tests need to prove that a
mismatch sends nothing and that the client certificate still goes out.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox import HTTPS_OPTIONS, SERVER_BY_NAME, SandboxServer

CLIENT = HTTPS_OPTIONS["cert"]
#: The sandbox's servers (tests/sandbox.py): socket, HTTPS address, certificate, client.
Daemon = SandboxServer
DAEMONS = SERVER_BY_NAME


def require(daemon: Daemon) -> Daemon:
    """The daemon, or a failure saying how to get it (live tests never skip)."""
    for path in (daemon.socket, daemon.server_cert, *CLIENT):
        if not os.path.exists(path):
            pytest.fail(f"{path} is missing: run scripts/lxd-sandbox (as root) first, it "
                        f"prepares {daemon.name} with HTTPS; live tests never skip")
    return daemon


def make_cert(directory: str, name: str, *, ca: Optional[bool] = False,
              hosts: Tuple[str, ...] = ("nothing.invalid",),
              extensions: Tuple[Tuple[x509.ExtensionType, bool], ...] = ()) -> Tuple[str, str]:
    """A self-signed certificate and key in ``directory``: ``ca=None`` leaves
    basicConstraints out; ``extensions`` adds ``(value, critical)`` pairs.
    Returns ``(crt, key)`` paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName(names), critical=False))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    cert = builder.sign(key, hashes.SHA256())
    crt, key_path = (os.path.join(directory, f"{name}.{ext}") for ext in ("crt", "key"))
    with open(crt, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return crt, key_path


@dataclass
class Seen:
    """What one connection brought: the bytes after the handshake, the client cert."""

    received: bytes = b""
    client_cert: Optional[bytes] = None


@dataclass
class TLSServer:
    port: int
    cert: str
    connections: List[Seen] = field(default_factory=list)


BODY = b'{"type":"sync","status":"Success","status_code":200,"operation":"",' \
       b'"error_code":0,"error":"","metadata":{"auth":"trusted"}}'


@contextmanager
def running_tls_server(cert: Tuple[str, str], client_ca: str) -> Iterator[TLSServer]:
    """A thread serving HTTPS on 127.0.0.1 with ``cert``, asking for (not
    requiring) a client certificate issued by ``client_ca`` (a self-signed
    client certificate is its own)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(client_ca)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so the thread sees `stop` (close() does not wake accept())
    server = TLSServer(listener.getsockname()[1], cert[0])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            seen = Seen()
            server.connections.append(seen)
            with raw:
                raw.settimeout(2)  # accepted sockets inherit 0.1 s otherwise
                try:
                    tls = context.wrap_socket(raw, server_side=True)
                    seen.client_cert = tls.getpeercert(binary_form=True)
                    while b"\r\n\r\n" not in seen.received:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        seen.received += chunk
                    if seen.received:
                        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    b"Connection: close\r\nContent-Length: "
                                    + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
                    tls.close()
                except (OSError, ssl.SSLError):
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        listener.close()
        thread.join(5)


@dataclass
class Proxy:
    port: int
    targets: List[str] = field(default_factory=list)


@contextmanager
def running_connect_proxy() -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), recording each target."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    proxy = Proxy(listener.getsockname()[1])
    stop = threading.Event()

    def tunnel(client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split()[1].decode()
            proxy.targets.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), 5) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pipes = [threading.Thread(target=_pipe, args=pair, daemon=True)
                         for pair in ((client, upstream), (upstream, client))]
                for pipe in pipes:
                    pipe.start()
                for pipe in pipes:
                    pipe.join(10)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=tunnel, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
