"""``apitx copy``, ``move``, ``export`` and ``import`` as real processes,
against real servers: the sandbox's LXD and the pair's lxd2 (scripts/lxd-pair).

The servers are named as an operator names them for ``lxc``: remotes
``here`` (the sandbox's LXD) and ``there`` (lxd2) of a temporary lxc config
dir (``LXD_CONF``), both over HTTPS with the sandbox's client certificate.
Every copy is checked by content, inside the copy: it is started and
``sha256sum`` runs in it. Whatever a test makes is deleted at the end,
whatever happens (the ``made`` fixture of tests/workloads.py).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from typing import Callable, Dict, List

import pytest

from pair import CLIENT_CERT, HTTPS, SERVER_CERTS, SMALL_POOL
from processes import ENV, command, on_a_terminal, popen, reaped
from sandbox import SANDBOX_HTTPS
from workloads import absent, running_migrations, sha256_inside, snapshots, workload

live = pytest.mark.live

MODES = ["pull", "push", "relay"]
#: What nothing listens on: a remote there cannot be reached.
NOWHERE = "https://127.0.2.9:8443"
#: A socket path with no daemon: a command that refuses before sending
#: anything exits 2 with it, one that tried to connect would exit 3.
NO_SOCKET = "/nonexistent/apitx.socket"


@pytest.fixture
def env(tmp_path) -> Dict[str, str]:
    """The command's environment: an lxc config dir of its own with the
    remotes ``here``, ``there`` and ``down``, and an empty apitx one."""
    conf = tmp_path / "lxc"
    (conf / "servercerts").mkdir(parents=True)
    for path in CLIENT_CERT:
        shutil.copy(path, conf)
    remotes = {"here": (SANDBOX_HTTPS, SERVER_CERTS["lxd"]),
               "there": (HTTPS["lxd2"], SERVER_CERTS["lxd2"]),
               "down": (NOWHERE, SERVER_CERTS["lxd2"])}
    lines = ["remotes:"]
    for name, (addr, cert) in remotes.items():
        shutil.copy(cert, conf / "servercerts" / f"{name}.crt")
        lines.append(f"  {name}: {{addr: '{addr}', protocol: lxd, public: false}}")
    (conf / "config.yml").write_text("\n".join(lines) + "\n")
    (tmp_path / "apitx").mkdir()
    return dict(ENV, LXD_CONF=str(conf), APITX_CONF=str(tmp_path / "apitx"),
                HOME=str(tmp_path))


def run(env: Dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return command(*args, env=env, timeout=300, **kwargs)


def ok(done: subprocess.CompletedProcess) -> None:
    """Done, and silent: no output, no progress (stderr is not a terminal)."""
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b""), done.stderr


def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (a server's state), up to a minute."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def one_line(done: subprocess.CompletedProcess) -> str:
    """The command's only line on stderr, without ``apitx: ``."""
    text = done.stderr.decode()
    assert text.count("\n") == 1 and text.startswith("apitx: "), text
    return text[len("apitx: "):-1]


# -- copy and move, as lxc takes them -----------------------------------------------------

@live
@pytest.mark.parametrize("mode", MODES)
def test_copy_between_remotes_in_each_mode(apis, made, tmp_path, env, mode):
    name = made.name("lxd", "lxd2")
    digest = workload(apis["lxd"], name, tmp_path)
    ok(run(env, "copy", f"here:{name}", "there:", "--mode", mode))
    assert snapshots(apis["lxd2"], name) == ["snap0"]
    assert sha256_inside(apis["lxd2"], name) == digest
    assert apis["lxd"].get(f"instances/{name}").metadata["status"] == "Stopped"


@live
def test_copy_options_as_lxc_takes_them(apis, made, tmp_path, env):
    """A bare name is on -e's server; --instance-only, -s and a new name;
    the same remote twice is a copy on that server."""
    name = made.name("lxd")
    other, local = made.name("lxd2"), made.name("lxd")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    ok(run(env, "copy", "-e", apis["lxd"].endpoint.socket_path, name, f"there:{other}",
           "--instance-only", "-s", SMALL_POOL, "--mode", "push"))
    assert snapshots(apis["lxd2"], other) == []
    copy = apis["lxd2"].get(f"instances/{other}").metadata
    assert copy["expanded_devices"]["root"]["pool"] == SMALL_POOL
    ok(run(env, "copy", f"here:{name}", f"here:{local}"))
    assert snapshots(apis["lxd"], local) == ["snap0"]
    # --project reaches the servers (the source has no such instance in that project).
    elsewhere = run(env, "copy", f"here:{name}", "there:", "--project", "apitx-none", "-v")
    assert elsewhere.returncode == 1
    assert f"{SANDBOX_HTTPS} GET /1.0/instances/{name}?project=apitx-none " in \
        elsewhere.stderr.decode()
    assert sha256_inside(apis["lxd2"], other) == sha256_inside(apis["lxd"], local) == digest


@live
def test_a_running_instance_is_copied_only_with_stateless(apis, made, tmp_path, env):
    """lxc copies a running instance live unless --stateless: apitx, which
    never copies live, refuses rather than copy it otherwise."""
    name = made.name("lxd", "lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1, snapshot=False)
    apis["lxd"].put(f"instances/{name}/state", json={"action": "start"}).wait(60)
    refused = run(env, "copy", f"here:{name}", "there:")
    assert refused.returncode == 2
    assert one_line(refused) == (
        f"instance {name} is running: lxc would copy it live (with CRIU), which apitx does not "
        "do; add --stateless to copy it as it is on disk; nothing was changed")
    assert absent(apis["lxd2"], f"instances/{name}")
    ok(run(env, "copy", f"here:{name}", "there:", "--stateless", "--mode", "relay"))
    assert apis["lxd2"].get(f"instances/{name}").metadata["status"] == "Stopped"
    assert sha256_inside(apis["lxd2"], name) == digest


@live
def test_move_between_remotes_then_rename(apis, made, tmp_path, env):
    name = made.name("lxd", "lxd2")
    renamed = made.name("lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    ok(run(env, "move", f"here:{name}", "there:", "--mode", "relay"))
    assert absent(apis["lxd"], f"instances/{name}")
    assert snapshots(apis["lxd2"], name) == ["snap0"]
    ok(run(env, "move", f"there:{name}", f"there:{renamed}"))
    assert absent(apis["lxd2"], f"instances/{name}")
    assert sha256_inside(apis["lxd2"], renamed) == digest


@live
@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "SIGTERM: the command was killed"),
], ids=["Ctrl-C", "SIGTERM"])
def test_a_copy_stopped_midway_cancels_both_servers_work(apis, made, tmp_path, env, signum,
                                                          code, line):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=64, snapshot=False)
    with reaped(popen("copy", f"here:{name}", "there:", "--mode", "relay", env=env)) as child:
        # The target's instance record is made as the transfer starts.
        until(lambda: not absent(apis["lxd2"], f"instances/{name}") or
              child.poll() is not None, "the copy started")
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    assert (child.returncode, err.decode()) == (code, f"apitx: {line}\n")
    until(lambda: absent(apis["lxd2"], f"instances/{name}"), "the target removed its copy")
    assert running_migrations(apis["lxd"], name) == []
    assert running_migrations(apis["lxd2"], name) == []


# -- export and import ------------------------------------------------------------------

@live
def test_export_to_lxcs_default_file_and_import_it_back(apis, made, tmp_path, env):
    name = made.name("lxd")
    copy = made.name("lxd2")
    digest = workload(apis["lxd"], name, tmp_path, megabytes=1)
    ok(run(env, "export", f"here:{name}", cwd=tmp_path))
    backup = tmp_path / "backup.tar.gz"  # lxc export's default
    assert backup.stat().st_size > 1 << 20
    assert apis["lxd"].get(f"instances/{name}/backups").metadata == []  # deleted after
    ok(run(env, "import", "there:", str(backup), copy))
    assert snapshots(apis["lxd2"], copy) == ["snap0"]
    assert sha256_inside(apis["lxd2"], copy) == digest
    # A failed export leaves the file there as it was.
    before = backup.read_bytes()
    missing = made.name()
    failed = run(env, "export", f"here:{missing}", str(backup))
    assert failed.returncode == 1
    assert one_line(failed).startswith(f"making a backup of instance {missing} on "
                                       f"{SANDBOX_HTTPS} failed: ")
    assert backup.read_bytes() == before


@live
def test_export_options_and_an_unwritable_file(apis, made, tmp_path, env):
    name = made.name("lxd")
    workload(apis["lxd"], name, tmp_path, megabytes=0.5)
    plain = tmp_path / "c.tar"
    done = run(env, "export", f"here:{name}", str(plain), "--instance-only", "--compression",
               "none", "--optimized-storage", "-v")
    assert done.returncode == 0 and done.stdout == b""
    # Each option reached the server (a dir pool has no optimized format of its own).
    request = done.stderr.decode().split(f"POST /1.0/instances/{name}/backups ")[1]
    for option in ('"instance_only": true', '"optimized_storage": true',
                   '"compression_algorithm": "none"'):
        assert option in request.split("HTTP/")[0]
    with open(plain, "rb") as tar:
        assert tar.read(512)[257:262] == b"ustar"  # an uncompressed tarball
    missing = tmp_path / "missing" / "c.tar.gz"
    refused = run(env, "export", f"here:{name}", str(missing))
    assert refused.returncode == 2
    assert one_line(refused) == f"{missing}: No such file or directory"
    assert apis["lxd"].get(f"instances/{name}/backups").metadata == []  # nothing was asked


# -- failures: one line, the shared exit codes, the side named --------------------------------

@live
def test_an_unreachable_remote_exits_3_naming_the_target(apis, made, tmp_path, env):
    name = made.name("lxd")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    done = run(env, "copy", f"here:{name}", "down:")
    assert done.returncode == 3
    line = one_line(done)
    assert line.startswith(f"the target at {NOWHERE} failed") and \
        line.endswith("nothing was started on either side"), line


@live
def test_a_name_taken_on_the_target_exits_1_naming_the_target(apis, made, tmp_path, env):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=0.1, snapshot=False)
    workload(apis["lxd2"], name, tmp_path, megabytes=0.1, snapshot=False)
    done = run(env, "copy", f"here:{name}", "there:")
    assert done.returncode == 1
    assert one_line(done).startswith(f"the target (lxd 5.0.2 (API 1.0) at {HTTPS['lxd2']}) "
                                     f"already has an instance {name}")


@pytest.mark.parametrize("args, line", [
    (["copy", "c1", "there:", "--profile", "web"],
     "--profile: the copy keeps the source's profiles, which the target must have"),
    (["copy", "c1", "c2", "-c", "limits.cpu=2"],
     "-c: the copy keeps the source's config: change it afterwards"),
    (["copy", "--refresh", "c1", "there:"], "--refresh: incremental copies are not supported"),
    (["copy", "c1", "there:", "--ephemeral"],
     "--ephemeral: the copy is ephemeral when the source is"),
    (["copy", "c1", "there:", "--target-project", "web"],
     "--target-project: the copy is made in the same project on both sides (--project "
     "names it)"),
    (["move", "c1", "there:", "--no-profiles"],
     "--no-profiles: the copy keeps the source's profiles"),
    (["move", "c1", "there:", "--allow-inconsistent"],
     "--allow-inconsistent: a copy fails rather than skip files that change"),
    (["import", "-d", "root,size=1GB", "b.tar.gz"],
     "-d: the instance keeps the backup's devices: change them afterwards"),
])
def test_lxc_options_apitx_does_not_do_are_refused_in_one_line(args, line):
    done = command(*args, "-e", NO_SOCKET)
    assert done.returncode == 2 and done.stdout == b""
    assert one_line(done) == f"{line}; nothing was sent"


@pytest.mark.parametrize("args, line", [
    (["copy", "c1"], "give the DESTINATION: a new NAME on the same server, or REMOTE: "
                     "(REMOTE:NAME) for another"),
    (["copy", "c1", "c1/snap0"], "c1/snap0: copying from or to a snapshot is not supported"),
    (["copy", "c1/snap0", "c2"], "c1/snap0: copying from or to a snapshot is not supported"),
    (["copy", "c1", "c1-copy/"], "c1-copy/: copying from or to a snapshot is not supported"),
    (["copy", ":c1", "c2"], "SOURCE ':c1': give REMOTE:NAME (a remote's name before the colon), "
                            "or NAME alone for the server of -e"),
    (["copy", "c1", "c1"], "DESTINATION c1: the same server as the source: give the copy a "
                           "name of its own"),
    (["copy", "there:c1", "there:"], "DESTINATION there:: the same server as the source: give "
                                     "the copy a name of its own"),
    (["move", "c1"], "give the DESTINATION ([REMOTE:]NAME), or --target MEMBER to move the "
                     "instance within a cluster"),
    (["move", "c1/snap0", "c1/snap1"], "c1/snap0: moving or renaming a snapshot is not "
                                       "supported"),
    (["move", "c1", "c1"], "DESTINATION c1: the same server as the instance: give its new name"),
    (["move", "there:c1", "there:"], "DESTINATION there:: the same server as the instance: give "
                                     "its new name"),
    (["move", "c1", "--target", "m2", "--mode", "relay"],
     "--mode cannot be used with --target on one server (the cluster moves the instance "
     "itself)"),
    (["move", "c1", "--target", "m2", "--instance-only"],
     "--instance-only cannot be used with --target on one server (the cluster moves the "
     "instance itself)"),
    (["move", "c1", "-s", "fast"],
     "--storage: moving an instance to another pool of the same server is not supported"),
    (["move", "c1", "c1-b", "-s", "fast"],
     "--storage: moving an instance to another pool of the same server is not supported"),
    (["import", "there:", "a.tar.gz", "c2", "extra"],
     "extra: too many words; give [REMOTE:] FILE [NAME]"),
])
def test_what_lxc_would_refuse_or_apitx_cannot_do_is_refused_before_connecting(args, line):
    done = command(*args, "-e", NO_SOCKET)
    assert done.returncode == 2 and done.stdout == b""
    assert one_line(done) == f"{line}; nothing was sent"


@live
def test_an_unknown_remote_names_the_config_dirs_searched(env):
    done = run(env, "copy", "c1", "nope:")
    assert done.returncode == 2
    assert one_line(done).startswith(f"no remote named 'nope'; searched "
                                     f"{env['APITX_CONF']}/config.yml ($APITX_CONF), "
                                     f"{env['LXD_CONF']}/config.yml ($LXD_CONF)")


def test_help_lists_the_subcommands_and_each_its_exit_codes_and_refusals():
    listed = command("--help").stdout.decode()
    assert "apitx copy|move [REMOTE:]NAME [REMOTE:][NAME]" in listed
    assert "apitx export|import" in listed
    for verb in ("copy", "move", "export", "import"):
        shown = command(verb, "--help")
        assert shown.returncode == 0
        text = shown.stdout.decode()
        assert text.startswith(f"usage: apitx {verb} ") and "exit codes:" in text
        assert "one line naming the side that failed" in text
    assert "lxc options apitx refuses (exit 2):" in command("copy", "--help").stdout.decode()


# -- progress and traces -------------------------------------------------------------------

@live
def test_progress_is_one_line_rewritten_on_a_terminal(apis, made, tmp_path, env):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=8, snapshot=False)
    code, shown, out = on_a_terminal("copy", f"here:{name}", "there:", "--mode", "relay",
                                     stream="stderr", env=env)
    assert (code, out) == (0, b"")
    updates = shown.decode().split("\r\x1b[K")
    assert updates[0] == "" and updates[-1] == ""  # each rewrites the line; cleared at the end
    assert updates[1] == f"Copying here:{name} 0s"
    relayed = [u for u in updates if re.fullmatch(rf"Copying here:{name} \d+s [\d.]+[kM]?B "
                                                  r"relayed", u)]
    assert relayed and relayed[-1].endswith("MB relayed"), updates
    assert "\n" not in shown.decode()
    code, shown, out = on_a_terminal("export", f"here:{name}", str(tmp_path / "b.tar.gz"),
                                     stream="stderr", env=env)
    assert code == 0 and re.search(rf"Exporting here:{name} \d+s [\d.]+MB received",
                                   shown.decode())
    code, shown, out = on_a_terminal("export", "-q", f"here:{name}", str(tmp_path / "c.tar.gz"),
                                     stream="stderr", env=env)
    assert (code, shown) == (0, b"")
    # A trace on the terminal keeps its lines: no progress line is drawn over them.
    code, shown, out = on_a_terminal("export", f"here:{name}", str(tmp_path / "d.tar.gz"),
                                     stream="stderr", env=dict(env, DEBUG="1"))
    assert code == 0 and b"GET /1.0/instances/" in shown and b"\x1b[K" not in shown


@live
@pytest.mark.parametrize("tracing", [{"DEBUG": "1"}, {"-v": ""}], ids=["DEBUG=1", "-v"])
def test_traces_show_both_servers_and_count_the_relay_without_its_bytes(apis, made, tmp_path,
                                                                        env, tracing):
    name = made.name("lxd", "lxd2")
    workload(apis["lxd"], name, tmp_path, megabytes=2, snapshot=False)
    options: List[str] = [key for key in tracing if key.startswith("-")]
    done = run(dict(env, **{k: v for k, v in tracing.items() if not k.startswith("-")}),
               "copy", f"here:{name}", "there:", "--mode", "relay", *options)
    assert done.returncode == 0 and done.stdout == b""
    trace = done.stderr.decode()
    assert f"{SANDBOX_HTTPS} POST /1.0/instances/{name} " in trace  # the source's operation
    assert f"{HTTPS['lxd2']} POST /1.0/instances " in trace       # the target's
    counts = re.findall(rf"apitx: relayed websocket (\w+) between {SANDBOX_HTTPS} and "
                        rf"{HTTPS['lxd2']}: source→target \d+ frames, (\d+) bytes; "
                        r"target→source \d+ frames, \d+ bytes\n", trace)
    assert dict(counts).keys() == {"control", "fs"}
    assert int(dict(counts)["fs"]) > 2 << 20  # the data went through, counted
    # Counted, not dumped; and the websockets' secrets never shown.
    assert "<binary" not in trace
    assert not re.search(r'"(control|fs)": "(?!<redacted>)', trace)
    assert "secret=" not in trace.replace("secret=<redacted>", "")
    assert len(done.stderr) < 1 << 20
