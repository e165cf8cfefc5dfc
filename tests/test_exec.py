"""run_exec() against real instances: streams byte-exact, exit codes, kills.

Every test runs once per target (LXD over its socket, LXD over HTTPS, Incus
when present): see tests/live.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import re

import pytest

import apitx
from apitx._exec import ExecResult, run_exec

from hang import returns_within

pytestmark = pytest.mark.live

MB50 = 50 * 1024 * 1024


def sha256_line(output: bytes) -> str:
    return output.split()[0].decode()


def no_process_left(api: apitx.API, instance: str, marker: str) -> bool:
    listing = run_exec(api, instance, ["ps", "-o", "args"]).stdout.decode()
    return marker not in listing


def test_50mb_of_stdout_byte_exact(target):
    api, instance = target
    made = run_exec(api, instance, ["sh", "-c", "dd if=/dev/urandom of=/tmp/out.bin bs=1M "
                                    "count=50 2>/dev/null && sha256sum /tmp/out.bin"]).check()
    try:
        result = run_exec(api, instance, ["cat", "/tmp/out.bin"]).check()
    finally:
        run_exec(api, instance, ["rm", "-f", "/tmp/out.bin"])
    assert len(result.stdout) == MB50
    assert hashlib.sha256(result.stdout).hexdigest() == sha256_line(made.stdout)


def test_50mb_of_stdin_byte_exact(target):
    api, instance = target
    data = os.urandom(MB50)
    result = run_exec(api, instance, ["sha256sum"], stdin=data).check()
    assert sha256_line(result.stdout) == hashlib.sha256(data).hexdigest()


def test_stdin_from_a_file_and_text(target, tmp_path):
    api, instance = target
    path = tmp_path / "in.bin"
    path.write_bytes(bytes(range(256)) * 5000)
    with open(path, "rb") as source:
        assert run_exec(api, instance, ["cat"], stdin=source).stdout == path.read_bytes()
    assert run_exec(api, instance, ["cat"], stdin="héllo\n").stdout == "héllo\n".encode()
    text_file = io.StringIO("é" * 300000)  # read as text, sent as UTF-8
    assert run_exec(api, instance, ["cat"], stdin=text_file).stdout == ("é" * 300000).encode()


def test_binary_both_ways(target):
    api, instance = target
    data = bytes(range(256)) * 1024 + b"\x00\xff\r\n\x1b"
    assert run_exec(api, instance, ["cat"], stdin=data).stdout == data


def test_interleaved_stdout_and_stderr_arrive_whole_and_in_order(target):
    """Over HTTPS, under load, LXD 5.0.2 closes a stream before all of it
    arrived (stderr, after stdout ended: 5 to 9 runs in 150 here; never over
    the socket, origin not pinned down). apitx must then raise, never return
    the output short; so each attempt is whole and in order or an
    APIConnectionError, and one of three must be whole."""
    api, instance = target
    for _ in range(3):
        try:
            result = run_exec(api, instance, ["sh", "-c", "i=0; while [ $i -lt 2000 ]; do "
                                              "echo out$i; echo err$i >&2; i=$((i+1)); done"])
        except apitx.APIConnectionError as exc:
            assert "dropped" in str(exc)
            continue
        assert result.stdout.decode().split() == [f"out{i}" for i in range(2000)]
        assert result.stderr.decode().split() == [f"err{i}" for i in range(2000)]
        return
    pytest.fail("three execs in a row lost output: the server cut every one short")


@pytest.mark.parametrize("command, code", [
    (["true"], 0),
    (["false"], 1),
    (["sh", "-c", "exit 3"], 3),
    (["/bin/no-such-command"], 127),  # LXD fails the operation; we report 127
    (["sh", "-c", "kill -9 $$"], 137),
])
def test_exit_codes(target, command, code):
    api, instance = target
    assert run_exec(api, instance, command).return_code == code


def test_a_command_that_closes_stdout_early(target):
    api, instance = target
    result = run_exec(api, instance, ["sh", "-c", "echo a; exec 1>&-; sleep 0.2; echo x >&2"])
    assert (result.return_code, result.stdout, result.stderr) == (0, b"a\n", b"x\n")


def test_timeout_kills_through_control_and_keeps_the_output(target):
    api, instance = target
    marker = f"sleep 3{os.getpid() % 1000}"
    with pytest.raises(apitx.ExecTimeout) as caught:
        # Not killed, the command would sleep for most of an hour.
        returns_within(60, lambda: run_exec(
            api, instance, ["sh", "-c", f"echo before; echo oops >&2; {marker}"], timeout=1),
            "run_exec(timeout=1) of a long sleep")
    assert (caught.value.stdout, caught.value.stderr) == (b"before\n", b"oops\n")
    assert isinstance(caught.value, apitx.OperationTimeout)
    assert "was killed" in str(caught.value)
    assert no_process_left(api, instance, marker)


def test_interrupt_kills_the_command_and_re_raises(target):
    api, instance = target
    marker = f"sleep 4{os.getpid() % 1000}"

    def interrupt(piece: bytes) -> None:
        raise KeyboardInterrupt  # as if Ctrl-C landed while output arrived

    with pytest.raises(KeyboardInterrupt):
        run_exec(api, instance, ["sh", "-c", f"echo go; {marker}"], stdout=interrupt)
    assert no_process_left(api, instance, marker)


def test_output_to_a_callable_and_a_file(target, tmp_path):
    api, instance = target
    pieces = []
    with open(tmp_path / "err", "wb") as err:
        result = run_exec(api, instance, ["sh", "-c", "head -c 3000000 /dev/zero; echo e >&2"],
                          stdout=pieces.append, stderr=err)
    assert (result.stdout, result.stderr) == (b"", b"")
    assert len(pieces) > 1 and sum(map(len, pieces)) == 3000000
    assert (tmp_path / "err").read_bytes() == b"e\n"


def test_env_cwd_user_group(target):
    api, instance = target
    result = run_exec(api, instance, ["sh", "-c", "echo $GREETING; pwd; id -u; id -g"],
                      env={"GREETING": "hi there"}, cwd="/tmp", user=1234, group=567)
    assert result.stdout.decode().split("\n") == ["hi there", "/tmp", "1234", "567", ""]


def test_check_raises_exec_error_with_the_end_of_stderr(target):
    api, instance = target
    result = run_exec(api, instance, ["sh", "-c", "echo first >&2; echo 'last words' >&2; "
                                      "exit 2"])
    with pytest.raises(apitx.ExecError, match=r"exited with 2: last words$") as caught:
        result.check()
    assert caught.value.return_code == 2 and caught.value.stderr == b"first\nlast words\n"
    assert run_exec(api, instance, ["true"]).check().return_code == 0


def test_missing_instance_is_not_found(target):
    api, _ = target
    with pytest.raises(apitx.APINotFoundException):
        run_exec(api, "apitx-no-such-instance", ["true"])


def test_api_exec_delegates(target):
    api, instance = target
    assert api.exec(instance, ["echo", "hi"]) == ExecResult(instance, ["echo", "hi"], 0,
                                                             b"hi\n", b"")


def test_bad_command_argument_is_refused_before_sending(target):
    api, instance = target
    with pytest.raises(TypeError, match=re.escape("give the argument list")):
        run_exec(api, instance, "echo hi")


def test_terminal_mode_one_stream_sized_and_resizable(target):
    api, instance = target
    result = run_exec(api, instance, ["sh", "-c", "read x; tty; stty size; "
                                      "echo got $x >&2; exit 4"],
                      terminal=(80, 24), stdin=b"abc\r",
                      on_start=lambda control: control.resize(100, 30))
    # The terminal echoes the input; stderr comes on the same stream; the
    # resize (sent before the input) is in place when `read` returns.
    lines = [line for line in result.stdout.decode().split("\r\n") if line]
    assert lines[0] == "abc" and lines[1].startswith("/dev/pts/")
    assert lines[2:] == ["30 100", "got abc"]
    assert (result.return_code, result.stderr) == (4, b"")


def test_terminal_mode_input_end_is_no_hangup(target):
    """Closing stream 0 would SIGHUP the command (129): the input just stops.

    The command lingers 0.2 s after its output: LXD 5.0.2 was seen, in about
    one run in a dozen, to drop a terminal's output written just before the
    command exits (its pty copier stops with the process; not confirmed)."""
    api, instance = target
    result = run_exec(api, instance, ["sh", "-c", "sleep 0.3; echo alive; sleep 0.2"],
                      terminal=(80, 24))
    assert (result.return_code, result.stdout) == (0, b"alive\r\n")


def test_signal_through_exec_control(target):
    api, instance = target
    controls: list = []
    pieces: list = []

    def on_output(piece: bytes) -> None:
        pieces.append(piece)
        if b"ready" in piece:
            controls[0].signal(15)  # SIGTERM, once the trap is set

    result = run_exec(api, instance, ["sh", "-c", "trap 'echo term; exit 5' TERM; "
                                      "echo ready; while true; do sleep 0.1; done"],
                      stdout=on_output, on_start=controls.append, timeout=30)
    assert (result.return_code, b"".join(pieces)) == (5, b"ready\nterm\n")
