"""Waiting on operations, one or many: the rules, with no I/O.

``wait()``, ``wait(progress=)`` and ``wait_all()`` of both clients come
here. The rules are written once, as generators that *yield* what they need
done (:class:`Fetch` an answer, :class:`Listen` for an event, :class:`Pause`,
:class:`Report` progress) and are *sent* what came of it; the sync and async
engines (``_operations``, ``_aio._operations``) only carry those commands
out. So when a wait is over, a failure, a timeout, or a server gone quiet is
decided in one place for both.

Every update of an operation arrives on ``/1.0/events?type=operation`` as
the whole operation (LXD 5.0.2 and Incus 6.0.4, measured here), so one
websocket watches any number of operations. The order is what makes it
safe (LXD forgets a finished operation about 5 s after it ends, and sends
each update once):

1. the engine subscribes to the event stream and waits for its first ping;
2. :meth:`Waiter.follow` checks each operation once (``/wait?timeout=0``):
   one that ended already is done, and any later update comes as an event;
3. it reads events; when one says an operation ended, it fetches the final
   answer with the same poll, so every failure encoding, and Incus's way of
   ending a wait, are read by the very code ``wait()``'s polls use.

Events may come out of order (a ``Running`` update after the ``Failure``
that followed it was seen here): an operation is done at its first event
that says it ended, and later ones are ignored.

Without events (a server or proxy that refuses the websocket, a stream that
drops midway), :meth:`Waiter.rounds` polls: the first operation still running
is long-polled for up to ``longest`` seconds, every other one checked at
once, so none goes unchecked for longer than a round and none is forgotten
unseen. One operation with ``longest=30`` is exactly ``wait()``'s poll loop.

Timeouts are deadlines: ``until`` holds for the whole wait, however many
events or keepalive pings come meanwhile. A stream on which nothing at all
arrives (not even LXD's ping, sent every 10 s) for :data:`SILENCE` seconds
is a daemon that stopped answering: the wait fails with
:class:`~apitx.APITimeoutError`, as a poll would.

The engine only says what to do next; a client does it and sends the reply:

>>> import time
>>> from apitx._waiting import Waitable, Waiter
>>> waiter = Waiter([Waitable('/1.0/operations/abc', None)], started=time.monotonic(),
...                 until=None, longest=30, progress=False, answer_of=None)
>>> next(waiter.rounds())       # long-poll it, reading for 10 s more than LXD holds it
Fetch(url='/1.0/operations/abc/wait', params={'timeout': 30}, read_seconds=40.0, project=None)
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Generator, Generic, Iterable, List, Mapping, NamedTuple,
                    Optional, Sequence, Tuple, Union)
from urllib.parse import parse_qsl, urlsplit

from . import _envelope
from ._event import Event
from ._exceptions import (APIConnectionError, APIException, APINotFoundException,
                          APITimeoutError, OperationTimeout, RequestError, RequestTypeError)
from ._result import BaseResult, ResultT

#: Each poll of ``wait()`` asks LXD to hold the answer this long at most, so a
#: daemon that dies during a long operation is noticed within this time.
POLL_SECONDS = 30
#: Polls this short when waiting without events (with a progress callback, or
#: on many operations: LXD forgets one 5 s after it ends, so each is checked
#: at least this often).
PROGRESS_POLL_SECONDS = 1
#: A poll's HTTP read timeout exceeds its server-side ``timeout`` by this much:
#: LXD answers a timed-out wait only after the full ``timeout``, and a client
#: that gives up first kills a healthy request with ReadTimeout.
POLL_READ_MARGIN = 10.0
#: With a progress callback, it is called at least this often (seconds), with
#: the last state seen: a progress line's clock ticks between LXD's updates.
TICK = 1.0
#: The longest wait for the event stream's first ping, which says LXD sends
#: events to it (measured: 0.02-1 ms after the upgrade on LXD and Incus).
CONFIRM_SECONDS = 5.0
#: An event stream silent this long (no event, no ping: LXD and Incus ping
#: every 10 s) belongs to a daemon that stopped answering (SIGSTOP, a dead
#: network): the same bound a poll's read timeout puts on ``wait()``.
SILENCE = POLL_SECONDS + POLL_READ_MARGIN
#: An operation no event has mentioned for this long is polled once while the
#: stream is followed. In a cluster the member apitx talks to keeps the stream
#: alive (pings) when the member that runs the operation dies: no event will
#: ever end it, and only a poll hears the member apitx talks to say so (HTTP
#: 500 naming the dead member). Seen with a copy into a cluster whose target
#: member was killed: the wait held for 15 minutes before this.
RECHECK_SECONDS = 15.0
#: Pauses between polls that a server answered early (see :meth:`Waiter.rounds`).
BACKOFF_FIRST = 0.05
BACKOFF_LONGEST = 1.0

logger = logging.getLogger("apitx")

#: What waiting on one operation ends with: its final answer, or its failure.
Outcome = Union[ResultT, APIException]


# -- what the engines carry out ---------------------------------------------------

class Fetch(NamedTuple):
    """GET ``url`` with ``params`` in ``project`` (None: the API's own), the
    read timeout ``read_seconds`` (None: the API's); reply: the answer,
    unvalidated. Transport failures raise."""

    url: str
    params: Optional[Mapping[str, Any]]
    read_seconds: Optional[float]
    project: Optional[str]


class Listen(NamedTuple):
    """Read the next event, waiting ``timeout`` seconds at most (None: no
    limit); reply: a :class:`Heard`."""

    timeout: Optional[float]


class Heard(NamedTuple):
    """What came of a :class:`Listen`: the event (None: none in time), and
    when the stream last received anything, pings included."""

    event: Optional[Event]
    last_frame: float


class Pause(NamedTuple):
    """Sleep ``seconds``; reply: None."""

    seconds: float


@dataclass(frozen=True)
class Report(Generic[ResultT]):
    """Call the progress callback with ``answer``; reply: None."""

    answer: ResultT


class Subscribe(NamedTuple):
    """Open the operation event stream of ``project`` (or of every project),
    and wait for its first ping; reply: when it was confirmed
    (``time.monotonic()``), or None when the server gives no stream. The
    engine owns the stream and closes it when the wait is over."""

    project: Optional[str]
    all_projects: bool


Command = Union[Fetch, Listen, Pause, "Report[Any]", Subscribe]
Steps = Generator[Command, Any, None]


# -- what to wait on, and for how long --------------------------------------------

#: The headers of an answer made from an event (:func:`event_answer_body`).
EVENT_ANSWER_HEADERS = {"Content-Type": "application/json"}


def event_answer_body(operation: Any) -> bytes:
    """The body of a wait's answer made from an operation an event showed:
    the envelope a poll of it would have carried, so that both clients read
    it with the code that reads polls.

    >>> event_answer_body({'id': 'x', 'status_code': 200})[:40]
    b'{"type": "sync", "status": "Success", "s'
    """
    return json.dumps({"type": "sync", "status": "Success", "status_code": 200,
                       "operation": "", "error_code": 0, "error": "",
                       "metadata": operation}).encode()


def wait_limit(timeout: Any) -> Optional[float]:
    """wait()'s ``timeout`` as seconds, or None for no limit; a mistake raises.

    >>> wait_limit(None), wait_limit(2)
    (None, 2.0)
    """
    if timeout is None or timeout == math.inf:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise RequestTypeError(f"wait(timeout={timeout!r}): give seconds as a number >= 0, "
                               "or None to wait until the operation ends")
    if math.isnan(timeout) or timeout < 0:
        raise RequestError(f"wait(timeout={timeout!r}): give seconds >= 0, or None to wait "
                           "until the operation ends")
    return float(timeout)


@dataclass(frozen=True)
class Waitable:
    """An operation to wait on: its URL as the server gave it, and the project
    it runs in (None: the API's own)."""

    operation: str
    project: Optional[str]


def waitable(result: BaseResult) -> Optional[Waitable]:
    """The operation to wait on for a result (validated first), or None when
    the result is final as it is: a sync answer, unless it is an operation
    still running (``GET /1.0/operations/<id>``).

    The project is the one named in the operation's URL, else the one the
    request that started it named: LXD 5.0.2 gives operation URLs without
    ``?project=``, and an event stream of another project never sees them.
    """
    if not isinstance(result, BaseResult):
        raise RequestTypeError(f"wait(): {result!r} is not a result: give what a request "
                               "returned (api.post(...)); nothing was waited on")
    result.validate()
    operation = result.operation
    if not operation or (result.type != "async" and not result.running):
        return None
    return Waitable(operation, _query(operation).get("project")
                    or _query(result.request.url or "").get("project"))


def _query(url: str) -> Dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def stream_project(waiting: Sequence[Waitable], own: Optional[str]) -> Tuple[Optional[str], bool]:
    """The event stream that sees every operation: ``(project, all_projects)``.

    >>> stream_project([Waitable('/1.0/operations/a', 'web')], None)
    ('web', False)
    """
    projects = {each.project or own for each in waiting}
    if len(projects) > 1:
        return None, True
    return projects.pop(), False


def poll_url(operation: str) -> str:
    """``<operation>/wait``, its query kept after it.

    A cluster member that forwarded the request names the operation with a
    query (``/1.0/operations/<id>?project=default``): ``/wait`` goes on the
    path, before it. (Appended after it, the request was a plain GET
    answered at once: 367 polls for a 2-second operation.)

    >>> poll_url('/1.0/operations/x?project=default')
    '/1.0/operations/x/wait?project=default'
    """
    path, _, query = operation.partition("?")
    return path.rstrip("/") + "/wait" + (f"?{query}" if query else "")


def forgotten(gone: APINotFoundException, operation: str) -> APINotFoundException:
    """The 404 of a wait, saying what it means: the operation is over, and
    the server has forgotten it (LXD keeps a finished operation about 5 s)."""
    return APINotFoundException(gone.result, status_code=404, error=(
        f"{gone.error}: operation {_envelope.operation_id(operation)} is unknown to the server; "
        "if it was started, it ended and was forgotten (LXD keeps a finished operation about "
        "5 s). To keep its outcome, wait on it at once after starting it, or watch events"))


def poll(waitable: Waitable, seconds: int) -> Generator[Command, Any, Any]:
    """One poll, ``GET <operation>/wait?timeout=seconds``: returns the operation,
    running or ended; a failed one raises :class:`APIException` with the
    server's ``err``."""
    operation, project = waitable.operation, waitable.project
    try:
        last = yield Fetch(poll_url(operation), {"timeout": seconds},
                           seconds + POLL_READ_MARGIN, project)
        if last.type == "error" and last.status_code < 400:
            # Incus sends HTTP 200 as soon as a wait starts, so a poll that
            # times out ends as 200 with type: error ("context deadline
            # exceeded"), the same shape as a failure; with timeout=0 it may
            # say so even of an operation that ended (Go's select picks either
            # ready case: seen here). The operation itself tells: running,
            # ended, or failed.
            current = yield Fetch(operation, None, None, project)
            if _envelope.operation_code(current.metadata) is not None:
                last = current
        # Every failure encoding (HTTP error status, type: error, or HTTP 200
        # with a Failure operation inside) raises here.
        last.validate()
    except APINotFoundException as gone:
        raise forgotten(gone, operation) from None
    if _envelope.operation_code(last.metadata) is None:
        # An HTML page from a proxy, an empty body: nothing says the
        # operation ended, and returning it would pass it off as done.
        raise APIException(last, error="the answer to a wait is not an operation: "
                           "cannot tell whether it ended")
    return last


# -- the whole wait -------------------------------------------------------------------

def plan(waiter: Waiter[Any], *, watch: bool, project: Optional[str], all_projects: bool) -> Steps:
    """Everything a wait does, in order: subscribe (when ``watch``), follow
    the events, and poll what is left (all of it, without a stream or once it
    dropped). The engine carries out each command, and throws into the plan
    the apitx exception a command raised, so that a broken stream or check
    falls back to polling here, in one place."""
    if watch:
        confirmed = yield Subscribe(project, all_projects)
        if confirmed is not None:
            try:
                yield from waiter.follow(confirmed)
            except APIConnectionError as dropped:
                # The stream dropped (or a check's connection broke: a daemon
                # restarting). Polling reads the state back, and raises if the
                # server is really gone.
                logger.debug("apitx: %s; polling instead", dropped)
    yield from waiter.rounds()


# -- the waiter ---------------------------------------------------------------------

#: Makes the answer of a wait from an operation seen in an event:
#: ``answer_of(operation_url, operation, waited_seconds)``.
AnswerOf = Callable[[str, Any, float], ResultT]


class Waiter(Generic[ResultT]):
    """The operations still running, the last answer of each, and the outcomes.

    ``until`` is the ``time.monotonic()`` deadline of the whole wait (None:
    none), past which :class:`OperationTimeout` is raised for the first
    operation still running; ``started`` is when the wait began; ``longest``
    the longest a poll is held; ``progress`` whether updates are reported.
    """

    def __init__(self, operations: Sequence[Waitable], *, started: float,
                 until: Optional[float], longest: int, progress: bool,
                 answer_of: AnswerOf[ResultT]) -> None:
        self.started, self.until, self.longest = started, until, longest
        self.progress, self.answer_of = progress, answer_of
        #: Still running, by id, in the order first given (an operation given
        #: twice is waited on once).
        self.pending: Dict[str, Waitable] = {}
        for each in operations:
            self.pending.setdefault(_envelope.operation_id(each.operation), each)
        self.last: Dict[str, ResultT] = {}
        self.outcomes: Dict[str, Outcome[ResultT]] = {}
        #: When each operation was last heard of (an event or a poll), while following.
        self.heard: Dict[str, float] = {}
        #: When a progress report is next due, if no update comes first.
        self.next_tick = started + TICK

    def outcome(self, operation: str) -> Outcome[ResultT]:
        """The outcome of an operation given (once every one has ended)."""
        return self.outcomes[_envelope.operation_id(operation)]

    # -- with events ------------------------------------------------------------

    def follow(self, confirmed_at: float) -> Steps:
        """Check each operation once (the stream is open and confirmed at
        ``confirmed_at``), then read events until every operation ended."""
        for op_id in list(self.pending):
            yield from self._check(op_id, 0)
        heard_at = confirmed_at
        while self.pending:
            now = time.monotonic()
            left = self._left(now)
            if left is not None and left <= 0:
                self._expire()
            unheard = [op_id for op_id in self.pending
                       if now - self.heard.get(op_id, now) >= RECHECK_SECONDS]
            if unheard:
                for op_id in unheard:
                    yield from self._check(op_id, 0)
                continue
            if self.progress and now >= self.next_tick:
                # No update for a second: the same state again, later, so a
                # clock beside it ticks (timed apart from the stream's
                # timeouts: other operations' events come all the time).
                for op_id in list(self.pending):
                    yield from self._report(self._event_answer(op_id, self.last[op_id].metadata))
                continue
            recheck_at = min(self.heard.get(op_id, now) for op_id in self.pending) + \
                RECHECK_SECONDS
            wait = min(heard_at + SILENCE, recheck_at) - now
            if left is not None:
                wait = min(wait, left)
            if self.progress:
                wait = min(wait, self.next_tick - now)
            heard: Heard = yield Listen(max(0.0, wait))
            heard_at = heard.last_frame
            if heard.event is None:
                if time.monotonic() - heard_at >= SILENCE:
                    raise self._silent(heard_at)
                continue
            yield from self._event(heard.event)

    def _event(self, event: Event) -> Steps:
        op = event.metadata if event.type == "operation" else None
        op_id = str(op.get("id")) if isinstance(op, dict) else ""
        if op_id not in self.pending:
            return  # another operation, or a late update of one done
        self.heard[op_id] = time.monotonic()
        if _envelope.is_running(op):
            yield from self._report(self._event_answer(op_id, op))
        elif _envelope.operation_code(op) is not None:
            yield from self._check(op_id, 0)  # ended: the final answer, read as wait() reads it

    def _event_answer(self, op_id: str, op: Any) -> ResultT:
        """An operation's state as an answer of a wait, as progress takes it."""
        self.last[op_id] = self.answer_of(self.pending[op_id].operation, op,
                                          time.monotonic() - self.started)
        return self.last[op_id]

    def _silent(self, heard_at: float) -> APITimeoutError:
        operations = ", ".join(each.operation for each in self.pending.values())
        return APITimeoutError(
            f"waiting on {operations}: nothing came on the event stream for "
            f"{time.monotonic() - heard_at:.0f}s, not even the server's keepalive ping (sent "
            "every 10 s): is the daemon stopped or overloaded? The operation may still run: "
            "wait on it again, or read its state")

    # -- by polling ---------------------------------------------------------------

    def rounds(self) -> Steps:
        """Poll until every operation ended: each round long-polls the first
        still running and checks the others at once."""
        pause = 0.0
        while self.pending:
            first, *others = list(self.pending)
            left = self._left(time.monotonic())
            seconds = self.longest if left is None else min(self.longest, max(0, math.ceil(left)))
            asked = time.monotonic()
            yield from self._check(first, seconds)
            for op_id in others:
                yield from self._check(op_id, 0)
            if not self.pending:
                return
            # A server that answers a wait at once, without holding it, would
            # make this loop spin (30,000 polls in 15 s were seen): back off,
            # from 50 ms to 1 s, while answers come back early.
            if first in self.pending and seconds > 0 and time.monotonic() - asked < seconds / 2:
                pause = min(max(pause * 2, BACKOFF_FIRST), BACKOFF_LONGEST)
                yield Pause(pause if self.until is None
                            else max(0.0, min(pause, self.until - time.monotonic())))
            else:
                pause = 0.0
            if self.until is not None and time.monotonic() >= self.until:
                self._expire()

    # -- both ---------------------------------------------------------------------

    def _check(self, op_id: str, seconds: int) -> Steps:
        """Poll one operation; an answer that says it ended (or a failure) is its outcome."""
        self.heard[op_id] = time.monotonic()
        try:
            answer = yield from poll(self.pending[op_id], seconds)
        except APIException as failed:
            self.outcomes[op_id] = failed
            del self.pending[op_id]
            return
        if _envelope.is_running(answer.metadata):
            self.last[op_id] = answer
            yield from self._report(answer)
        else:
            self.outcomes[op_id] = answer
            del self.pending[op_id]

    def _report(self, answer: ResultT) -> Steps:
        """Report progress, if asked, while there is time left."""
        if self.progress and (self.until is None or time.monotonic() < self.until):
            yield Report(answer)
            self.next_tick = time.monotonic() + TICK

    def _left(self, now: float) -> Optional[float]:
        return None if self.until is None else self.until - now

    def _expire(self) -> None:
        """Raise :class:`OperationTimeout` for the first operation still running."""
        first = next(iter(self.pending))
        raise OperationTimeout(self.last[first], time.monotonic() - self.started)



def _results(results: Any) -> List[Any]:
    """wait_all()'s ``results`` as a list, or the mistake raised: a list (or
    any iterable but a string or a mapping) of what requests returned."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Iterable):
        raise RequestTypeError(f"wait_all({results!r}): give a list of results (what "
                               "requests returned); nothing was waited on")
    listed = list(results)
    for index, result in enumerate(listed):
        if not isinstance(result, BaseResult):
            raise RequestTypeError(f"wait_all(): result {index} ({result!r}) is not a "
                                   "result; nothing was waited on")
    return listed


class WaitAll(Generic[ResultT]):
    """wait_all()'s bookkeeping, the same for both clients: every result must
    come from the API's server (``endpoints``); each failed one is its own
    outcome, each running one waits on its operation; the outcomes come back
    in the order given, each failure naming the request that started it.

    >>> from apitx import API
    >>> from apitx._waiting import WaitAll
    >>> api = API.factory()
    >>> results = [api.get('instances/nowhere', validate=False),      # failed already
    ...            api.post(f'instances/{c1}/exec', json={'command': ['true'],
    ...                                                  'wait-for-websocket': False})]
    >>> batch = WaitAll(results, api.endpoints)
    >>> batch.waiting                       # by index: what still runs
    {1: Waitable(operation='/1.0/operations/...', project=None)}
    >>> batch.finish([results[1].wait(30)], return_exceptions=True)
    [APINotFoundException('GET unix:/var/lib/lxd/unix.socket /1.0/instances/nowhere: Instance not found'), <APIResult GET unix:/var/lib/lxd/unix.socket /1.0/operations/.../wait?timeout=30 HTTP/200>]
    """

    def __init__(self, results: Sequence[ResultT], endpoints: Sequence[Any]) -> None:
        results = _results(results)
        for index, result in enumerate(results):
            if result.endpoint not in endpoints:
                raise RequestError(
                    f"wait_all(): result {index} ({result.request_line()}) comes from "
                    f"{result.endpoint.display}, another server than this API's "
                    f"({', '.join(e.display for e in endpoints)}): wait on it through the API "
                    "that made it (result.wait(), or that API's wait_all()); nothing was "
                    "waited on")
        self.results = results
        self.outcomes: List[Outcome[ResultT]] = []
        #: The operation each result still running waits on, by index.
        self.waiting: Dict[int, Waitable] = {}
        for index, result in enumerate(results):
            try:
                operation = waitable(result)
            except APIException as failed:
                self.outcomes.append(failed)
                continue
            self.outcomes.append(result)
            if operation is not None:
                self.waiting[index] = operation

    def finish(self, ended: Sequence[Outcome[ResultT]],
               return_exceptions: bool) -> List[Outcome[ResultT]]:
        """The outcomes in the order given; unless failures are returned in
        place, the first one raises."""
        for index, outcome in zip(self.waiting, ended):
            self.outcomes[index] = outcome.started_by(self.results[index]) \
                if isinstance(outcome, APIException) else outcome
        if not return_exceptions:
            for outcome in self.outcomes:
                if isinstance(outcome, APIException):
                    raise outcome
        return self.outcomes
