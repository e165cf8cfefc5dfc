"""The async operations engine: ``await wait()``, ``wait(progress=)``, ``wait_all()``.

It carries out what :mod:`apitx._waiting` decides, as the sync engine does,
awaiting each command: a :class:`Fetch` through the
:class:`~apitx._aio._sender.AsyncSender`, a :class:`Subscribe` opening the
event stream (closed when the wait ends, however it ends: a cancelled task
included), a :class:`Listen` reading it, a :class:`Pause` as
``asyncio.sleep``, a :class:`Report` calling the progress callback (awaited
when it is a coroutine function).

>>> import asyncio
>>> from apitx import AsyncAPI
>>> async def main():
...     async with AsyncAPI.factory() as api:
...         started = await api.post(f'instances/{c1}/exec', json={'command': ['sleep', '3'],
...             'record-output': True, 'wait-for-websocket': False})
...         await AsyncOperations(api._sender).wait(api, started, 1, None, project=None,
...                                                 target=None)
>>> asyncio.run(main())
Traceback (most recent call last):
...
apitx.OperationTimeout: operation ... still running after 1.0s: unix:/var/lib/lxd/unix.socket
/1.0/operations/... (wait on it again, or DELETE it to cancel)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, List, Optional, Sequence, Union

from .._event import event_params
from .._exceptions import APIConnectionError, APIException, APITimeoutError, APITXError
from .._waiting import (CONFIRM_SECONDS, EVENT_ANSWER_HEADERS, POLL_SECONDS,
                        PROGRESS_POLL_SECONDS, Fetch, Heard, Listen, Outcome, Pause, Report,
                        Steps, Subscribe, Waitable, WaitAll, Waiter, event_answer_body, plan,
                        stream_project, wait_limit, waitable)
from ._events import AsyncEventStream
from ._result import AsyncAPIResult, AsyncProgress, AsyncWaits
from ._sender import AsyncSender

logger = logging.getLogger("apitx")


class AsyncOperations:
    """Waits on operations for an async API and its siblings, through their sender."""

    def __init__(self, sender: AsyncSender) -> None:
        self.sender = sender

    async def wait(self, owner: AsyncWaits, result: AsyncAPIResult,
                   timeout: Optional[float] = None, progress: Optional[AsyncProgress] = None, *,
                   project: Optional[str], target: Optional[str]) -> AsyncAPIResult:
        """:meth:`AsyncAPI.wait` for the API ``owner`` and its defaults."""
        waiting = waitable(result)
        if waiting is None:
            return result
        [outcome] = await self._outcomes(
            owner, [waiting], wait_limit(timeout), longest=POLL_SECONDS if progress is None
            else PROGRESS_POLL_SECONDS, watch=progress is not None, progress=progress,
            project=project, target=target)
        if isinstance(outcome, APIException):
            raise outcome.started_by(result)
        return outcome

    async def wait_all(self, owner: AsyncWaits, results: Sequence[AsyncAPIResult],
                       timeout: Optional[float] = None, return_exceptions: bool = False, *,
                       project: Optional[str], target: Optional[str]
                       ) -> List[Union[AsyncAPIResult, APIException]]:
        """:meth:`AsyncAPI.wait_all` for the API ``owner`` and its defaults."""
        limit = wait_limit(timeout)
        batch = WaitAll(results, self.sender.members.endpoints)
        ended = await self._outcomes(owner, list(batch.waiting.values()), limit,
                                     longest=PROGRESS_POLL_SECONDS, watch=True, progress=None,
                                     project=project, target=target) if batch.waiting else []
        return batch.finish(ended, return_exceptions)

    async def _outcomes(self, owner: AsyncWaits, waiting: Sequence[Waitable],
                        limit: Optional[float], *, longest: int, watch: bool,
                        progress: Optional[AsyncProgress], project: Optional[str],
                        target: Optional[str]) -> List[Outcome[AsyncAPIResult]]:
        started = time.monotonic()
        waiter: Waiter[AsyncAPIResult] = Waiter(
            waiting, started=started, until=None if limit is None else started + limit,
            longest=longest, progress=progress is not None,
            answer_of=lambda url, op, waited: self._event_answer(owner, url, op, waited))
        stream_of, all_projects = stream_project(waiting, project)
        run = _Run(self.sender, owner, started, progress, project, target)
        try:
            await run.carry_out(plan(waiter, watch=watch, project=stream_of,
                                     all_projects=all_projects))
        finally:
            await run.close()
        return [waiter.outcome(each.operation) for each in waiting]

    def _event_answer(self, owner: AsyncWaits, operation: str, op: Any,
                      waited: float) -> AsyncAPIResult:
        return self.sender.made_result(owner, self.sender.url(operation), 200,
                                       event_answer_body(op), reason="OK",
                                       headers=EVENT_ANSWER_HEADERS, waited=waited)


class _Run:
    """One wait's I/O: the commands of its plan, awaited in this task."""

    def __init__(self, sender: AsyncSender, owner: AsyncWaits, started: float,
                 progress: Optional[AsyncProgress], project: Optional[str],
                 target: Optional[str]) -> None:
        self.sender, self.owner, self.started = sender, owner, started
        self.progress, self.project, self.target = progress, project, target
        self.stream: Optional[AsyncEventStream] = None

    async def carry_out(self, steps: Steps) -> None:
        """Run the plan, awaiting each thing it asks, until it is done."""
        reply: Any = None
        failed: Optional[APITXError] = None
        while True:
            try:
                command = steps.send(reply) if failed is None else steps.throw(failed)
            except StopIteration:
                return
            reply, failed = None, None
            try:
                reply = await self.do(command)
            except APITXError as exc:
                failed = exc

    async def do(self, command: Any) -> Any:
        if isinstance(command, Fetch):
            request = self.sender.prepare("GET", command.url, params=command.params,
                                          project=command.project or self.project,
                                          target=self.target)
            timeout = self.sender.timeout if command.read_seconds is None else \
                self.sender.timeout.with_read(command.read_seconds)
            return await self.sender.send(self.owner, request, timeout,
                                          waited_since=self.started)
        if isinstance(command, Listen):
            assert self.stream is not None, "only a confirmed stream is listened to"
            return Heard(await self.stream.next_event(command.timeout), self.stream.last_frame)
        if isinstance(command, Subscribe):
            return await self.subscribe(command)
        if isinstance(command, Pause):
            await asyncio.sleep(command.seconds)
        elif isinstance(command, Report) and self.progress is not None:
            called = self.progress(command.answer)
            if inspect.isawaitable(called):
                await called
        return None

    async def subscribe(self, command: Subscribe) -> Optional[float]:
        try:
            self.stream = AsyncEventStream(await self.sender.websocket(
                self.owner, "events", event_params(["operation"], command.project,
                                                   command.all_projects)))
        except (APIException, APIConnectionError, APITimeoutError) as refused:
            logger.debug("apitx: no event stream (%s); polling instead", refused)
            return None
        try:
            if await self.stream.confirm(CONFIRM_SECONDS):
                return self.stream.last_frame
        except APIConnectionError:
            pass
        logger.debug("apitx: the event stream did not confirm in %ss; polling instead",
                     CONFIRM_SECONDS)
        return None

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
