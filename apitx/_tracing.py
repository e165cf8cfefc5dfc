"""Transaction traces for people debugging a program (``DEBUG=1``).

What to trace and how is a :class:`~apitx.TraceSettings` value, read from the
environment once when an :class:`API` is made (``DEBUG``, ``APITX_DEBUG``,
``APITX_DEBUG_FILE``, ``APITX_DEBUG_UNSAFE``, ``APITX_DEBUG_MAX_BODY``; see
:meth:`TraceSettings.from_env`) or given as ``API.factory(trace=...)``.
With ``unsafe`` the trace says so on its first line.

Every trace is a DEBUG record of the ``logging`` logger ``apitx``, so an
application routes it with logging configuration alone and stdout is never
touched. When tracing is on and nothing handles that logger, apitx attaches
one stderr handler, once (colour only on a TTY without ``NO_COLOR``).

When tracing is off nothing here runs: the API holds no tracer.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
from typing import Any, Callable, Dict

from ._config import RenderOptions, TraceSettings
from ._exceptions import SettingsError
from ._curl import render_curl
from ._render import SEPARATOR, Exchange, render_json, render_text

logger = logging.getLogger("apitx")

UNSAFE_NOTICE = ("apitx: APITX_DEBUG_UNSAFE is on: secrets in this trace are NOT redacted; "
                 "do not share it")

# One sequence for the whole process, so numbers are unique across APIs and
# threads (next() on itertools.count is atomic under the GIL).
_sequence = itertools.count(1)
_setup_lock = threading.Lock()
_unsafe_announced = False


FORMATS: Dict[str, Callable[[Exchange, RenderOptions], str]] = {
    "text": render_text,
    "json": render_json,
    "curl": render_curl,
}


class Tracer:
    """Renders and logs each transaction of one API, as its settings say.

    >>> Tracer(TraceSettings(enabled=True, format='json')).format
    'json'
    """

    def __init__(self, settings: TraceSettings) -> None:
        self.format = settings.format
        self.options = settings.render
        self._render = FORMATS[settings.format]
        _attach_handler(settings.file)

    def trace(self, exchange: Callable[[int], Exchange]) -> None:
        """Log one transaction, given a function that builds its
        :class:`Exchange` for a sequence number: nothing is built or rendered
        unless a handler will take the record."""
        if not logger.isEnabledFor(logging.DEBUG):
            return
        text = self._render(exchange(next(_sequence)), self.options)
        if self.options.unsafe:
            text = _announce_unsafe(text, self.format)
        logger.debug(text)


    def note(self, text: str) -> None:
        """Log one line about the API (which server it talks to), in the
        format's own terms: a JSON object for ``json`` (the trace stays one
        object per line), a shell comment for ``curl`` (lines stay runnable)."""
        if not logger.isEnabledFor(logging.DEBUG):
            return
        if self.format == "json":
            text = json.dumps({"note": text})
        elif self.format == "curl":
            text = f"# {text}"
        logger.debug(text)


def _announce_unsafe(text: str, format: str) -> str:
    """The unsafe notice before the first trace of the process, in the
    format's own terms: JSON lines must stay JSON (each record already says
    ``"unsafe": true``), curl lines must stay runnable (a shell comment)."""
    global _unsafe_announced
    with _setup_lock:
        first, _unsafe_announced = not _unsafe_announced, True
    if not first or format == "json":
        return text
    return f"{'# ' if format == 'curl' else ''}{UNSAFE_NOTICE}\n{text}"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at each record (as logging's
    last-resort handler does), in colour when it is a TTY and ``NO_COLOR``
    is unset. Public, for applications that route the ``apitx`` logger
    themselves (the ``apitx`` command does).

    >>> logging.getLogger('apitx').addHandler(StderrHandler())
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        isatty = getattr(self.stream, "isatty", None)
        if "NO_COLOR" in os.environ or not (isatty and isatty()):
            return text
        return "\n".join(_colour(line) for line in text.split("\n"))


_BOLD, _GREEN, _RED, _DIM, _RESET = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"


def _colour(line: str) -> str:
    if line.startswith("#"):
        return f"{_BOLD}{line}{_RESET}"
    if line.startswith("HTTP/"):
        ok = line[5:8].isdigit() and int(line[5:8]) < 400
        return f"{_GREEN if ok else _RED}{line}{_RESET}"
    if line == SEPARATOR:
        return f"{_DIM}{line}{_RESET}"
    return line


class _TraceFileHandler(logging.FileHandler):
    """Appends the trace to a file; a write that fails (a full disk) is said
    once, in one line on stderr, instead of logging's traceback per record."""

    def __init__(self, path: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self._failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self._failed:
            self._failed = True
            error = sys.exc_info()[1]
            sys.stderr.write(f"apitx: cannot write the trace to {self.baseFilename}: "
                             f"{getattr(error, 'strerror', None) or error}; later records "
                             "are lost too\n")


def _attach_handler(file: str) -> None:
    """Make sure DEBUG records of ``apitx`` reach someone, once.

    ``APITX_DEBUG_FILE`` gets a file handler (appending) the first time it is
    named; otherwise a stderr handler is added only when no handler of
    ``apitx`` or its ancestors would show the records. The logger's level is
    lowered only when it was unset.
    """
    with _setup_lock:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)
        if file:
            path = os.path.abspath(file)
            if not any(getattr(h, "baseFilename", None) == path for h in logger.handlers):
                try:
                    logger.addHandler(_TraceFileHandler(path))
                except OSError as exc:
                    raise SettingsError(f"APITX_DEBUG_FILE={file!r}: cannot append to it: "
                                        f"{exc.strerror}; give a writable file, or unset it "
                                        "to trace to stderr") from None
        elif not logger.hasHandlers():
            logger.addHandler(StderrHandler())
