"""What the websockets of both clients share with the layers above them.

Messages (:data:`Message`, :data:`NO_MESSAGE`), how a trace shows one and
an upgrade (:func:`trace_upgrade`), the numbering of traced websockets, and :class:`UpgradeRefused`: the names
events, exec and the senders use at run time. Apart from the connections
themselves (``_websocket``, ``_aiows``) so that a program that never opens
a websocket never imports websocket-client (issue 19: it costs ~10 ms).

>>> from apitx._transports import describe_message
>>> describe_message(b'abc')
'<binary 3 bytes>'
>>> describe_message('{"secret": "s3cr3t", "fds": 4}')   # fds: exec's secrets
'{"secret":"<redacted>","fds":"<redacted>"} (30 bytes)'
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from typing import Mapping, Optional, Union

from .._redact import redact

#: Websocket traces number their connections apart from HTTP transactions.
_sequence = itertools.count(1)

#: Text messages longer than this are cut in traces.
_TRACE_TEXT_MAX = 2000

Message = Union[str, bytes]

#: What :meth:`WebSocketConnection.recv_frame` returns for a frame that
#: completed no message (a ping, a pong, a fragment).
NO_MESSAGE = object()

def trace_upgrade(seq: Optional[int], line: str, started: float) -> None:
    """Trace a websocket's upgrade as a transaction: its number, the request
    line (secrets redacted already), the time since ``started``
    (``time.perf_counter``) and the 101 answer. Both clients call it, so the
    async trace shows an exec's or the events' websockets opening as the sync
    one does (else its ``#wsN`` messages come from nowhere). ``seq`` None: not traced.

    >>> trace_upgrade(3, 'GET unix:/s /1.0/events', time.perf_counter())
    """
    logger = logging.getLogger("apitx")
    if seq is not None and logger.isEnabledFor(logging.DEBUG):
        logger.debug("#ws%d %s upgraded to a websocket %.1f ms\nHTTP/101 %s\n%s",
                     seq, line, (time.perf_counter() - started) * 1000,
                     "Switching Protocols", "-" * 72)


def describe_message(message: Message) -> str:
    """One line for a message in a trace: text redacted, binary as its size.

    >>> describe_message(b'abc')
    '<binary 3 bytes>'
    """
    if isinstance(message, bytes):
        return f"<binary {len(message)} bytes>"
    if message in ("<close>",):
        return message
    try:
        shown = json.dumps(redact(json.loads(message)), separators=(",", ":"))
    except ValueError:
        shown = json.dumps(message, ensure_ascii=False)  # quoted, on one line
    if len(shown) > _TRACE_TEXT_MAX:
        shown = shown[:_TRACE_TEXT_MAX] + "…"
    return f"{shown} ({len(message.encode('utf-8'))} bytes)"


class UpgradeRefused(Exception):
    """The server answered the upgrade with an HTTP status, not 101: the
    layer above turns this answer into the result (and exception) a plain
    request would give. Internal to apitx."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes,
                 elapsed: float) -> None:
        self.status, self.reason, self.headers, self.body = status, reason, headers, body
        self.elapsed = elapsed
        super().__init__(f"HTTP {status} {reason}")
