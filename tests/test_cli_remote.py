"""``apitx remote add|list|remove``, and ``apitx -e NAME:`` using what it saved."""

from __future__ import annotations

import io
import json
import os

import pytest

from apitx.cli import main as apitx_main
from apitx.cli._remote import main

from processes import command, interrupt, popen
from test_remote_add import token
from test_remotes import BILLION_LAUGHS
from tls import DAEMONS, make_cert, require, running_tls_server
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
        assert apitx_main(["-e", "sb:", "--compact", ""]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["auth"], info["environment"]["server"]) == ("trusted", server)
        assert main(["list"]) == 0
        assert any(line.split()[:5] == ["sb", daemon.https, server, "default", "yes"]
                   for line in capsys.readouterr().out.splitlines())
        assert main(["remove", "sb"]) == 0
        assert not os.path.exists(conf / "servercerts" / "sb.crt")
        assert apitx_main(["-e", "sb:", ""]) == 2
        assert "no remote named 'sb'" in capsys.readouterr().err


def test_list_shows_the_builtin_local_remote(conf, capsys):
    """As `lxc remote list` does when no config defines it: whatever the machine's home holds."""
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[1:]] == [["local", "unix://", "lxd", "no",
                                                     "(built-in)"]]
    assert main(["list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{
        "name": "local", "addr": "unix://", "protocol": "lxd", "project": None,
        "server_cert": None, "config": None}]


def test_help_lists_the_exit_codes(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "2    usage error or bad input" in text and "3    cannot connect" in text
    assert "`local`" in text


# -- hostile input (issue 16): one line and the documented exit code, never a traceback --

def one_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("apitx: "), captured.err
    return lines[0]


def test_remove_never_follows_a_path_in_the_name(conf, tmp_path, capsys):
    conf.mkdir()
    (conf / "config.yml").write_text("remotes: {'../../victim': {addr: 'https://h:8443'}}\n")
    (tmp_path / "victim.crt").write_text("precious")  # conf/servercerts/../../victim.crt
    assert main(["remove", "../../victim"]) == 2
    assert "remote name '../../victim' is not usable" in one_line(capsys)
    assert (tmp_path / "victim.crt").read_text() == "precious"


@pytest.mark.parametrize("claims", [
    {"fingerprint": "ab", "secret": "s", "addresses": [[1]]},
    {"fingerprint": "ab", "secret": "s", "addresses": ["[::1"]},
    {"fingerprint": "ab", "secret": "s", "addresses": {}},
    {"fingerprint": {}, "secret": "s", "addresses": ["127.0.0.1:9"]},
    {"fingerprint": {"a": 1}, "secret": "s", "addresses": ["127.0.0.1:9"]},
    {"fingerprint": "ab", "secret": {"a": 1}, "addresses": ["127.0.0.1:9"]},
])
def test_a_malformed_token_is_one_line_and_exit_2(conf, capsys, claims):
    assert main(["add", "x", "--token", token(**claims)]) == 2
    line = one_line(capsys)
    assert "token" in line or "not a URL" in line


def test_a_malformed_token_is_no_traceback():
    done = command("remote", "add", "x", "--token",
                   token(fingerprint="ab", secret="s", addresses=[[1]]))
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode() == ("apitx: the token's addresses are not a list of host:port "
                                    "strings: copy it whole from `lxc config trust add` on the "
                                    "server, or give the server's URL\n")


def test_a_dangling_client_key_is_one_line_and_exit_2(conf, tmp_path, capsys):
    conf.mkdir()
    (conf / "client.key").symlink_to(tmp_path / "gone.key")
    server_cert = make_cert(str(tmp_path), "server")
    with running_tls_server(server_cert, make_cert(str(tmp_path), "ca", ca=True)[0]) as server:
        code = main(["add", "x", f"https://127.0.0.1:{server.port}", "--accept-certificate"])
    assert code == 2
    assert one_line(capsys) == (f"apitx: {conf}/client.key is a symlink to {tmp_path}/gone.key, "
                                "which does not exist: restore its target, or remove the link "
                                "and its pair to make a new client certificate")
    assert not (tmp_path / "gone.key").exists()


def test_ctrl_c_while_reading_the_token_exits_130_in_one_line(conf):
    process = popen("remote", "add", "x", "--token", "-",
                    env={**os.environ, "APITX_CONF": str(conf)})
    assert interrupt(process, 0, 0) == (130, b"", b"apitx: interrupted\n")  # in read(0, ...)


def test_a_closed_stdin_for_the_token_is_a_usage_error(conf, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", None)
    assert main(["add", "x", "--token", "-"]) == 2
    assert one_line(capsys) == "apitx: --token -: stdin is closed: pipe the secret in; nothing "\
                               "was sent"


def test_a_password_in_an_address_is_never_shown(conf, tmp_path, capsys):
    conf.mkdir()
    (conf / "config.yml").write_text("remotes: {web: {addr: 'https://u:hunter2@h:8443'}}\n")
    assert main(["list"]) == 0
    assert "https://<redacted>@h:8443" in capsys.readouterr().out
    assert main(["list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["addr"] == "https://<redacted>@h:8443"
    assert main(["add", "x", "https://u:hunter2@127.0.0.1:9", "--accept-certificate"]) == 3
    assert "https://<redacted>@127.0.0.1:9" in one_line(capsys)
    server_cert = make_cert(str(tmp_path), "server")
    with running_tls_server(server_cert, make_cert(str(tmp_path), "ca", ca=True)[0]) as server:
        assert main(["add", "x", f"https://u:hunter2@127.0.0.1:{server.port}"]) == 2
    assert one_line(capsys).startswith(
        f"apitx: https://<redacted>@127.0.0.1:{server.port} presents certificate sha256:")


def hostile_config(conf, content) -> dict:
    """An environment whose only config dir is ``conf`` holding ``content``
    (bytes, or the FIFO that None asks for)."""
    conf.mkdir()
    if content is None:
        os.mkfifo(conf / "config.yml")
    else:
        (conf / "config.yml").write_bytes(content)
    return {**os.environ, "APITX_CONF": str(conf), "HOME": str(conf.parent)}


@pytest.mark.parametrize("content, message", [
    (None, "config.yml is not a regular file: replace it with an lxc/incus client config, or "
           "remove it"),
    (BILLION_LAUGHS.encode(), "config.yml line 2: a YAML alias (*a): lxc and incus never write "
                              "one; write the value out, or remove that file"),
    (b"remotes: {x: {addr: '\xff'}}", "config.yml: not UTF-8 text (byte 22 of the file): fix "
                                      "or remove that file"),
])
@pytest.mark.parametrize("args", [["remote", "list"], ["-e", "x:", ""]])
def test_a_hostile_config_is_one_line_and_exit_2(conf, content, message, args):
    """Before: a FIFO hung both commands, an alias bomb hung `-e x:` (or ran out of
    memory), bytes that are not UTF-8 were a traceback. The timeout only bounds a hang."""
    done = command(*args, env=hostile_config(conf, content), timeout=60)
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode() == f"apitx: {conf}/{message}\n"
