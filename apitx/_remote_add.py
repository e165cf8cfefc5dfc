"""``apitx remote add``: trust a server, be trusted by it, save it as ``lxc`` would.

The steps, in the order that keeps secrets safe:

1. fetch the server's certificate with a bare TLS handshake (nothing trusted,
   nothing sent) and decide whether to trust it: a trust token carries the
   server's fingerprint, so with ``token=`` a mismatch is refused; otherwise
   the caller confirms it (``fingerprint=``, or ``accept_certificate=True``
   after checking it out of band: ``lxc info`` shows ``certificate_fingerprint``);
2. make a client certificate if the config dir has none;
3. talk to the server pinned to that certificate only, and, unless it
   already trusts us, send the token or trust password: only to that server;
4. save ``config.yml`` and ``servercerts/<name>.crt``.

Measured: LXD 5.0.2 takes a token only in ``password`` (``trust_token``
alone: 403), Incus 6.0.4 only in ``trust_token`` (``password`` alone: 403).
So a token is sent in both.

Here with a config dir holding a client certificate the sandbox's LXD
already trusts, so no token is needed; elsewhere, ``token=`` from ``lxc config
trust add``:

>>> import os, shutil, tempfile
>>> from unittest import mock
>>> from apitx import API, add_remote
>>> here = tempfile.TemporaryDirectory()
>>> for name in ('client.crt', 'client.key'):
...     _ = shutil.copy(f'/var/lib/apitx-sandbox/{name}', here.name)
>>> add_remote('web', 'https://127.0.0.1:8443', config_dir=here.name)
Traceback (most recent call last):
  ...
apitx.EndpointError: https://127.0.0.1:8443 presents certificate sha256:...: compare it with the server's (`lxc info` shows certificate_fingerprint), then add --fingerprint sha256:... (or --accept-certificate); a --token vouches for it by itself
>>> add_remote('web', 'https://127.0.0.1:8443', accept_certificate=True, config_dir=here.name)
RemoteSettings(name='web', ..., addr='https://127.0.0.1:8443', protocol='lxd', ...)
>>> with mock.patch.dict(os.environ, APITX_CONF=here.name):   # where apitx looks first
...     print(API.factory('web:').server)
lxd 5.0.2 (API 1.0)
>>> here.cleanup()
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import socket
import ssl
from typing import Any, Dict, Optional

from . import _checks
from ._api import API
from ._client_cert import ensure_client_certificate
from ._endpoint import Endpoint
from ._exceptions import APIConnectionError, EndpointError, RequestTypeError
from ._prepare import finite_seconds
from ._redact import redact_url
from ._transports import Pin, certificate_fingerprint, fetch_certificate, parse_fingerprint
from ._remotes import RemoteSettings, apitx_config_dir, check_name, load_remotes, save_remote

#: LXD's default HTTPS port, added when an address has none (as ``lxc`` does).
DEFAULT_PORT = 8443


def decode_token(token: str) -> Dict[str, Any]:
    """The claims of an LXD/Incus trust token (base64 JSON): ``client_name``,
    ``fingerprint``, ``addresses``, ``secret``, ``expires_at``.

    Checked for what they are used as (the fingerprint and secret strings,
    the addresses a list of ``host:port`` strings): a token is pasted from
    elsewhere, and one that is not what the server makes is refused here, not
    deep inside as a crash.
    """
    try:
        claims = json.loads(base64.b64decode(token.strip() + "=" * (-len(token.strip()) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise EndpointError("the token is not an LXD/Incus trust token (base64 JSON): copy "
                            "it whole from `lxc config trust add` on the server") from exc
    if not isinstance(claims, dict) or not all(_is_text(claims.get(key))
                                               for key in ("fingerprint", "secret")):
        raise EndpointError("the token has no server fingerprint or secret: copy it whole "
                            "from `lxc config trust add` on the server")
    if not _is_list_of_text(claims.get("addresses") or []):
        raise EndpointError("the token's addresses are not a list of host:port strings: copy "
                            "it whole from `lxc config trust add` on the server, or give the "
                            "server's URL")
    return claims


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_list_of_text(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def https_address(url: Optional[str], claims: Optional[Dict[str, Any]]) -> str:
    """``https://host:port`` from the URL given, else the token's first address."""
    if not url:
        addresses = (claims or {}).get("addresses") or []
        if not addresses:
            raise EndpointError("give the server's URL (https://HOST:8443): there is no "
                                "token naming its addresses")
        url = f"https://{addresses[0]}"
    if "://" not in url:
        url = f"https://{url}"
    endpoint = Endpoint.parse(url)
    if not endpoint.base_url.startswith("https://"):
        raise EndpointError(f"{endpoint.display!r} is not an https:// address: remotes are "
                            "added by their HTTPS address, e.g. https://10.0.0.5:8443")
    host_port = endpoint.base_url[len("https://"):]
    return endpoint.base_url if host_port.rsplit("]", 1)[-1].count(":") else \
        f"{endpoint.base_url}:{DEFAULT_PORT}"


def add_remote(name: str, url: Optional[str] = None, *, token: Optional[str] = None,
               password: Optional[str] = None, fingerprint: Optional[str] = None,
               accept_certificate: bool = False, project: Optional[str] = None,
               config_dir: Optional[str] = None, timeout: float = 10.0) -> RemoteSettings:
    """Add remote ``name`` to apitx's config dir (``$APITX_CONF`` by default).

    Returns the saved remote. Raises :class:`EndpointError` before anything
    is sent when the server's certificate is not confirmed, and
    :class:`CertificateMismatch` when it is not the one confirmed.
    """
    check_name(_checks.text(name, "add_remote(name)"))
    for what, value in (("url", url), ("token", token), ("password", password),
                        ("fingerprint", fingerprint), ("project", project)):
        _checks.optional_text(value, f"add_remote({what}=)")
    seconds = finite_seconds(timeout, "add_remote(timeout=...)")
    if seconds is None:
        raise RequestTypeError("add_remote(timeout=None): give seconds > 0; nothing was sent")
    own = apitx_config_dir(config_dir)
    directory = own.path
    if name in load_remotes(own):
        raise EndpointError(f"remote {name!r} already exists in {directory}/config.yml: "
                            f"`apitx remote remove {name}` first")
    claims = decode_token(token) if token else None
    address = https_address(url, claims)
    shown = redact_url(address)  # a password in the URL is never shown
    der = fetch_certificate(address, seconds)
    seen = certificate_fingerprint(der)
    pin = Pin(frozenset({hashlib.sha256(der).digest()}), f"{shown}, fetched just now")
    _confirm(seen, shown, claims, fingerprint, accept_certificate)
    cert = ensure_client_certificate(directory)
    with API.factory(address, cert=cert, fingerprint=pin, timeout=seconds) as api:
        info = api.get("").metadata
        if info.get("auth") != "trusted":
            api.post("certificates", json=_trust_request(token, password))
            info = api.get("").metadata
        if info.get("auth") != "trusted":
            raise APIConnectionError(f"{shown} still does not trust {cert[0]} after "
                                     "accepting it: check the server's trust list "
                                     "(lxc config trust list)", endpoint=shown)
    server = (info.get("environment") or {}).get("server")
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    save_remote(directory, name, address, "incus" if server == "incus" else "lxd", pem, project)
    return load_remotes(own)[name]


def _confirm(seen: str, address: str, claims: Optional[Dict[str, Any]],
             fingerprint: Optional[str], accept_certificate: bool) -> None:
    """Trust the fetched certificate only if the token, the caller's fingerprint,
    or an explicit acceptance vouches for it."""
    vouched = [("the token", claims["fingerprint"], "the token was made on another server")
               ] if claims else []
    if fingerprint:
        vouched.append(("--fingerprint", fingerprint, "the fingerprint is another server's"))
    for source, expected, or_else in vouched:
        if parse_fingerprint(expected) != parse_fingerprint(seen):
            raise EndpointError(
                f"{address} presents certificate {seen}, but {source} expects "
                f"sha256:{parse_fingerprint(expected).hex()}: another server answers there, "
                f"or {or_else}; nothing was sent")
    if not vouched and not accept_certificate:
        raise EndpointError(
            f"{address} presents certificate {seen}: compare it with the server's "
            "(`lxc info` shows certificate_fingerprint), then add --fingerprint "
            f"{seen} (or --accept-certificate); a --token vouches for it by itself")


def _trust_request(token: Optional[str], password: Optional[str]) -> Dict[str, Any]:
    if token:
        return {"type": "client", "password": token, "trust_token": token}
    if password:
        return {"type": "client", "password": password, "name": f"apitx-{socket.gethostname()}"}
    raise EndpointError("the server does not trust this client yet: give --token (made on "
                        "the server by `lxc config trust add`) or --password (LXD's "
                        "core.trust_password)")
