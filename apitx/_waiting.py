"""Waiting on operations, one or many, through LXD's event stream or by polling.

``API.wait()`` and ``API.wait_all()`` come here. Every update of an operation
arrives on ``/1.0/events?type=operation`` as the whole operation (LXD 5.0.2
and Incus 6.0.4, measured here), so one websocket watches any number of
operations, and a progress callback sees each update as LXD makes it.

The order is what makes it safe (LXD forgets a finished operation about 5 s
after it ends, and sends each update once):

1. subscribe to the event stream;
2. check each operation once (``poll``, ``/wait?timeout=0``): one that ended
   already is done, and any later update comes as an event;
3. read events; when one says an operation ended, fetch its final answer
   with ``poll`` again, so every failure encoding, and Incus's way of ending
   a wait, are read by the very code ``wait()``'s polls use.

Events may come out of order (a ``Running`` update after the ``Failure``
that followed it was seen here): an operation is done at its first event
that says it ended, and later ones are ignored.

Without events (a server or proxy that refuses the websocket, a stream that
drops midway), it polls in rounds: the first operation still running is
long-polled for up to ``longest`` seconds, every other one checked at once,
so none goes unchecked for longer than a round and none is forgotten
unseen. One operation with ``longest=30`` is exactly ``wait()``'s poll loop.

Example::

    [final] = wait_operations(api, ['/1.0/operations/<id>'], poll, started=t0,
                              until=None, longest=1, watch=True)
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union
from urllib.parse import parse_qsl, urlsplit

from . import _envelope
from ._events import EventStream, events
from ._exceptions import APIConnectionError, APIException, APITimeoutError, OperationTimeout
from ._result import APIResult, Progress, made_result

logger = logging.getLogger("apitx")

#: ``poll(operation, seconds)``: one ``<operation>/wait?timeout=seconds``;
#: returns the answer, running or ended; raises what a failure means.
Poll = Callable[[str, int], APIResult]
#: What waiting on one operation ends with: its final answer, or its failure.
Outcome = Union[APIResult, APIException]

#: With a progress callback, it is called at least this often (seconds), with
#: the last state seen: a progress line's clock ticks between LXD's updates.
TICK = 1.0
#: The longest wait for the event stream's first ping, which says LXD sends
#: events to it (measured: 0.02-1 ms after the upgrade on LXD and Incus).
CONFIRM_SECONDS = 5.0
#: Pauses between polls that a server answered early (see :meth:`_Waiter.rounds`).
BACKOFF_FIRST = 0.05
BACKOFF_LONGEST = 1.0


def wait_operations(api: Any, operations: Sequence[str], poll: Poll, *, started: float,
                    until: Optional[float], longest: int, watch: bool,
                    progress: Optional[Progress] = None) -> List[Outcome]:
    """The outcome of each operation (URLs as LXD gives them), in the order given.

    ``watch=True`` follows the event stream (polling when it cannot be had or
    drops); ``watch=False`` polls. ``until`` is the ``time.monotonic()``
    deadline (None: none), past which :class:`OperationTimeout` is raised for
    the first operation still running; ``started`` is when the wait began.
    Failures of the operations are returned; the transport's raise.

    >>> wait_operations(api, [op], poll, started=time.monotonic(), until=None,
    ...                 longest=30, watch=False)
    [<APIResult GET unix:/var/lib/lxd/unix.socket /1.0/operations/…/wait?timeout=30 HTTP/200>]
    """
    waiter = _Waiter(api, operations, poll, started, until, longest, progress)
    stream = _subscribe(api, operations) if watch else None
    if stream is not None:
        try:
            with stream:
                waiter.follow(stream)
        except APIConnectionError as dropped:
            # The stream dropped (or a check's connection broke: a daemon
            # restarting). Polling reads the state back, and raises if the
            # server is really gone.
            logger.debug("apitx: %s; polling instead", dropped)
    waiter.rounds()
    return [waiter.outcomes[_envelope.operation_id(each)] for each in operations]


def _subscribe(api: Any, operations: Sequence[str]) -> Optional[EventStream]:
    """The operation events of the operations' project(s), or None when the
    server will not give them (an old server, a proxy without websockets)."""
    projects = {dict(parse_qsl(urlsplit(each).query)).get("project", api.project)
                for each in operations}
    try:
        if len(projects) > 1:
            stream = events(api, types=["operation"], all_projects=True)
        else:
            stream = events(api, types=["operation"], project=projects.pop())
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


class _Waiter:
    """The operations still running, the last answer of each, and the outcomes."""

    def __init__(self, api: Any, operations: Sequence[str], poll: Poll, started: float,
                 until: Optional[float], longest: int, progress: Optional[Progress]) -> None:
        self.api, self.poll, self.progress = api, poll, progress
        self.started, self.until, self.longest = started, until, longest
        #: Still running, by id, in the order first given (an operation given
        #: twice is waited on once).
        self.pending: Dict[str, str] = {}
        for each in operations:
            self.pending.setdefault(_envelope.operation_id(each), each)
        self.last: Dict[str, APIResult] = {}
        self.outcomes: Dict[str, Outcome] = {}
        #: When a progress callback is next due, if no update comes first.
        self.next_tick = started + TICK

    # -- with events ------------------------------------------------------------

    def follow(self, stream: EventStream) -> None:
        """Check each operation once (the stream is open), then read events."""
        for op_id in list(self.pending):
            self.check(op_id, 0)
        while self.pending:
            left = self.left()
            if left is not None and left <= 0:
                self.expire()
            if self.progress is not None and time.monotonic() >= self.next_tick:
                # No update for a second: the same state again, later, so a
                # clock beside it ticks (timed apart from the stream's
                # timeouts: other operations' events come all the time).
                for op_id in list(self.pending):
                    self.report(self.answer(op_id, self.last[op_id].metadata))
                continue
            wait = None if self.progress is None else self.next_tick - time.monotonic()
            stream.settimeout(left if wait is None else wait if left is None else min(wait, left))
            try:
                event = next(stream)
            except APITimeoutError:
                continue
            op = event.metadata if event.type == "operation" else None
            op_id = str(op.get("id")) if isinstance(op, dict) else ""
            if op_id not in self.pending:
                continue  # another operation, or a late update of one done
            if _envelope.is_running(op):
                self.report(self.answer(op_id, op))
            elif _envelope.operation_code(op) is not None:
                self.check(op_id, 0)  # ended: the final answer, read as wait() reads it

    def answer(self, op_id: str, op: Any) -> APIResult:
        """An operation's state as an answer of a wait (``metadata`` the
        operation, ``waited`` the seconds so far), as progress callbacks take it."""
        self.last[op_id] = made_result(
            self.api, self.api.url(self.pending[op_id]), 200,
            json.dumps({"type": "sync", "status": "Success", "status_code": 200,
                        "operation": "", "error_code": 0, "error": "", "metadata": op}).encode(),
            reason="OK", headers={"Content-Type": "application/json"},
            waited=time.monotonic() - self.started)
        return self.last[op_id]

    # -- by polling ---------------------------------------------------------------

    def rounds(self) -> None:
        """Poll until every operation ended: each round long-polls the first
        still running and checks the others at once."""
        pause = 0.0
        while self.pending:
            first, *others = list(self.pending)
            left = self.left()
            seconds = self.longest if left is None else min(self.longest, max(0, math.ceil(left)))
            asked = time.monotonic()
            self.check(first, seconds)
            for op_id in others:
                self.check(op_id, 0)
            if not self.pending:
                return
            # A server that answers a wait at once, without holding it, would
            # make this loop spin (30,000 polls in 15 s were seen): back off,
            # from 50 ms to 1 s, while answers come back early.
            if first in self.pending and seconds > 0 and time.monotonic() - asked < seconds / 2:
                pause = min(max(pause * 2, BACKOFF_FIRST), BACKOFF_LONGEST)
                time.sleep(pause if self.until is None
                           else max(0.0, min(pause, self.until - time.monotonic())))
            else:
                pause = 0.0
            if self.until is not None and time.monotonic() >= self.until:
                self.expire()

    # -- both ---------------------------------------------------------------------

    def check(self, op_id: str, seconds: int) -> None:
        """Poll one operation; an answer that says it ended (or a failure) is its outcome."""
        try:
            answer = self.poll(self.pending[op_id], seconds)
        except APIException as failed:
            self.outcomes[op_id] = failed
            del self.pending[op_id]
            return
        if _envelope.is_running(answer.metadata):
            self.last[op_id] = answer
            self.report(answer)
        else:
            self.outcomes[op_id] = answer
            del self.pending[op_id]

    def report(self, answer: APIResult) -> None:
        """Call the progress callback, if any, while there is time left."""
        if self.progress is not None and (self.until is None or time.monotonic() < self.until):
            self.progress(answer)
            self.next_tick = time.monotonic() + TICK

    def left(self) -> Optional[float]:
        return None if self.until is None else self.until - time.monotonic()

    def expire(self) -> None:
        """Raise :class:`OperationTimeout` for the first operation still running."""
        first = next(iter(self.pending))
        raise OperationTimeout(self.last[first], time.monotonic() - self.started)
