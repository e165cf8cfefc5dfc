"""An exec as apitx sends and reads it, with no I/O: what both clients' exec share.

The checks before anything is sent (the command, its environment and
``cwd`` UTF-8 text, the terminal's size, the timeout), the request body with
the mark that lets a kill find everything the command started
(:data:`MARKER`, see :mod:`apitx._exec_kill`), the order the websockets are
connected in, what a frame on an output stream means, where output goes,
the control channel's messages, and the words of a timeout and of a
command that never ran. :mod:`apitx._exec` (threads and ``selectors``) and
:mod:`apitx._aio._exec` (asyncio tasks) only move the bytes.

>>> from apitx._exec_plan import ExecPlan
>>> plan = ExecPlan.make('c1', ['sh', '-c', 'echo hi'], env={'LANG': 'C'}, cwd=None,
...                      user=None, group=None, timeout=10, terminal=None)
>>> plan.body['environment']          # the mark a kill finds its processes by
{'LANG': 'C', 'APITX_EXEC_ID': '...'}
>>> plan.streams
('control', '0', '1', '2')
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field, fields
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from . import _checks
from ._exceptions import (APIException, ExecError, ExecTimeout, RequestError, RequestTypeError,
                          Transaction)
from ._prepare import finite_seconds
from ._redact import redact_argv, shown_command

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

#: After a kill (timeout, Ctrl-C), how long to keep reading what the dying
#: command still wrote, at most (and to wait for the kill of what it started).
KILL_GRACE = 5.0

#: Within that grace, while the output stays open, another kill round every
#: this many seconds. A command killed before LXD even started it (a stdin
#: failing at once) ignores control's signal and forks after the first round
#: looked: measured, it kept its output open for the whole grace, and the
#: caller waited 5 to 10 s for the error.
KILL_ROUND = 0.5

#: Where one output stream goes: None (collected on the result), a binary
#: file, or a callable taking each piece (the async client also awaits a
#: coroutine function).
Output = Union[None, IO[bytes], Callable[[bytes], Any]]


@dataclass
class ExecResult:
    """What a command did: its exit code and the output not sent elsewhere.

    ``stdout``/``stderr`` hold the bytes when no ``stdout=``/``stderr=``
    target was given (else ``b''``).

    >>> from apitx import API
    >>> result = API.factory().exec(c1, ['sh', '-c', 'echo out; echo err >&2; false'])
    >>> result.return_code, result.stdout, result.stderr
    (1, b'out\\n', b'err\\n')
    """

    instance: str
    command: List[str]
    return_code: int
    stdout: bytes = b""
    stderr: bytes = b""

    def __repr__(self) -> str:
        # A command line may hold a password (mysql -pX, --token X): the repr
        # (a log line, a traceback) shows it redacted; .command stays real.
        shown = {field.name: getattr(self, field.name) for field in fields(self)}
        shown["command"] = redact_argv(self.command)
        return f"ExecResult({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    def check(self) -> ExecResult:
        """Return self when the command exited 0, else raise :class:`ExecError`."""
        if self.return_code != 0:
            tail = " ".join(self.stderr.decode("utf-8", "replace").strip()
                            .rsplit("\n", 1)[-1].split())
            raise ExecError(f"{shown_command(self.command)} in {self.instance} exited with "
                            f"{self.return_code}" + (f": {tail[:200]}" if tail else
                                                     " (no stderr)"),
                            self.command, self.return_code, self.stderr)
        return self


@dataclass(frozen=True)
class ExecPlan:
    """One exec, checked and ready to send: the instance, the argument list,
    the timeout (seconds or None), the terminal, the mark, and the body."""

    instance: str
    argv: List[str]
    timeout: Optional[float]
    terminal: bool
    mark: str
    body: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, instance: Any, command: Any, *, env: Optional[Mapping[str, str]],
             cwd: Optional[str], user: Optional[int], group: Optional[int], timeout: Any,
             terminal: Optional[Tuple[int, int]]) -> ExecPlan:
        """Check everything a caller gave (RequestError before anything is sent)."""
        name = _checks.text(instance, "exec(instance)")
        argv = _argv(command)
        seconds = finite_seconds(timeout, "exec(timeout=...)")
        _check_terminal(terminal)
        mark = os.urandom(16).hex()
        body: Dict[str, Any] = {"command": argv, "environment": {**_environment(env),
                                                                 MARKER: mark},
                                "wait-for-websocket": True, "interactive": terminal is not None}
        if terminal is not None:
            body["width"], body["height"] = terminal
        if cwd is not None:
            body["cwd"] = _text(cwd, "cwd")
        for key, value in (("user", user), ("group", group)):
            if value is not None:
                body[key] = value
        return cls(name, argv, seconds, terminal is not None, mark, body)

    @property
    def url(self) -> str:
        return f"instances/{quote(self.instance, safe='')}/exec"

    @property
    def outputs(self) -> Tuple[str, ...]:
        """The websockets that carry output: ``1`` and ``2``, or in a terminal
        ``0`` alone (stdin and all output on one stream)."""
        return ("0",) if self.terminal else ("1", "2")

    @property
    def streams(self) -> Tuple[str, ...]:
        """Every websocket, as LXD's Go client connects them: control first."""
        return ("control", "0") if self.terminal else ("control", "0", "1", "2")

    def kill_body(self) -> Dict[str, Any]:
        """The websocket-less exec that kills every process carrying the mark."""
        return {"command": ["sh", "-c", KILL_SCRIPT, "sh", f"{MARKER}={self.mark}"],
                "environment": {}, "wait-for-websocket": False, "record-output": False,
                "interactive": False}

    def timed_out(self, started: Transaction, stdout: bytes, stderr: bytes,
                  left: Optional[str]) -> ExecTimeout:
        """The :class:`ExecTimeout` of this exec, with the output it kept."""
        return ExecTimeout(
            f"{shown_command(self.argv)} in {self.instance} still ran after "
            f"{self.timeout or 0:g}s and was killed ({len(stdout)} bytes of stdout, "
            f"{len(stderr)} of stderr kept); raise timeout= if it needs longer"
            + (f"; {left}" if left else ""),
            started, self.timeout or 0.0, self.argv, stdout, stderr)

    def result(self, code: int, stdout: bytes, stderr: bytes) -> ExecResult:
        return ExecResult(self.instance, self.argv, code, stdout, stderr)


def fds(started: Transaction, names: Sequence[str]) -> Dict[str, str]:
    """The secret of each websocket the exec operation announced; an
    :class:`APIException` when one is missing."""
    announced = (started.metadata or {}).get("metadata", {}).get("fds", {})
    missing = [name for name in names if name not in announced]
    if missing:
        raise APIException(started, error=f"the exec operation announced no websocket for "
                           f"{', '.join(missing)}: is this LXD or Incus?")
    return {name: str(announced[name]) for name in names}


def never_ran(refused: APIException, operation: Any, connected: int, total: int,
              seconds: float) -> APIException:
    """A refused exec websocket, said better when the operation failed
    already: LXD gave up waiting for the websockets (it waits 5 s), so the
    command never ran, and retrying is safe."""
    if not isinstance(operation, dict) or operation.get("status") != "Failure":
        return refused
    return type(refused)(refused.result, status_code=refused.status_code, error=(
        f"{refused.error}: the exec operation failed before its websockets were all "
        f"connected ({operation.get('err') or 'no reason given'}; {connected} of {total} "
        f"after {seconds:.1f}s, and LXD waits 5 s for them, so the client or the server is "
        "overloaded): the command never ran, so it is safe to retry"))


#: What :func:`output_of` says of a frame that ends its stream.
END = None


def output_of(message: Any) -> Optional[bytes]:
    """What a message on an output stream carries: its bytes, or :data:`END`
    for LXD's end of stream (an empty text message, or the websocket closed).
    Text is not what LXD sends for output, but output all the same."""
    if not message:
        return END
    return message if isinstance(message, bytes) else str(message).encode("utf-8")


def return_code(operation: Any) -> Optional[int]:
    """An exec operation's exit code (``metadata.return``), or None.

    >>> return_code({'metadata': {'return': 3}})
    3
    """
    meta = operation.get("metadata") if isinstance(operation, dict) else None
    code = meta.get("return") if isinstance(meta, dict) else None
    return code if isinstance(code, int) else None


def killed(code: Optional[int]) -> Optional[str]:
    """What the kill script's exit code says: None when nothing is left, else why."""
    if code == 0:
        return None
    return (f"killing what it started failed: sh -c KILL_SCRIPT exited with {code}"
            + (" (no sh in the instance)" if code == 127 else ""))


def resize_message(width: int, height: int) -> str:
    """The control message that resizes the command's terminal."""
    return json.dumps({"command": "window-resize",
                       "args": {"width": str(width), "height": str(height)}})


def signal_message(number: int) -> str:
    """The control message that signals the command."""
    return json.dumps({"command": "signal", "signal": int(number)})


class Sink:
    """Where one output stream goes: memory, a file, or a callable."""

    def __init__(self, target: Output) -> None:
        self.buffer = io.BytesIO() if target is None else None
        if target is None:
            self.write: Callable[[bytes], Any] = self.buffer.write  # type: ignore[union-attr]
        elif callable(getattr(target, "write", None)):
            self.write = target.write  # type: ignore[union-attr]
        elif callable(target):
            self.write = target
        else:
            raise RequestTypeError(f"stdout/stderr={target!r}: give a binary file, a callable "
                                   "taking bytes, or None to collect the output; nothing was "
                                   "sent")

    def value(self) -> bytes:
        return self.buffer.getvalue() if self.buffer is not None else b""


class Outputs:
    """The command's output streams by websocket name (see :attr:`ExecPlan.outputs`)."""

    def __init__(self, plan: ExecPlan, stdout: Output, stderr: Output) -> None:
        self.terminal = plan.terminal
        self.sinks = {"0": Sink(stdout)} if plan.terminal else {"1": Sink(stdout),
                                                                "2": Sink(stderr)}

    def values(self) -> Tuple[bytes, bytes]:
        """(stdout, stderr) as collected so far (``b''`` where sent elsewhere)."""
        if self.terminal:
            return self.sinks["0"].value(), b""
        return self.sinks["1"].value(), self.sinks["2"].value()


def _text(value: Any, what: str) -> str:
    """``value`` as the text LXD gets in JSON: bytes must be UTF-8, and a str
    must not hold surrogate escapes (JSON would carry them as U+FFFD)."""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            problem = "these bytes are not UTF-8"
    else:
        text = value if isinstance(value, str) else str(value)
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            problem = "it holds bytes that are not UTF-8 (surrogate escapes, as os.fsdecode makes)"
    raise RequestError(f"{what}={value!r}: {problem}; LXD takes JSON strings, which would carry "
                       "them as U+FFFD: give UTF-8 text; nothing was sent")


def _argv(command: Any) -> List[str]:
    """The argument list, each item UTF-8 text."""
    if isinstance(command, (str, bytes)) or not isinstance(command, (list, tuple)) or not command:
        raise RequestTypeError(f"command={command!r}: give the argument list, such as "
                               "['sh', '-c', 'echo hi']; nothing was sent")
    return [_text(arg, f"command[{index}]") for index, arg in enumerate(command)]


def _environment(env: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The environment, names and values UTF-8 text."""
    return {_text(key, "env key"): _text(value, f"env[{key!r}]")
            for key, value in (_checks.optional_mapping(env, "exec(env)") or {}).items()}


def _check_terminal(terminal: Any) -> None:
    """``terminal=(width, height)`` in characters, or None."""
    if terminal is None:
        return
    if not isinstance(terminal, (tuple, list)) or len(terminal) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in terminal):
        raise RequestTypeError(f"terminal={terminal!r}: give (width, height) as two whole "
                               "numbers, such as (80, 24), or None; nothing was sent")
    if not all(0 < n < 1 << 16 for n in terminal):
        raise RequestError(f"terminal={terminal!r}: width and height must be between 1 and "
                           "65535 characters; nothing was sent")
