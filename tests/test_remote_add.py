"""Adding a remote: confirm the server's certificate, be trusted, save as lxc does.

Live tests add the sandbox's LXD and Incus with real trust tokens into a
``$APITX_CONF`` in a tmp dir, use the remote by name, let ``lxc``/``incus``
read the saved config, and remove what the server was made to trust.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

import pytest

import apitx
from apitx._exceptions import CertificateMismatch
from apitx._remote_add import add_remote, decode_token, https_address

from test_pinning import fingerprint
from tls import CLIENT, DAEMONS, make_cert, require, running_tls_server
from trust import fingerprint_of, pending_tokens, token_for


def token(**claims) -> str:
    return base64.b64encode(json.dumps(claims).encode()).decode()


# -- offline --------------------------------------------------------------------------

def test_a_token_decodes_with_or_without_padding():
    text = token(client_name="c", fingerprint="ab", addresses=["10.0.0.5:8443"], secret="s")
    assert decode_token(text)["addresses"] == ["10.0.0.5:8443"]
    assert decode_token(text.rstrip("="))["secret"] == "s"


@pytest.mark.parametrize("text, message", [
    ("not base64 at all!", "not an LXD/Incus trust token"),
    (base64.b64encode(b"[1, 2]").decode(), "no server fingerprint or secret"),
    (token(fingerprint="ab"), "no server fingerprint or secret"),
    # Claims of the wrong shape, refused here rather than crashing later (issue 16):
    (token(fingerprint={"a": 1}, secret="s"), "no server fingerprint or secret"),
    (token(fingerprint="ab", secret=["s"]), "no server fingerprint or secret"),
    (token(fingerprint="ab", secret="s", addresses=[[1]]), "addresses are not a list of"),
    (token(fingerprint="ab", secret="s", addresses="10.0.0.5:8443"),
     "addresses are not a list of"),
    (token(fingerprint="ab", secret="s", addresses={"a": "b"}), "addresses are not a list of"),
])
def test_bad_tokens_say_where_to_get_one(text, message):
    with pytest.raises(apitx.EndpointError, match=message):
        decode_token(text)


@pytest.mark.parametrize("url, claims, expected", [
    ("https://10.0.0.5:8443", None, "https://10.0.0.5:8443"),
    ("https://10.0.0.5", None, "https://10.0.0.5:8443"),
    ("10.0.0.5", None, "https://10.0.0.5:8443"),
    ("https://[::1]", None, "https://[::1]:8443"),
    ("https://[::1]:9443", None, "https://[::1]:9443"),
    (None, {"addresses": ["127.0.0.1:8444", "10.0.0.1:8444"]}, "https://127.0.0.1:8444"),
])
def test_the_address(url, claims, expected):
    assert https_address(url, claims) == expected


@pytest.mark.parametrize("url, message", [
    (None, "give the server's URL"),
    ("http://10.0.0.5:8443", "is not an https:// address"),
    ("http://u:hunter2@10.0.0.5:8443", r"'http://<redacted>@10.0.0.5:8443' is not an https://"),
    # urlsplit raises ValueError for these: an EndpointError, as any address apitx refuses.
    ("https://[::1", "is not a URL"),
    ("https://[1]", "is not a URL"),
])
def test_addresses_refused(url, message):
    with pytest.raises(apitx.EndpointError, match=message):
        https_address(url, None)


@pytest.fixture
def tls_server(tmp_path):
    server_cert = make_cert(str(tmp_path), "server")
    with running_tls_server(server_cert, make_cert(str(tmp_path), "ca", ca=True)[0]) as server:
        yield server


def test_an_unconfirmed_certificate_is_shown_and_nothing_is_sent(tls_server, tmp_path):
    with pytest.raises(apitx.EndpointError) as caught:
        add_remote("x", f"https://localhost:{tls_server.port}", password="hunter2",
                   config_dir=str(tmp_path / "conf"))
    seen = fingerprint(tls_server.cert)
    assert f"presents certificate {seen}" in str(caught.value)
    assert f"--fingerprint {seen}" in str(caught.value)
    assert all(c.received == b"" for c in tls_server.connections)
    assert not os.path.exists(tmp_path / "conf")  # no client certificate made either


def test_a_password_in_the_address_is_never_shown(tls_server, tmp_path):
    with pytest.raises(apitx.EndpointError) as caught:
        add_remote("x", f"https://u:hunter2@localhost:{tls_server.port}",
                   config_dir=str(tmp_path / "conf"))
    assert str(caught.value).startswith(f"https://<redacted>@localhost:{tls_server.port} "
                                        "presents certificate sha256:")
    with pytest.raises(apitx.APIConnectionError) as caught:
        add_remote("x", "https://u:hunter2@127.0.0.1:9", config_dir=str(tmp_path / "conf"))
    assert "hunter2" not in str(caught.value) and "<redacted>@127.0.0.1:9" in str(caught.value)


@pytest.mark.parametrize("source", ["token", "fingerprint"])
def test_a_certificate_vouched_otherwise_is_refused(tls_server, tmp_path, source):
    wrong = "sha256:" + "ab" * 32
    kwargs = ({"token": token(fingerprint=wrong[7:], secret="s")} if source == "token"
              else {"fingerprint": wrong, "password": "hunter2"})
    with pytest.raises(apitx.EndpointError, match=f"expects {wrong}: another server"):
        add_remote("x", f"https://localhost:{tls_server.port}", config_dir=str(tmp_path), **kwargs)
    assert tls_server.connections and all(c.received == b"" for c in tls_server.connections)


def test_an_existing_name_is_not_replaced(tmp_path):
    from apitx._remotes import save_remote
    save_remote(str(tmp_path), "web", "https://h:8443", "lxd", b"PEM\n")
    with pytest.raises(apitx.EndpointError, match="already exists.*apitx remote remove web"):
        add_remote("web", "https://h:8443", accept_certificate=True, config_dir=str(tmp_path))


# -- live -------------------------------------------------------------------------------

@pytest.fixture(params=sorted(DAEMONS))
def daemon(request):
    return require(DAEMONS[request.param])


@pytest.fixture
def conf(tmp_path, monkeypatch):
    """A fresh ``$APITX_CONF``; the other config dirs point nowhere."""
    directory = tmp_path / "apitx"
    monkeypatch.setenv("APITX_CONF", str(directory))
    monkeypatch.setenv("HOME", str(tmp_path))
    return directory


@pytest.mark.live
def test_live_add_with_a_token_then_use_it_by_name(daemon, conf):
    with token_for(daemon.socket) as (local, name, secret):
        remote = add_remote("sb", daemon.https.replace("127.0.0.1", "localhost"), token=secret)
        assert remote.protocol == daemon.name
        assert open(remote.server_cert).read() == open(daemon.server_cert).read()
        with apitx.API.factory("sb:") as api:
            info = api.get("").metadata
            assert info["auth"] == "trusted"
            assert info["environment"]["server"] == daemon.name
        assert pending_tokens(local, name) == []  # the token was used
        client = fingerprint_of(str(conf / "client.crt"))
        assert local.get(f"certificates/{client}").metadata["name"] == name
        # lxc / incus read what apitx wrote (and reach the server with it).
        variable = "LXD_CONF" if daemon.name == "lxd" else "INCUS_CONF"
        env = {**os.environ, variable: str(conf)}
        listed = subprocess.run([daemon.client, "remote", "list", "--format", "csv"], env=env,
                                capture_output=True, text=True, timeout=60, check=True).stdout
        assert "sb,https://localhost:" in listed
        queried = subprocess.run([daemon.client, "query", "sb:/1.0"], env=env,
                                 capture_output=True, text=True, timeout=60, check=True).stdout
        assert json.loads(queried)["auth"] == "trusted"
    with apitx.API.factory(daemon.socket) as after:  # the clean-up removed the trust
        assert after.get(f"certificates/{client}", validate=False).status_code == 404


@pytest.mark.live
def test_live_a_token_for_another_server_is_not_sent(daemon, conf):
    other = next(d for d in DAEMONS.values() if d is not daemon)
    with token_for(other.socket) as (local, name, secret):
        with pytest.raises(apitx.EndpointError, match="the token expects"):
            add_remote("sb", daemon.https, token=secret)
        assert len(pending_tokens(local, name)) == 1  # never sent: still unused
    assert not conf.exists()


@pytest.mark.live
def test_live_the_certificate_is_checked_again_when_talking(daemon, conf, monkeypatch):
    # The API add_remote talks through is pinned to the certificate it fetched
    # and confirmed: if another one answers by then, nothing is sent. Simulate
    # the swap by making the fetch see the other daemon's certificate.
    other = next(d for d in DAEMONS.values() if d is not daemon)
    from apitx import _remote_add
    real = _remote_add.fetch_certificate
    monkeypatch.setattr(_remote_add, "fetch_certificate",
                        lambda url, timeout: real(other.https, timeout))
    with pytest.raises(CertificateMismatch, match=fingerprint(daemon.server_cert)):
        add_remote("sb", daemon.https, password="never-sent", accept_certificate=True)
    assert not (conf / "config.yml").exists()


@pytest.mark.live
def test_live_an_already_trusted_client_needs_no_secret(daemon, conf):
    conf.mkdir()
    for source, name in zip(CLIENT, ("client.crt", "client.key")):
        shutil.copy(source, conf / name)
    with apitx.API.factory(daemon.socket) as local:
        before = local.get("certificates").metadata
        remote = add_remote("sb", daemon.https, fingerprint=fingerprint(daemon.server_cert))
        assert local.get("certificates").metadata == before  # nothing new trusted
    with apitx.API.factory("sb:") as api:
        assert api.get("").metadata["auth"] == "trusted"
    assert remote.client_cert == (str(conf / "client.crt"), str(conf / "client.key"))



@pytest.mark.live
def test_live_an_untrusted_client_without_a_secret_is_told_what_to_give(daemon, conf):
    with pytest.raises(apitx.EndpointError, match=r"give --token \(made on the server"):
        add_remote("sb", daemon.https, fingerprint=fingerprint(daemon.server_cert))
    assert not (conf / "config.yml").exists()
