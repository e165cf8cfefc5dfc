"""apitx._endpoint: parsing what people give, and discovering the local socket."""

import grp
import os
import shutil
import socket
import tempfile

import pytest

import apitx
from apitx import APIConnectionError, Endpoint, EndpointError
from apitx._endpoint import UNIX_BASE_URL, candidate_sockets

from sandbox import as_nobody


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


# -- discovery: offline, with tmp dirs, fake environments and real AF_UNIX sockets --

#: The well-known places, relocated under a tmp dir by ``places``.
WELL_KNOWN = {"snap": "snap/unix.socket", "deb": "lxd/unix.socket",
              "run_incus": "run-incus/unix.socket", "incus": "incus/unix.socket",
              "incus_user": "incus/unix.socket.user"}


@pytest.fixture
def places(tmp_path):
    """``(root, make, well_known)``: ``make(relative)`` binds a real AF_UNIX
    socket file there (closed at the end); ``well_known`` the table to pass
    to discovery in place of the real /var/... paths."""
    sockets = []

    def make(relative: str) -> str:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sockets.append(sock)
        return str(path)

    well_known = (("lxd", str(tmp_path / WELL_KNOWN["snap"])),
                  ("lxd", str(tmp_path / WELL_KNOWN["deb"])),
                  ("incus", str(tmp_path / WELL_KNOWN["run_incus"])),
                  ("incus", str(tmp_path / WELL_KNOWN["incus"])))
    yield tmp_path, make, well_known
    for sock in sockets:
        sock.close()


def test_candidates_follow_the_go_clients_order():
    found = candidate_sockets({"LXD_SOCKET": "/a.sock", "LXD_DIR": "/d",
                               "INCUS_SOCKET": "/i.sock", "INCUS_DIR": "/id"})
    assert [(c.origin, c.path, c.family, c.user) for c in found] == [
        ("$LXD_SOCKET", "/a.sock", "lxd", False),
        ("$LXD_DIR", "/d/unix.socket", "lxd", False),
        ("$INCUS_SOCKET", "/i.sock", "incus", False),
        ("$INCUS_DIR", "/id/unix.socket", "incus", False),
        ("default", "/var/snap/lxd/common/lxd/unix.socket", "lxd", False),
        ("default", "/var/lib/lxd/unix.socket", "lxd", False),
        ("default", "/run/incus/unix.socket", "incus", False),
        ("default", "/var/lib/incus/unix.socket", "incus", False),
        # incus-user's sockets last: used only when nothing else is usable
        ("$INCUS_DIR", "/id/unix.socket.user", "incus", True),
        ("default", "/run/incus/unix.socket.user", "incus", True),
        ("default", "/var/lib/incus/unix.socket.user", "incus", True)]


def test_a_family_keeps_to_its_own_candidates():
    env = {"LXD_SOCKET": "/a.sock", "INCUS_SOCKET": "/i.sock"}
    assert {c.family for c in candidate_sockets(env, "incus")} == {"incus"}
    assert [c.path for c in candidate_sockets(env, "lxd")] == [
        "/a.sock", "/var/snap/lxd/common/lxd/unix.socket", "/var/lib/lxd/unix.socket"]


# Each row: the sockets that exist (keys of WELL_KNOWN, or "env:NAME" for one
# named by a variable), the environment, the family asked for, and the socket
# discovery must pick (None: it must fail).
@pytest.mark.parametrize("existing, env, family, expected", [
    (["deb", "incus"], {}, None, "deb"),                      # LXD before Incus
    (["snap", "deb"], {}, None, "snap"),                      # the snap before Debian's
    (["deb", "incus"], {}, "incus", "incus"),                 # 'incus' skips LXD
    (["deb", "incus"], {}, "lxd", "deb"),
    (["run_incus", "incus"], {}, None, "run_incus"),          # /run/incus first
    (["incus"], {}, "lxd", None),                             # 'lxd' never takes Incus
    (["deb", "env:INCUS"], {"INCUS_SOCKET": "env:INCUS"}, None, "env:INCUS"),  # variables first
    (["env:LXD", "env:INCUS"], {"LXD_SOCKET": "env:LXD", "INCUS_SOCKET": "env:INCUS"}, None,
     "env:LXD"),                                              # LXD's variables before Incus's
    (["deb", "env:LXD"], {"LXD_SOCKET": "env:LXD"}, None, "env:LXD"),
    (["deb"], {"LXD_SOCKET": "env:MISSING"}, None, "deb"),    # a missing one is skipped
    (["incus_user", "incus"], {}, None, "incus"),             # the user socket comes last
    (["incus_user"], {}, None, "incus_user"),                 # ... but is used when alone
    ([], {}, None, None),
])
def test_discovery_table(places, existing, env, family, expected):
    root, make, well_known = places
    where = {key: (make(f"env/{key[4:]}.socket") if key.startswith("env:") else
                   make(WELL_KNOWN[key])) for key in existing}
    env = {name: where.get(value, str(root / "env" / "missing.socket"))
           for name, value in env.items()}
    if expected is None:
        with pytest.raises(APIConnectionError):
            Endpoint.discover(env, family, well_known=well_known)
        return
    found = Endpoint.discover(env, family, well_known=well_known)
    assert found.socket_path == where[expected]
    assert found.project == (f"user-{os.getuid()}" if expected == "incus_user" else None)


def test_incus_dir_and_its_user_socket(places):
    root, make, well_known = places
    user = make("mine/unix.socket.user")
    found = Endpoint.discover({"INCUS_DIR": str(root / "mine")}, "incus", well_known=well_known)
    assert found.socket_path == user and found.project == f"user-{os.getuid()}"


def test_nothing_usable_names_every_path_and_why(places):
    root, make, well_known = places
    with pytest.raises(APIConnectionError) as info:
        Endpoint.discover({"LXD_DIR": str(root / "lxddir")}, well_known=well_known)
    message = str(info.value)
    assert message.startswith("no usable LXD or Incus socket; tried ")
    assert f"{root}/lxddir/unix.socket ($LXD_DIR): missing" in message
    assert f"{root}/lxd/unix.socket (default): missing" in message
    assert f"{root}/incus/unix.socket.user (default): missing" in message
    assert "set LXD_DIR/INCUS_DIR" in message and "endpoint=" in message


def test_a_family_word_is_not_a_path():
    """'lxd' and 'incus' discover; a socket file of that name is './lxd'."""
    assert Endpoint.resolve("./lxd").socket_path == "./lxd"
    with pytest.raises(EndpointError, match="not understood"):
        Endpoint.parse("lxd")
    with pytest.raises(EndpointError, match="family 'docker' is not known"):
        Endpoint.discover({}, "docker")


@pytest.mark.live
def test_factory_finds_each_server_by_its_family_word(server):
    with apitx.API.factory(server.name) as api:
        assert api.endpoint.socket_path == server.socket
        assert api.server.name == server.name


@pytest.mark.live
def test_a_socket_nobody_cannot_write_is_skipped_and_said_why(server):
    """A real non-root user: the Go clients' W_OK check, and the message."""
    if os.getuid() != 0:
        pytest.fail("this test needs root to become another user; run the suite as root")

    def attempt() -> str:
        return str(Endpoint.discover({}, server.name).socket_path)

    report = as_nobody(attempt)
    assert report.startswith(f"raised APIConnectionError: no usable "
                             f"{ {'lxd': 'LXD', 'incus': 'Incus'}[server.name]} socket")
    mode = os.stat(server.socket)
    fix = ("run as root" if mode.st_gid == 0 else
           f"join group {grp.getgrgid(mode.st_gid).gr_name} (then log in again)")
    assert f"{server.socket} (default): exists, not writable by uid 65534: {fix}" in report


def test_a_socket_of_a_group_names_the_group_to_join():
    """A real non-root user (nobody) and a socket in group 'daemon', mode 0660."""
    if os.getuid() != 0:
        pytest.fail("this test needs root to become another user; run the suite as root")
    directory = tempfile.mkdtemp(prefix="apitx-")
    os.chmod(directory, 0o755)  # nobody may look inside
    path = os.path.join(directory, "unix.socket")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(path)
        os.chown(path, 0, grp.getgrnam("daemon").gr_gid)
        os.chmod(path, 0o660)
        report = as_nobody(lambda: str(Endpoint.discover({"INCUS_DIR": directory}, "incus",
                                                         well_known=())))
    finally:
        sock.close()
        shutil.rmtree(directory)
    assert report == (
        f"raised APIConnectionError: no usable Incus socket; tried {path} ($INCUS_DIR): "
        "exists, not writable by uid 65534: join group daemon (then log in again); the "
        f"packaged daemon's group is incus-admin; {path}.user ($INCUS_DIR): missing. Start "
        "the daemon (install it first if needed: apt-get install lxd, or incus), join the "
        "group that owns its socket, set LXD_DIR/INCUS_DIR to the directory holding its "
        "unix.socket, or pass endpoint= to API.factory()")
