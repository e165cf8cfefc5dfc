"""Remotes read as lxc and incus keep them (offline: config dirs in tmp dirs).

The live side (a real ``remote add``, then ``API.factory('name:')``) is in
test_remote_add.py and test_cli_remote.py.
"""

from __future__ import annotations

import os
import textwrap

import pytest
import yaml

import apitx
from apitx._transports._pinning import Pin, PinningAdapter
from apitx._remotes import (
    ConfigDir,
    config_dirs,
    find_remote,
    list_remotes,
    load_remotes,
    read_config,
    remove_remote,
    resolve_remote,
    save_remote,
)

from tls import make_cert


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty HOME and no config variables: only what a test writes exists."""
    for name in ("APITX_CONF", "LXD_CONF", "INCUS_CONF", "LXD_SOCKET", "LXD_DIR",
                 "INCUS_SOCKET", "INCUS_DIR", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write_config(directory, text: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "config.yml")
    with open(path, "w") as handle:
        handle.write(textwrap.dedent(text))
    return str(directory)


LXC_CONFIG = """\
    default-remote: local
    remotes:
      images:
        addr: https://images.linuxcontainers.org
        protocol: simplestreams
        public: true
      local:
        addr: unix://
        public: false
      web:
        addr: https://10.0.0.5:8443
        auth_type: tls
        project: shop
        protocol: lxd
        public: false
      sock:
        addr: unix:///run/custom/lxd.socket
    aliases: {}
"""


def test_the_dirs_in_their_order(home, monkeypatch):
    monkeypatch.setenv("APITX_CONF", "/a")
    monkeypatch.setenv("LXD_CONF", "/l")
    monkeypatch.setenv("INCUS_CONF", "/i")
    assert [(d.origin, d.path, d.flavour) for d in config_dirs()] == [
        ("$APITX_CONF", "/a", "apitx"),
        ("$LXD_CONF", "/l", "lxd"),
        ("lxd snap", f"{home}/snap/lxd/common/config", "lxd"),
        ("lxc", f"{home}/.config/lxc", "lxd"),
        ("$INCUS_CONF", "/i", "incus"),
        ("incus", f"{home}/.config/incus", "incus"),
    ]


def test_unset_variables_leave_the_defaults_once(home, monkeypatch):
    monkeypatch.setenv("LXD_CONF", f"{home}/.config/lxc")  # the same dir twice: listed once
    assert [d.path for d in config_dirs()] == [
        f"{home}/.config/apitx", f"{home}/.config/lxc", f"{home}/snap/lxd/common/config",
        f"{home}/.config/incus"]


@pytest.mark.parametrize("name, addr, protocol, project, public", [
    ("images", "https://images.linuxcontainers.org", "simplestreams", None, True),
    ("local", "unix://", "lxd", None, False),
    ("web", "https://10.0.0.5:8443", "lxd", "shop", False),
    ("sock", "unix:///run/custom/lxd.socket", "lxd", None, False),
])
def test_an_lxc_config_as_read(home, name, addr, protocol, project, public):
    write_config(home / ".config" / "lxc", LXC_CONFIG)
    remote = find_remote(name)
    assert (remote.addr, remote.protocol, remote.project, remote.public) == \
        (addr, protocol, project, public)
    assert remote.config_dir.path == f"{home}/.config/lxc"


def test_an_incus_dir_defaults_to_protocol_incus(home):
    write_config(home / ".config" / "incus", "remotes: {box: {addr: 'https://h:8443'}}")
    assert find_remote("box").protocol == "incus"


def test_unix_remotes_are_the_flavours_local_socket(home, monkeypatch, tmp_path):
    lxd, incus = tmp_path / "lxd.socket", tmp_path / "incus.socket"
    lxd.touch()
    monkeypatch.setenv("LXD_SOCKET", str(lxd))
    monkeypatch.setenv("INCUS_SOCKET", str(incus))
    write_config(home / ".config" / "lxc", "remotes: {local: {addr: 'unix://'}}")
    write_config(home / ".config" / "incus", "remotes: {inc: {addr: 'unix://'}}")
    assert find_remote("local").endpoint.socket_path == str(lxd)
    assert find_remote("inc").endpoint.socket_path == str(incus)
    write_config(home / ".config" / "lxc", LXC_CONFIG)
    assert find_remote("sock").endpoint.socket_path == "/run/custom/lxd.socket"


def test_local_exists_with_no_config_at_all(home, monkeypatch, tmp_path):
    (tmp_path / "s").touch()
    monkeypatch.setenv("LXD_SOCKET", str(tmp_path / "s"))
    assert resolve_remote("local:").endpoint.socket_path == str(tmp_path / "s")


@pytest.mark.parametrize("first, second, winner", [
    ("APITX_CONF", "LXD_CONF", "APITX_CONF"),
    ("LXD_CONF", "INCUS_CONF", "LXD_CONF"),
    ("APITX_CONF", "INCUS_CONF", "APITX_CONF"),
])
def test_the_first_dir_wins(home, monkeypatch, first, second, winner):
    for variable in (first, second):
        monkeypatch.setenv(variable, write_config(
            home / variable, f"remotes: {{web: {{addr: 'https://{variable.lower()}:8443'}}}}"))
    assert find_remote("web").addr == f"https://{winner.lower()}:8443"
    assert [r.addr for r in list_remotes() if r.name == "web"] == [
        f"https://{winner.lower()}:8443"]


def test_home_dirs_come_after_the_variables(home, monkeypatch):
    write_config(home / ".config" / "lxc", "remotes: {web: {addr: 'https://home:8443'}}")
    write_config(home / ".config" / "incus", "remotes: {web: {addr: 'https://incus:8443'}}")
    assert find_remote("web").addr == "https://home:8443"
    monkeypatch.setenv("LXD_CONF", write_config(
        home / "elsewhere", "remotes: {web: {addr: 'https://env:8443'}}"))
    assert find_remote("web").addr == "https://env:8443"


def test_an_unknown_remote_lists_every_dir_searched(home, monkeypatch):
    monkeypatch.setenv("INCUS_CONF", "/nowhere/incus")
    with pytest.raises(apitx.EndpointError) as caught:
        find_remote("nope")
    message = str(caught.value)
    for path in (f"{home}/.config/apitx", f"{home}/snap/lxd/common/config",
                 f"{home}/.config/lxc", "/nowhere/incus", f"{home}/.config/incus"):
        assert f"{path}/config.yml" in message
    assert "apitx remote add nope" in message


def test_bad_yaml_names_the_file_and_line(home):
    path = write_config(home / ".config" / "lxc", "remotes:\n  web:\n    addr: [unclosed\n")
    with pytest.raises(apitx.EndpointError,
                       match=rf"^{path}/config.yml line 4: bad YAML .*fix or remove"):
        find_remote("web")


@pytest.mark.parametrize("text, message", [
    ("- a list\n", "not an lxc/incus client config"),
    ("remotes: [a, b]\n", "not an lxc/incus client config"),
    ("remotes: {web: {protocol: lxd}}\n", "remote 'web' has no 'addr' string"),
])
def test_configs_of_the_wrong_shape(home, text, message):
    write_config(home / ".config" / "lxc", text)
    with pytest.raises(apitx.EndpointError, match=message):
        find_remote("web")


def test_an_empty_config_is_no_remotes(home):
    assert read_config(write_config(home / "c", "")) == {}


@pytest.mark.parametrize("text", ["/var/lib/lxd/unix.socket", "https://h:8443", "unix:///x",
                                  "./rel.socket", "web", "a:b", None, 42])
def test_only_name_colon_is_a_remote(home, text):
    assert resolve_remote(text) is None


def test_api_options_of_an_https_remote(home, tmp_path):
    directory = write_config(home / ".config" / "lxc", LXC_CONFIG)
    for name in ("client.crt", "client.key"):
        (home / ".config" / "lxc" / name).write_text("x")
    os.makedirs(f"{directory}/servercerts")
    make_cert(f"{directory}/servercerts", "web", ca=True)  # a CA flag does not matter here
    options = find_remote("web").api_options()
    assert options["cert"] == (f"{directory}/client.crt", f"{directory}/client.key")
    assert options["fingerprint"] == Pin.from_file(f"{directory}/servercerts/web.crt")
    assert options["project"] == "shop"


def test_api_options_without_certificates(home):
    write_config(home / ".config" / "lxc", "remotes: {pki: {addr: 'https://h:8443', "
                                           "project: default}}")
    assert find_remote("pki").api_options() == {}  # ordinary verification, default project


@pytest.mark.parametrize("entry, message", [
    ("{addr: 'https://images.linuxcontainers.org', protocol: simplestreams}",
     "protocol 'simplestreams': apitx talks to LXD and Incus"),
    ("{addr: 'https://h:8443', auth_type: oidc}", "auth_type 'oidc': apitx supports TLS"),
])
def test_remotes_apitx_cannot_use(home, entry, message):
    write_config(home / ".config" / "lxc", f"remotes: {{r: {entry}}}")
    with pytest.raises(apitx.EndpointError, match=message):
        apitx.API.factory("r:")


def test_the_factory_takes_a_remote(home):
    directory = write_config(home / ".config" / "lxc", LXC_CONFIG)
    os.makedirs(f"{directory}/servercerts")
    make_cert(f"{directory}/servercerts", "web")
    api = apitx.API.factory("web:")
    assert api.endpoint.base_url == "https://10.0.0.5:8443"
    assert isinstance(api.session.get_adapter("https://10.0.0.5:8443/1.0"), PinningAdapter)
    assert api.project == "shop"
    # The caller's own arguments win over the remote's.
    assert apitx.API.factory("web:", project="other").project == "other"
    ca, _ = make_cert(str(home), "ca", ca=True)
    own = apitx.API.factory("web:", verify=ca)
    assert not isinstance(own.session.get_adapter("https://10.0.0.5:8443/1.0"), PinningAdapter)
    assert apitx.API.factory("sock:").endpoint.socket_path == "/run/custom/lxd.socket"


def test_save_keeps_what_else_is_there(home):
    directory = write_config(home / "conf", LXC_CONFIG)
    save_remote(directory, "new", "https://10.0.0.9:8443", "incus", b"PEM\n", project="p")
    data = yaml.safe_load(open(f"{directory}/config.yml"))
    assert data["default-remote"] == "local" and data["aliases"] == {}
    assert set(data["remotes"]) == {"images", "local", "web", "sock", "new"}
    assert data["remotes"]["new"] == {"addr": "https://10.0.0.9:8443", "auth_type": "tls",
                                      "project": "p", "protocol": "incus", "public": False}
    assert open(f"{directory}/servercerts/new.crt", "rb").read() == b"PEM\n"
    # Said to come from where the caller named it, not from $APITX_CONF.
    assert remove_remote("new", config_dir=directory).config_dir.origin == "config_dir="
    assert "new" not in yaml.safe_load(open(f"{directory}/config.yml"))["remotes"]
    assert not os.path.exists(f"{directory}/servercerts/new.crt")
    with pytest.raises(apitx.EndpointError, match="no remote named 'new' in"):
        remove_remote("new", config_dir=directory)


def test_save_into_a_new_dir(home):
    save_remote(str(home / "fresh"), "web", "https://h:8443", "lxd", b"PEM\n")
    assert load_remotes(ConfigDir("t", str(home / "fresh"), "apitx"))["web"].server_cert == \
        str(home / "fresh" / "servercerts" / "web.crt")


@pytest.mark.parametrize("name", ["", "a:b", "a/b", "a b", "-x", "é"])
def test_names_lxc_could_not_use(home, name):
    with pytest.raises(apitx.EndpointError, match="is not usable"):
        save_remote(str(home), name, "https://h:8443", "lxd", b"")


def test_local_is_listed_with_no_config_at_all(home):
    """As `lxc remote list` shows it; find_remote('local') already knew it."""
    remotes = list_remotes()
    assert [(r.name, r.addr, r.builtin) for r in remotes] == [("local", "unix://", True)]
    assert remotes[0] == find_remote("local")


def test_a_local_a_config_defines_is_that_one(home):
    write_config(home / ".config" / "lxc", LXC_CONFIG)
    local = [r for r in list_remotes() if r.name == "local"]
    assert [(r.config_dir.path, r.builtin) for r in local] == [(f"{home}/.config/lxc", False)]


# -- hostile config.yml: each refused in one EndpointError naming the file (issue 16) ------

#: Nine lines of YAML aliases: a billion list items to whatever walks them.
BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
    for i in range(8)) + "remotes: {web: {addr: 'https://h:8443', project: *i}}\n"


@pytest.mark.parametrize("content, message", [
    (b"remotes: {web: {addr: 'https://h\xff:8443'}}\n",
     r"config.yml: not UTF-8 text \(byte 33 of the file\): fix or remove that file"),
    (BILLION_LAUGHS.encode(), r"config.yml line 2: a YAML alias \(\*a\): lxc and incus never "
                              "write one"),
    (b"remotes: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
     r"config.yml line 1: more than 20000 YAML nodes or 32 levels: not an lxc/incus client "
     "config"),
    ("remotes:\n".encode() + b"".join(b"  r%d: {addr: 'https://h%d:8443'}\n" % (i, i)
                                      for i in range(7000)),
     r"config.yml line \d+: more than 20000 YAML nodes"),
])
def test_a_config_that_is_no_config_is_refused_naming_the_file(home, content, message):
    directory = home / ".config" / "lxc"
    directory.mkdir(parents=True)
    (directory / "config.yml").write_bytes(content)
    with pytest.raises(apitx.EndpointError, match=rf"^{directory}/{message}"):
        read_config(str(directory))


def test_a_huge_config_is_refused_unread(home):
    directory = home / "c"
    directory.mkdir()
    with open(directory / "config.yml", "wb") as config:
        config.truncate(200 << 20)  # sparse: 200 MB of nothing, on no disk
    with pytest.raises(apitx.EndpointError, match=rf"^{directory}/config.yml is larger than "
                                                  "1 MiB: not an lxc/incus client config"):
        read_config(str(directory))


def test_a_config_that_is_a_directory_is_refused(home):
    (home / "c" / "config.yml").mkdir(parents=True)
    with pytest.raises(apitx.EndpointError, match="config.yml is not a regular file"):
        read_config(str(home / "c"))


def test_save_writes_through_a_symlinked_config(home):
    """config.yml kept as a link (dotfiles) stays one: its target is what changes."""
    real = home / "dotfiles" / "config.yml"
    real.parent.mkdir()
    real.write_text("remotes: {}\n")
    (home / "conf").mkdir()
    (home / "conf" / "config.yml").symlink_to(real)
    save_remote(str(home / "conf"), "web", "https://h:8443", "lxd", b"PEM\n")
    assert (home / "conf" / "config.yml").is_symlink()
    assert yaml.safe_load(real.read_text())["remotes"]["web"]["addr"] == "https://h:8443"


@pytest.mark.parametrize("addr, shown", [
    ("https://u:hunter2@h:8443", "https://<redacted>@h:8443"),
    ("https://h:8443?token=hunter2", "https://h:8443?token=<redacted>"),
    ("https://u:hunter2@[::1", "https://<redacted>@[::1"),  # not even a URL
    ("unix://", "unix://"),
    ("https://h:8443", "https://h:8443"),
])
def test_an_address_is_shown_without_its_password(home, addr, shown):
    write_config(home / ".config" / "lxc", f"remotes: {{web: {{addr: '{addr}'}}}}\n")
    assert find_remote("web").shown_addr == shown


def test_remove_refuses_a_name_lxc_could_not_use_and_touches_nothing(home):
    """A name from a hostile config must not reach the file system (../ deleted files)."""
    directory = write_config(home / "conf", "remotes: {'../../victim': {addr: 'https://h'}}\n")
    (home / "victim.crt").write_text("precious")
    before = open(f"{directory}/config.yml").read()
    with pytest.raises(apitx.EndpointError, match="remote name '../../victim' is not usable"):
        remove_remote("../../victim", config_dir=directory)
    assert (home / "victim.crt").read_text() == "precious"
    assert open(f"{directory}/config.yml").read() == before
