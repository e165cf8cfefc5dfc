"""The client certificate a remote is authenticated with, made when missing.

``lxc`` and ``incus`` keep it as ``client.crt`` and ``client.key`` in their
config dir and make one the first time a remote is added; apitx does the
same in its own dir, with the same kind of key LXD makes (ECDSA P-384) and
a self-signed certificate valid for 10 years. The key is written 0600 before
any byte of it is.

Example: a pair made in an empty dir, then found there:

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as home:
...     crt, key = ensure_client_certificate(home)
...     print(os.path.basename(crt), oct(os.stat(key).st_mode & 0o777),
...           ensure_client_certificate(home) == (crt, key))
client.crt 0o600 True
"""

from __future__ import annotations

import datetime
import getpass
import os
import socket
from typing import TYPE_CHECKING, Tuple

from ._exceptions import EndpointError, LocalFileError

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography is imported in the functions: `import apitx` must not pay
# for it (~22 ms) when no certificate is ever made.

_VALIDITY = datetime.timedelta(days=3650)


def ensure_client_certificate(config_dir: str) -> Tuple[str, str]:
    """``(client.crt, client.key)`` in ``config_dir``, made if neither exists.

    Half a pair (a certificate without its key), or a symlink to nothing in
    place of one, is an :class:`EndpointError`, never overwritten: the server
    may trust that certificate already. A pair that cannot be written raises
    :class:`LocalFileError`.
    """
    crt, key = (os.path.join(config_dir, name) for name in ("client.crt", "client.key"))
    present = [path for path in (crt, key) if _present(path)]
    if len(present) == 2:
        return crt, key
    if present:
        raise EndpointError(f"{present[0]} exists without its pair: restore the missing "
                            "client.crt/client.key, or remove both to make a new one")
    try:
        _make_pair(config_dir, crt, key)
    except OSError as exc:
        raise LocalFileError(exc.errno, exc.strerror, exc.filename or config_dir) from None
    return crt, key


def _present(path: str) -> bool:
    """Whether ``path`` is there; a symlink to nothing is an error, not absence:
    writing a new key would go through it (or fail, O_EXCL)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise EndpointError(f"{path} is a symlink to {os.readlink(path)}, which does not "
                            "exist: restore its target, or remove the link and its pair "
                            "to make a new client certificate")
    return os.path.exists(path)


def _make_pair(config_dir: str, crt: str, key: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    os.makedirs(config_dir, mode=0o750, exist_ok=True)
    private = ec.generate_private_key(ec.SECP384R1())
    _write_new(key, private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()), 0o600)
    _write_new(crt, _self_signed(private).public_bytes(serialization.Encoding.PEM), 0o644)


def _self_signed(private: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "apitx"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"{getpass.getuser()}@{socket.gethostname()}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # clock skew
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(private, hashes.SHA384()))


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (O_EXCL: never clobber)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
