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

>>> from apitx import API, run_exec
>>> api = API.factory()
>>> result = run_exec(api, c1, ['sh', '-c', 'echo hi; exit 3'])   # api.exec(...) alike
>>> result.return_code, result.stdout
(3, b'hi\\n')
>>> result.check()
Traceback (most recent call last):
  ...
apitx.ExecError: sh -c 'echo hi; exit 3' in apitx-... exited with 3 (no stderr)
>>> run_exec(api, c1, ['wc', '-l'], stdin=(f'{n}\\n' for n in range(1000))).stdout
b'1000\\n'
"""

from __future__ import annotations

import selectors
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ._client import Client
from ._exceptions import APIConnectionError, APIException, APITimeoutError, APITXError
from ._exec_input import Input as Input  # run_exec(stdin=...): re-exported for API.exec
from ._exec_input import StdinWriter, check_stdin
from ._exec_kill import kill_marked
from ._exec_plan import (KILL_GRACE, KILL_ROUND, END, ExecPlan, ExecResult, Output, Outputs, fds,
                         never_ran, output_of, resize_message, return_code, signal_message)
from ._result import APIResult
from ._transports import NO_MESSAGE, WebSocketConnection

__all__ = ["ExecControl", "ExecResult", "Input", "Output", "run_exec"]

#: The pump's name for the stdin writer's "reading the source failed".
_STDIN_FAILED = "stdin-failed"


class ExecControl:
    """The running command's control channel, for ``on_start=``.

    >>> import signal
    >>> from apitx import API
    >>> def stop(control):                       # called once the command runs
    ...     control.signal(signal.SIGTERM)
    >>> API.factory().exec(c1, ['sleep', '60'], on_start=stop).return_code
    143
    """

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    def resize(self, width: int, height: int) -> None:
        """Tell the command's terminal its new size (``terminal=`` runs only)."""
        self._ws.send_text(resize_message(width, height))

    def signal(self, number: int) -> None:
        """Send the command a signal (``signal.SIGTERM``…)."""
        self._ws.send_text(signal_message(number))


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
    then of every process the command started (the command's environment
    carries ``APITX_EXEC_ID`` for that: a second exec kills every process
    that has it). A
    non-zero exit is not an error: call :meth:`ExecResult.check`.

    ``terminal=(width, height)`` runs the command in a pseudo-terminal (LXD's
    ``interactive`` mode): one stream both ways, so everything it writes goes
    to ``stdout`` (with the terminal's CR LF line ends). ``on_start`` is
    called with an :class:`ExecControl` once the command runs (to resize its
    terminal or signal it later).

    >>> from apitx import API, run_exec
    >>> api = API.factory()
    >>> run_exec(api, c1, ['sh', '-c', 'cat; echo err >&2'], stdin=b'in\\n')
    ExecResult(instance='apitx-...', command=[...], return_code=0, stdout=b'in\\n', stderr=b'err\\n')
    >>> run_exec(api, c1, ['stty', 'size'], terminal=(80, 24)).stdout
    b'24 80\\r\\n'
    >>> run_exec(api, c1, ['sleep', '60'], timeout=0.5)
    Traceback (most recent call last):
      ...
    apitx.ExecTimeout: sleep 60 in apitx-... still ran after 0.5s and was killed (0 bytes of stdout, 0 of stderr kept); raise timeout= if it needs longer
    """
    plan = ExecPlan.make(instance, command, env=env, cwd=cwd, user=user, group=group,
                         timeout=timeout, terminal=terminal)
    check_stdin(stdin)
    outputs = Outputs(plan, stdout, stderr)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    params = {"project": project} if project else None
    started = api.request("POST", plan.url, json=plan.body, params=params)
    run = _Run(api, plan, started, outputs, deadline, lambda: kill_marked(
        api, plan, project=project, timeout=KILL_GRACE))
    try:
        run.connect()
        if on_start is not None:
            on_start(ExecControl(run.ws["control"]))
        run.start_stdin(stdin)
        run.pump()
        code = run.exit_code()
    except _Expired:
        run.kill()
        raise plan.timed_out(started, *outputs.values(), run.left) from None
    except BaseException:
        # Ctrl-C, a stdout= that raised (a closed pipe), a stdin that failed,
        # a dropped stream: the command must not run on unwatched.
        run.kill()
        raise
    finally:
        run.close()
    return plan.result(code, *outputs.values())


class _Expired(Exception):
    """Internal: the caller's timeout passed."""


class _Run:
    """The websockets of one exec and the loop that drains them.

    ``kill_rest`` kills every process the command started and returns None,
    or why some may be left.
    """

    def __init__(self, api: Client, plan: ExecPlan, started: APIResult, outputs: Outputs,
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
        self.names = plan.streams
        #: Output streams whose connection dropped before their end marker.
        self.dropped: Dict[str, APIConnectionError] = {}
        #: After a kill: None, or why processes the command started may be left.
        self.left: Optional[str] = None

    def connect(self) -> None:
        secrets = fds(self.started, self.names)
        path = (self.started.operation or "").rstrip("/") + "/websocket"
        began = time.monotonic()
        for name in self.names:
            try:
                ws = self.api.websocket(path, {"secret": secrets[name]})
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
        return never_ran(refused, operation, len(self.ws), len(self.names), seconds)

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
        piece = output_of(message)
        if piece is END:
            return False  # LXD's end of stream: an empty text message (or None: closed)
        self.sinks[name].write(piece)
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
            control.send_text(signal_message(9))
        except APITXError:
            pass  # control is gone with the command; the marked kill follows anyway
        # Before draining: what the command started holds its output open.
        self.left = self.kill_rest()
        try:
            while self.open_streams and time.monotonic() < grace:
                self.pump(until=min(grace, time.monotonic() + KILL_ROUND))
                if self.open_streams:
                    self.left = self.kill_rest()  # see KILL_ROUND
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
