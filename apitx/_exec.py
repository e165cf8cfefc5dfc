"""Run a command in an instance with live streams: LXD's exec over websockets.

:func:`run_exec` starts ``POST /1.0/instances/<name>/exec`` with
``wait-for-websocket: true``, opens the four websockets the operation
announces (``control``, ``0``, ``1``, ``2``), feeds stdin from a thread
(:mod:`apitx._exec_input`), reads stdout and stderr together with
``selectors`` in the calling thread, and returns once both streams ended and
the operation reports the exit code.

How LXD 5.0.2 (and Incus 6.0) handle each stream, measured here:

- the command starts once stdin, stdout and stderr are connected; if they
  are not within 5 s, LXD fails the operation ("Timed out waiting for
  websockets to connect") and refuses the rest ("Only running operations can
  be connected"): the command never ran, and the error says it is safe to
  retry. (apitx used to build TLS settings for every websocket, which made
  execs from 16 threads over HTTPS miss that window; now they are built once);
- every websocket gets a ping (keepalive) when it connects and every 10 s
  after; no pong is needed (a 25 s command without one ends normally);
- LXD reads control (our commands, until the command ends; a close frame
  there kills the command) and stdin (until our close frame), stdout only
  to notice a disconnect, stderr never. Over TCP, a byte left unread in
  LXD's socket when it closes it makes Linux reset the connection, which
  discards the output still queued: answering the ping on stderr cost 8 to
  28 of 100 HTTPS execs the end of their stderr under load (``lxc exec``: 4
  to 8, silently), and a slow reader of 1 MB 10 times in 10. So every exec
  websocket is *silent*: apitx writes there only its own messages (control
  commands, stdin, stdin's close frame), never a pong or a close frame (then
  0 of 100, on LXD and Incus; Unix sockets never lost, and Incus 6.0.4 did
  not either way);
- the end of stdin is a websocket close frame from us (LXD's Go client
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
- a command killed by signal N returns 128 + N (``kill -9 $$``: 137);
- in a terminal (``interactive``), LXD 5.0.2 can lose what the command
  wrote just before it exited, ``lxc exec -t`` too (1 to 3 runs in 60 under
  load): the stream still ends with LXD's marker, so apitx returns what LXD
  sent. Only a stream dropped without its marker is an error (raised, never
  returned short).

A command that must stop (``timeout=``, Ctrl-C, a ``stdout=`` callable that
raised, a stdin source that failed) is killed with everything it started
(:mod:`apitx._exec_kill`). The command, its environment and ``cwd`` must be
UTF-8 text: LXD takes JSON strings, and would turn a surrogate-escaped byte
(``os.fsdecode``) into U+FFFD, so those are refused before anything is sent.

Example::

    result = run_exec(api, 'c1', ['sh', '-c', 'echo hi; exit 3'])
    result.return_code, result.stdout      # (3, b'hi\\n')
    run_exec(api, 'c1', ['sha256sum'], stdin=open('big.bin', 'rb')).check()
"""

from __future__ import annotations

import io
import json
import selectors
import time
from dataclasses import dataclass, fields
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from . import _checks
from ._client import Client
from ._exceptions import (APIConnectionError, APIException, APITimeoutError, APITXError,
                          ExecError, ExecTimeout, RequestError, RequestTypeError)
from ._exec_input import Input as Input  # run_exec(stdin=...): re-exported for API.exec
from ._exec_input import StdinWriter, check_stdin
from ._exec_kill import MARKER, kill_marked, new_mark, return_code
from ._prepare import finite_seconds
from ._redact import redact_argv, shown_command
from ._result import APIResult
from ._transports import NO_MESSAGE, WebSocketConnection

#: After a kill (timeout, Ctrl-C), how long to keep reading what the dying
#: command still wrote, at most (and to wait for the kill of what it started).
KILL_GRACE = 5.0

Output = Union[None, IO[bytes], Callable[[bytes], Any]]

#: The pump's name for the stdin writer's "reading the source failed".
_STDIN_FAILED = "stdin-failed"


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


class _Outputs:
    """The command's output streams by websocket name: ``1`` and ``2``, or in
    a terminal ``0`` alone (stdin and all output on one stream)."""

    def __init__(self, stdout: Output, stderr: Output, terminal: bool) -> None:
        self.terminal = terminal
        self.sinks = {"0": _Sink(stdout)} if terminal else {"1": _Sink(stdout),
                                                             "2": _Sink(stderr)}

    def values(self) -> Tuple[bytes, bytes]:
        """(stdout, stderr) as collected so far (``b''`` where sent elsewhere)."""
        if self.terminal:
            return self.sinks["0"].value(), b""
        return self.sinks["1"].value(), self.sinks["2"].value()


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

    ``stdin`` is bytes, str, a file object (read in chunks; a non-blocking
    one is waited on), an iterable of bytes or str pieces, or None (empty
    input). ``stdout``/``stderr`` take a binary file or a callable that gets
    each piece as it arrives (memory then stays flat); None collects the bytes
    on the result. ``timeout`` (seconds) kills the command and raises
    :class:`ExecTimeout` carrying the output so far. Any other exception
    while the command runs (Ctrl-C, a ``stdout`` callable that raised, the
    :class:`RequestError` of a ``stdin`` source that failed) kills it the
    same way, then propagates. Killing is SIGKILL over the control websocket,
    then of every process the command started (see :mod:`apitx._exec_kill`:
    the command's environment carries ``APITX_EXEC_ID`` for that). A
    non-zero exit is not an error: call :meth:`ExecResult.check`.

    ``terminal=(width, height)`` runs the command in a pseudo-terminal (LXD's
    ``interactive`` mode): one stream both ways, so everything it writes goes
    to ``stdout`` (with the terminal's CR LF line ends). ``on_start`` is
    called with an :class:`ExecControl` once the command runs (to resize its
    terminal or signal it later).

    >>> run_exec(api, 'c1', ['sh', '-c', 'cat; echo err >&2'], stdin=b'in\\n')
    ExecResult(instance='c1', command=[...], return_code=0, stdout=b'in\\n', stderr=b'err\\n')
    """
    instance = _checks.text(instance, "exec(instance)")
    argv = _argv(command)
    timeout = finite_seconds(timeout, "exec(timeout=...)")
    _check_terminal(terminal)
    check_stdin(stdin)
    mark = new_mark()
    body: Dict[str, Any] = {"command": argv, "environment": {**_environment(env), MARKER: mark},
                            "wait-for-websocket": True, "interactive": terminal is not None}
    if terminal is not None:
        body["width"], body["height"] = terminal
    if cwd is not None:
        body["cwd"] = _text(cwd, "cwd")
    for key, value in (("user", user), ("group", group)):
        if value is not None:
            body[key] = value
    outputs = _Outputs(stdout, stderr, terminal is not None)
    deadline = None if timeout is None else time.monotonic() + timeout
    started = api.request("POST", f"instances/{quote(instance, safe='')}/exec", json=body,
                          params={"project": project} if project else None)
    run = _Run(api, started, outputs, deadline, lambda: kill_marked(
        api, instance, mark, project=project, timeout=KILL_GRACE))
    try:
        run.connect()
        if on_start is not None:
            on_start(ExecControl(run.ws["control"]))
        run.start_stdin(stdin)
        run.pump()
        code = run.exit_code()
    except _Expired:
        run.kill()
        stdout_so_far, stderr_so_far = outputs.values()
        raise ExecTimeout(
            f"{shown_command(argv)} in {instance} still ran after {timeout or 0:g}s and was killed "
            f"({len(stdout_so_far)} bytes of stdout, {len(stderr_so_far)} of stderr kept); "
            "raise timeout= if it needs longer" + (f"; {run.left}" if run.left else ""),
            started, timeout or 0.0, argv, stdout_so_far, stderr_so_far) from None
    except BaseException:
        # Ctrl-C, a stdout= that raised (a closed pipe), a stdin that failed,
        # a dropped stream: the command must not run on unwatched.
        run.kill()
        raise
    finally:
        run.close()
    return ExecResult(instance, argv, code, *outputs.values())


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


class _Expired(Exception):
    """Internal: the caller's timeout passed."""


class _Run:
    """The websockets of one exec and the loop that drains them.

    ``kill_rest`` kills every process the command started and returns None,
    or why some may be left.
    """

    def __init__(self, api: Client, started: APIResult, outputs: _Outputs,
                 deadline: Optional[float], kill_rest: Callable[[], Optional[str]]) -> None:
        self.api = api
        self.started = started
        self.sinks = outputs.sinks
        self.deadline = deadline
        self.kill_rest = kill_rest
        self.ws: Dict[str, WebSocketConnection] = {}
        self.writer: Optional[StdinWriter] = None
        self.selector = selectors.DefaultSelector()
        self.open_streams = set(self.sinks)
        # As LXD's Go client connects them: control first.
        self.names = ("control", "0", *sorted(set(self.sinks) - {"0"}))
        #: Output streams whose connection dropped before their end marker.
        self.dropped: Dict[str, APIConnectionError] = {}
        #: After a kill: None, or why processes the command started may be left.
        self.left: Optional[str] = None

    def connect(self) -> None:
        fds = (self.started.metadata or {}).get("metadata", {}).get("fds", {})
        missing = [name for name in self.names if name not in fds]
        if missing:
            raise APIException(self.started, error=f"the exec operation announced no "
                               f"websocket for {', '.join(missing)}: is this LXD or Incus?")
        path = (self.started.operation or "").rstrip("/") + "/websocket"
        began = time.monotonic()
        for name in self.names:
            try:
                ws = self.api.websocket(path, {"secret": fds[name]})
            except APIException as exc:
                raise self._never_ran(exc, time.monotonic() - began) from exc
            ws.silent = True  # see the module's docstring: LXD does not read them all
            self.ws[name] = ws
            if name != "0" or name in self.sinks:
                # stdin carries nothing for us but pings (left unread: no
                # answer is due) unless it is a terminal's output too, and a
                # TLS socket read here while the writer thread sends on it is
                # best avoided.
                self.selector.register(ws, selectors.EVENT_READ, name)

    def _never_ran(self, refused: APIException, seconds: float) -> APIException:
        """A refused websocket, said better when the operation failed already:
        LXD gave up waiting for the websockets, so the command never ran."""
        try:
            operation = self.api.request("GET", self.started.operation or "",
                                         validate=False).metadata
        except APITXError:
            return refused
        if not isinstance(operation, dict) or operation.get("status") != "Failure":
            return refused
        return type(refused)(refused.result, status_code=refused.status_code, error=(
            f"{refused.error}: the exec operation failed before its websockets were all "
            f"connected ({operation.get('err') or 'no reason given'}; {len(self.ws)} of "
            f"{len(self.names)} after {seconds:.1f}s, and LXD waits 5 s for them, so the "
            "client or the server is overloaded): the command never ran, so it is safe to "
            "retry"))

    def start_stdin(self, source: Input) -> None:
        # In a terminal, closing stream 0 hangs the terminal up (the command
        # gets SIGHUP, 129: measured), and there is no EOF on a terminal
        # anyway: the input just stops.
        self.writer = StdinWriter(self.ws["0"], source, close_at_eof="0" not in self.sinks)
        self.selector.register(self.writer.failed, selectors.EVENT_READ, _STDIN_FAILED)
        self.writer.start()

    def pump(self, until: Optional[float] = None) -> None:
        """Read every websocket until stdout and stderr both ended.

        ``until`` (after a kill) bounds the drain instead of the deadline.
        Raises the stdin writer's failure as soon as it happens.
        """
        while self.open_streams:
            limit = self.deadline if until is None else until
            ready = self._ready(limit)
            if ready is None:
                if until is not None:
                    return  # the dying command's grace is over
                raise _Expired()
            for name in ready:
                if name == _STDIN_FAILED and self.writer is not None:
                    raise self.writer.failure() from self.writer.error
                if not self._read(name):
                    self._forget(name)
                    self.open_streams.discard(name)
        # The output ended, so the command did: stdin has nobody to read it.
        # (LXD's client stops feeding stdin then too.)
        self._stop_stdin()

    def _ready(self, limit: Optional[float]) -> Optional[List[str]]:
        """The names of what has something to read, or None at ``limit``."""
        pending = [key.data for key in self.selector.get_map().values()
                   if key.data in self.ws and self.ws[key.data].pending()]
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
            return False  # control drops when the command ends
        if name not in self.sinks or message is NO_MESSAGE:
            return message is not None  # a ping (never answered) or a fragment
        if not message:
            return False  # LXD's end of stream: an empty text message (or None: closed)
        # Text is not what LXD sends for output, but output all the same.
        self.sinks[name].write(message if isinstance(message, bytes)
                               else str(message).encode("utf-8"))
        return True

    def _forget(self, name: str) -> None:
        self.selector.unregister(self.ws[name])
        if name == "0" and self.writer is not None:
            self.ws[name].abort()  # a terminal's: the writer may still send (see close())
        else:
            self.ws[name].close()

    def _stop_stdin(self) -> None:
        """The command ended or is being killed: the stdin writer stops."""
        writer = self.writer
        if writer is None:
            return
        writer.stop.set()
        if writer.failed in (key.fileobj for key in self.selector.get_map().values()):
            self.selector.unregister(writer.failed)
        if writer.is_alive():
            # Unblocks a writer stuck in a send (a close frame would wait for
            # it); one stuck reading a blocking source finds the socket gone
            # later.
            self.ws["0"].abort()

    def exit_code(self) -> int:
        """The command's exit code, from the operation (127: not found)."""
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Expired()
        try:
            done = self.started.wait(timeout=left)
        except APIException as exc:
            # A command that does not exist fails the operation, with the
            # shell's code in it: the caller asked for a code, not an error.
            code = return_code(exc.result.metadata)
            if code is None:
                # Incus answers that wait with a bare error envelope (HTTP
                # 200, type error): the operation itself still has the code.
                code = return_code(self.api.request("GET", self.started.operation or "",
                                                    validate=False).metadata)
            if code is None:
                raise
            return code
        except APITimeoutError as exc:
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise _Expired() from exc
            raise
        code = return_code(done.metadata)
        if self.dropped:
            raise next(iter(self.dropped.values()))  # the output may be cut short
        if code is None:
            raise APIException(done, error="the finished exec operation has no return code")
        return code

    def kill(self) -> None:
        """SIGKILL the command over control and kill all it started, then
        keep what it still wrote."""
        control = self.ws.get("control")
        if control is None or control.closed or len(self.ws) < len(self.names):
            return  # not all connected: LXD never started the command
        grace = time.monotonic() + KILL_GRACE
        self._stop_stdin()
        try:
            control.send_text(json.dumps({"command": "signal", "signal": 9}))
        except APITXError:
            pass  # control is gone with the command; the marked kill follows anyway
        # Before draining: what the command started holds its output open.
        self.left = self.kill_rest()
        try:
            self.pump(until=grace)
        except Exception:  # noqa: BLE001 - what the drain meets (a dead pipe, a drop)
            pass  # matters less than the error that made us kill: that one is raised
        # A command killed before it even started (LXD delivers control's
        # signal once it runs) may fork after that first round looked: once
        # its operation ended it is certainly gone, and a last round catches
        # what it left. Measured: a stdin failing at once left `sleep` behind.
        try:
            self.started.wait(timeout=max(grace - time.monotonic(), 0.1))
        except APITXError:
            pass  # failed or still running: the last round is due all the same
        self.left = self.kill_rest()

    def close(self) -> None:
        self._stop_stdin()
        self.selector.close()
        for name, ws in self.ws.items():
            if name != "0" or self.writer is None:
                ws.close()  # silent: the connection is only dropped
        if self.writer is not None:
            self.writer.release()  # stdin's websocket: closed once the writer is done with it
