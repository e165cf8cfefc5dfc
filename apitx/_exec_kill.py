"""Killing an exec's command *and everything it started*, and the signals that ask for it.

LXD's control websocket signals one process: the command itself
(``{"command": "signal", "signal": 9}`` is ``kill(pid, 9)``, measured on LXD
5.0.2 and Incus 6.0.4). What the command started lives on:
``sh -c 'sleep 100 & wait'`` killed that way leaves ``sleep`` running in the
instance, and holding the output pipes open, so the exec does not even end.
A process group does not help: measured on both servers, a command run
without a terminal sits in a process group and session made outside the
instance's PID namespace (``pgid`` and ``sid`` read 0 inside), shared with
every other exec, so ``kill -- -PGID`` has nothing to aim at. (In a
terminal the command leads its own session, and its children die with it
of SIGHUP; not those that left the session.)

So each exec carries a mark in its environment, :data:`MARKER` set to a
random token, which every process it starts inherits. To kill, apitx sends
SIGKILL over the control websocket (at once, whatever follows) and then runs
a second, websocket-less exec of :data:`KILL_SCRIPT`: it stops and kills
every process whose ``/proc/<pid>/environ`` holds the mark, again until
none is left (a process forking meanwhile is caught on the next round).
That needs ``sh``, ``tr``, ``grep`` and ``kill`` in the instance (busybox
has them); a process that cleared its environment escapes it.

:func:`raising_on` turns SIGTERM and SIGHUP into :class:`Signalled` in the
main thread, so a command line tool that is terminated or hung up kills
its command the way Ctrl-C does.

Example::

    left = kill_marked(api, 'c1', token, project=None)   # None: nothing left
    with raising_on(signal.SIGTERM, signal.SIGHUP):
        run_exec(api, 'c1', ['sh', '-c', 'sleep 100 & wait'])
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional
from urllib.parse import quote

from ._client import Client
from ._exceptions import APITXError, RequestError

#: The environment variable that marks every process an exec starts.
MARKER = "APITX_EXEC_ID"

#: ``sh -c KILL_SCRIPT sh MARK``: SIGSTOP then SIGKILL every process whose
#: environment holds the mark (STOP first: a stopped process cannot fork),
#: round after round until none is left; exit 0 then, 1 if some survive ten
#: rounds. ``tr``: busybox ``grep`` stops a line at its first NUL byte, and
#: /proc/<pid>/environ is NUL-separated. The mark is this script's argument,
#: never in its own environment, so it does not kill itself.
KILL_SCRIPT = r"""
round=0
while [ $round -lt 10 ]; do
    left=
    for env in /proc/[0-9]*/environ; do
        if tr '\0' '\n' <"$env" 2>/dev/null | grep -qxF "$1"; then
            pid=${env#/proc/}
            left="$left ${pid%/environ}"
        fi
    done
    [ -z "$left" ] && exit 0
    kill -STOP $left 2>/dev/null
    kill -KILL $left 2>/dev/null
    round=$((round + 1))
done
exit 1
"""


def new_mark() -> str:
    """A fresh token for :data:`MARKER`.

    >>> len(new_mark())
    32
    """
    return os.urandom(16).hex()


def kill_marked(api: Client, instance: str, mark: str, *, project: Optional[str],
                timeout: float) -> Optional[str]:
    """Kill every process in ``instance`` that carries ``mark``; None when
    none is left, else why some may be (for a message).

    >>> kill_marked(api, 'c1', 'ab12…', project=None, timeout=5.0)
    """
    try:
        started = api.request("POST", f"instances/{quote(instance, safe='')}/exec", json={
            "command": ["sh", "-c", KILL_SCRIPT, "sh", f"{MARKER}={mark}"],
            "environment": {}, "wait-for-websocket": False, "record-output": False,
            "interactive": False}, params={"project": project} if project else None)
        code = return_code(started.wait(timeout=timeout).metadata)
    except APITXError as exc:
        return f"killing what it started failed: {exc}"
    if code == 0:
        return None
    return (f"killing what it started failed: sh -c KILL_SCRIPT exited with {code}"
            + (" (no sh in the instance)" if code == 127 else ""))


def return_code(operation: Any) -> Optional[int]:
    """An exec operation's exit code (``metadata.return``), or None.

    >>> return_code({'metadata': {'return': 3}})
    3
    """
    meta = operation.get("metadata") if isinstance(operation, dict) else None
    code = meta.get("return") if isinstance(meta, dict) else None
    return code if isinstance(code, int) else None


class Signalled(KeyboardInterrupt):
    """A signal :func:`raising_on` was asked to turn into an interruption.

    A ``KeyboardInterrupt``, so that it unwinds as Ctrl-C does (exec kills
    its command and all it started, then re-raises) and ``except Exception``
    does not swallow it; ``signum`` says which signal (exit ``128 + signum``).
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"{signal.Signals(signum).name} received")


@contextmanager
def raising_on(*signums: int) -> Iterator[None]:
    """While inside, each of ``signums`` raises :class:`Signalled` in the main
    thread; the previous handlers are restored on the way out.

    >>> with raising_on(signal.SIGTERM, signal.SIGHUP):
    ...     run_exec(api, 'c1', ['sh', '-c', 'sleep 100 & wait'])
    """
    if threading.current_thread() is not threading.main_thread():
        raise RequestError("raising_on(): only the main thread receives signals; call it "
                           "there")

    def interrupt(signum: int, frame: Any) -> None:
        raise Signalled(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
