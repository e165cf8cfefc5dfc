"""Run a command in an instance from asyncio: LXD's exec over websockets, awaited.

The rules are :mod:`apitx._exec_plan`'s (checks, body, mark, streams, what a
frame means, timeouts), the same as the sync client's; the bytes move in
tasks of the caller's event loop: one per output stream, one feeding stdin.
The websockets are silent, as the sync client's are: nothing is written on
a stream LXD does not read (no pong, no close frame on output), so no output
is lost over HTTPS.

A command that must stop is killed with everything it started, as the sync
client kills it: ``timeout=`` (then :class:`~apitx.ExecTimeout`), a task
cancelled while it runs (then ``CancelledError``, after the kill), a
``stdout=`` callable that raised, a stdin source that failed.

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         return await api.exec(c1, ['sh', '-c', 'cat; echo hi >&2'], stdin=b'in\\n')
>>> result = asyncio.run(main())
>>> result.return_code, result.stdout, result.stderr
(0, b'in\\n', b'hi\\n')
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, AsyncIterator, Callable, Dict, Mapping, Optional, Sequence, Set, Tuple, Union

from .._exceptions import APIConnectionError, APIException, APITimeoutError, APITXError
from .._exec_input import SourceReader, Stopped, Wakeup, as_bytes, check_stdin, source_failed
from .._exec_plan import (KILL_GRACE, KILL_ROUND, END, ExecPlan, ExecResult, Output, Outputs,
                          fds, killed, never_ran, output_of, resize_message, return_code,
                          signal_message)
from .._transports._aiows import AsyncWebSocketConnection
from ._client import AsyncClient
from ._result import AsyncAPIResult

#: What ``stdin=`` takes: what the sync client takes, and an async iterable of
#: bytes or str pieces.
AsyncInput = Union[None, bytes, str, Any, AsyncIterator[Union[bytes, str]]]


class AsyncExecControl:
    """The running command's control channel, for ``on_start=``.

    (The command below lingers after printing: LXD 5.0.2 can drop a
    terminal's last output when the command exits at once, ``lxc exec -t``
    included.)

    >>> import asyncio
    >>> from apitx import AsyncAPI
    >>> async def grow(control):
    ...     await control.resize(120, 40)
    >>> async def main():
    ...     async with AsyncAPI.factory() as api:
    ...         return await api.exec(c1, ['sh', '-c', 'sleep 0.2; stty size; sleep 0.2'],
    ...                               terminal=(80, 24), on_start=grow)
    >>> asyncio.run(main()).stdout
    b'40 120\\r\\n'
    """

    def __init__(self, ws: AsyncWebSocketConnection) -> None:
        self._ws = ws

    async def resize(self, width: int, height: int) -> None:
        """Tell the command's terminal its new size (``terminal=`` runs only)."""
        await self._ws.send_text(resize_message(width, height))

    async def signal(self, number: int) -> None:
        """Send the command a signal (``signal.SIGTERM``…)."""
        await self._ws.send_text(signal_message(number))


async def run_exec(api: AsyncClient, instance: str, command: Sequence[str], *,
                   stdin: AsyncInput = None, env: Optional[Mapping[str, str]] = None,
                   cwd: Optional[str] = None, user: Optional[int] = None,
                   group: Optional[int] = None, timeout: Optional[float] = None,
                   stdout: Output = None, stderr: Output = None, project: Optional[str] = None,
                   terminal: Optional[Tuple[int, int]] = None,
                   on_start: Optional[Callable[[AsyncExecControl], Any]] = None) -> ExecResult:
    """Run ``command`` in ``instance``; return its :class:`~apitx.ExecResult`.

    The arguments of :func:`apitx.run_exec`, and: ``stdin`` may be an async
    iterable of pieces; ``stdout``/``stderr`` may be a coroutine function
    (awaited for each piece: the command is read no faster than it takes
    them); ``on_start`` may be one too. A task cancelled while the command
    runs kills it (and all it started) before the ``CancelledError`` goes on.

    >>> import asyncio
    >>> from apitx import AsyncAPI
    >>> async def main():
    ...     async with AsyncAPI.factory() as api:
    ...         return await run_exec(api, c1, ['sh', '-c', 'echo hi; exit 3'])
    >>> result = asyncio.run(main())
    >>> result.return_code, result.stdout
    (3, b'hi\\n')
    """
    plan = ExecPlan.make(instance, command, env=env, cwd=cwd, user=user, group=group,
                         timeout=timeout, terminal=terminal)
    if not hasattr(stdin, "__aiter__"):
        check_stdin(stdin)
    outputs = Outputs(plan, stdout, stderr)
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    started = await api.request("POST", plan.url, json=plan.body,
                                params={"project": project} if project else None)
    run = _Run(api, plan, started, outputs, project)
    try:
        await run.connect()
        if on_start is not None:
            await _called(on_start(AsyncExecControl(run.ws["control"])))
        await run.pump(stdin, deadline)
        code = await run.exit_code(deadline)
    except _Expired:
        await run.kill()
        raise plan.timed_out(started, *outputs.values(), run.left) from None
    except BaseException:
        # Cancelled, a stdout= that raised, a stdin that failed, a dropped
        # stream: the command must not run on unwatched. Shielded: a second
        # cancellation must not stop the kill halfway.
        await asyncio.shield(run.kill())
        raise
    finally:
        run.close()
    return plan.result(code, *outputs.values())


def _drop_if_opened(task: "asyncio.Task[AsyncWebSocketConnection]") -> None:
    """A websocket that opened after its exec gave up on it: drop it, or its socket leaks."""
    if not task.cancelled() and task.exception() is None:
        task.result().abort()


async def _called(outcome: Any) -> None:
    """Await what a callback returned when it is awaitable (a coroutine function's)."""
    if inspect.isawaitable(outcome):
        await outcome


class _Expired(Exception):
    """Internal: the caller's timeout passed."""


class _Run:
    """The websockets and tasks of one exec."""

    def __init__(self, api: AsyncClient, plan: ExecPlan, started: AsyncAPIResult,
                 outputs: Outputs, project: Optional[str]) -> None:
        self.api, self.plan, self.started, self.project = api, plan, started, project
        self.sinks = outputs.sinks
        self.ws: Dict[str, AsyncWebSocketConnection] = {}
        self.readers: Set["asyncio.Task[None]"] = set()
        self.feeder: Optional["asyncio.Task[None]"] = None
        #: Set once the command ended (or is killed): a stdin read waiting stops.
        self.stop = Wakeup()
        #: Bytes of stdin sent so far.
        self.sent = 0
        #: The worker thread's read of a stdin source, while one runs.
        self.reading: Optional["asyncio.Future[Optional[bytes]]"] = None
        #: Output streams whose connection dropped before their end marker.
        self.dropped: Dict[str, APIConnectionError] = {}
        #: After a kill: None, or why processes the command started may be left.
        self.left: Optional[str] = None

    async def connect(self) -> None:
        """Open every stream's websocket, all at once: LXD starts the command
        only once each is connected, so opening them one after the other put
        an upgrade's round trip per stream on every exec's latency (the sync
        client cannot avoid that; here it costs nothing). What opened is kept
        in ``self.ws`` for :meth:`close`, even when another failed or the task
        was cancelled meanwhile; one that opens after a cancellation is dropped."""
        secrets = fds(self.started, self.plan.streams)
        path = (self.started.operation or "").rstrip("/") + "/websocket"
        began = time.monotonic()
        opening = {name: asyncio.ensure_future(self.api.websocket(path, {"secret": secrets[name]}))
                   for name in self.plan.streams}
        try:
            await asyncio.wait(opening.values())
        finally:
            for name, task in opening.items():
                if not task.done():
                    task.cancel()
                    task.add_done_callback(_drop_if_opened)
                elif not task.cancelled() and task.exception() is None:
                    self.ws[name] = task.result()
                    self.ws[name].settimeout(None)  # output comes when the command writes it
        for task in opening.values():
            try:
                task.result()
            except APIException as exc:
                raise await self._never_ran(exc, time.monotonic() - began) from exc

    async def _never_ran(self, refused: APIException, seconds: float) -> APIException:
        try:
            operation = (await self.api.request("GET", self.started.operation or "",
                                                validate=False)).metadata
        except APITXError:
            return refused
        return never_ran(refused, operation, len(self.ws), len(self.plan.streams), seconds)

    # -- moving the bytes -------------------------------------------------------

    async def pump(self, stdin: AsyncInput, deadline: Optional[float]) -> None:
        """Read every output stream to its end, feeding stdin meanwhile; raise
        a stdin source's failure as soon as it happens, :class:`_Expired` at
        the deadline."""
        self.readers = {asyncio.ensure_future(self._drain(name)) for name in self.sinks}
        self.feeder = asyncio.ensure_future(self._feed(stdin))
        waiting: Set["asyncio.Task[None]"] = set(self.readers) | {self.feeder}
        while self.readers & waiting:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise _Expired()
            done, waiting = await asyncio.wait(waiting, timeout=left,
                                               return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if task is self.feeder and failure is not None:
                    raise source_failed(stdin, self.sent, failure) from failure
                if failure is not None:
                    raise failure  # a stdout=/stderr= callable that raised
        self._stop_stdin()  # the output ended, so the command did

    async def _drain(self, name: str) -> None:
        """One output stream to its end marker, into its sink; then its
        connection is dropped (silently), as the sync client drops it: in a
        terminal LXD ends the operation only once stream 0 is gone."""
        try:
            await self._read_to_end(name)
        finally:
            self.ws[name].abort()

    async def _read_to_end(self, name: str) -> None:
        ws, sink = self.ws[name], self.sinks[name]
        while True:
            try:
                message = await ws.recv()
            except APIConnectionError as exc:
                # Dropped before LXD said the stream ended: LXD does that when
                # the command never started (not found); the operation tells.
                self.dropped[name] = exc
                return
            piece = output_of(message)
            if piece is END:
                return
            await _called(sink.write(piece))

    async def _feed(self, source: AsyncInput) -> None:
        """Send stdin, then (but in a terminal) a close frame: LXD's end of input.
        A file or an iterable is read in a worker thread, a piece at a time."""
        ws = self.ws["0"]
        try:
            if hasattr(source, "__aiter__"):
                async for given in source:  # type: ignore[union-attr]
                    data = as_bytes(given)
                    await ws.send_binary(data)
                    self.sent += len(data)
            else:
                pieces = SourceReader(source, self.stop).pieces()
                loop = asyncio.get_running_loop()
                while True:
                    self.reading = loop.run_in_executor(None, next, pieces, None)
                    piece: Optional[bytes] = await self.reading
                    if piece is None:
                        break
                    await ws.send_binary(piece)
                    self.sent += len(piece)
            if not self.plan.terminal:
                await ws.send_close()
        except (APIConnectionError, APITimeoutError, Stopped):
            return  # LXD stopped reading stdin (the command ended), or we did

    def _stop_stdin(self) -> None:
        self.stop.set()
        if self.feeder is not None and not self.feeder.done():
            self.feeder.cancel()

    # -- the end ----------------------------------------------------------------

    async def exit_code(self, deadline: Optional[float]) -> int:
        """The command's exit code, from the operation (127: not found)."""
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise _Expired()
        try:
            done = await self.started.wait(timeout=left)
        except APIException as exc:
            code = return_code(exc.result.metadata)
            if code is None:
                # Incus answers that wait with a bare error envelope: the
                # operation itself still has the code.
                code = return_code((await self.api.request(
                    "GET", self.started.operation or "", validate=False)).metadata)
            if code is None:
                raise
            return code
        except APITimeoutError as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise _Expired() from exc
            raise
        code = return_code(done.metadata)
        if self.dropped:
            raise next(iter(self.dropped.values()))  # the output may be cut short
        if code is None:
            raise APIException(done, error="the finished exec operation has no return code")
        return code

    async def kill(self) -> None:
        """SIGKILL the command over control and kill all it started, then keep
        what it still wrote (for a while)."""
        control = self.ws.get("control")
        if control is None or len(self.ws) < len(self.plan.streams):
            return  # not all connected: LXD never started the command
        grace = time.monotonic() + KILL_GRACE
        self._stop_stdin()
        try:
            await control.send_text(signal_message(9))
        except APITXError:
            pass  # control is gone with the command; the marked kill follows anyway
        self.left = await self._kill_rest()
        pending = set(self.readers)
        while pending and time.monotonic() < grace:
            _, pending = await asyncio.wait(
                pending, timeout=min(KILL_ROUND, grace - time.monotonic()))
            if pending:
                self.left = await self._kill_rest()  # see KILL_ROUND
        try:
            await self.started.wait(timeout=max(grace - time.monotonic(), 0.1))
        except APITXError:
            pass  # failed or still running: the last round is due all the same
        self.left = await self._kill_rest()

    async def _kill_rest(self) -> Optional[str]:
        """Kill every process the command started (see :mod:`apitx._exec_kill`)."""
        try:
            started = await self.api.request("POST", self.plan.url, json=self.plan.kill_body(),
                                              params={"project": self.project}
                                              if self.project else None)
            return killed(return_code((await started.wait(timeout=KILL_GRACE)).metadata))
        except APITXError as exc:
            return f"killing what it started failed: {exc}"

    def close(self) -> None:
        """Drop every websocket (silent: no close frame) and stop the tasks."""
        self._stop_stdin()
        for task in self.readers:
            task.cancel()
        for ws in self.ws.values():
            ws.abort()
        # The flag's pipe is closed once no worker thread waits on it: a
        # descriptor closed under a thread is reused by the next one opened.
        if self.reading is None or self.reading.done():
            self.stop.close()
        else:
            self.reading.add_done_callback(lambda _: self.stop.close())
