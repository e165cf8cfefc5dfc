"""`apitx events` as a process: JSON lines when piped, --count, --timeout, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from hostile_ws import running_ws_server
from processes import command
from sandbox import NOWHERE_SOCKET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def apitx_events(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "apitx", "events", *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.live
def test_count_prints_json_lines_of_real_events(live):
    api = live.api("lxd")
    name = live.instance("lxd")
    with apitx_events("--type", "operation", "--count", "2", "--timeout", "30") as proc:
        time.sleep(0.5)  # connected by then: the exec below is seen
        api.exec(name, ["true"])
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == 2 and all(line["type"] == "operation" for line in lines)
    assert set(lines[0]) == {"type", "timestamp", "location", "project", "metadata"}


def test_timeout_ends_the_watch_with_status_0():
    # The server stays silent and drops the stream after 10 s: that would
    # exit 3, so exit 0 is --timeout ending the watch (how soon:
    # bench/deadlines.py; communicate's timeout is a hang guard).
    with running_ws_server([], then_drop=False) as server:
        with apitx_events("-e", server.server_address, "--timeout", "0.5") as proc:
            out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (0, b"")


def test_a_dropped_stream_exits_3():
    with running_ws_server(['{"type": "logging", "metadata": {}}'], then_drop=True) as server:
        with apitx_events("-e", server.server_address) as proc:
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert json.loads(out)["type"] == "logging"
    assert b"events may have been missed" in err


@pytest.mark.live
def test_a_refused_stream_exits_1_with_the_servers_message(lxd_only_socket):
    with apitx_events("--project", "apitx-no-such-project") as proc:
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert err.decode().strip().endswith("Project not found")


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "argument --count: '0' is not a whole number >= 1"),
    (["--count", "-3"], "argument --count: '-3' is not a whole number >= 1"),
    (["--timeout", "nan"], "argument --timeout: 'nan' is not a number of seconds > 0"),
    (["--timeout", "-5"], "argument --timeout: '-5' is not a number of seconds > 0"),
    (["--timeout", "-1"], "argument --timeout: '-1' is not a number of seconds > 0"),
    (["--timeout", "inf"], "argument --timeout: 'inf' is not a number of seconds > 0"),
])
def test_a_count_or_timeout_that_is_no_watch_exits_2_before_connecting(args, message):
    """Before: --count 0 printed one event, a negative --timeout never ended, nan waited forever."""
    done = command("events", "-e", NOWHERE_SOCKET, *args)
    assert (done.returncode, done.stdout) == (2, b"")
    assert f"apitx events: error: {message}" in done.stderr.decode()


def test_help_lists_the_exit_codes():
    done = command("events", "--help")
    assert done.returncode == 0 and b"3    cannot connect to the server" in done.stdout
