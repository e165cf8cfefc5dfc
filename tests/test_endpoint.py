"""apitx._endpoint: parsing what people give, and discovering the local socket."""

import os
import socket

import pytest

import apitx
from apitx import APIConnectionError, Endpoint, EndpointError
from apitx._endpoint import UNIX_BASE_URL, candidate_sockets


@pytest.mark.parametrize("text, socket_path", [
    ("/var/lib/lxd/unix.socket", "/var/lib/lxd/unix.socket"),
    ("./here.socket", "./here.socket"),
    ("unix:///var/lib/lxd/unix.socket", "/var/lib/lxd/unix.socket"),
    ("unix:/run/x.sock", "/run/x.sock"),
    ("http+unix://%2Fvar%2Flib%2Flxd%2Funix.socket", "/var/lib/lxd/unix.socket"),
])
def test_socket_forms(text, socket_path):
    endpoint = Endpoint.parse(text)
    assert endpoint.socket_path == socket_path
    assert endpoint.base_url == UNIX_BASE_URL
    assert endpoint.display == f"unix:{socket_path}"


@pytest.mark.parametrize("text, base", [
    ("https://10.0.0.5:8443", "https://10.0.0.5:8443"),
    ("https://h:8443/", "https://h:8443"),
    ("http://127.0.0.1:8080/prefix/", "http://127.0.0.1:8080/prefix"),
    ("HTTPS://[::1]:8443", "https://[::1]:8443"),
])
def test_url_forms(text, base):
    endpoint = Endpoint.parse(text)
    assert endpoint.socket_path is None
    assert endpoint.base_url == base
    assert endpoint.display == base


@pytest.mark.parametrize("bad", ["", "  ", "lxd.sock", "ftp://h", "unix://relative",
                                 "https://", "https://h:99999", "https://h:8443/?x=1"])
def test_bad_endpoints_say_what_is_accepted(bad):
    with pytest.raises(EndpointError, match="endpoint") as info:
        Endpoint.parse(bad)
    assert isinstance(info.value, ValueError)
    assert repr(bad.strip()) in str(info.value) or repr(bad) in str(info.value)


def test_describe_keeps_socket_path_readable():
    unix = Endpoint.parse("/var/lib/lxd/unix.socket")
    assert unix.describe("/1.0/instances/c1") == "unix:/var/lib/lxd/unix.socket /1.0/instances/c1"
    assert "%2F" not in unix.describe("/1.0")
    assert Endpoint.parse("https://h:8443").describe("/1.0") == "https://h:8443/1.0"


def test_candidates_follow_lxc_order():
    found = candidate_sockets({"LXD_SOCKET": "/a.sock", "LXD_DIR": "/d"})
    assert [path for _, path in found] == [
        "/a.sock", "/d/unix.socket",
        "/var/snap/lxd/common/lxd/unix.socket", "/var/lib/lxd/unix.socket"]


def test_discover_takes_first_that_exists(tmp_path):
    lxd_dir = tmp_path / "lxd"
    lxd_dir.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(lxd_dir / "unix.socket"))
    try:
        found = Endpoint.discover({"LXD_SOCKET": str(tmp_path / "missing.sock"),
                                   "LXD_DIR": str(lxd_dir)})
    finally:
        sock.close()
    assert found.socket_path == str(lxd_dir / "unix.socket")


def test_discover_prefers_lxd_socket(tmp_path):
    first = tmp_path / "first.sock"
    first.touch()
    assert Endpoint.discover({"LXD_SOCKET": str(first)}).socket_path == str(first)


def test_nothing_found_names_every_path_and_the_fix(tmp_path, monkeypatch):
    if any(os.path.exists(p) for p in ("/var/snap/lxd/common/lxd/unix.socket",
                                       "/var/lib/lxd/unix.socket")):
        # The well-known sockets exist here; prove the message on the
        # function that builds it, with every candidate missing.
        monkeypatch.setattr("apitx._endpoint.WELL_KNOWN_SOCKETS", (str(tmp_path / "nope"),))
    monkeypatch.setenv("LXD_DIR", str(tmp_path / "lxddir"))
    monkeypatch.setenv("LXD_SOCKET", str(tmp_path / "x.sock"))
    with pytest.raises(APIConnectionError) as info:
        apitx.API.factory()
    message = str(info.value)
    assert str(tmp_path / "x.sock") in message
    assert str(tmp_path / "lxddir" / "unix.socket") in message
    assert "Install LXD and start it" in message
    assert "LXD_DIR" in message
