"""Trust tokens on the sandbox daemons, and clean-up of what tests made trusted.

A token is made through the daemon's Unix socket, as ``lxc config trust add``
makes it (``POST /1.0/certificates`` with ``token: true``), and encoded as
that command prints it: base64 of the JSON the server's operation describes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from contextlib import contextmanager
from typing import Iterator, List

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import apitx


def issue_token(api: apitx.API, name: str) -> str:
    """A fresh trust token for a client named ``name``."""
    op = api.post("certificates", json={"name": name, "type": "client", "token": True})
    meta = op.metadata["metadata"]
    claims = {"client_name": name, "fingerprint": meta["fingerprint"],
              "addresses": meta["addresses"], "secret": meta["secret"],
              "expires_at": "0001-01-01T00:00:00Z"}
    return base64.b64encode(json.dumps(claims).encode()).decode()


def pending_tokens(api: apitx.API, name: str) -> List[str]:
    """URLs of the token operations still waiting for ``name``."""
    ops = api.get("operations", params={"recursion": "1"}).metadata or {}
    return [f"/1.0/operations/{op['id']}" for op in ops.get("running", [])
            if op.get("class") == "token"
            and ((op.get("metadata") or {}).get("request") or {}).get("name") == name]


def fingerprint_of(cert_path: str) -> str:
    with open(cert_path, "rb") as handle:
        der = x509.load_pem_x509_certificate(handle.read()).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


@contextmanager
def token_for(socket: str) -> Iterator[tuple]:
    """``(api on the socket, client name, token)``; afterwards the token is
    revoked if unused and every certificate trusted under that name removed."""
    name = f"apitx-{uuid.uuid4().hex[:10]}"
    with apitx.API.factory(socket) as api:
        try:
            yield api, name, issue_token(api, name)
        finally:
            for url in pending_tokens(api, name):
                api.delete(url, validate=False)
            for cert in api.get("certificates", params={"recursion": "1"}).metadata:
                if cert["name"] == name:
                    api.delete(f"certificates/{cert['fingerprint']}")
