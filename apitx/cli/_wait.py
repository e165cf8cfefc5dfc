"""``--wait``: wait for the operation a request started, with a live progress
line on a terminal, and Ctrl-C that says what became of the operation.

Example:

>>> from apitx import API
>>> api = API.factory()
>>> result = api.post('instances', json={'name': c2, 'source': {'type': 'none'}})
>>> wait(api, result, timeout=60, cancel_on_interrupt=False).metadata['status']
'Success'
"""

from __future__ import annotations

import shutil
import sys
from typing import IO, Any, List, Optional

from .. import API, APIConnectionError, APIException, APIResult, APITimeoutError
from ._exit import Interrupted


def wait(api: API, result: APIResult, *, timeout: Optional[float],
         cancel_on_interrupt: bool) -> APIResult:
    """Wait for the operation, with a live progress line when stderr is a terminal.

    Ctrl-C stops waiting and names the operation (cancelling it with
    ``cancel_on_interrupt``); a timeout raises OperationTimeout, which names it.
    """
    progress = ProgressLine(sys.stderr) if sys.stderr.isatty() else None
    try:
        if progress is None:
            return result.wait(timeout)
        progress.show(result.metadata, 0.0)
        return result.wait(timeout, progress=progress.update)
    except KeyboardInterrupt:
        raise Interrupted(_interrupted_message(api, result, cancel_on_interrupt)) from None
    finally:
        if progress is not None:
            progress.clear()


def _interrupted_message(api: API, result: APIResult, cancel: bool) -> str:
    where = result.locate(result.operation or "")
    if not cancel:
        return (f"interrupted; operation still running: {where} (wait on it with "
                f"apitx --wait {result.operation}, or cancel it with "
                f"apitx -X DELETE {result.operation})")
    try:
        answer = api.delete(result.operation or "", validate=False)
    except (APIConnectionError, APITimeoutError) as exc:
        return f"interrupted; could not cancel operation {where}: {exc}"
    if answer.ok:
        return f"interrupted; cancelled operation {where}"
    return (f"interrupted; LXD did not cancel operation {where}: "
            f"{_api_error(answer)}; it is still running")


def _api_error(answer: APIResult) -> str:
    try:
        answer.validate()
    except APIException as exc:
        return exc.error
    return "?"  # pragma: no cover - only called on a failed answer


class ProgressLine:
    """One status line on a terminal, rewritten in place and cleared at the end.

    :meth:`show` shows an operation: its description, the time waited, and
    LXD's progress metadata when it has some (``Unpack: 42%``); :meth:`write`
    any text (the transfer commands' progress).

    >>> import io
    >>> line = ProgressLine(io.StringIO())
    >>> line.show({'description': 'Creating instance'}, 3.2)
    >>> line.stream.getvalue()
    '\\r\\x1b[KCreating instance 3s'
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.shown = False

    def show(self, operation: Any, elapsed: float) -> None:
        self.write(progress_text(operation, elapsed))

    def write(self, text: str) -> None:
        """Replace the line with ``text``, cut to the terminal's width."""
        width = shutil.get_terminal_size((80, 24)).columns - 1
        # \r back to the line start, ESC[K erases it: the line never wraps
        # (it is cut to the terminal's width), so this clears all of it.
        self.stream.write(f"\r\x1b[K{text[:max(width, 10)]}")
        self.stream.flush()
        self.shown = True

    def update(self, answer: APIResult) -> None:
        """A ``wait(progress=...)`` callback: show the operation as an answer
        of the wait reports it."""
        self.show(answer.metadata, answer.waited or 0.0)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def progress_text(operation: Any, elapsed: float) -> str:
    """``Creating instance 3s Unpack: 42%``: what a progress line says.

    LXD reports progress in the operation's ``metadata`` under keys ending in
    ``_progress`` (``download_progress``, ``create_instance_from_image_unpack_progress``,
    ``fs_progress``...), as text such as ``Unpack: 42% (12.3MB/s)``; newer LXD
    also sends a ``progress`` object (``stage``, ``percent``).

    >>> progress_text({'description': 'Creating instance'}, 3.2)
    'Creating instance 3s'
    """
    op = operation if isinstance(operation, dict) else {}
    parts = [str(op.get("description") or "Waiting for the operation"), f"{elapsed:.0f}s"]
    metadata = op.get("metadata")
    if isinstance(metadata, dict):
        parts += [text for key in sorted(metadata) for text in _progress(key, metadata[key])]
    return " ".join(parts)


def _progress(key: str, value: Any) -> List[str]:
    """What one key of an operation's metadata says of its progress, if anything."""
    if key.endswith("_progress") and isinstance(value, str) and value:
        return [value]
    if key == "progress" and isinstance(value, dict):
        return [" ".join(f"{k}: {v}" for k, v in sorted(value.items()))]
    return []
