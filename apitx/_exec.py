"""Run a command in an instance with live streams: LXD's exec over websockets.

:func:`run_exec` starts ``POST /1.0/instances/<name>/exec`` with
``wait-for-websocket: true``, opens the four websockets the operation
announces (``control``, ``0``, ``1``, ``2``: LXD starts the command once
all are connected), feeds stdin from a thread, reads stdout and stderr
together with ``selectors`` in the calling thread, and returns once both
streams ended and the operation reports the exit code.

How LXD 5.0.2 (and Incus 6.0) end each stream, measured here:

- every websocket gets a ping (``keepalive``) at once and every 10 s after;
  reading a socket answers its pings, so control and stdin are read too;
- the end of stdin is a websocket *close frame* from us (LXD's Go client
  does the same); an empty binary message is passed on as nothing, and a
  ``cat`` then waits forever;
- the end of stdout or stderr is an *empty text message* from LXD, after
  which it drops the connection without a close frame; control is dropped
  when the command ends. Neither drop is an error here;
- a command that closes its stdout early still gets its stdout "end" only
  when the whole command ends;
- a command that does not exist fails the operation (``Command not found``)
  with ``metadata.return: 127``: reported here as return code 127, like a
  shell would, not as an exception. (Incus 6.0 answers the ``/wait`` of that
  operation with a bare error envelope; the operation itself has the code);
- a command killed by signal N returns 128 + N (``kill -9 $$``: 137).

Example::

    result = run_exec(api, 'c1', ['sh', '-c', 'echo hi; exit 3'])
    result.return_code, result.stdout      # (3, b'hi\\n')
    run_exec(api, 'c1', ['sha256sum'], stdin=open('big.bin', 'rb')).check()
"""

from __future__ import annotations

import io
import json
import selectors
import threading
import time
from dataclasses import dataclass, fields
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from ._client import Client
from ._exceptions import (APIConnectionError, APIException, APITimeoutError, ExecError,
                          ExecTimeout, RequestError, RequestTypeError)
from ._prepare import finite_seconds
from ._redact import redact_argv, shown_command
from ._result import APIResult
from ._transports import NO_MESSAGE, WebSocketConnection

#: Bytes per stdin message. Measured here (50 MiB into sha256sum, LXD 5.0.2):
#: 32 KiB ~95-115 MB/s, 64 KiB ~115-133, 128 KiB ~110, 1 MiB ~94, 4 MiB ~70:
#: large messages stall in LXD's copy to the command's pipe.
STDIN_CHUNK = 1 << 16

#: After a kill (timeout, Ctrl-C), how long to keep reading what the dying
#: command still wrote, at most.
KILL_GRACE = 5.0

Input = Union[None, bytes, str, IO[bytes], IO[str]]
Output = Union[None, IO[bytes], Callable[[bytes], Any]]


@dataclass
class ExecResult:
    """What a command did: its exit code and the output not sent elsewhere.

    ``stdout``/``stderr`` hold the bytes when no ``stdout=``/``stderr=``
    target was given (else ``b''``).

    >>> run_exec(api, 'c1', ['false']).return_code
    1
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


class _Sink:
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


class _StdinWriter(threading.Thread):
    """Sends stdin in chunks, then a close frame (LXD's end of input).

    A thread, because sending must not wait for reading: a command such as
    ``cat`` stops reading its input while its output is not read, so one
    thread doing both could deadlock with it.
    """

    def __init__(self, ws: WebSocketConnection, source: Input, close_at_eof: bool) -> None:
        super().__init__(name="apitx-exec-stdin", daemon=True)
        self.ws = ws
        self.source = source
        self.close_at_eof = close_at_eof
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            for chunk in _chunks(self.source):
                self.ws.send_binary(chunk)
            if self.close_at_eof:
                self.ws.send_close()
        except BaseException as exc:  # reported by the caller when it matters
            self.error = exc


def _chunks(source: Input) -> Any:
    if source is None:
        return
    if isinstance(source, str):
        source = source.encode("utf-8")
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for start in range(0, len(view), STDIN_CHUNK):
            yield bytes(view[start:start + STDIN_CHUNK])
        return
    # read1() returns what is there as soon as there is some: a pipe that
    # trickles is passed on live, not when 64 KiB have gathered.
    read = getattr(source, "read1", source.read)
    while True:
        chunk = read(STDIN_CHUNK)
        if not chunk:
            return
        yield chunk.encode("utf-8") if isinstance(chunk, str) else chunk


class ExecControl:
    """The running command's control channel, for ``on_start=``.

    >>> run_exec(api, 'c1', ['sh'], terminal=(80, 24), on_start=lambda c: c.resize(120, 40))
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    def resize(self, width: int, height: int) -> None:
        """Tell the command's terminal its new size (``terminal=`` runs only)."""
        self._ws.send_text(json.dumps({"command": "window-resize",
                                       "args": {"width": str(width), "height": str(height)}}))

    def signal(self, number: int) -> None:
        """Send the command a signal (``signal.SIGTERM``…)."""
        self._ws.send_text(json.dumps({"command": "signal", "signal": int(number)}))


def run_exec(api: Client, instance: str, command: Sequence[str], *, stdin: Input = None,
             env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None,
             user: Optional[int] = None, group: Optional[int] = None,
             timeout: Optional[float] = None, stdout: Output = None,
             stderr: Output = None, project: Optional[str] = None,
             terminal: Optional[Tuple[int, int]] = None,
             on_start: Optional[Callable[[ExecControl], Any]] = None) -> ExecResult:
    """Run ``command`` in ``instance``; return its :class:`ExecResult`.

    ``stdin`` is bytes, str or a file object (read in chunks; None: empty
    input). ``stdout``/``stderr`` take a binary file or a callable that gets
    each piece as it arrives (memory then stays flat); None collects the bytes
    on the result. ``timeout`` (seconds) kills the command with SIGKILL over
    the control websocket and raises :class:`ExecTimeout` carrying the
    output so far. Any other exception while the command runs (Ctrl-C, a
    ``stdout`` callable that raised) kills it the same way, then propagates.
    A non-zero exit is not an error: call :meth:`ExecResult.check`.

    ``terminal=(width, height)`` runs the command in a pseudo-terminal (LXD's
    ``interactive`` mode): one stream both ways, so everything it writes goes
    to ``stdout`` (with the terminal's CR LF line ends). ``on_start`` is
    called with an :class:`ExecControl` once the command runs (to resize its
    terminal or signal it later).

    >>> run_exec(api, 'c1', ['sh', '-c', 'cat; echo err >&2'], stdin=b'in\\n')
    ExecResult(instance='c1', command=[...], return_code=0, stdout=b'in\\n', stderr=b'err\\n')
    """
    if isinstance(command, (str, bytes)) or not isinstance(command, (list, tuple)) or not command:
        raise RequestTypeError(f"command={command!r}: give the argument list, such as "
                               "['sh', '-c', 'echo hi']; nothing was sent")
    argv = [str(arg) for arg in command]
    timeout = finite_seconds(timeout, "exec(timeout=...)")
    _check_terminal(terminal)
    _check_stdin(stdin)
    body: Dict[str, Any] = {"command": argv, "environment": dict(env or {}),
                            "wait-for-websocket": True, "interactive": terminal is not None}
    if terminal is not None:
        body["width"], body["height"] = terminal
    for key, value in (("cwd", cwd), ("user", user), ("group", group)):
        if value is not None:
            body[key] = value
    # In a terminal, stream 0 carries the output too: there are no 1 and 2.
    sinks = {"0": _Sink(stdout)} if terminal else {"1": _Sink(stdout), "2": _Sink(stderr)}
    deadline = None if timeout is None else time.monotonic() + timeout
    started = api.request("POST", f"instances/{quote(instance, safe='')}/exec", json=body,
                          params={"project": project} if project else None)
    run = _Run(api, started, sinks, deadline)

    def output() -> Tuple[bytes, bytes]:
        return (sinks["0" if terminal else "1"].value(),
                b"" if terminal else sinks["2"].value())

    try:
        run.connect()
        if on_start is not None:
            on_start(ExecControl(run.ws["control"]))
        run.start_stdin(stdin)
        run.pump()
        code = run.exit_code()
    except _Expired:
        run.kill()
        stdout_so_far, stderr_so_far = output()
        raise ExecTimeout(
            f"{shown_command(argv)} in {instance} still ran after {timeout or 0:g}s and was killed "
            f"({len(stdout_so_far)} bytes of stdout, {len(stderr_so_far)} of stderr kept); "
            "raise timeout= if it needs longer",
            started, timeout or 0.0, argv, stdout_so_far, stderr_so_far) from None
    except BaseException:
        # Ctrl-C, a stdout= that raised (a closed pipe), a dropped stream:
        # the command must not run on unwatched.
        run.kill()
        raise
    finally:
        run.close()
    return ExecResult(instance, argv, code, *output())


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


def _check_stdin(stdin: Any) -> None:
    """bytes, str, a file object (with ``read``), or None."""
    if stdin is None or isinstance(stdin, (bytes, bytearray, memoryview, str)) or \
            callable(getattr(stdin, "read", None)):
        return
    raise RequestTypeError(f"stdin={stdin!r}: give bytes, str, a file object opened for "
                           "reading, or None for no input; nothing was sent")


class _Expired(Exception):
    """Internal: the caller's timeout passed."""


class _Run:
    """The websockets of one exec and the loop that drains them."""


    def __init__(self, api: Client, started: APIResult, sinks: Dict[str, _Sink],
                 deadline: Optional[float]) -> None:
        self.api = api
        self.started = started
        self.sinks = sinks
        self.deadline = deadline
        self.ws: Dict[str, WebSocketConnection] = {}
        self.writer: Optional[_StdinWriter] = None
        self.selector = selectors.DefaultSelector()
        self.open_streams = set(sinks)
        # As LXD's Go client connects them: control first.
        self.names = ("control", "0", *sorted(set(sinks) - {"0"}))
        #: Output streams whose connection dropped before their end marker.
        self.dropped: Dict[str, APIConnectionError] = {}

    def connect(self) -> None:
        fds = (self.started.metadata or {}).get("metadata", {}).get("fds", {})
        missing = [name for name in self.names if name not in fds]
        if missing:
            raise APIException(self.started, error=f"the exec operation announced no "
                               f"websocket for {', '.join(missing)}: is this LXD or Incus?")
        path = (self.started.operation or "").rstrip("/") + "/websocket"
        for name in self.names:
            self.ws[name] = self.api.websocket(path, {"secret": fds[name]})
            self.selector.register(self.ws[name], selectors.EVENT_READ, name)

    def start_stdin(self, source: Input) -> None:
        # In a terminal, closing stream 0 hangs the terminal up (the command
        # gets SIGHUP, 129: measured), and there is no EOF on a terminal
        # anyway: the input just stops.
        self.writer = _StdinWriter(self.ws["0"], source, close_at_eof="0" not in self.sinks)
        self.writer.start()

    def pump(self, until: Optional[float] = None) -> None:
        """Read every websocket until stdout and stderr both ended.

        ``until`` (after a kill) bounds the drain instead of the deadline.
        """
        while self.open_streams:
            limit = self.deadline if until is None else until
            ready = self._ready(limit)
            if ready is None:
                if until is not None:
                    return  # the dying command's grace is over
                raise _Expired()
            for name in ready:
                if not self._read(name):
                    self._forget(name)
                    self.open_streams.discard(name)
        # The output ended, so the command did: stdin has nobody to read it.
        # (LXD's client stops feeding stdin then too.)
        if self.writer is not None and self.writer.is_alive():
            self.ws["0"].abort()

    def _ready(self, limit: Optional[float]) -> Optional[List[str]]:
        """The names of the websockets with something to read, or None at ``limit``."""
        pending = [key.data for key in self.selector.get_map().values()
                   if self.ws[key.data].pending()]
        if pending:
            return pending
        wait = None if limit is None else limit - time.monotonic()
        if wait is not None and wait <= 0:
            return None
        events = self.selector.select(wait)
        return [key.data for key, _ in events] if events else None

    def _read(self, name: str) -> bool:
        """Handle one message; False when that websocket is done."""
        try:
            message = self.ws[name].recv_frame()
        except APIConnectionError as exc:
            if name in self.sinks:
                # Dropped before LXD said the stream ended: LXD does that when
                # the command never started (not found); the operation tells.
                self.dropped[name] = exc
            return False  # control and stdin drop when the command ends
        if name not in self.sinks or message is NO_MESSAGE:
            return message is not None  # pings are answered inside recv_frame()
        if isinstance(message, bytes):
            self.sinks[name].write(message)
            return True
        if message:  # text: not what LXD sends for output, but output all the same
            self.sinks[name].write(str(message).encode("utf-8"))
            return True
        return False  # LXD's end of stream: an empty text message (or None: closed)

    def _forget(self, name: str) -> None:
        self.selector.unregister(self.ws[name])
        self.ws[name].close()

    def exit_code(self) -> int:
        """The command's exit code, from the operation (127: not found)."""
        # Once the output ended, the writer may still block reading a source
        # that never ends (a terminal): it is not waited for. If it finished,
        # a failure to read the caller's stdin must not pass in silence.
        if self.writer is not None and not self.writer.is_alive():
            if self.writer.error is not None and not isinstance(
                    self.writer.error, (APIConnectionError, APITimeoutError)):
                raise self.writer.error  # reading the caller's stdin failed
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Expired()
        try:
            done = self.started.wait(timeout=left)
        except APIException as exc:
            # A command that does not exist fails the operation, with the
            # shell's code in it: the caller asked for a code, not an error.
            code = _return_code(exc.result.metadata)
            if code is None:
                # Incus answers that wait with a bare error envelope (HTTP
                # 200, type error): the operation itself still has the code.
                code = _return_code(self.api.request("GET", self.started.operation or "",
                                                     validate=False).metadata)
            if code is None:
                raise
            return code
        except APITimeoutError as exc:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise _Expired() from exc
            raise
        code = _return_code(done.metadata)
        if self.dropped:
            raise next(iter(self.dropped.values()))  # the output may be cut short
        if code is None:
            raise APIException(done, error="the finished exec operation has no return code")
        return code

    def kill(self) -> None:
        """SIGKILL the command over control, then keep what it still wrote."""
        control = self.ws.get("control")
        if control is None or control.closed:
            return
        try:
            control.send_text(json.dumps({"command": "signal", "signal": 9}))
            self.pump(until=time.monotonic() + KILL_GRACE)
        except Exception:  # noqa: BLE001 - what the drain meets (a dead pipe, a drop)
            pass  # matters less than the error that made us kill: that one is raised

    def close(self) -> None:
        if self.writer is not None and self.writer.is_alive():
            # Unblocks a writer stuck in a send (a close frame would wait for
            # it); one stuck reading its source finds the socket gone later.
            self.ws["0"].abort()
        for ws in self.ws.values():
            ws.close()
        self.selector.close()


def _return_code(operation: Any) -> Optional[int]:
    meta = operation.get("metadata") if isinstance(operation, dict) else None
    code = meta.get("return") if isinstance(meta, dict) else None
    return code if isinstance(code, int) else None
