"""Pinned server certificates: which file is a pin, and that a pin holds.

Offline tests run a TLS server of our own (tests/tls.py), which records the
bytes each connection brought and the client certificate it presented; live
tests do the same against the sandbox's LXD and Incus over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import apitx
from apitx._exceptions import CertificateMismatch
from apitx._transports._pinning import (
    Pin,
    PinningAdapter,
    _leaf_digests,
    fetch_certificate,
    parse_fingerprint,
    pin_for,
)

from tls import CLIENT, DAEMONS, make_cert, require, running_connect_proxy, running_tls_server

HEX = "425dfa67a301552ddb649568c5713a5334e0145bd4275b77d1c38cdf581ecbf1"


def fingerprint(cert_path: str) -> str:
    with open(cert_path, "rb") as handle:
        der = x509.load_pem_x509_certificate(handle.read()).public_bytes(Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# -- fingerprints and files ---------------------------------------------------------

@pytest.mark.parametrize("text", [
    f"sha256:{HEX}", HEX, HEX.upper(), f"SHA256:{HEX.upper()}",
    "sha256:" + ":".join(HEX[i:i + 2] for i in range(0, 64, 2)),
    f"  sha256:{HEX}\n",
])
def test_fingerprint_forms(text):
    assert parse_fingerprint(text) == bytes.fromhex(HEX)


@pytest.mark.parametrize("text", ["", "sha256:", HEX[:-2], HEX + "00", "md5:" + HEX,
                                  "sha256:" + "g" * 64, f"sha1:{HEX}"])
def test_bad_fingerprints_say_what_to_give(text):
    with pytest.raises(apitx.EndpointError, match=r"'sha256:' and 64 hex digits"):
        parse_fingerprint(text)


@pytest.mark.parametrize("ca, pin", [(False, True), (None, True), (True, False)])
def test_a_file_is_a_pin_unless_it_holds_a_ca(tmp_path, ca, pin):
    crt, _ = make_cert(str(tmp_path), "c", ca=ca)
    assert (Pin.from_verify_file(crt) is not None) is pin


def test_a_bundle_with_one_ca_is_a_ca_bundle(tmp_path):
    leaf, _ = make_cert(str(tmp_path), "leaf")
    ca, _ = make_cert(str(tmp_path), "ca", ca=True)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(open(leaf, "rb").read() + open(ca, "rb").read())
    assert Pin.from_verify_file(str(bundle)) is None
    assert len(Pin.from_file(str(bundle)).digests) == 2  # a forced pin takes both


def test_a_servers_own_certificate_is_pinned_without_importing_cryptography(tmp_path):
    # cryptography's import (34-47 ms) was the largest piece of an HTTPS
    # command's start; OpenSSL alone tells a leaf from a possible CA.
    leaf, _ = make_cert(str(tmp_path), "leaf")
    code = ("import json, sys\n"
            "from apitx._transports._pinning import Pin\n"
            "pin = Pin.from_verify_file(sys.argv[1])\n"
            "print(json.dumps([sorted(d.hex() for d in pin.digests),"
            " 'cryptography' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code, leaf], capture_output=True, text=True,
                          timeout=60, check=True)
    digests, imported = json.loads(done.stdout)
    assert (digests, imported) == ([fingerprint(leaf)[len("sha256:"):]], False)


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(True, False, not cert_sign, False, False, cert_sign, False, False, False)


def test_a_ca_openssl_does_not_count_is_still_a_ca_bundle(tmp_path):
    # CA:TRUE without keyCertSign: OpenSSL's X509_check_ca says 0, the rule
    # (basicConstraints) says CA.
    path, _ = make_cert(str(tmp_path), "odd-ca", ca=True,
                        extensions=((_key_usage(cert_sign=False), True),))
    assert _leaf_digests(Path(path).read_bytes()) is None
    assert Pin.from_verify_file(path) is None


def test_what_openssl_may_call_a_ca_is_decided_by_basic_constraints(tmp_path):
    # keyCertSign without basicConstraints: OpenSSL counts a possible CA
    # (X509_check_ca 4); the rule is basicConstraints CA:TRUE, so it is a pin.
    path, _ = make_cert(str(tmp_path), "signer", ca=None,
                        extensions=((_key_usage(cert_sign=True), True),))
    assert _leaf_digests(Path(path).read_bytes()) is None     # OpenSSL cannot tell
    assert Pin.from_verify_file(path) == Pin.from_file(path)  # cryptography does


def test_only_plain_pem_takes_the_short_path(tmp_path):
    leaf, _ = make_cert(str(tmp_path), "leaf")
    ca, _ = make_cert(str(tmp_path), "ca", ca=True)
    text = Path(leaf).read_bytes()
    body = text.split(b"-----")[2]
    der = base64.b64decode(body)
    assert _leaf_digests(text) == {hashlib.sha256(der).digest()}
    assert _leaf_digests(text + Path(ca).read_bytes()) is None       # a CA among them
    assert _leaf_digests(text.replace(b"END CERTIFICATE", b"END X509 CERTIFICATE")) is None
    assert _leaf_digests(text.replace(body, body[:40] + b"!" + body[40:])) is None
    tailed = tmp_path / "tailed.crt"
    tailed.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der + b"\0")
                       + b"-----END CERTIFICATE-----\n")
    assert _leaf_digests(tailed.read_bytes()) is None                # a byte after the DER
    with pytest.raises(apitx.EndpointError, match="holds no PEM certificate"):
        Pin.from_verify_file(str(tailed))                            # as cryptography says


@pytest.mark.parametrize("content, message", [
    (None, r"cannot read certificate file .*missing\.crt"),
    (b"not a certificate\n", r"holds no PEM certificate"),
])
def test_unusable_files_are_named(tmp_path, content, message):
    path = tmp_path / "missing.crt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(apitx.EndpointError, match=message):
        Pin.from_verify_file(str(path))


def test_pin_rules(tmp_path):
    leaf, _ = make_cert(str(tmp_path), "leaf")
    ca, _ = make_cert(str(tmp_path), "ca", ca=True)
    assert pin_for(True, None) is None
    assert pin_for(False, None) is None
    assert pin_for(ca, None) is None
    assert pin_for(str(tmp_path / "missing.crt"), None) is None  # requests reports it, later
    assert pin_for(leaf, None) == Pin.from_file(leaf)
    assert pin_for(True, f"sha256:{HEX}").digests == {bytes.fromhex(HEX)}
    forced = Pin.from_file(ca)
    assert pin_for(True, forced) is forced
    with pytest.raises(apitx.EndpointError, match="give one"):
        pin_for(leaf, f"sha256:{HEX}")
    with pytest.raises(apitx.EndpointError, match="is empty"):
        pin_for(True, [])


@pytest.mark.parametrize("endpoint", ["/var/lib/lxd/unix.socket", "http://127.0.0.1:8080"])
def test_a_pin_needs_https(endpoint):
    with pytest.raises(apitx.EndpointError, match="needs an https:// endpoint"):
        apitx.API.factory(endpoint, fingerprint=f"sha256:{HEX}")


def test_the_factory_mounts_the_pin_only_for_pins(tmp_path):
    leaf, _ = make_cert(str(tmp_path), "leaf")
    ca, _ = make_cert(str(tmp_path), "ca", ca=True)
    pinned = apitx.API.factory("https://10.0.0.5:8443", verify=leaf)
    bundled = apitx.API.factory("https://10.0.0.5:8443", verify=ca)
    assert isinstance(pinned.session.get_adapter("https://10.0.0.5:8443/1.0"), PinningAdapter)
    assert not isinstance(bundled.session.get_adapter("https://10.0.0.5:8443/1.0"),
                          PinningAdapter)


# -- against a TLS server of our own ----------------------------------------------------

@pytest.fixture
def tls_client(tmp_path):
    """A self-signed client certificate (CA:TRUE, as `openssl req -x509` makes)."""
    return make_cert(str(tmp_path), "client", ca=True)


@pytest.fixture
def tls_server(tmp_path, tls_client):
    """A server whose certificate names no address we use to reach it."""
    server_cert = make_cert(str(tmp_path), "server", hosts=("nothing.invalid",))
    with running_tls_server(server_cert, tls_client[0]) as server:
        yield server


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_pinned_by_file_by_any_name(tls_server, tls_client, host):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no InsecureRequestWarning: the pin verified it
        api = apitx.API.factory(f"https://{host}:{tls_server.port}", cert=tls_client,
                                verify=tls_server.cert)
        assert api.get("").metadata == {"auth": "trusted"}
    seen = tls_server.connections[-1]
    assert seen.received.startswith(b"GET /1.0 HTTP/1.1")
    with open(tls_client[0], "rb") as handle:
        client_der = x509.load_pem_x509_certificate(handle.read()).public_bytes(Encoding.DER)
    assert seen.client_cert == client_der


def test_several_pins_any_matches(tls_server, tmp_path):
    other, _ = make_cert(str(tmp_path), "other")
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(open(other, "rb").read() + open(tls_server.cert, "rb").read())
    api = apitx.API.factory(f"https://localhost:{tls_server.port}", verify=str(bundle))
    assert api.get("").ok


def test_a_mismatch_sends_nothing_and_says_both_fingerprints(tls_server, tls_client, tmp_path):
    other, _ = make_cert(str(tmp_path), "other")
    api = apitx.API.factory(f"https://localhost:{tls_server.port}", cert=tls_client,
                            verify=other)
    with pytest.raises(CertificateMismatch) as caught:
        api.post("instances", json={"name": "never"})
    message = str(caught.value)
    assert fingerprint(tls_server.cert) in message and fingerprint(other) in message
    assert "nothing was sent" in message and "apitx remote add" in message
    assert caught.value.seen == fingerprint(tls_server.cert)
    assert caught.value.expected == fingerprint(other)
    assert isinstance(caught.value, apitx.APIConnectionError)
    # The handshake happened (so the test is not vacuous), and not one byte came after it.
    assert tls_server.connections and all(c.received == b"" for c in tls_server.connections)


def test_a_mismatched_connection_is_not_reused(tls_server, tmp_path):
    other, _ = make_cert(str(tmp_path), "other")
    api = apitx.API.factory(f"https://localhost:{tls_server.port}", verify=other)
    for _ in range(2):
        with pytest.raises(CertificateMismatch):
            api.get("")
    assert len(tls_server.connections) == 2
    assert all(c.received == b"" for c in tls_server.connections)


def test_the_pin_holds_through_a_proxy(tls_server, tmp_path, monkeypatch):
    # A proxy manager builds its own pools: without care they would skip the pin.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    other, _ = make_cert(str(tmp_path), "other")
    with running_connect_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        url = f"https://localhost:{tls_server.port}"
        with pytest.raises(CertificateMismatch):
            apitx.API.factory(url, verify=other).get("")
        assert tls_server.connections[-1].received == b""
        assert apitx.API.factory(url, verify=tls_server.cert).get("").ok
    assert proxy.targets == [f"localhost:{tls_server.port}"] * 2


def test_fetch_certificate_trusts_nothing_and_sends_nothing(tls_server):
    der = fetch_certificate(f"https://localhost:{tls_server.port}")
    assert "sha256:" + hashlib.sha256(der).hexdigest() == fingerprint(tls_server.cert)
    assert tls_server.connections[-1].received == b""


def test_fetch_certificate_from_nowhere_says_so():
    with pytest.raises(apitx.APIConnectionError, match="cannot fetch the certificate"):
        fetch_certificate("https://127.0.0.1:9", timeout=2)


# -- live: the sandbox's LXD and Incus over HTTPS ----------------------------------------

@pytest.fixture(params=sorted(DAEMONS))
def daemon(request):
    return require(DAEMONS[request.param])


def _names(cert_path: str) -> list:
    with open(cert_path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in san]


@pytest.mark.live
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_live_pin_by_file_by_any_name(daemon, host):
    # localhost is not among the certificate's names: only a pin accepts it.
    assert "localhost" not in _names(daemon.server_cert)
    assert Pin.from_verify_file(daemon.server_cert) is not None
    url = daemon.https.replace("127.0.0.1", host)
    with apitx.API.factory(url, cert=CLIENT, verify=daemon.server_cert) as api:
        assert api.get("").metadata["auth"] == "trusted"  # the client cert went out


@pytest.mark.live
def test_live_pin_by_fingerprint(daemon):
    spelled = fingerprint(daemon.server_cert).upper().replace("SHA256:", "sha256:")
    with apitx.API.factory(daemon.https.replace("127.0.0.1", "localhost"), cert=CLIENT,
                           fingerprint=spelled) as api:
        assert api.get("").metadata["auth"] == "trusted"


@pytest.mark.live
def test_live_without_a_client_cert_the_server_does_not_trust_us(daemon):
    # The other half of "the client certificate is still presented".
    with apitx.API.factory(daemon.https, verify=daemon.server_cert) as api:
        assert api.get("").metadata["auth"] == "untrusted"


@pytest.mark.live
def test_live_a_pinned_handshake_loads_no_trust_store(daemon):
    # The pin is the whole trust rule, so the handshake's context holds no
    # CA at all: urllib3's own would have the system's store loaded into it
    # for each connection (~20 ms each), to verify nothing. (Where the system
    # has a CA file, as Debian's ca-certificates is: 144 CAs here.)
    with apitx.API.factory(daemon.https, cert=CLIENT, verify=daemon.server_cert) as api:
        assert api.get("").metadata["auth"] == "trusted"  # the client cert still went out
        contexts = _pooled_contexts(api)
    assert contexts, "the request's connection is pooled"
    assert [context.cert_store_stats() for context in contexts] == [
        {"x509": 0, "crl": 0, "x509_ca": 0}] * len(contexts)


def _pooled_contexts(api):
    """The TLS contexts of ``api``'s pooled, connected HTTPS connections."""
    (adapter,) = [a for a in api.session.adapters.values() if isinstance(a, PinningAdapter)]
    pools = adapter.poolmanager.pools  # urllib3's container: keys only, no values()
    return [connection.sock.context for key in pools.keys()
            for connection in pools[key].pool.queue if connection and connection.sock]


@pytest.mark.live
@pytest.mark.parametrize("wrong", ["fingerprint", "file"])
def test_live_a_wrong_pin_sends_nothing(daemon, wrong):
    other = next(d for d in DAEMONS.values() if d is not daemon)
    pin = ({"fingerprint": "sha256:" + "0" * 64} if wrong == "fingerprint"
           else {"verify": other.server_cert})
    profile = f"apitx-pin-{uuid.uuid4().hex[:10]}"
    with apitx.API.factory(daemon.https, cert=CLIENT, **pin) as pinned, \
            apitx.API.factory(daemon.socket) as local:
        try:
            with pytest.raises(CertificateMismatch, match=fingerprint(daemon.server_cert)):
                pinned.post("profiles", json={"name": profile})
            assert local.get(f"profiles/{profile}", validate=False).status_code == 404
            # The control: the same request with the right pin does create it.
            with apitx.API.factory(daemon.https, cert=CLIENT,
                                   verify=daemon.server_cert) as right:
                right.post("profiles", json={"name": profile})
            assert local.get(f"profiles/{profile}").ok
        finally:  # whatever failed (a broken pin creates it early)
            local.delete(f"profiles/{profile}", validate=False)
