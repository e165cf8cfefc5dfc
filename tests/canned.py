"""Canned LXD answers by path, through apitx.testing.MockTransport.

What apitx makes of an answer (validation, the ways LXD versions encode a
failed operation, waiting, tracing) needs no socket: a handler gives the
answer and the real sender, validation and waiting do the rest. Faults only
a socket can produce (garbage bytes, slowness, truncation, bad HTTP) stay
with tests/hostile.py.

``canned`` and ``canned_api`` (conftest.py) give a fresh :class:`Canned` and
an API on it.

Example::

    def test_not_found(canned, canned_api):
        canned.answers['/1.0/instances/c1'] = Answer.error(404, 'Instance not found')
        with pytest.raises(APINotFoundException):
            canned_api.get('instances/c1')
"""

from __future__ import annotations

from typing import Callable, Dict, List, Union
from urllib.parse import urlencode

from apitx.testing import Answer, MockRequest, MockTransport, operation

#: What LXD answers a path it does not know.
NOT_FOUND = Answer.error(404, "not found")

CannedAnswer = Union[Answer, Callable[[MockRequest], Answer]]


def running(op_id: str) -> Answer:
    """The answer to a ``/wait`` that ran out while ``op_id`` still runs (LXD 5.0)."""
    return Answer.sync(operation(op_id, 103))


def succeeded(op_id: str) -> Answer:
    return Answer.sync(operation(op_id, 200))


def error_in_200(error_code: int, message: str) -> Answer:
    """HTTP 200 with a ``type: error`` body: how Incus ends a wait it already
    sent its headers for, and how some versions report a failure."""
    return Answer(200, Answer.error(error_code, message).body)


#: The three encodings of "this operation failed" LXD versions have used, as
#: answers to its ``/wait``: HTTP 200 sync with a Failure inside (5.x), an
#: HTTP error status, and HTTP 200 with a ``type: error`` body.
FAILED_WAITS: Dict[str, Answer] = {
    "fail-sync": Answer.sync(operation("fail-sync", 400, "failed inside")),
    "fail-status": Answer.error(400, "failed by status"),
    "fail-type": error_in_200(400, "failed by type"),
}

#: A proxy's page where the answer to a wait should be: nothing says it ended.
NOT_AN_OPERATION = Answer(200, b"<html>ok</html>", {"Content-Type": "text/html"})


def in_turn(answers: List[Answer]) -> Callable[[MockRequest], Answer]:
    """Each answer once, in turn; the last one for ever."""
    left = list(answers)
    return lambda request: left.pop(0) if len(left) > 1 else left[0]


class Canned:
    """A MockTransport handler: ``answers[path]`` (an :class:`Answer`, or a
    function of the :class:`MockRequest`), else LXD's 404."""

    def __init__(self) -> None:
        self.answers: Dict[str, CannedAnswer] = {}
        self.transport = MockTransport(self)

    def __call__(self, request: MockRequest) -> Answer:
        answer = self.answers.get(request.path, NOT_FOUND)
        return answer if isinstance(answer, Answer) else answer(request)

    def operation(self, op_id: str, *waits: Answer) -> str:
        """Play operation ``op_id``: ``GET /1.0/async/<op_id>`` announces it
        (HTTP 202, as a POST that started it would); its ``/wait`` answers
        ``waits`` in turn, the last one for ever. Returns the path that starts it."""
        self.answers[f"/1.0/async/{op_id}"] = Answer.operation(operation(op_id, 103))
        self.answers[f"/1.0/operations/{op_id}/wait"] = in_turn(list(waits))
        return f"async/{op_id}"

    def targets(self) -> List[str]:
        """Each request's path and query, as a server's log would show it."""
        return [request.path + (f"?{urlencode(request.params)}" if request.params else "")
                for request in self.transport.requests]
