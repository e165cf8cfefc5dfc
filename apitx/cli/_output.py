"""Where results go: stdout or ``-o FILE``, as JSON or as the bytes that came.

A failed write names where it failed (``stdout: No space left on device``,
exit 5); a closed stdout is refused before anything is sent; ``-o FILE`` is
written by :func:`apitx.atomic_write`, so a failed or interrupted request
leaves the previous file as it was.

Example:

>>> from pathlib import Path
>>> with ExitStack() as stack:
...     output = open_output(f'/tmp/{c2}.json', stack)     # or None for stdout
...     write_json({'a': 1}, output, compact=True)
>>> Path(f'/tmp/{c2}.json').read_text()
'{"a":1}\\n'
>>> Path(f'/tmp/{c2}.json').unlink()
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack, contextmanager
from typing import IO, Any, Callable, Iterator, Optional, Tuple

from .. import APIResult, LocalFileError
from ._exit import EXIT_OK, OutputError, UsageError


@contextmanager
def writing(name: str) -> Iterator[None]:
    """Turn a failed write to ``name`` (stdout, ``-o FILE``) into one line (exit 5)."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader left: exit 141, as for SIGPIPE
    except OSError as exc:
        raise OutputError(f"{name}: {exc.strerror or exc}") from None


class ResultWriter:
    """A binary stream the command's output goes to (stdout, stderr, ``-o
    FILE``), under the name a failed write is reported with.

    >>> ResultWriter(open('/dev/full', 'wb', buffering=0), '-o /dev/full').write(b'{}\\n')
    Traceback (most recent call last):
      ...
    apitx.cli._exit.OutputError: -o /dev/full: No space left on device
    """

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream, self.name = stream, name

    def write(self, data: bytes) -> None:
        with writing(self.name):
            rest = memoryview(data)
            while rest:  # unbuffered (PYTHONUNBUFFERED), stdout may take only a part
                rest = rest[self.stream.write(rest):]

    def flush(self) -> None:
        with writing(self.name):
            self.stream.flush()

    def write_now(self, data: bytes) -> None:
        """Write and flush: a pipe or a terminal sees ``data`` at once."""
        self.write(data)
        self.flush()


def stdout_writer(what: str = "the result",
                  fix: str = "redirect it (>/dev/null) or use -o FILE") -> ResultWriter:
    """stdout as a :class:`ResultWriter`, refused (before anything is sent)
    when the shell closed it (``>&-``): ``what`` would be lost."""
    if sys.stdout is None:
        raise UsageError(f"stdout is closed: {what} would be lost, so nothing was sent; {fix}")
    return ResultWriter(sys.stdout.buffer, "stdout")


def open_output(path: Optional[str], stack: ExitStack) -> ResultWriter:
    """Where the result goes, prepared before the request so a bad path costs nothing.

    No ``-o``, or ``-o -``, is stdout (``-o -`` even a terminal: the user asked
    for the bytes there). ``-o FILE`` is written as :func:`apitx.atomic_write`
    writes, as ``cp`` would: through a symlink, keeping an existing file's
    mode and owner, into a device or FIFO in place (``/dev/null``); a
    regular file takes its new content only when the command succeeds.
    """
    if path is None or path == "-":
        return stdout_writer()
    return open_file(path, f"-o {path}", stack)


def open_file(path: str, name: str, stack: ExitStack) -> ResultWriter:
    """``path`` opened by :func:`apitx.atomic_write` until ``stack`` closes, as
    ``-o FILE`` is: a path that cannot be written is a usage error (nothing
    was sent), a write or the final rename that fails is one line naming
    ``name`` (exit 5), and the file is replaced only if the block succeeds.

    >>> with ExitStack() as stack:
    ...     open_file('/nonexistent/c1.tar.gz', 'c1.tar.gz', stack)
    Traceback (most recent call last):
      ...
    apitx.cli._exit.UsageError: c1.tar.gz: ...
    """
    from .. import atomic_write  # here: only a command that writes a file needs it

    stack.enter_context(_finishing(name))
    try:
        stream = stack.enter_context(atomic_write(path))
    except LocalFileError as exc:  # the path cannot be written: nothing was sent
        raise UsageError(f"{name}: {exc.strerror}") from None
    return ResultWriter(stream, name)


@contextmanager
def _finishing(name: str) -> Iterator[None]:
    """A file that cannot be finished (its last flush on a full disk, its
    rename) is a failed write, as any other (exit 5)."""
    try:
        yield
    except LocalFileError as exc:
        raise OutputError(f"{name}: {exc.strerror}") from None


def write_json(value: Any, output: ResultWriter, *, compact: bool) -> None:
    """``value`` as JSON and a newline, indented unless ``compact``."""
    output.write((json_text(value, compact) + "\n").encode("utf-8"))
    output.flush()


def json_text(value: Any, compact: bool) -> str:
    """The result as JSON: indented, or on one line with ``compact``.

    json.dumps recurses once per level and stops near Python's recursion limit
    (about 1,000 levels), but apitx parses answers up to 20,000 levels deep:
    those print on one line, from a walk with a stack of its own.

    >>> json_text({'a': [1]}, compact=True)
    '{"a":[1]}'
    """
    try:
        if compact:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return json.dumps(value, ensure_ascii=False, indent=4)
    except RecursionError:
        return "".join(_compact_json(value))


def _compact_json(value: Any) -> Iterator[str]:
    """``value`` in pieces, as ``json.dumps(value, separators=(",", ":"))`` writes it, at any depth.

    >>> "".join(_compact_json({"a": [1, {"b": None}], "c": []}))
    '{"a":[1,{"b":null}],"c":[]}'
    """
    encode = json.JSONEncoder(ensure_ascii=False).encode  # scalars and empty containers only
    stack = [iter([(False, value)])]
    while stack:
        for is_syntax, item in stack[-1]:
            if is_syntax:
                yield item
            elif isinstance(item, (dict, list)) and item:
                stack.append(_members(item, encode))
                break  # walk the new top; this level resumes after it
            else:
                yield encode(item)
        else:
            stack.pop()


def _members(container: Any, encode: Callable[[Any], str]) -> Iterator[Tuple[bool, Any]]:
    """A non-empty dict or list as (True, syntax) and (False, value) pairs, in order."""
    if isinstance(container, dict):
        for index, (key, value) in enumerate(container.items()):
            yield True, ("," if index else "{") + encode(key) + ":"
            yield False, value
        yield True, "}"
        return
    for index, value in enumerate(container):
        yield True, "," if index else "["
        yield False, value
    yield True, "]"


def write_body(result: APIResult, output: ResultWriter, *, terminal_ok: bool) -> int:
    """Copy a non-JSON answer (a file pull, an image export) to ``output``,
    streamed in the library's pieces; refused on a terminal unless ``terminal_ok``."""
    if not terminal_ok and output.stream.isatty():
        if result.response.headers.get("Content-Length") == "0":
            return EXIT_OK
        kind = result.response.headers.get("Content-Type") or "no Content-Type"
        raise UsageError(f"{result.request_line()}: the answer is not JSON ({kind}): "
                         "not written to a terminal; use -o FILE, -o - or a pipe")
    for piece in result.iter_content():  # a broken download raises apitx's errors
        output.write(piece)
    output.flush()
    return EXIT_OK
