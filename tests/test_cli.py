"""apitx.cli: the ``apitx`` command (the request; subcommands have their own files).

Tests that talk to a server run twice: ``live`` runs ``python -m apitx`` as a
real subprocess against the live LXD; ``replay`` runs ``main(argv)`` in
process under a cassette (cassettes/cli-*.yaml, recorded with ``pytest
--record``), so they also pass with no LXD. Replays use fixed instance names
(their URLs are in the cassettes); live runs use unique ones.

Usage errors and connection failures need no server: they run in process
against a socket that does not exist, which also proves nothing was sent (a
connection attempt would exit 3, not 2).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List

import pytest

import apitx
from apitx.cli import main
from apitx.cli._wait import progress_text

from processes import ENV, ROOT, command, on_a_terminal, owned_by_another, reaped
from processes import closing as _closing
from processes import file_size_limit as _file_size_limit
from processes import full_device as _full_device
from processes import interrupt as _interrupt
from processes import popen as _popen
from sandbox import (
    NOWHERE_SOCKET,
    SANDBOX_DIR,
    SANDBOX_SOCKET,
    SERVER_BY_NAME,
    SandboxServer,
    instance_not_found,
    live_server,
    instance_config,
    remove_instance,
)

live = pytest.mark.live


#: Every byte value, CR/LF and NULs, and invalid UTF-8: what must arrive exactly.
PAYLOAD = bytes(range(256)) * 16 + b"\r\n\x00\xff\xfe end"

#: Instance names used while recording; the cassettes hold their URLs.
RECORDED_RUNNING = "apitx-cli-rec-running"
RECORDED_STOPPED = "apitx-cli-rec-stopped"


@dataclass
class Outcome:
    code: int
    out: bytes
    err: bytes

    @property
    def err_lines(self) -> List[str]:
        return self.err.decode().splitlines()


def in_process(capsysbinary, *args: str) -> Outcome:
    capsysbinary.readouterr()
    code = main(list(args))
    captured = capsysbinary.readouterr()
    return Outcome(code, captured.out, captured.err)


# -- instances ---------------------------------------------------------------------

@contextmanager
def _instances(socket: str, running: str, stopped: str) -> Iterator[tuple]:
    """A running and a stopped busybox instance, deleted afterwards whatever happens."""
    with apitx.API.factory(socket) as api:
        try:
            for name in (running, stopped):
                remove_instance(api, name)  # a leftover of an interrupted recording
                api.post("instances", json=instance_config(name)).wait(timeout=120)
            api.put(f"instances/{running}/state", json={"action": "start"}).wait(timeout=60)
            yield running, stopped
        finally:
            for name in (running, stopped):
                remove_instance(api, name)


@pytest.fixture(scope="module")
def instances_on() -> Iterator[Callable[[SandboxServer], tuple]]:
    """``instances_on(server)``: a running and a stopped instance on that
    server, made on first use (once per module and server), deleted at the end."""
    made: dict = {}
    with ExitStack() as stack:
        def get(server: SandboxServer) -> tuple:
            if server.name not in made:
                suffix = os.urandom(4).hex()
                made[server.name] = stack.enter_context(_instances(
                    server.socket, f"apitx-cli-run-{suffix}", f"apitx-cli-stop-{suffix}"))
            return made[server.name]
        yield get


@pytest.fixture(scope="module")
def live_instances(server: SandboxServer, instances_on) -> tuple:
    return instances_on(server)


@pytest.fixture(scope="module")
def recorded_instances(request: pytest.FixtureRequest) -> Iterator[tuple]:
    if not request.config.getoption("--record"):
        yield RECORDED_RUNNING, RECORDED_STOPPED
        return
    with _instances(SANDBOX_SOCKET, RECORDED_RUNNING, RECORDED_STOPPED) as names:
        yield names


class Runner:
    """Runs the command live (subprocess) or in process under a cassette."""

    def __init__(self, mode: str, socket: str, running: str, stopped: str,
                 capsysbinary=None, server: str = "lxd") -> None:
        self.mode, self.socket, self.server = mode, socket, server
        self.running, self.stopped = running, stopped
        self.capsysbinary = capsysbinary
        self.cassette = None

    def __call__(self, *args: str, stdin: str = "") -> Outcome:
        argv = ["-e", self.socket, *args]
        if self.mode == "live":
            done = command(*argv, input=stdin.encode())
            return Outcome(done.returncode, done.stdout, done.stderr)
        saved, sys.stdin = sys.stdin, io.StringIO(stdin)  # what a shell would pipe in
        try:
            return in_process(self.capsysbinary, *argv)
        finally:
            sys.stdin = saved


@pytest.fixture(params=[*(pytest.param(name, marks=live) for name in SERVER_BY_NAME), "replay"])
def run(request: pytest.FixtureRequest, capsysbinary, cassette) -> Iterator[Runner]:
    """The command, live on each server (``[lxd]``, ``[incus]``), and replayed
    from a cassette recorded from LXD (``[replay]``). The live parameters
    carry the ``live`` mark from collection on, so ``-m "not live"`` keeps
    only the replays (tests/livemarks.py)."""
    if request.param in SERVER_BY_NAME:
        server = live_server(SERVER_BY_NAME[request.param])
        running, stopped = request.getfixturevalue("instances_on")(server)
        yield Runner("live", server.socket, running, stopped, server=server.name)
        return
    running, stopped = request.getfixturevalue("recorded_instances")
    name = re.sub(r"\[.*", "", request.node.name).replace("test_", "cli-", 1) + ".yaml"
    context, socket = cassette(name)
    runner = Runner("replay", socket, running, stopped, capsysbinary)
    with context as runner.cassette:
        yield runner


def one_line_error(outcome: Outcome) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    assert outcome.out == b""
    lines = outcome.err_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("apitx: ")
    return lines[0]


# -- results on stdout ------------------------------------------------------------

def test_get_root_prints_metadata_as_pretty_json(run):
    outcome = run("")
    assert outcome.code == 0 and outcome.err == b""
    metadata = json.loads(outcome.out)
    assert metadata["api_version"] == "1.0"
    assert outcome.out.startswith(b'{\n    "')


def test_raw_compact_prints_the_envelope_on_one_line(run):
    outcome = run("--raw", "--compact", "/1.0")
    assert outcome.code == 0
    assert outcome.out.count(b"\n") == 1
    envelope = json.loads(outcome.out)
    assert envelope["type"] == "sync" and envelope["metadata"]["api_version"] == "1.0"


def test_output_file_takes_the_json_result_instead_of_stdout(run, tmp_path):
    target = tmp_path / "root.json"
    outcome = run("-o", str(target), "--compact", "")
    assert outcome.code == 0 and outcome.out == b"" and outcome.err == b""
    assert json.loads(target.read_bytes())["api_version"] == "1.0"
    assert target.read_bytes().count(b"\n") == 1


def test_param_and_project_reach_the_query(run):
    outcome = run("-p", "recursion=1", "--project", "default", "instances")
    assert outcome.code == 0
    names = [item["name"] for item in json.loads(outcome.out)]
    assert run.stopped in names and run.running in names


def test_api_error_exits_1_with_the_library_message(run):
    outcome = run("instances/apitx-cli-missing")
    assert outcome.code == 1
    assert one_line_error(outcome) == (
        f"apitx: GET unix:{run.socket} /1.0/instances/apitx-cli-missing: "
        f"{instance_not_found(run.server, 'apitx-cli-missing')}")


def test_debug_traces_the_transaction_to_stderr(run):
    outcome = run("-v", "")
    assert outcome.code == 0
    err = outcome.err.decode()
    assert f" unix:{run.socket} GET /1.0 " in err and "\nHTTP/200 OK\n{\n" in err
    assert '"api_version": "1.0"' in err
    assert json.loads(outcome.out)["api_version"] == "1.0"  # stdout: the result only


def test_debug_shows_a_traceback_on_errors(run):
    outcome = run("--debug", "instances/apitx-cli-missing")
    assert outcome.code == 1
    err = outcome.err.decode()
    assert "Traceback (most recent call last)" in err and "APINotFoundException" in err
    assert err.splitlines()[-1].endswith(
        f"/1.0/instances/apitx-cli-missing: {instance_not_found(run.server, 'apitx-cli-missing')}")


# -- binary bodies ----------------------------------------------------------------

def test_data_binary_push_and_output_pull_keep_every_byte(run, tmp_path):
    source = tmp_path / "payload.bin"
    source.write_bytes(PAYLOAD)
    files = f"instances/{run.stopped}/files?path=/tmp/apitx-cli.bin"
    pushed = run("-X", "POST", "-H", "X-LXD-type: file", "--data-binary", f"@{source}", files)
    assert pushed.code == 0, pushed.err
    target = tmp_path / "pulled.bin"
    pulled = run("-o", str(target), files)
    assert pulled.code == 0 and pulled.out == b"" and pulled.err == b""
    assert target.read_bytes() == PAYLOAD


def test_binary_body_goes_to_stdout_when_it_is_not_a_terminal(run, tmp_path):
    source = tmp_path / "payload.bin"
    source.write_bytes(PAYLOAD)
    files = f"instances/{run.stopped}/files?path=/tmp/apitx-cli-pipe.bin"
    assert run("-X", "POST", "-H", "X-LXD-type: file", "--data-binary", f"@{source}",
               files).code == 0
    outcome = run(files)
    assert outcome.code == 0 and outcome.err == b""
    assert outcome.out == PAYLOAD


@live
def test_pushed_bytes_arrive_exactly_as_the_library_reads_them(api, lxd_socket, live_instances,
                                                               tmp_path):
    stopped = live_instances[1]
    source = tmp_path / "payload.bin"
    source.write_bytes(PAYLOAD)
    files = f"instances/{stopped}/files?path=/tmp/apitx-cli-check.bin"
    done = command("-e", lxd_socket, "-X", "POST", "-H", "X-LXD-type: file",
                   "--data-binary", f"@{source}", files)
    assert done.returncode == 0, done.stderr
    assert api.get(files).response.content == PAYLOAD


@live
def test_binary_body_is_not_written_to_a_terminal_unless_asked(api, live_instances):
    stopped = live_instances[1]
    files = f"instances/{stopped}/files?path=/tmp/apitx-cli-tty.txt"
    api.post(files, data=b"hello from the instance\n", headers={"X-LXD-type": "file"})
    code, screen, err = on_a_terminal("-e", api.endpoint.socket_path, files)
    assert code == 2 and screen == b""
    assert err.decode().strip().endswith(
        "the answer is not JSON (application/octet-stream): not written to a terminal; "
        "use -o FILE, -o - or a pipe")
    code, screen, err = on_a_terminal("-e", api.endpoint.socket_path, "-o", "-", files)
    assert code == 0 and err == b""
    assert screen == b"hello from the instance\r\n"  # the terminal turns \n into \r\n


# -- --wait -----------------------------------------------------------------------

def _exec(*argv: str) -> str:
    return json.dumps({"command": list(argv), "record-output": True})


def test_wait_prints_the_finished_operation(run):
    outcome = run("-X", "POST", "-d", _exec("/bin/echo", "hi"), "--wait",
                  f"instances/{run.running}/exec")
    assert outcome.code == 0 and outcome.err == b""
    operation = json.loads(outcome.out)
    assert operation["status"] == "Success" and operation["metadata"]["return"] == 0


def test_data_from_a_file_and_from_stdin(run, tmp_path):
    body = tmp_path / "exec.json"
    body.write_text(_exec("/bin/echo", "from-file"))
    from_file = run("-X", "POST", "-d", f"@{body}", "--wait", f"instances/{run.running}/exec")
    assert from_file.code == 0 and json.loads(from_file.out)["metadata"]["return"] == 0
    from_stdin = run("-X", "POST", "-d", "@-", "--wait", f"instances/{run.running}/exec",
                     stdin=_exec("/bin/sh", "-c", "exit 7"))
    assert from_stdin.code == 0 and json.loads(from_stdin.out)["metadata"]["return"] == 7


def test_without_endpoint_the_command_discovers_lxd_socket_first(hostile):
    done = subprocess.run([sys.executable, "-m", "apitx", "--compact", ""], capture_output=True,
                          env={**ENV, "LXD_SOCKET": hostile.server_address}, timeout=60)
    assert (done.returncode, done.stdout) == (0, b'{"api_version":"1.0"}\n')
    assert [entry[1] for entry in hostile.log] == ["/1.0"]


def test_wait_on_a_failed_operation_exits_1(run):
    outcome = run("-X", "POST", "-d", _exec("/bin/apitx-no-such-command"), "--wait",
                  f"instances/{run.running}/exec")
    assert outcome.code == 1
    assert one_line_error(outcome).endswith(": Command not found")


def test_wait_timeout_exits_4_naming_the_running_operation(run):
    if run.cassette is not None:
        # LXD held the poll for 1 s while recording; a replay answers at once,
        # so the same recorded "still running" answer is played until 1 s passed.
        run.cassette.allow_playback_repeats = True
    outcome = run("-X", "POST", "-d", _exec("/bin/sleep", "5"), "--wait", "--timeout", "1",
                  f"instances/{run.running}/exec")
    # Exit 4 with the operation still running: it gave up at its timeout, not
    # at the end of the 5 s command (how long it took: bench/deadlines.py).
    assert outcome.code == 4
    line = one_line_error(outcome)  # one line: no progress output off a terminal
    assert re.search(rf"still running after [\d.]+s: unix:{re.escape(run.socket)} "
                     r"/1\.0/operations/[0-9a-f-]{36} \(wait on it again, or DELETE it", line)


@live
def test_timed_out_operation_is_really_still_running(api, live_instances):
    done = command("-e", api.endpoint.socket_path, "-X", "POST", "-d", _exec("/bin/sleep", "3"),
                   "--wait", "--timeout", "1", f"instances/{live_instances[0]}/exec")
    assert done.returncode == 4
    path = re.search(r"/1\.0/operations/[0-9a-f-]{36}", done.stderr.decode()).group(0)
    assert api.get(path).metadata["status"] == "Running"


# -- Ctrl-C during --wait ----------------------------------------------------------

def _interrupt_wait(api: apitx.API, instance: str, *args: str) -> tuple:
    """Start a --wait in a subprocess, SIGINT it once it waits; return (code, stderr, op)."""
    before = set(_running_operations(api, instance))
    with reaped(_popen("-e", api.endpoint.socket_path, *args)) as process:
        operation = _new_operation(api, instance, before)
        time.sleep(0.5)  # the answer reached the client: let it start waiting
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    return process.returncode, err.decode(), operation


def _running_operations(api: apitx.API, instance: str) -> List[str]:
    running = api.get("operations", params={"recursion": 1}).metadata.get("running") or []
    return [f"/1.0/operations/{op['id']}" for op in running
            if f"/1.0/instances/{instance}" in (op.get("resources") or {}).get("instances", [])]


def _new_operation(api: apitx.API, instance: str, before: set) -> str:
    """The operation of ``instance`` that was not running before (earlier tests
    may leave a short exec running)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new = set(_running_operations(api, instance)) - before
        if new:
            return new.pop()
        time.sleep(0.05)
    raise AssertionError(f"no new operation of {instance} started")


def _migration_args(instance: str) -> tuple:
    # A migration source waits for its peer to connect: a cancellable
    # operation (may_cancel: true) that runs until cancelled.
    return ("-X", "POST", "-d", '{"migration": true}', "--wait", f"instances/{instance}")


@live
def test_ctrl_c_stops_waiting_and_names_the_running_operation(api, live_instances):
    stopped = live_instances[1]
    code, err, operation = _interrupt_wait(api, stopped, *_migration_args(stopped))
    try:
        assert code == 130
        assert err == (f"apitx: interrupted; operation still running: unix:{api.endpoint.socket_path} "
                       f"{operation} (wait on it with apitx --wait {operation}, "
                       f"or cancel it with apitx -X DELETE {operation})\n")
        assert api.get(operation).metadata["status"] == "Running"
        # The suggested command really waits on it (here, until --timeout).
        again = command("-e", api.endpoint.socket_path, "--wait", "--timeout", "1", operation)
        assert again.returncode == 4
        assert operation in again.stderr.decode()
    finally:
        api.delete(operation, validate=False)


@live
def test_ctrl_c_with_cancel_on_interrupt_cancels_the_operation(api, live_instances):
    stopped = live_instances[1]
    code, err, operation = _interrupt_wait(api, stopped, "--cancel-on-interrupt",
                                         *_migration_args(stopped))
    assert code == 130
    assert err == ("apitx: interrupted; cancelled operation "
                   f"unix:{api.endpoint.socket_path} {operation}\n")
    # A cancelled operation's answer is a failure (status_code 401): read it as it is.
    # Incus 6.0 answers the DELETE while the operation is still "Cancelling"
    # (LXD 5.0 once it is "Cancelled"): give it a moment to get there.
    deadline = time.monotonic() + 10
    status = api.get(operation, validate=False).metadata["status"]
    while status == "Cancelling" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = api.get(operation, validate=False).metadata["status"]
    assert status == "Cancelled"


@live
def test_ctrl_c_cancel_of_an_uncancellable_operation_says_lxd_refused(api, live_instances):
    running = live_instances[0]
    code, err, operation = _interrupt_wait(api, running, "--cancel-on-interrupt", "-X", "POST",
                                         "-d", _exec("/bin/sleep", "3"), "--wait",
                                         f"instances/{running}/exec")
    assert code == 130
    assert err == (f"apitx: interrupted; LXD did not cancel operation unix:{api.endpoint.socket_path} "
                   f"{operation}: This operation can't be cancelled; it is still running\n")


# -- the progress line, in a real terminal -----------------------------------------

@live
def test_progress_line_appears_and_is_cleared_in_a_terminal(lxd_socket, live_instances, tmp_path):
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is missing: apt-get install -y tmux (this test drives a real terminal)")
    session = f"apitx-cli-{os.getpid()}-{time.monotonic_ns()}"
    done_marker = tmp_path / "done"
    script = tmp_path / "run.sh"
    script.write_text(
        f"PYTHONPATH={ROOT} {sys.executable} -m apitx -e {lxd_socket} --compact -X POST "
        f"-d '{_exec('/bin/sleep', '3')}' --wait instances/{live_instances[0]}/exec\n"
        f"echo EXIT=$? > {done_marker}\nsleep 60\n")
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "20",
                    f"sh {script}"], check=True, env=ENV)
    try:
        seen = []
        deadline = time.monotonic() + 30
        while not done_marker.exists() and time.monotonic() < deadline:
            seen.append(_screen(tmux, session))
            time.sleep(0.2)
        final = _screen(tmux, session)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], env=ENV)
    assert done_marker.read_text().strip() == "EXIT=0"
    progress = [s for s in seen if re.search(r"^Executing command \ds", s, re.M)]
    assert progress, seen[-3:]
    assert re.search(r"^Executing command [2-9]s", "\n".join(progress), re.M)  # it ticks
    assert "Executing command" not in final.replace('"description":"Executing command"', "")
    assert '"status":"Success"' in final


def _screen(tmux: str, session: str) -> str:
    return subprocess.run([tmux, "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, env=ENV).stdout


def test_progress_text_shows_description_elapsed_and_lxd_progress():
    # The metadata LXD 5.0 sends while unpacking an image into a new instance.
    operation = {"description": "Creating instance", "metadata": {
        "create_instance_from_image_unpack_progress": "Unpack: 42% (12.30MB/s)"}}
    assert progress_text(operation, 7.4) == "Creating instance 7s Unpack: 42% (12.30MB/s)"
    assert progress_text({"description": "Stopping instance", "metadata": None}, 0) == \
        "Stopping instance 0s"


# -- usage, connection, curl: no server needed ----------------------------------------

@pytest.mark.parametrize("args, message", [
    (["-X", "POST", "-d", '{"name": "c1",\n "source": }', "instances"],
     "-d: invalid JSON at line 2, column 12: Expecting value; nothing was sent"),
    (["-H", "no colon", ""], "-H 'no colon' is not a header: write it as 'Name: value'"),
    (["-p", "novalue", ""], "-p 'novalue' is not a parameter: write it as key=value"),
    (["--timeout", "5", ""], "--timeout applies to --wait: add --wait, or drop --timeout"),
    (["--cancel-on-interrupt", ""], "--cancel-on-interrupt applies to --wait: add --wait"),
    (["-d", "@/nonexistent/c1.json", "instances"],
     "-d /nonexistent/c1.json: No such file or directory"),
    (["--data-binary", "raw text", "instances"],
     "--data-binary 'raw text': give a file as @FILE (its bytes are streamed; for JSON text "
     "use -d)"),
    (["-o", "/nonexistent/dir/out", ""], "-o /nonexistent/dir/out: No such file or directory"),
    (["--key", "k.pem", ""], "--key needs --cert"),
    # The library's rule and words: it refuses before sending (a RequestError).
    (["-X", "GET /", ""], "method 'GET /' is not an HTTP method (GET, POST, PUT, PATCH, "
                          "DELETE, HEAD...); nothing was sent"),
    (["https://example.com/1.0"], "url 'https://example.com/1.0' is a full URL"),
])
def test_bad_input_exits_2_before_sending(capsysbinary, args, message):
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, *args)
    assert outcome.code == 2
    assert one_line_error(outcome).startswith(f"apitx: {message}")


def test_data_from_stdin_is_checked_too():
    done = command("-e", NOWHERE_SOCKET, "-X", "POST", "-d", "@-", "instances",
                   input=b"[1, 2")
    assert done.returncode == 2
    assert done.stderr == (b"apitx: -d: invalid JSON at line 1, column 6: Expecting ',' "
                           b"delimiter; nothing was sent\n")


def test_argparse_usage_errors_exit_2(capsysbinary):
    outcome = in_process(capsysbinary, "--timeout", "soon", "--wait", "")
    assert outcome.code == 2
    assert b"apitx: error: argument --timeout: 'soon' is not a number of seconds" in outcome.err


def test_no_socket_exits_3(capsysbinary):
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, "")
    assert outcome.code == 3
    assert one_line_error(outcome).startswith(
        f"apitx: GET unix:{NOWHERE_SOCKET} /1.0: no socket at {NOWHERE_SOCKET}")


def test_exit_codes_reach_the_shell():
    done = command("-e", "/nonexistent.sock", "")
    assert done.returncode == 3 and done.stdout == b""
    assert done.stderr.startswith(b"apitx: GET unix:/nonexistent.sock /1.0: no socket at")
    assert b"Traceback" not in done.stderr


def test_curl_prints_the_command_and_sends_nothing(capsysbinary, tmp_path):
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, "--curl", "-X", "post",
                         "-d", '{"name": "it\'s"}', "--project", "p1", "-o", "out file",
                         "instances")
    assert outcome.code == 0 and outcome.err == b""
    assert outcome.out.decode() == (
        f"curl --unix-socket {NOWHERE_SOCKET} -X POST -H 'Content-Type: application/json' "
        "--data-binary '{\"name\": \"it'\"'\"'s\"}' 'http://lxd/1.0/instances?project=p1' "
        "-o 'out file'\n")


def test_curl_references_a_data_binary_file(capsysbinary, tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(PAYLOAD)
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, "--curl", "-X", "POST",
                         "-H", "X-LXD-type: file", "--data-binary", f"@{source}",
                         "instances/c1/files?path=/tmp/blob")
    assert outcome.code == 0
    assert outcome.out.decode().split(" --data-binary ")[1].startswith(f"@{source} ")


@live
def test_https_endpoint_with_client_certificate(server):
    done = command("-e", server.https, "--cert", f"{SANDBOX_DIR}/client.crt",
                   "--key", f"{SANDBOX_DIR}/client.key", "--cacert", server.server_cert, "")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["auth"] == "trusted"


# -- help, version, entry points ----------------------------------------------------

def test_help_documents_exit_codes_and_examples(capsysbinary):
    outcome = in_process(capsysbinary, "--help")
    assert outcome.code == 0
    text = outcome.out.decode()
    for line in ("0    ok", "1    the API answered an error", "2    usage error",
                 "3    cannot connect", "4    timeout", "5    the result could not be written",
                 "70   internal error", "130  interrupted", "141  stdout"):
        assert line in text
    assert "apitx -X POST -d @c1.json --wait instances" in text


def test_version(capsysbinary):
    outcome = in_process(capsysbinary, "--version")
    assert outcome.code == 0 and outcome.out == f"apitx {apitx.__version__}\n".encode()


def test_console_script_is_installed_and_runs():
    """The entry point pip installed from setup.py, run as people run it."""
    from importlib.metadata import entry_points

    found = entry_points()
    scripts = (found.select(group="console_scripts") if hasattr(found, "select")
               else found.get("console_scripts", ()))  # Python 3.9
    # Python 3.9 lists an editable install's metadata twice: compare as a set.
    entries = {e for e in scripts if e.name == "apitx"}
    assert {e.value for e in entries} == {"apitx.cli:run"}
    assert entries.pop().load() is apitx.cli.run
    script = os.path.join(sysconfig.get_path("scripts"), "apitx")
    done = subprocess.run([script, "--version"], capture_output=True, env=ENV, timeout=60)
    assert done.returncode == 0
    assert done.stdout.decode().strip().endswith(apitx.__version__)


@pytest.mark.parametrize("call, frozen", [("run()", True), ("main()", False),
                                          ("main(['--version'])", False)])
def test_only_the_process_command_freezes_its_imports(call, frozen):
    """run() (the console script, python -m apitx) freezes what its imports
    made, so that finalization skips them; main(), called by a program of
    one's own, leaves its collector as it was."""
    program = ("import atexit, gc, sys\n"
               "from apitx.cli import main, run\n"
               "atexit.register(lambda: print('frozen', gc.get_freeze_count(), file=sys.stderr))\n"
               f"sys.argv = ['apitx', '--version']\nsys.exit({call})\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, env=ENV,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.decode().startswith("apitx ")
    count = int(done.stderr.decode().split("frozen ")[-1].split()[0])
    assert (count > 10000) if frozen else (count == 0), count


def test_the_command_imports_only_public_names():
    """What lint-imports cannot see: a name imported from `apitx` itself must be in
    its __all__ (a private one, `from .. import _x`, would pass the contract)."""
    import ast
    import glob

    private = []
    for path in glob.glob(os.path.join(ROOT, "apitx", "cli", "*.py")):
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:  # from .. import X
                private += [(path, alias.name) for alias in node.names
                            if node.module or alias.name not in apitx.__all__]
    assert private == []


def test_python_dash_m_apitx_runs_the_command():
    done = command("--version")
    assert done.returncode == 0 and done.stdout == f"apitx {apitx.__version__}\n".encode()


@live
def test_closed_stdout_exits_141_quietly(lxd_socket):
    process = subprocess.Popen([sys.executable, "-m", "apitx", "-e", lxd_socket, ""],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    process.stdout.close()  # as `| head` does, before the answer is written
    _, err = process.communicate(timeout=60)
    assert process.returncode == 141
    assert err == b""


# -- faults the CLI must report, not crash on -----------------------------------------

def test_a_broken_download_exits_3_with_one_line_and_keeps_the_old_file(hostile, tmp_path):
    kept = tmp_path / "pulled.bin"
    kept.write_bytes(b"previous copy")
    done = command("-e", hostile.server_address, "-o", str(kept), "/truncated-binary")
    assert done.returncode == 3
    err = done.stderr.decode()
    assert err.startswith(f"apitx: GET unix:{hostile.server_address} /truncated-binary: ")
    assert "broke mid-answer" in err and "Traceback" not in err and err.count("\n") == 1
    assert kept.read_bytes() == b"previous copy"
    assert [p.name for p in tmp_path.iterdir()] == ["pulled.bin"]  # no temporary left


@live
def test_a_failed_pull_leaves_the_output_file_alone(lxd_socket, tmp_path):
    kept = tmp_path / "precious.txt"
    kept.write_bytes(b"precious\n")
    done = command("-e", lxd_socket, "-o", str(kept), "instances/apitx-nope/files",
                   "-p", "path=/etc/hostname")
    assert done.returncode == 1 and b"Instance not found" in done.stderr
    assert kept.read_bytes() == b"precious\n"


def test_a_successful_pull_replaces_the_output_file(hostile, tmp_path):
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    assert command("-e", hostile.server_address, "-o", str(target), "").returncode == 0
    assert json.loads(target.read_bytes()) == {"api_version": "1.0"}
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # as open() creates, not mkstemp


def test_a_header_that_cannot_be_sent_is_a_usage_error(hostile):
    done = command("-e", hostile.server_address, "-H", "X-Auth-Token: abc\ndef", "")
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "header X-Auth-Token cannot be sent" in err and "abc" not in err
    assert hostile.log == []


# -- issue 12: faults of the machine and of the input, one line each -----------------

def test_output_to_a_full_device_is_one_line_and_exit_5(hostile, tmp_path):
    full = _full_device(tmp_path)
    done = command("-e", hostile.server_address, "-o", full, "")
    assert done.returncode == 5 and done.stdout == b""
    assert done.stderr.decode() == f"apitx: -o {full}: No space left on device\n"
    assert stat.S_ISCHR(os.stat(full).st_mode)  # written into, as cp does: never replaced


@pytest.mark.parametrize("args", [["--compact", ""], [""]])
def test_stdout_on_a_full_disk_is_one_line_and_exit_5(hostile, tmp_path, args):
    with open(_full_device(tmp_path), "wb") as full:
        done = subprocess.run([sys.executable, "-m", "apitx", "-e", hostile.server_address,
                               *args], stdout=full, stderr=subprocess.PIPE, env=ENV, timeout=60)
    assert done.returncode == 5
    assert done.stderr.decode() == "apitx: stdout: No space left on device\n"


def test_a_write_that_fails_midway_never_replaces_the_output_file(hostile, tmp_path):
    hostile.answers["/big"] = (200, {"Content-Type": "application/json"},
                               json.dumps({"type": "sync", "metadata": ["x" * 100] * 1000})
                               .encode())
    kept = tmp_path / "kept.json"
    kept.write_bytes(b"previous copy")
    done = command("-e", hostile.server_address, "-o", str(kept), "/big",
                   preexec_fn=_file_size_limit(50_000))
    assert done.returncode == 5
    assert done.stderr.decode() == f"apitx: -o {kept}: File too large\n"
    assert kept.read_bytes() == b"previous copy"
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]  # no temporary left


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_help_that_cannot_be_written_is_one_line_and_exit_5(tmp_path, unbuffered):
    # Buffered, --help fails at the last flush; unbuffered, the first write
    # takes 100 bytes and the next one fails.
    env = {**ENV, "PYTHONUNBUFFERED": unbuffered}
    with open(tmp_path / "help.txt", "wb") as small:
        done = subprocess.run([sys.executable, "-m", "apitx", "--help"], stdout=small,
                              stderr=subprocess.PIPE, env=env, timeout=60,
                              preexec_fn=_file_size_limit(100))
    assert done.returncode == 5
    assert done.stderr.decode() == "apitx: stdout: File too large\n"


def test_closed_stderr_keeps_the_exit_code(hostile):
    done = command("-e", hostile.server_address, "--compact", "", preexec_fn=_closing(2))
    assert (done.returncode, done.stdout) == (0, b'{"api_version":"1.0"}\n')
    done = command("-e", NOWHERE_SOCKET, "", preexec_fn=_closing(2))
    assert (done.returncode, done.stdout) == (3, b"")


def test_stderr_on_a_full_disk_keeps_the_exit_code(tmp_path):
    with open(_full_device(tmp_path), "wb") as full:
        done = subprocess.run([sys.executable, "-m", "apitx", "-e", NOWHERE_SOCKET, ""],
                              stdout=subprocess.PIPE, stderr=full, env=ENV, timeout=60)
    assert (done.returncode, done.stdout) == (3, b"")


def test_closed_stdout_refuses_before_sending(hostile, tmp_path):
    done = command("-e", hostile.server_address, "-X", "POST", "-d", "{}", "/echo",
                   preexec_fn=_closing(1))
    assert done.returncode == 2
    assert done.stderr.decode() == ("apitx: stdout is closed: the result would be lost, so "
                                    "nothing was sent; redirect it (>/dev/null) or use -o FILE\n")
    assert hostile.log == []
    target = tmp_path / "out.json"  # -o needs no stdout
    done = command("-e", hostile.server_address, "--compact", "-o", str(target), "",
                   preexec_fn=_closing(1))
    assert (done.returncode, done.stderr) == (0, b"")
    assert target.read_bytes() == b'{"api_version":"1.0"}\n'


def test_closed_stdin_for_data_from_stdin_is_a_usage_error(hostile):
    done = command("-e", hostile.server_address, "-X", "POST", "-d", "@-", "/echo",
                   preexec_fn=_closing(0))
    assert done.returncode == 2
    assert done.stderr.decode() == ("apitx: -d @-: stdin is closed: pipe the JSON in, or give "
                                    "it as -d TEXT or -d @FILE; nothing was sent\n")
    assert hostile.log == []


@pytest.mark.parametrize("args, message", [
    (["-H", "X-Name: é"], "-H: header X-Name cannot be sent: its value has a character that "
                          "is not printable ASCII (at position 1)"),
    (["-H", "X-Name: 漢字"], "-H: header X-Name cannot be sent: its value has a character "
                            "that is not printable ASCII (at position 1)"),
    (["-H", "X-Token: ab\rcd"], "-H: header X-Token cannot be sent: its value has a character "
                                "that is not printable ASCII (at position 3)"),
    # Names and methods: the library's rule and words (a RequestError before sending).
    (["-H", "X-Nämé: a"], f"GET unix:{NOWHERE_SOCKET} /1.0/instances: header (name not shown) "
                          "has a name that is not an HTTP token (letters, digits and "
                          "!#$%&'*+.^_`|~-); nothing was sent"),
    (["-H", "X-(a): b"], f"GET unix:{NOWHERE_SOCKET} /1.0/instances: header (name not shown) "
                         "has a name that is not an HTTP token (letters, digits and "
                         "!#$%&'*+.^_`|~-); nothing was sent"),
    (["-X", "GÉT"], "method 'GÉT' is not an HTTP method (GET, POST, PUT, PATCH, DELETE, "
                    "HEAD...); nothing was sent"),
    (["-X", "POST", "-d", '{"size": NaN}'],
     "-d: invalid JSON: NaN is not JSON (JSON has no NaN or Infinity); nothing was sent"),
    (["-X", "POST", "-d", '[Infinity]'],
     "-d: invalid JSON: Infinity is not JSON (JSON has no NaN or Infinity); nothing was sent"),
    (["-X", "POST", "-d", '{"a": {"b": -Infinity}}'],
     "-d: invalid JSON: -Infinity is not JSON (JSON has no NaN or Infinity); nothing was sent"),
    (["-X", "POST", "-d", '{"config": {"a": "1"}, "config": {"b": "2"}}'],
     "-d: key 'config' appears twice in one object (LXD would keep only the last); "
     "nothing was sent"),
    (["-X", "POST", "-d", "[" * 100_000 + "]" * 100_000],
     "-d: the JSON is nested too deeply to check; nothing was sent"),
])
def test_bad_input_found_by_issue_12_exits_2_before_sending(capsysbinary, args, message):
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, *args, "instances")
    assert outcome.code == 2
    assert one_line_error(outcome) == f"apitx: {message}"


@pytest.mark.parametrize("args, message", [
    (["-X", "POST", "-d", '{"a": "\udcff"}', "instances"],
     "-d: not UTF-8 text (at character 8); nothing was sent"),
    (["-p", "name=\udcff", "instances"], "-p: not UTF-8 text (at character 1); nothing was sent"),
    (["--project", "p\udcff", "instances"],
     "--project: not UTF-8 text (at character 2); nothing was sent"),
    (["instances/\udcff"], "PATH: not UTF-8 text (at character 11); nothing was sent"),
])
def test_arguments_that_are_not_utf8_exit_2_before_sending(args, message):
    """A shell passes any bytes; Python keeps those that are not UTF-8 as surrogates."""
    done = command("-e", NOWHERE_SOCKET, *[os.fsencode(arg) for arg in args])
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.decode() == f"apitx: {message}\n"


def test_data_from_stdin_that_is_not_utf8_exits_2():
    done = command("-e", NOWHERE_SOCKET, "-X", "POST", "-d", "@-", "instances",
                   input=b'{"a": "\xff"}')
    assert done.returncode == 2
    # Strict, or kept as a surrogate (the C locale): refused either way.
    assert done.stderr.startswith(b"apitx: -d @-: not UTF-8 text (")
    assert done.stderr.count(b"\n") == 1


def test_a_header_value_that_is_plain_ascii_still_reaches_the_server(hostile):
    done = command("-e", hostile.server_address, "-H", "X-Name: a b\tc!~", "")
    assert done.returncode == 0, done.stderr
    assert hostile.log[0][2]["x-name"] == "a b\tc!~"


def _deep_answer(metadata: str) -> tuple:
    return (200, {"Content-Type": "application/json"},
            ('{"type": "sync", "status_code": 200, "error": "", "metadata": ' + metadata +
             "}").encode())


@pytest.mark.parametrize("args", [[], ["--compact"]])
def test_an_answer_too_deep_to_indent_prints_on_one_line(hostile, args):
    levels = 5000  # parses (apitx reads 20,000 levels), but json.dumps recurses per level
    lists = "[" * levels + '"core"' + "]" * levels
    objects = '{"k": ' * levels + '{"status_code": 200, "err": ""}' + "}" * levels
    hostile.answers["/deep-lists"] = _deep_answer(lists)
    hostile.answers["/deep-objects"] = _deep_answer(objects)
    done = command("-e", hostile.server_address, *args, "/deep-lists")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == lists.replace(" ", "") + "\n"
    done = command("-e", hostile.server_address, *args, "/deep-objects")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == objects.replace(" ", "") + "\n"


def test_an_answer_too_deep_to_read_fails_in_one_line(hostile):
    # Beyond what apitx parses: whatever it says (an error deep inside?)
    # cannot be known, so it cannot pass as a success (exit 1, not 0).
    levels = 100_000
    hostile.answers["/deeper"] = _deep_answer("[" * levels + "]" * levels)
    done = command("-e", hostile.server_address, "/deeper")
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.count(b"\n") == 1 and b"nested deeper than apitx reads" in done.stderr


@pytest.mark.parametrize("env, args", [
    ({"APITX_DEBUG_MAX_BODY": "lots"}, []),
    ({"APITX_DEBUG_MAX_BODY": "lots"}, ["-v"]),
    ({"APITX_DEBUG": "xml"}, ["-v"]),
    ({"APITX_DEBUG": "xml", "DEBUG": "1"}, []),
])
def test_a_bad_debug_setting_is_one_line_and_exit_2(capsysbinary, monkeypatch, env, args):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, *args, "")
    assert outcome.code == 2
    name = "APITX_DEBUG_MAX_BODY" if "APITX_DEBUG_MAX_BODY" in env else "APITX_DEBUG"
    assert one_line_error(outcome).startswith(f"apitx: {name}={env[name]!r}")


def test_output_keeps_an_existing_files_mode_and_owner(hostile, tmp_path):
    target = tmp_path / "secret.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    owner = owned_by_another(target)  # root replaces others' files: they must stay theirs
    done = command("-e", hostile.server_address, "--compact", "-o", str(target), "")
    assert (done.returncode, done.stderr) == (0, b"")
    assert target.read_bytes() == b'{"api_version":"1.0"}\n'
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == owner


def test_output_writes_through_a_symlink_as_cp_does(hostile, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "real" / "out.json"
    real.write_bytes(b"old")
    link = tmp_path / "links" / "out.json"
    link.symlink_to("../real/out.json")
    dangling = tmp_path / "links" / "new.json"
    dangling.symlink_to("../real/new.json")
    for path in (link, dangling):
        done = command("-e", hostile.server_address, "--compact", "-o", str(path), "")
        assert (done.returncode, done.stderr) == (0, b"")
    for path, target in ((link, "../real/out.json"), (dangling, "../real/new.json")):
        assert path.is_symlink() and os.readlink(path) == target
        assert path.read_bytes() == b'{"api_version":"1.0"}\n'
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["new.json", "out.json"]


def test_a_symlink_loop_as_output_is_a_usage_error(hostile, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    done = command("-e", hostile.server_address, "-o", str(loop), "")
    assert done.returncode == 2
    assert done.stderr.decode() == f"apitx: -o {loop}: Too many levels of symbolic links\n"
    assert loop.is_symlink() and hostile.log == []


def test_an_unexpected_exception_is_one_line_and_exit_70(capsysbinary, monkeypatch):
    def broken(args):
        raise ZeroDivisionError("division by zero")
    monkeypatch.setattr("apitx.cli._request.run", broken)
    outcome = in_process(capsysbinary, "-e", NOWHERE_SOCKET, "")
    assert outcome.code == 70
    assert one_line_error(outcome) == ("apitx: internal error: ZeroDivisionError: division by "
                                       "zero (run with -v for the traceback)")
    outcome = in_process(capsysbinary, "-v", "-e", NOWHERE_SOCKET, "")
    assert outcome.code == 70
    err = outcome.err.decode()
    assert "Traceback (most recent call last)" in err and "in broken" in err
    assert err.splitlines()[-1] == "apitx: internal error: ZeroDivisionError: division by zero"


def test_ctrl_c_while_reading_the_body_exits_130_in_one_line(hostile):
    process = _popen("-e", hostile.server_address, "-X", "POST", "-d", "@-", "/echo")
    code, out, err = _interrupt(process, 0, 0)  # read(0, ...): waiting for stdin
    assert (code, out, err) == (130, b"", b"apitx: interrupted\n")
    assert hostile.log == []


def test_ctrl_c_while_printing_exits_130_in_one_line(hostile):
    hostile.answers["/big"] = (200, {"Content-Type": "application/json"},
                               json.dumps({"type": "sync", "metadata": ["x" * 100] * 10_000})
                               .encode())
    process = _popen("-e", hostile.server_address, "/big")
    code, _, err = _interrupt(process, 1, 1)  # write(1, ...): the pipe is full
    assert (code, err) == (130, b"apitx: interrupted\n")


# -- --max-time: the whole request's deadline (issue 12) -----------------------------

def test_max_time_ends_a_dribbling_answer_with_exit_4(hostile):
    # The server sends a byte every 0.1 s: no read ever times out, and the
    # answer would take 30 s and succeed; before, nothing ended it.
    done = command("-e", hostile.server_address, "--max-time", "2", "/dribble")
    assert done.returncode == 4 and b"total deadline" in done.stderr


def test_remote_is_a_subcommand(capsysbinary, monkeypatch, tmp_path):
    # An empty home and no config variables: `local` is there all the same, as in lxc.
    monkeypatch.setenv("APITX_CONF", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("LXD_CONF", "INCUS_CONF"):
        monkeypatch.delenv(name, raising=False)
    assert main(["remote", "list", "--format", "json"]) == 0
    listed = json.loads(capsysbinary.readouterr().out)
    assert [(r["name"], r["addr"], r["config"]) for r in listed] == [("local", "unix://", None)]


@live
def test_a_family_word_finds_that_server(server):
    """-e lxd / -e incus: discovery kept to that family (the library's rule)."""
    done = command("-e", server.name, "--compact", "")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["environment"]["server"] == server.name


def test_project_and_target_reach_every_query(hostile):
    done = command("-e", hostile.server_address, "--project", "web", "--target", "m2",
                   "-p", "recursion=1", "--wait", "/async/op-ok")
    assert done.returncode == 0, done.stderr
    assert [entry[1] for entry in hostile.log] == [
        "/async/op-ok?recursion=1&project=web&target=m2",
        "/1.0/operations/op-ok/wait?timeout=30&project=web&target=m2"]


@pytest.mark.parametrize("word", ["exec", "events", "remote"])
def test_subcommands_are_dispatched_from_the_apitx_command(capsys, word):
    code = main([word, "--help"])
    assert code == 0 and f"apitx {word}" in capsys.readouterr().out
    assert f"apitx {word}" in build_help()


def build_help() -> str:
    from apitx.cli._request import build_parser
    return build_parser().format_help()
