"""The sync operations engine: ``wait()``, ``wait(progress=)`` and ``wait_all()``.

It carries out what :mod:`apitx._waiting` decides: each :class:`Fetch` is a
request through the API's :class:`~apitx._sender.Sender`, each
:class:`Listen` a read of the event stream, each :class:`Pause` a sleep,
each :class:`Report` a call of the caller's progress callback. Subscribing
to the stream (and waiting for its first ping) before any operation is
checked is this module's part of the order that makes waiting safe.

Example::

    operations = Operations(sender)
    final = operations.wait(api, api.post('instances', json=config), timeout=120,
                            project=None, target=None)
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Union

from ._envelope import operation_id
from ._event import event_params
from ._events import EventStream
from ._exceptions import (APIConnectionError, APIException, APITimeoutError, RequestError)
from ._result import APIResult, Progress, Waits
from ._sender import Sender
from ._waiting import (CONFIRM_SECONDS, POLL_SECONDS, PROGRESS_POLL_SECONDS, Command, Fetch,
                       Heard, Listen, Outcome, Pause, Waitable, Waiter, stream_project,
                       wait_limit, waitable, waited_results)

logger = logging.getLogger("apitx")

#: The headers of an answer made from an event.
_JSON = {"Content-Type": "application/json"}


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
        limit = wait_limit(timeout)
        [outcome] = self._outcomes(
            owner, [waiting], limit, longest=POLL_SECONDS if progress is None else
            PROGRESS_POLL_SECONDS, watch=progress is not None, progress=progress,
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
        results = waited_results(results)
        for index, result in enumerate(results):
            if result.endpoint not in self.sender.members.endpoints:
                raise RequestError(
                    f"wait_all(): result {index} ({result.request_line()}) comes from "
                    f"{result.endpoint.display}, another server than this API's "
                    f"({self.sender.endpoint.display}): wait on it through the API that made "
                    "it (result.wait(), or that API's wait_all()); nothing was waited on")
        outcomes: List[Union[APIResult, APIException]] = []
        waiting: Dict[int, Waitable] = {}
        for index, result in enumerate(results):
            try:
                operation = waitable(result)
            except APIException as failed:
                outcomes.append(failed)
                continue
            outcomes.append(result)
            if operation is not None:
                waiting[index] = operation
        if waiting:
            ended = self._outcomes(owner, list(waiting.values()), limit,
                                   longest=PROGRESS_POLL_SECONDS, watch=True, progress=None,
                                   project=project, target=target)
            for index, outcome in zip(waiting, ended):
                outcomes[index] = outcome.started_by(results[index]) \
                    if isinstance(outcome, APIException) else outcome
        if not return_exceptions:
            for outcome in outcomes:
                if isinstance(outcome, APIException):
                    raise outcome
        return outcomes

    # -- carrying out the rules -------------------------------------------------------

    def _outcomes(self, owner: Waits, waiting: Sequence[Waitable], limit: Optional[float], *,
                  longest: int, watch: bool, progress: Optional[Progress],
                  project: Optional[str], target: Optional[str]) -> List[Outcome]:
        """The outcome of each operation, in the order given (see :mod:`apitx._waiting`)."""
        started = time.monotonic()
        waiter = Waiter([each.operation for each in waiting], started=started,
                        until=None if limit is None else started + limit, longest=longest,
                        progress=progress is not None,
                        answer_of=lambda url, op, waited: self._event_answer(owner, url, op,
                                                                             waited))
        # Polls name the operation's project when it has one of its own.
        own = {operation_id(each.operation): each.project or project for each in waiting}

        def fetch(command: Fetch) -> APIResult:
            path = command.url.partition("?")[0]
            op_id = operation_id(path[:-len("/wait")] if path.endswith("/wait") else path)
            prepared = self.sender.prepare("GET", command.url, params=command.params,
                                           project=own.get(op_id, project), target=target)
            timeout = self.sender.timeout if command.read_seconds is None else \
                self.sender.timeout.with_read(command.read_seconds)
            return self.sender.send(owner, prepared, timeout, waited_since=started)

        stream = self._subscribe(owner, waiting, project) if watch else None
        if stream is not None:
            try:
                with stream:
                    _carry_out(waiter.follow(stream.last_frame), fetch, stream, progress)
            except APIConnectionError as dropped:
                # The stream dropped (or a check's connection broke: a daemon
                # restarting). Polling reads the state back, and raises if the
                # server is really gone.
                logger.debug("apitx: %s; polling instead", dropped)
        _carry_out(waiter.rounds(), fetch, None, progress)
        return [waiter.outcome(each.operation) for each in waiting]

    def _subscribe(self, owner: Waits, waiting: Sequence[Waitable],
                   own_project: Optional[str]) -> Optional[EventStream]:
        """The operation events that see every operation waited on, or None
        when the server will not give them (an old server, a proxy without
        websockets, a mock)."""
        project, all_projects = stream_project(waiting, own_project)
        try:
            stream = EventStream(self.sender.websocket(
                owner, "events", event_params(["operation"], project, all_projects)))
        except (APIException, APIConnectionError, APITimeoutError) as refused:
            logger.debug("apitx: no event stream (%s); polling instead", refused)
            return None
        # Until LXD has registered the stream (its first ping says so), an
        # operation could end unseen between the check and the registration: a
        # wait that never ends was seen here, on a busy daemon, before this.
        try:
            confirmed = stream.confirm(CONFIRM_SECONDS)
        except APIConnectionError:
            confirmed = False
        if not confirmed:
            stream.close()
            logger.debug("apitx: the event stream did not confirm in %ss; polling instead",
                         CONFIRM_SECONDS)
            return None
        return stream

    def _event_answer(self, owner: Waits, operation: str, op: Any, waited: float) -> APIResult:
        """An operation seen in an event, as an answer of a wait."""
        body = json.dumps({"type": "sync", "status": "Success", "status_code": 200,
                           "operation": "", "error_code": 0, "error": "", "metadata": op})
        return self.sender.made_result(owner, self.sender.url(operation), 200, body.encode(),
                                       reason="OK", headers=_JSON, waited=waited)


def _carry_out(steps: Generator[Command, Any, None], fetch: Callable[[Fetch], APIResult],
               stream: Optional[EventStream], progress: Optional[Progress]) -> None:
    """Run the waiting rules, doing each thing they ask, until they are done."""
    reply: Any = None
    while True:
        try:
            command = steps.send(reply)
        except StopIteration:
            return
        reply = None
        if isinstance(command, Fetch):
            reply = fetch(command)
        elif isinstance(command, Listen):
            assert stream is not None, "only follow() listens, and it has a stream"
            reply = Heard(stream.next_event(command.timeout), stream.last_frame)
        elif isinstance(command, Pause):
            time.sleep(command.seconds)
        elif progress is not None:
            progress(command.answer)
