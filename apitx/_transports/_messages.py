"""What the websockets of both clients share with the layers above them.

Messages (:data:`Message`, :data:`NO_MESSAGE`), how a trace shows one, the
numbering of traced websockets, and :class:`UpgradeRefused`: the names
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
from typing import Mapping, Union

from .._redact import redact

#: Websocket traces number their connections apart from HTTP transactions.
_sequence = itertools.count(1)

#: Text messages longer than this are cut in traces.
_TRACE_TEXT_MAX = 2000

Message = Union[str, bytes]

#: What :meth:`WebSocketConnection.recv_frame` returns for a frame that
#: completed no message (a ping, a pong, a fragment).
NO_MESSAGE = object()

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
