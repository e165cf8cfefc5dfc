"""``apitx remote add|list|remove``, and ``apitx -e NAME:`` using what it saved."""

from __future__ import annotations

import io
import json
import os

import pytest

from apitx import _cli
from apitx._cli_remote import main

from tls import DAEMONS, require
from trust import token_for


@pytest.fixture
def conf(tmp_path, monkeypatch):
    directory = tmp_path / "apitx"
    monkeypatch.setenv("APITX_CONF", str(directory))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("LXD_CONF", "INCUS_CONF"):
        monkeypatch.delenv(name, raising=False)
    return directory


def test_usage_errors_exit_2(conf, capsys):
    assert main([]) == 2
    assert main(["add"]) == 2
    assert main(["add", "a:b", "https://h:8443", "--accept-certificate"]) == 2
    assert "remote name 'a:b' is not usable" in capsys.readouterr().err


def test_remove_what_is_not_there(conf, capsys):
    assert main(["remove", "nope"]) == 2
    assert f"no remote named 'nope' in {conf}/config.yml" in capsys.readouterr().err


def test_nothing_listens_exit_3(conf, capsys):
    assert main(["add", "x", "https://127.0.0.1:9", "--accept-certificate"]) == 3
    assert "cannot fetch the certificate of https://127.0.0.1:9" in capsys.readouterr().err


def test_list_shows_where_each_remote_lives(conf, tmp_path, capsys):
    lxc = tmp_path / ".config" / "lxc"
    lxc.mkdir(parents=True)
    (lxc / "config.yml").write_text("remotes: {local: {addr: 'unix://'}}\n")
    conf.mkdir()
    (conf / "config.yml").write_text("remotes: {web: {addr: 'https://h:8443', project: p}}\n")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "URL", "PROTOCOL", "PROJECT", "PINNED", "CONFIG"]
    assert lines[1].split() == ["web", "https://h:8443", "lxd", "p", "no", str(conf)]
    assert lines[2].split() == ["local", "unix://", "lxd", "no", str(lxc)]
    assert main(["list", "--format", "json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["web", "local"]


@pytest.mark.live
@pytest.mark.parametrize("server", sorted(DAEMONS))
def test_live_add_use_list_remove(server, conf, monkeypatch, capsys):
    daemon = require(DAEMONS[server])
    with token_for(daemon.socket) as (_, name, secret):
        monkeypatch.setattr("sys.stdin", io.StringIO(secret + "\n"))  # --token -: from stdin
        assert main(["add", "sb", "--token", "-"]) == 0  # the token names the address
        assert "remote sb added: https://127.0.0.1:" in capsys.readouterr().err
        assert _cli.main(["-e", "sb:", "--compact", ""]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["auth"], info["environment"]["server"]) == ("trusted", server)
        assert main(["list"]) == 0
        assert any(line.split()[:5] == ["sb", daemon.https, server, "default", "yes"]
                   for line in capsys.readouterr().out.splitlines())
        assert main(["remove", "sb"]) == 0
        assert not os.path.exists(conf / "servercerts" / "sb.crt")
        assert _cli.main(["-e", "sb:", ""]) == 2
        assert "no remote named 'sb'" in capsys.readouterr().err
