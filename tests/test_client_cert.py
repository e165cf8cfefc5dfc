"""The client certificate made for remotes: what LXD would make, key kept private."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import apitx
from apitx._client_cert import ensure_client_certificate


def test_made_when_missing(tmp_path):
    crt, key = ensure_client_certificate(str(tmp_path / "conf"))
    assert (crt, key) == (str(tmp_path / "conf" / "client.crt"),
                          str(tmp_path / "conf" / "client.key"))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(open(crt, "rb").read())
    private = serialization.load_pem_private_key(open(key, "rb").read(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert private.curve.name == "secp384r1"
    assert cert.public_key().public_numbers() == private.public_key().public_numbers()
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usage
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650


def test_kept_when_present(tmp_path):
    first = ensure_client_certificate(str(tmp_path))
    before = [open(path, "rb").read() for path in first]
    assert ensure_client_certificate(str(tmp_path)) == first
    assert [open(path, "rb").read() for path in first] == before


@pytest.mark.parametrize("present", ["client.crt", "client.key"])
def test_half_a_pair_is_never_overwritten(tmp_path, present):
    (tmp_path / present).write_text("mine")
    with pytest.raises(apitx.EndpointError, match=f"{present} exists without its pair"):
        ensure_client_certificate(str(tmp_path))
    assert (tmp_path / present).read_text() == "mine"


@pytest.mark.parametrize("dangling", [["client.key"], ["client.crt", "client.key"]])
def test_a_symlink_to_nothing_is_named_never_followed(tmp_path, dangling):
    """A dangling link would make os.open(O_EXCL) fail with FileExistsError (a
    traceback from `apitx remote add`), or be written through."""
    for name in dangling:
        (tmp_path / name).symlink_to(tmp_path / "gone" / name)
    with pytest.raises(apitx.EndpointError, match=rf"client.\w+ is a symlink to "
                                                  rf"{tmp_path}/gone/client.\w+, which does "
                                                  "not exist: restore its target"):
        ensure_client_certificate(str(tmp_path))
    assert not (tmp_path / "gone").exists()


def test_a_pair_that_cannot_be_written_is_a_local_file_error(tmp_path):
    (tmp_path / "conf").write_text("a file where the config dir should be")
    with pytest.raises(apitx.LocalFileError) as caught:
        ensure_client_certificate(str(tmp_path / "conf"))
    assert isinstance(caught.value, OSError) and caught.value.filename == str(tmp_path / "conf")
