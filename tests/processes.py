"""The ``apitx`` command as a real process, and the faults a shell or the
machine can give it: closed descriptors, a full device, a size limit, Ctrl-C
while it is blocked in a given system call.

Shared by the command's test modules (tests/test_cli*.py), which run it as
people do: ``python -m apitx ...`` with this checkout first on the path.
"""

from __future__ import annotations

import os
import pty
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
ENV.pop("DEBUG", None)


def command(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python -m apitx ARGS`` as a real subprocess."""
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("env", ENV)
    return subprocess.run([sys.executable, "-m", "apitx", *args], capture_output=True,
                          **kwargs)


def popen(*args: str, **kwargs) -> subprocess.Popen:
    """``python -m apitx ARGS`` started with pipes, to be sent SIGINT."""
    # SIG_DFL in the child: a runner started in the background by a shell
    # without job control ignores SIGINT, and the child would inherit that.
    kwargs.setdefault("env", ENV)
    return subprocess.Popen([sys.executable, "-m", "apitx", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kwargs)


def full_device(tmp_path) -> str:
    """A device that answers every write with ENOSPC, as /dev/full does.

    As root, a private node: an ``-o`` that replaces its target (as apitx once
    did) must not replace the machine's /dev/full. A user cannot replace
    /dev/full (nor make a node), so uses it.
    """
    if os.geteuid() != 0:
        return "/dev/full"
    node = tmp_path / "full"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    return str(node)


def closing(*fds: int) -> Callable[[], None]:
    """A preexec_fn that closes the child's ``fds``, as a shell's ``>&-`` does."""
    def close() -> None:
        for fd in fds:
            os.close(fd)
    return close


def file_size_limit(size: int) -> Callable[[], None]:
    """A preexec_fn: files may not grow past ``size`` bytes (EFBIG), as on a full disk."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death
    return limit


def blocked_in(pid: int, syscall: int, fd: int) -> None:
    """Wait until process ``pid`` is blocked in ``syscall`` (Linux numbering) on ``fd``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/syscall") as status:
            fields = status.read().split()
        if fields[:2] == [str(syscall), hex(fd)]:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never blocked in syscall {syscall} on fd {fd}")


@contextmanager
def reaped(process: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``process``, killed at the end of the block if it still runs (a test
    that failed midway leaves no process behind)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def interrupt(process: subprocess.Popen, syscall: int, fd: int) -> tuple:
    """Ctrl-C ``process`` once it is blocked in ``syscall`` on ``fd``; its
    (exit code, stdout, stderr)."""
    with reaped(process):
        blocked_in(process.pid, syscall, fd)
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def owned_by_another(path) -> Tuple[int, int]:
    """Give ``path`` to nobody when this is root (whose writes must keep a
    file's owner); the (uid, gid) it has then."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    os.chown(path, 65534, 65534)
    return 65534, 65534


def on_a_terminal(*args: str, stream: str = "stdout", **kwargs) -> Tuple[int, bytes, bytes]:
    """``python -m apitx ARGS`` with its ``stream`` (``'stdout'`` or
    ``'stderr'``) on a new pseudo-terminal, as a person's shell gives it;
    (exit code, what the terminal showed, what the other stream wrote).

    The terminal is read while the command runs (a long one would block on
    a full terminal otherwise), until its last writer is gone.
    """
    kwargs.setdefault("env", ENV)
    controller, terminal = pty.openpty()
    other = "stderr" if stream == "stdout" else "stdout"
    with tempfile.TemporaryFile() as rest:
        try:
            with reaped(subprocess.Popen([sys.executable, "-m", "apitx", *args],
                                         stdin=subprocess.DEVNULL,
                                         **{stream: terminal, other: rest}, **kwargs)) as child:
                os.close(terminal)
                terminal = -1
                shown = drain(controller)
                code = child.wait(60)
        finally:
            os.close(controller)
            if terminal >= 0:
                os.close(terminal)
        rest.seek(0)
        return code, shown, rest.read()


def drain(fd: int) -> bytes:
    """Everything a pseudo-terminal's controller reads until its other side is closed."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other end is closed
            return data
        if not chunk:
            return data
        data += chunk
