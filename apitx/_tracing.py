"""Transaction dumps for people debugging a program (``DEBUG=1``).

Every transaction is logged, at DEBUG level, to the ``logging`` logger
``apitx``, so an application routes it with logging configuration alone and a
program's stdout is never touched. When tracing is on and nothing handles that
logger, apitx attaches one handler writing to stderr.

The layout is lxdapi's::

    PUT unix:/var/lib/lxd/unix.socket /1.0/instances/c1/state
    {
        "action": "stop"
    }
    HTTP/202
    {
        "type": "async",
        ...
    }
    ------------------------------------------------------------------------

When tracing is off nothing here runs: the API holds no tracer at all.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # pragma: no cover
    from ._result import APIResult

logger = logging.getLogger("apitx")

SEPARATOR = "-" * 72


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    Looking it up late (as logging's own last-resort handler does) keeps
    working when a test runner or the application swaps ``sys.stderr``.
    """

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def enable() -> None:
    """Make sure DEBUG records of the ``apitx`` logger reach someone.

    Called when an API is made with tracing on. Attaches the stderr handler
    only when nothing (no handler on ``apitx`` or its ancestors) would show the
    records, and only once; lowers the logger's level only when it was unset.
    """
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)
    if not logger.hasHandlers():
        logger.addHandler(_StderrHandler())


def trace(result: APIResult) -> None:
    """Log one transaction. The text is built only if a handler will take it."""
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s\n%s\n%s", result.request_summary(), result.response_summary(),
                     SEPARATOR)


def render_request(method: str, readable_url: str, body: Any) -> str:
    """``METHOD URL`` then the request body, if any."""
    shown = render_body(body)
    return f"{method} {readable_url}" + (f"\n{shown}" if shown else "")


def render_response(status_code: int, data: Any, content: Optional[bytes]) -> str:
    """``HTTP/<status>`` then the response body, if any."""
    if content is None:
        shown = "<streamed body, not read>"
    elif data is not None:
        shown = _indent_json(data, content)
    else:
        shown = render_body(content)
    return f"HTTP/{status_code}" + (f"\n{shown}" if shown else "")


def render_body(body: Any) -> str:
    """A body as text: JSON indented, other text as is, binary as a summary."""
    if body is None or body == b"" or body == "":
        return ""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    if not isinstance(body, (bytes, bytearray)):
        return "<streamed body, not read>"
    try:
        return _indent_json(json.loads(body), body)
    except ValueError:
        pass
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        return f"<binary {len(body)} bytes>"


def _indent_json(data: Any, raw: bytes) -> str:
    try:
        return json.dumps(data, indent=4, ensure_ascii=False)
    except RecursionError:
        # Pathologically deep JSON: the indenting encoder recurses in Python.
        # Show the server's bytes rather than fail the caller's request.
        return raw.decode("utf-8", "replace")
