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

So each exec carries a mark in its environment,
:data:`apitx._exec_plan.MARKER` set to a random token, which every process
it starts inherits. To kill, apitx sends SIGKILL over the control websocket
(at once, whatever follows) and then runs a second, websocket-less exec of
:data:`apitx._exec_plan.KILL_SCRIPT`: it stops and kills
every process whose ``/proc/<pid>/environ`` holds the mark, again until
none is left (a process forking meanwhile is caught on the next round).
That needs ``sh``, ``tr``, ``grep`` and ``kill`` in the instance (busybox
has them); a process that cleared its environment escapes it.

:func:`raising_on` turns SIGTERM and SIGHUP into :class:`Signalled` in the
main thread, so a command line tool that is terminated or hung up kills
its command the way Ctrl-C does.

How a terminated command line tool stops its command as Ctrl-C would:

>>> import os, signal
>>> from apitx import API, Signalled, raising_on
>>> api = API.factory()
>>> def terminated(control):           # as `kill <pid>` would, once the command runs
...     os.kill(os.getpid(), signal.SIGTERM)
>>> try:
...     with raising_on(signal.SIGTERM, signal.SIGHUP):
...         api.exec(c1, ['sh', '-c', 'sleep 61 & wait'], on_start=terminated)
... except Signalled as exc:
...     print(exc)
SIGTERM received
>>> api.exec(c1, ['sh', '-c', 'ps | grep -c "[s]leep 61"']).stdout   # the child is gone too
b'0\\n'
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from ._client import Client
from ._exceptions import APITXError, RequestError, Signalled
from ._exec_plan import ExecPlan, killed, return_code

def kill_marked(api: Client, plan: ExecPlan, *, project: Optional[str],
                timeout: float) -> Optional[str]:
    """Kill every process in the plan's instance that carries its mark; None
    when none is left, else why some may be (for a message).

    >>> from apitx import API
    >>> from apitx._exec_kill import kill_marked
    >>> from apitx._exec_plan import ExecPlan
    >>> plan = ExecPlan.make(c1, ['sleep', '60'], env=None, cwd=None, user=None, group=None,
    ...                      timeout=None, terminal=None)
    >>> kill_marked(API.factory(), plan, project=None, timeout=10)   # None: nothing is left
    """
    try:
        started = api.request("POST", plan.url, json=plan.kill_body(),
                              params={"project": project} if project else None)
        code = return_code(started.wait(timeout=timeout).metadata)
    except APITXError as exc:
        return f"killing what it started failed: {exc}"
    return killed(code)


@contextmanager
def raising_on(*signums: int) -> Iterator[None]:
    """While inside, each of ``signums`` raises :class:`Signalled` in the main
    thread; the previous handlers are restored on the way out.

    >>> import signal
    >>> from apitx import Signalled, raising_on
    >>> try:
    ...     with raising_on(signal.SIGTERM):
    ...         signal.raise_signal(signal.SIGTERM)
    ... except Signalled as exc:           # a KeyboardInterrupt: catch it by name
    ...     print(exc, exc.signum)
    SIGTERM received 15
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
