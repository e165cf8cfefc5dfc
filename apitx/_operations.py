"""The sync operations engine: ``wait()``, ``wait(progress=)`` and ``wait_all()``.

It carries out what :mod:`apitx._waiting` decides, and nothing else: a
:class:`Fetch` is a request through the API's :class:`~apitx._sender.Sender`,
a :class:`Subscribe` opens and confirms the event stream (closed when the
wait is over, however it ends), a :class:`Listen` reads it, a :class:`Pause`
sleeps, a :class:`Report` calls the caller's progress callback. An apitx
exception a command raises is thrown back into the plan, which decides.

Example: with the sender of an API (``api.wait()`` does this):

>>> from apitx import API
>>> api = API.factory()
>>> operations = Operations(api._sender)
>>> started = api.post('instances', json={'name': c2, 'source': {'type': 'none'}})
>>> operations.wait(api, started, timeout=120, project=None, target=None).metadata['status']
'Success'
"""

from __future__ import annotations

import logging
import time
from typing import Any, List, Optional, Sequence, Union

from ._event import event_params
from ._events import EventStream
from ._exceptions import APIConnectionError, APIException, APITimeoutError, APITXError
from ._result import APIResult, Progress, Waits
from ._sender import Sender
from ._waiting import (CONFIRM_SECONDS, EVENT_ANSWER_HEADERS, POLL_SECONDS,
                       PROGRESS_POLL_SECONDS, Fetch, Heard, Listen, Outcome, Pause, Report,
                       Steps, Subscribe, Waitable, WaitAll, Waiter, event_answer_body, plan,
                       stream_project, wait_limit, waitable)

logger = logging.getLogger("apitx")

#: The headers of an answer made from an event.

class Operations:
    """Waits on operations for an API and its siblings, through their sender."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    def wait(self, owner: Waits, result: APIResult, timeout: Optional[float] = None,
             progress: Optional[Progress] = None, *, project: Optional[str],
             target: Optional[str]) -> APIResult:
        """:meth:`API.wait` for the API ``owner`` and its defaults."""
        waiting = waitable(result)
        if waiting is None:
            return result
        [outcome] = self._outcomes(
            owner, [waiting], wait_limit(timeout), longest=POLL_SECONDS if progress is None
            else PROGRESS_POLL_SECONDS, watch=progress is not None, progress=progress,
            project=project, target=target)
        if isinstance(outcome, APIException):
            raise outcome.started_by(result)
        return outcome

    def wait_all(self, owner: Waits, results: Sequence[APIResult],
                 timeout: Optional[float] = None, return_exceptions: bool = False, *,
                 project: Optional[str],
                 target: Optional[str]) -> List[Union[APIResult, APIException]]:
        """:meth:`API.wait_all` for the API ``owner`` and its defaults."""
        limit = wait_limit(timeout)
        batch = WaitAll(results, self.sender.members.endpoints)
        ended = self._outcomes(owner, list(batch.waiting.values()), limit,
                               longest=PROGRESS_POLL_SECONDS, watch=True, progress=None,
                               project=project, target=target) if batch.waiting else []
        return batch.finish(ended, return_exceptions)

    def _outcomes(self, owner: Waits, waiting: Sequence[Waitable], limit: Optional[float], *,
                  longest: int, watch: bool, progress: Optional[Progress],
                  project: Optional[str], target: Optional[str]) -> List[Outcome[APIResult]]:
        """The outcome of each operation, in the order given."""
        started = time.monotonic()
        waiter: Waiter[APIResult] = Waiter(waiting, started=started,
                        until=None if limit is None else started + limit, longest=longest,
                        progress=progress is not None,
                        answer_of=lambda url, op, waited: self._event_answer(owner, url, op,
                                                                             waited))
        stream_of, all_projects = stream_project(waiting, project)
        run = _Run(self, owner, started, progress, project, target)
        try:
            run.carry_out(plan(waiter, watch=watch, project=stream_of,
                               all_projects=all_projects))
        finally:
            run.close()
        return [waiter.outcome(each.operation) for each in waiting]

    def _event_answer(self, owner: Waits, operation: str, op: Any, waited: float) -> APIResult:
        """An operation seen in an event, as an answer of a wait."""
        return self.sender.made_result(owner, self.sender.url(operation), 200,
                                       event_answer_body(op), reason="OK",
                                       headers=EVENT_ANSWER_HEADERS, waited=waited)


class _Run:
    """One wait's I/O: the commands of its plan, carried out in this thread."""

    def __init__(self, operations: Operations, owner: Waits, started: float,
                 progress: Optional[Progress], project: Optional[str],
                 target: Optional[str]) -> None:
        self.sender, self.owner, self.started = operations.sender, owner, started
        self.progress, self.project, self.target = progress, project, target
        self.stream: Optional[EventStream] = None

    def carry_out(self, steps: Steps) -> None:
        """Run the plan, doing each thing it asks, until it is done."""
        reply: Any = None
        failed: Optional[APITXError] = None
        while True:
            try:
                command = steps.send(reply) if failed is None else steps.throw(failed)
            except StopIteration:
                return
            reply, failed = None, None
            try:
                reply = self.do(command)
            except APITXError as exc:
                failed = exc

    def do(self, command: Any) -> Any:
        if isinstance(command, Fetch):
            prepared = self.sender.prepare("GET", command.url, params=command.params,
                                           project=command.project or self.project,
                                           target=self.target)
            timeout = self.sender.timeout if command.read_seconds is None else \
                self.sender.timeout.with_read(command.read_seconds)
            return self.sender.send(self.owner, prepared, timeout, waited_since=self.started)
        if isinstance(command, Listen):
            assert self.stream is not None, "only a confirmed stream is listened to"
            return Heard(self.stream.next_event(command.timeout), self.stream.last_frame)
        if isinstance(command, Subscribe):
            return self.subscribe(command)
        if isinstance(command, Pause):
            time.sleep(command.seconds)
        elif isinstance(command, Report) and self.progress is not None:
            report: Report[APIResult] = command
            self.progress(report.answer)
        return None

    def subscribe(self, command: Subscribe) -> Optional[float]:
        """Open and confirm the event stream; None when the server will not
        give one (an old server, a proxy without websockets, a mock)."""
        try:
            self.stream = EventStream(self.sender.websocket(self.owner, "events", event_params(
                ["operation"], command.project, command.all_projects)))
        except (APIException, APIConnectionError, APITimeoutError) as refused:
            logger.debug("apitx: no event stream (%s); polling instead", refused)
            return None
        # Until LXD has registered the stream (its first ping says so), an
        # operation could end unseen between the check and the registration: a
        # wait that never ends was seen here, on a busy daemon, before this.
        try:
            if self.stream.confirm(CONFIRM_SECONDS):
                return self.stream.last_frame
        except APIConnectionError:
            pass
        logger.debug("apitx: the event stream did not confirm in %ss; polling instead",
                     CONFIRM_SECONDS)
        return None

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
