"""`apitx exec` as a process: exit status, stdin, live output, its own failures (255)."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from hang import returns_within
from processes import ROOT, closing, command, full_device
from sandbox import NOWHERE_SOCKET

live = pytest.mark.live


def apitx_exec(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "apitx", "exec", *argv], cwd=ROOT,
                          capture_output=True, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def name(live) -> str:
    return live.instance("lxd")


@live
def test_status_streams_and_stdin_pass_through(name):
    done = apitx_exec(name, "--", "sh", "-c", "cat; echo err >&2; exit 7", input=b"in\n",
                      stdin=None)
    assert (done.returncode, done.stdout, done.stderr) == (7, b"in\n", b"err\n")


@live
def test_env_cwd_user(name):
    done = apitx_exec("--env", "A=b c", "--cwd", "/tmp", "--user", "42", name, "--",
                      "sh", "-c", "echo $A; pwd; id -u")
    assert (done.returncode, done.stdout) == (0, b"b c\n/tmp\n42\n")


@live
def test_output_is_live(name):
    """The command's first line arrives while it still runs: it ends only
    once the test, having read that line, writes to its stdin."""
    with subprocess.Popen([sys.executable, "-m", "apitx", "exec", name, "--", "sh", "-c",
                           "echo first; read go; echo second $go"], cwd=ROOT,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        try:
            first = returns_within(60, proc.stdout.readline, "reading the first line")
        finally:
            proc.stdin.write(b"now\n")
            proc.stdin.close()
        assert first == b"first\n"
        assert proc.stdout.read() == b"second now\n"
    assert proc.returncode == 0


@live
def test_own_failures_exit_255_with_one_line(name):
    missing = apitx_exec("apitx-no-such-instance", "--", "true")
    assert missing.returncode == 255
    assert missing.stderr.decode().splitlines() == [
        "apitx: POST unix:/var/lib/lxd/unix.socket /1.0/instances/apitx-no-such-instance/exec:"
        " Instance not found"]
    slow = apitx_exec("--timeout", "0.5", name, "--", "sleep", "5")
    assert slow.returncode == 255 and b"was killed" in slow.stderr
    assert apitx_exec(name).returncode == 255  # no command
    assert apitx_exec("--env", "novalue", name, "--", "true").returncode == 255


@live
def test_missing_command_is_127_like_a_shell(name):
    assert apitx_exec(name, "--", "/bin/no-such-command").returncode == 127


@live
def test_closed_stdout_kills_the_command_and_exits_141(name):
    pipeline = subprocess.run(
        f"{sys.executable} -m apitx exec {name} -- sh -c 'while true; do echo y; done' "
        "</dev/null | head -2; echo status=${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
        cwd=ROOT, capture_output=True, timeout=60)
    assert pipeline.stdout == b"y\ny\nstatus=141\n"


def _read_until(fd: int, needle: bytes, seen: bytearray) -> None:
    deadline = time.monotonic() + 20
    while needle not in seen:
        assert time.monotonic() < deadline, f"never saw {needle!r} in {bytes(seen)!r}"
        try:
            seen += os.read(fd, 4096)
        except OSError:  # the other end closed: everything is read
            break


@live
def test_tty_mode_in_a_real_terminal_follows_its_size(name):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "apitx", "exec", "-t", name, "--", "sh",
                             "-c", "tty; stty size; echo ready; "
                             "while [ \"$(stty size)\" = '33 99' ]; do sleep 0.05; done; "
                             # The pause before exiting: once (1 run in 12) the output
                             # after the input was lost, as if LXD stopped copying the
                             # terminal when the command exited (suspected race, LXD 5.0.2).
                             "stty size; read x; echo got $x; sleep 0.2; exit 6"], cwd=ROOT,
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    seen = bytearray()
    try:
        _read_until(master, b"ready\r\n", seen)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        proc.send_signal(signal.SIGWINCH)  # as the kernel does for a controlling terminal
        _read_until(master, b"50 120\r\n", seen)
        os.write(master, b"go\r")
        _read_until(master, b"got go", seen)
        _read_until(master, b"\xff", seen)  # until the end
    finally:
        assert proc.wait(30) == 6
        os.close(master)
    lines = [line for line in bytes(seen).decode().split("\r\n") if line]
    assert lines[0].startswith("/dev/pts/")
    assert lines[1:] == ["33 99", "ready", "50 120", "go", "got go"]


# -- apitx's own failures are 255, never a traceback or the command's code (issue 16) ----

@live
def test_a_stdout_that_cannot_be_written_exits_255_in_one_line(name, tmp_path):
    with open(full_device(tmp_path), "wb") as full:
        done = subprocess.run([sys.executable, "-m", "apitx", "exec", name, "--", "echo", "hi"],
                              stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                              cwd=ROOT, timeout=60)
    assert (done.returncode, done.stderr) == (255, b"apitx: stdout: No space left on device\n")


@live
def test_a_stderr_that_cannot_be_written_exits_255(name, tmp_path):
    with open(full_device(tmp_path), "wb") as full:
        done = subprocess.run([sys.executable, "-m", "apitx", "exec", name, "--", "sh", "-c",
                               "echo out; echo err >&2"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=full, cwd=ROOT, timeout=60)
    assert done.returncode == 255  # its line could not be written either: the code tells


def test_a_closed_stdout_exits_255_before_anything_runs():
    done = command("exec", "-e", NOWHERE_SOCKET, "c1", "--", "true", preexec_fn=closing(1))
    assert (done.returncode, done.stderr) == (
        255, b"apitx: stdout is closed: the command's output would be lost, so nothing was "
             b"sent; redirect it (>/dev/null)\n")


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "-1", "0", "soon"])
def test_a_timeout_that_is_no_number_of_seconds_exits_255_at_parse_time(value):
    done = command("exec", "-e", NOWHERE_SOCKET, "--timeout", value, "c1", "--", "true",
                   stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (255, b"")
    assert f"apitx exec: error: argument --timeout: {value!r} is not a number of seconds > 0" \
        in done.stderr.decode()


@pytest.mark.parametrize("args, message", [
    (["c1", "--", "echo", b"caf\xe9"], "COMMAND: not UTF-8 text (at character 4)"),
    (["--env", b"A=\xff", "c1", "--", "true"], "--env: not UTF-8 text (at character 3)"),
    (["--cwd", b"/tmp/\xff", "c1", "--", "true"], "--cwd: not UTF-8 text (at character 6)"),
    ([b"c\xff", "--", "true"], "INSTANCE: not UTF-8 text (at character 2)"),
])
def test_arguments_that_are_not_utf8_exit_255_before_anything_is_sent(args, message):
    """Before, Python's surrogates reached the server as U+FFFD: another command."""
    done = command("exec", "-e", NOWHERE_SOCKET, *args, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (255, b"")
    assert done.stderr.decode() == f"apitx: {message}; nothing was sent\n"


def test_help_documents_the_exit_status():
    done = command("exec", "--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    for line in ("the command's own, as it exited", "255  apitx itself failed",
                 "130  interrupted (Ctrl-C): the command was killed", "141  stdout was closed"):
        assert line in text


@live
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_kill_the_command_and_all_it_started(name, live, signum):
    """apitx exec killed by SIGTERM or SIGHUP (a service manager stopping it,
    a closed terminal) kills the command and what it started, as Ctrl-C
    does, and exits 128 + the signal's number."""
    seconds = 3000 + int.from_bytes(os.urandom(2), "big") % 1000  # this test's own sleep
    with subprocess.Popen([sys.executable, "-m", "apitx", "exec", name, "--", "sh", "-c",
                           f"sleep {seconds} & echo started; wait"], cwd=ROOT,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert returns_within(60, proc.stdout.readline, "the command starting") == b"started\n"
        proc.send_signal(signum)
        returns_within(60, proc.wait, "apitx exec ending on the signal")
        err = proc.stderr.read()
    assert proc.returncode == 128 + signum, err
    assert f"{signal.Signals(signum).name}: the command was killed".encode() in err
    left = live.api("lxd").exec(name, ["sh", "-c", f"ps -o args | grep -c '[s]leep {seconds}'"
                                       " || true"]).stdout
    assert left.strip() == b"0", left
