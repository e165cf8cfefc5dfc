"""Pinned server certificates, as ``lxc`` pins them.

LXD's certificate is self-signed, and a cluster's names no member address,
so ordinary verification (a CA bundle plus a hostname check) fails exactly
where ``lxc`` works. ``lxc`` trusts *that certificate*, whatever address or
name reached it. apitx does the same for a pinned endpoint: the TLS handshake
runs without CA or hostname checks, then the peer certificate's DER sha256 is
compared with the pinned one(s) before a single request byte is sent. A
mismatch raises :class:`CertificateMismatch` showing both fingerprints.

When is ``verify='file.crt'`` a pin, and when a CA bundle? A pin when no
certificate in the file is a CA (basicConstraints ``CA:TRUE``): a server's
own leaf certificate, such as LXD's ``server.crt`` or ``lxc``'s
``servercerts/<remote>.crt``, is only ever trusted as itself. A file holding
a CA certificate keeps ordinary verification, hostname included. To pin a
certificate that calls itself a CA (``openssl req -x509`` makes those), say
so: ``fingerprint=Pin.from_file('server.crt')``.

>>> from apitx import API
>>> sandbox = '/var/lib/apitx-sandbox'
>>> cert = (f'{sandbox}/client.crt', f'{sandbox}/client.key')
>>> api = API.factory('https://localhost:8443', cert=cert,
...                   verify=f'{sandbox}/server.crt')         # a pin: any name works
>>> print(api.server)
lxd 5.0.2 (API 1.0)
>>> API.factory('https://127.0.0.1:8443', cert=cert, fingerprint='sha256:' + '0' * 64).get('')
Traceback (most recent call last):
  ...
apitx.CertificateMismatch: https://127.0.0.1:8443 presented certificate sha256:..., not the pinned sha256:0000000000000000000000000000000000000000000000000000000000000000 (from fingerprint=); nothing was sent. ...
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any, FrozenSet, Iterable, List, Optional, Type, Union
from urllib.parse import urlsplit

from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.util.ssl_ import create_urllib3_context

from .._exceptions import (APIConnectionError, CertificateMismatch, EndpointError,
                           SettingsTypeError)
from .._lazy import LazyPattern
from .._redact import redact_url
from .._value import Value
from ._adapters import StrictLengthAdapter

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from cryptography import x509

# cryptography is imported where certificate files are read, not above:
# importing it costs 34-47 ms (measured: python -X importtime), which every
# `import apitx` would pay, Unix socket users included; a server's own
# certificate given as verify= is read without it (_leaf_digests).

_HEX = LazyPattern(r"[0-9a-f]{64}")


def format_fingerprint(digest: bytes) -> str:
    """``sha256:<64 lowercase hex>``, the form apitx shows and accepts.

    >>> format_fingerprint(bytes(32))[:15]
    'sha256:00000000'
    """
    return "sha256:" + digest.hex()


def certificate_fingerprint(der: bytes) -> str:
    """The fingerprint of a DER certificate, as ``lxc`` shows it (with ``sha256:``)."""
    return format_fingerprint(hashlib.sha256(der).digest())


def parse_fingerprint(text: str) -> bytes:
    """The sha256 digest a fingerprint names.

    Accepted: ``sha256:`` then 64 hex digits, with or without colons, any case;
    the prefix may be left out (``lxc`` shows bare hex).

    >>> parse_fingerprint('SHA256:' + 'AB:' * 31 + 'AB') == bytes([0xab]) * 32
    True
    """
    cleaned = str(text).strip().lower()
    if cleaned.startswith("sha256:"):
        cleaned = cleaned[len("sha256:"):]
    cleaned = cleaned.replace(":", "")
    if not _HEX.fullmatch(cleaned):
        raise EndpointError(
            f"fingerprint {text!r} is not a sha256 fingerprint: give 'sha256:' and 64 hex "
            "digits (colons allowed), as `apitx remote add` or `lxc info` show it")
    return bytes.fromhex(cleaned)


def load_certificates(path: str) -> List[x509.Certificate]:
    """Every certificate in a PEM file; an :class:`EndpointError` naming the file otherwise."""
    return _parse_certificates(_read_certificate_file(path), path)


def _read_certificate_file(path: str) -> bytes:
    # Never an int: open() would take it for a file descriptor of the caller's.
    if isinstance(path, (bool, int)) or not isinstance(path, (str, os.PathLike)):
        raise SettingsTypeError(f"certificate file {path!r}: give its path as a str")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise EndpointError(f"cannot read certificate file {path}: "
                            f"{getattr(exc, 'strerror', None) or exc}: "
                            "check verify= (or the remote's servercerts/ file)") from exc


def _parse_certificates(data: bytes, path: str) -> List[x509.Certificate]:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise EndpointError(f"{path} holds no PEM certificate ({exc}): give the server's "
                            "certificate, as LXD keeps it in server.crt") from exc


#: A PEM certificate's base64 between matching labels (compiled at first
#: use, by re's own cache).
_PEM_CERTIFICATE = rb"-----BEGIN ((?:X509 )?)CERTIFICATE-----(.*?)-----END \1CERTIFICATE-----"
#: The DER of basicConstraints' object identifier (2.5.29.19).
_BASIC_CONSTRAINTS = b"\x06\x03\x55\x1d\x13"


def _leaf_digests(data: bytes) -> Optional[FrozenSet[bytes]]:
    """The DER sha256 of each certificate in PEM ``data`` when plainly none
    is a CA; None whenever that is not plain (then cryptography reads the
    file and decides, as :meth:`Pin.from_verify_file` says).

    Why not cryptography every time: importing ``cryptography.x509`` costs
    34-47 ms (python -X importtime, this machine), which every HTTPS
    ``verify=server.crt`` paid before its first request: every ``apitx``
    command on a remote, and 15% of ``bench/migrate.py``'s floor. The
    standard library decides the common case alone:

    - each PEM body is strict base64 of exactly one DER structure, and
      OpenSSL loads every one of them as a certificate;
    - OpenSSL counts none as a possible CA (``cert_store_stats()``,
      ``X509_check_ca``: v1 self-signed and keyCertSign certificates count);
    - no basicConstraints in them sets ``cA``. OpenSSL alone is not enough
      here: it does not count a ``CA:TRUE`` certificate whose keyUsage
      lacks keyCertSign. In DER a ``cA`` of FALSE is left out, so a
      basicConstraints that holds a boolean at all, or that is not shaped
      as expected, goes to cryptography.

    >>> _leaf_digests(b'no certificate here') is None
    True
    """
    ders = []
    for _, body in re.findall(_PEM_CERTIFICATE, data, re.DOTALL):
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except ValueError:  # binascii.Error
            return None
        if not _one_der_structure(der) or _may_be_ca(der):
            return None
        ders.append(der)
    if not ders:
        return None
    try:
        store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        store.load_verify_locations(cadata=b"".join(ders))
    except ssl.SSLError:
        return None
    counts = store.cert_store_stats()
    if counts["x509_ca"] or counts["x509"] != len(set(ders)):
        return None
    return frozenset(hashlib.sha256(der).digest() for der in ders)


def _one_der_structure(der: bytes) -> bool:
    """True when ``der`` is exactly one SEQUENCE, as a certificate is: its
    header's length accounts for every byte (OpenSSL would ignore a tail)."""
    if len(der) < 2 or der[0] != 0x30:
        return False
    if der[1] < 0x80:
        return 2 + der[1] == len(der)
    size = der[1] & 0x7F
    return 0 < size <= 4 and 2 + size + int.from_bytes(der[2:2 + size], "big") == len(der)


def _may_be_ca(der: bytes) -> bool:
    """False only when every basicConstraints in ``der`` is plainly ``cA``
    FALSE: the extension's value is a SEQUENCE with no boolean in it."""
    at = der.find(_BASIC_CONSTRAINTS)
    while at != -1:
        rest = der[at + len(_BASIC_CONSTRAINTS):]
        if rest[:2] == b"\x01\x01":  # critical (a BOOLEAN) comes first
            rest = rest[3:]
        # OCTET STRING holding SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLen INTEGER OPTIONAL }
        if len(rest) < 4 or rest[0] != 0x04 or rest[2] != 0x30 or rest[1] != rest[3] + 2 \
                or rest[3] >= 0x80 or (rest[3] > 0 and rest[4] == 0x01):
            return True
        at = der.find(_BASIC_CONSTRAINTS, at + 1)
    return False


def _is_ca(certificate: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _digests(certificates: List[x509.Certificate]) -> FrozenSet[bytes]:
    from cryptography.hazmat.primitives.serialization import Encoding

    return frozenset(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
                     for cert in certificates)


class Pin(Value):
    """The server certificates an endpoint trusts, by DER sha256.

    ``source`` says where they came from, for messages (a file name, or
    ``fingerprint=``).

    >>> Pin.from_fingerprints('sha256:' + '0' * 64).source
    'fingerprint='
    """

    digests: FrozenSet[bytes]
    source: str

    def __init__(self, digests: FrozenSet[bytes], source: str) -> None:
        self._set(digests=digests, source=source)

    @classmethod
    def from_file(cls, path: str) -> Pin:
        """Pin every certificate of a PEM file, whatever its basicConstraints."""
        return cls(_digests(load_certificates(path)), path)

    @classmethod
    def from_verify_file(cls, path: str) -> Optional[Pin]:
        """The pin ``verify=path`` means: its certificates when none of them is a
        CA ("this exact certificate"), None when the file is a CA bundle for
        ordinary verification. :class:`EndpointError` when it holds no certificate."""
        data = _read_certificate_file(path)
        leaves = _leaf_digests(data)
        if leaves is not None:
            return cls(leaves, path)
        certificates = _parse_certificates(data, path)
        if any(_is_ca(cert) for cert in certificates):
            return None
        return cls(_digests(certificates), path)

    @classmethod
    def from_fingerprints(cls, fingerprints: Union[str, Iterable[str]]) -> Pin:
        """Pin ``'sha256:<hex>'`` (or several)."""
        texts = [fingerprints] if isinstance(fingerprints, str) else \
            list(fingerprints) if isinstance(fingerprints, (list, tuple, set, frozenset)) else None
        if texts is None or not all(isinstance(text, str) for text in texts):
            raise SettingsTypeError(
                f"fingerprint={fingerprints!r}: give 'sha256:<64 hex digits>', a list of "
                "them, or an apitx.Pin")
        if not texts:
            raise EndpointError("fingerprint= is empty: give at least one 'sha256:<hex>'")
        return cls(frozenset(parse_fingerprint(text) for text in texts), "fingerprint=")

    def check(self, der: Optional[bytes], where: str) -> None:
        """Raise :class:`CertificateMismatch` unless ``der`` is pinned."""
        seen = hashlib.sha256(der).digest() if der else None
        if seen in self.digests:
            return
        expected = " or ".join(sorted(format_fingerprint(d) for d in self.digests))
        shown = format_fingerprint(seen) if seen else "no certificate"
        raise CertificateMismatch(
            f"{where} presented certificate {shown}, not the pinned {expected} (from "
            f"{self.source}); nothing was sent. If the server's certificate changed on "
            "purpose, re-pin it (apitx remote add, or a new verify=/fingerprint=); "
            "otherwise check the address: another server answers there",
            endpoint=where, seen=shown, expected=expected)


#: What ``API.factory(fingerprint=...)`` takes.
FingerprintLike = Union[str, Iterable[str], "Pin", None]


def pin_for(verify: Any, fingerprint: FingerprintLike) -> Optional[Pin]:
    """The pin ``API.factory``'s ``verify=``/``fingerprint=`` ask for, or None.

    ``fingerprint`` is a ``'sha256:…'`` string, a list of them, or a
    :class:`Pin`; with it, ``verify`` must stay at its default (one trust
    rule per endpoint). Else ``verify`` is a pin when it names a file that
    :meth:`Pin.from_verify_file` says is one; an unreadable file is left to requests.
    """
    if fingerprint is not None:
        if verify is not True:
            raise EndpointError(
                f"fingerprint= and verify={verify!r} both say which server to trust: give one")
        return fingerprint if isinstance(fingerprint, Pin) else Pin.from_fingerprints(fingerprint)
    if not isinstance(verify, str):
        return None
    try:
        return Pin.from_verify_file(verify)
    except EndpointError:
        # A file that cannot be read as certificates stays requests'
        # business, as before pinning existed: the first request fails
        # with the TLS error, and an API can still be built (curl export).
        return None


class _PinnedConnectionMixin:
    """Checks the pin as soon as the TLS handshake is done: urllib3 connects
    (``_validate_conn``) before it writes the request, so a mismatch sends
    nothing. The handshake itself verifies nothing (CERT_NONE), which is why
    the pin check, and only it, marks the connection verified."""

    pin: Pin
    sock: Any
    ssl_context: Optional[ssl.SSLContext]

    def connect(self) -> None:
        if self.ssl_context is None:
            # Given none, urllib3 builds a context for each connection and,
            # as no CA file was given either, loads the system's trust store
            # into it (load_default_certs) for a handshake that verifies
            # nothing: measured, 19-22 ms of a 31 ms first request to a
            # local LXD. This connection's own context, with no trust store
            # at all: the pin is the whole trust rule. The client
            # certificate (cert=) is still loaded into it by urllib3.
            self.ssl_context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        super().connect()  # type: ignore[misc]
        host = self.host  # type: ignore[attr-defined]
        where = f"https://{f'[{host}]' if ':' in host else host}:{self.port}"  # type: ignore
        try:
            self.pin.check(self.sock.getpeercert(binary_form=True), where)
        except CertificateMismatch:
            self.close()  # type: ignore[attr-defined]
            raise
        self.is_verified = True


def _pinned_pool_class(base: Type[HTTPSConnectionPool], pin: Pin) -> Type[HTTPSConnectionPool]:
    """``base`` (urllib3's, or a proxy manager's) with the pin check in its connections."""
    connection = type("PinnedHTTPSConnection", (_PinnedConnectionMixin, base.ConnectionCls),
                      {"pin": pin})
    return type("PinnedHTTPSConnectionPool", (base,), {"ConnectionCls": connection})


class PinningAdapter(StrictLengthAdapter):
    """requests' adapter for an HTTPS endpoint trusted by :class:`Pin`.

    Mount it on the endpoint's prefix; ``verify=`` given to requests is
    ignored (the pin is the whole trust rule), ``cert=`` still presents the
    client certificate:

    >>> import requests
    >>> from apitx._transports import Pin, PinningAdapter
    >>> sandbox = '/var/lib/apitx-sandbox'
    >>> session = requests.Session()
    >>> session.mount('https://127.0.0.1:8443/',
    ...               PinningAdapter(Pin.from_file(f'{sandbox}/server.crt')))
    >>> cert = (f'{sandbox}/client.crt', f'{sandbox}/client.key')
    >>> session.get('https://127.0.0.1:8443/1.0', cert=cert).json()['metadata']['auth']
    'trusted'
    """

    def __init__(self, pin: Pin, **kwargs: Any) -> None:
        self.pin = pin  # before super().__init__, which builds the pool manager
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._pin_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # A proxy manager has pool classes of its own (SOCKS ones, say):
        # without the pin they would connect with no verification at all.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._pin_pools(manager)
        return manager

    def _pin_pools(self, manager: Any) -> None:
        https = manager.pool_classes_by_scheme["https"]
        if not issubclass(https.ConnectionCls, _PinnedConnectionMixin):
            manager.pool_classes_by_scheme = {**manager.pool_classes_by_scheme,
                                              "https": _pinned_pool_class(https, self.pin)}

    def send(self, request: Any, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> Any:
        # verify=False turns off CA and hostname checks in every requests
        # version's code path (pool keys, cert_verify); the pin replaces them.
        return super().send(request, stream=stream, timeout=timeout, verify=False, cert=cert,
                            proxies=proxies)


def fetch_certificate(url: str, timeout: float = 10.0) -> bytes:
    """The DER certificate an HTTPS server presents, trusting nothing.

    For ``apitx remote add``: the certificate is only looked at here, to show
    and pin its fingerprint; nothing is sent but the TLS handshake.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise EndpointError(f"{redact_url(url)!r} is not an https:// URL: a remote is added "
                            "by its HTTPS address, e.g. https://10.0.0.5:8443")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    where = redact_url(f"https://{parts.netloc}")  # a password in the URL stays unshown
    try:
        with socket.create_connection((parts.hostname, parts.port or 8443), timeout) as raw:
            with context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise APIConnectionError(f"cannot fetch the certificate of {where}: {exc}; is the "
                                 "server listening there? (lxc config set core.https_address)",
                                 endpoint=where) from exc
    if not der:
        raise APIConnectionError(f"{where} presented no certificate", endpoint=where)
    return der
