"""`apitx exec` as a process: exit status, stdin, live output, its own failures (255)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from live import live  # noqa: F401  (fixture)

pytestmark = pytest.mark.live
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def apitx_exec(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "apitx._cli_exec", *argv], cwd=ROOT,
                          capture_output=True, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def name(live) -> str:
    return live.instance("lxd")


def test_status_streams_and_stdin_pass_through(name):
    done = apitx_exec(name, "--", "sh", "-c", "cat; echo err >&2; exit 7", input=b"in\n",
                      stdin=None)
    assert (done.returncode, done.stdout, done.stderr) == (7, b"in\n", b"err\n")


def test_env_cwd_user(name):
    done = apitx_exec("--env", "A=b c", "--cwd", "/tmp", "--user", "42", name, "--",
                      "sh", "-c", "echo $A; pwd; id -u")
    assert (done.returncode, done.stdout) == (0, b"b c\n/tmp\n42\n")


def test_output_is_live(name):
    with subprocess.Popen([sys.executable, "-m", "apitx._cli_exec", name, "--", "sh", "-c",
                           "echo first; sleep 3; echo second"], cwd=ROOT,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc:
        started = time.monotonic()
        assert proc.stdout.readline() == b"first\n"
        assert time.monotonic() - started < 2.5  # before the command ended
        assert proc.stdout.read() == b"second\n"
    assert proc.returncode == 0


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


def test_missing_command_is_127_like_a_shell(name):
    assert apitx_exec(name, "--", "/bin/no-such-command").returncode == 127


def test_closed_stdout_kills_the_command_and_exits_141(name):
    pipeline = subprocess.run(
        f"{sys.executable} -m apitx._cli_exec {name} -- sh -c 'while true; do echo y; done' "
        "</dev/null | head -2; echo status=${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
        cwd=ROOT, capture_output=True, timeout=60)
    assert pipeline.stdout == b"y\ny\nstatus=141\n"
